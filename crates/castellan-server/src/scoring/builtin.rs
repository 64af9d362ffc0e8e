//! The built-in heuristic scorers, native ports of Braintrust's autoevals
//! (`ExactMatch`, `Levenshtein`, `NumericDiff`, `ValidJSON`, `JSONDiff`) plus a
//! `Regex` scorer, addressed as Braintrust addresses global functions:
//! `{"type": "global", "name": "ExactMatch"}`.
//!
//! Each takes the span's `output` and `expected` and gives a score in [0, 1], no
//! score (`Ok(None)`: the span lacks what the scorer needs, as autoevals raises
//! "requires an expected value"), or an error.

use serde_json::Value;

/// The names the built-in scorers answer to.
pub const NAMES: [&str; 6] = ["ExactMatch", "Levenshtein", "NumericDiff", "ValidJSON", "JSONDiff", "Regex"];

/// Whether `name` is a built-in scorer (autoevals' `LevenshteinScorer` alias too).
pub fn known(name: &str) -> bool {
    NAMES.contains(&name) || name == "LevenshteinScorer"
}

/// Runs built-in scorer `name` on a span's `output` and `expected`.
pub fn score(name: &str, output: &Value, expected: Option<&Value>) -> Result<Option<f64>, String> {
    let expected = expected.filter(|e| !e.is_null());
    match name {
        "ExactMatch" => Ok(Some(exact_match(output, expected.unwrap_or(&Value::Null)))),
        "Levenshtein" | "LevenshteinScorer" => Ok(expected.map(|e| levenshtein(&py_str(output), &py_str(e)))),
        "NumericDiff" => match expected {
            None => Ok(None),
            Some(e) => match (output.as_f64(), e.as_f64()) {
                (Some(o), Some(e)) => Ok(Some(numeric_diff(o, e))),
                _ => Err(format!("NumericDiff needs numbers, got output `{output}` and expected `{e}`")),
            },
        },
        "ValidJSON" => Ok(Some(valid_json(output))),
        "JSONDiff" => Ok(Some(json_diff(output, expected.unwrap_or(&Value::Null)))),
        "Regex" => match expected {
            Some(Value::String(pattern)) => {
                let re = regex::Regex::new(pattern).map_err(|e| format!("Regex: `expected` is not a pattern: {e}"))?;
                Ok(Some(if re.is_match(&py_str(output)) { 1.0 } else { 0.0 }))
            }
            Some(other) => Err(format!("Regex: `expected` must be the pattern (a string), got `{other}`")),
            None => Ok(None),
        },
        other => Err(format!("`{other}` is not a built-in scorer (one of {})", NAMES.join(", "))),
    }
}

/// Python's `str()` of a JSON value as autoevals sees it: strings as they are,
/// `None`/`True`/`False`, numbers in Python's spelling, objects and arrays as
/// `json.dumps`.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        other => py_dumps(other),
    }
}

/// Python's `json.dumps` (default separators `", "` and `": "`, ASCII only).
fn py_dumps(v: &Value) -> String {
    let mut out = String::new();
    dump(v, &mut out);
    out
}

fn dump(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{08}' => out.push_str("\\b"),
                    '\u{0c}' => out.push_str("\\f"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for u in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump(&Value::String(k.clone()), out);
                out.push_str(": ");
                dump(x, out);
            }
            out.push('}');
        }
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
    }
}

/// autoevals' `ExactMatch`: 1 when equal; when either side is an object or array,
/// both are compared as JSON text (a string side parsed first when it is JSON).
pub fn exact_match(output: &Value, expected: &Value) -> f64 {
    let needs_json = |v: &Value| v.is_object() || v.is_array();
    let maybe_object = needs_json(output) || needs_json(expected);
    let normalize = |v: &Value| -> String {
        if needs_json(v) {
            return py_dumps(v);
        }
        if maybe_object {
            if let Value::String(s) = v {
                if let Ok(parsed) = serde_json::from_str::<Value>(s) {
                    return py_dumps(&parsed);
                }
            }
        }
        py_str(v)
    };
    if normalize(output) == normalize(expected) {
        1.0
    } else {
        0.0
    }
}

/// Edit distance between two strings, by characters.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// autoevals' `Levenshtein`: `1 - distance / max(len)`, 1 for two empty strings.
pub fn levenshtein(output: &str, expected: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (output.chars().collect(), expected.chars().collect());
    let max = a.len().max(b.len());
    if max == 0 {
        return 1.0;
    }
    1.0 - distance(&a, &b) as f64 / max as f64
}

/// autoevals' `NumericDiff`: `1 - |e - o| / (|e| + |o|)`, scaled first so finite
/// inputs cannot overflow; 1 when both are 0.
pub fn numeric_diff(output: f64, expected: f64) -> f64 {
    if output == 0.0 && expected == 0.0 {
        return 1.0;
    }
    let scale = expected.abs().max(output.abs());
    let (e, o) = (expected / scale, output / scale);
    1.0 - (e - o).abs() / (e.abs() + o.abs())
}

/// autoevals' `ValidJSON` (without a schema): 1 when the output is, or parses as,
/// a JSON object or array.
pub fn valid_json(output: &Value) -> f64 {
    let parsed = match output {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) => return 0.0,
        },
        other => other.clone(),
    };
    if parsed.is_object() || parsed.is_array() {
        1.0
    } else {
        0.0
    }
}

/// autoevals' `JSONDiff` with its default scorers (Levenshtein for strings,
/// NumericDiff for numbers); strings holding a JSON object or array are parsed.
pub fn json_diff(a: &Value, b: &Value) -> f64 {
    let parse = |v: &Value| -> Value {
        if let Value::String(s) = v {
            if valid_json(v) == 1.0 {
                if let Ok(p) = serde_json::from_str(s) {
                    return p;
                }
            }
        }
        v.clone()
    };
    let (a, b) = (parse(a), parse(b));
    match (&a, &b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.is_empty() && y.is_empty() {
                return 1.0;
            }
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            let total: f64 = keys
                .iter()
                .map(|k| json_diff(x.get(*k).unwrap_or(&Value::Null), y.get(*k).unwrap_or(&Value::Null)))
                .sum();
            total / keys.len() as f64
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.is_empty() && y.is_empty() {
                return 1.0;
            }
            let total: f64 = x.iter().zip(y).map(|(p, q)| json_diff(p, q)).sum();
            total / x.len().max(y.len()) as f64
        }
        (Value::String(x), Value::String(y)) => levenshtein(x, y),
        (Value::Number(x), Value::Number(y)) => numeric_diff(x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0)),
        (Value::Null, Value::Null) => 1.0,
        (Value::Null, _) | (_, Value::Null) => 0.0,
        // Different kinds: compare their compact, key-sorted JSON text.
        _ => levenshtein(&a.to_string(), &b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    // The cases of autoevals' own tests (py/autoevals/test_values.py, test_string.py,
    // test_number.py, test_json.py).
    #[test]
    fn levenshtein_matches_autoevals() {
        for (a, b, want) in [
            ("", "", 1.0),
            ("", "a", 0.0),
            ("a", "", 0.0),
            ("a", "a", 1.0),
            ("a", "b", 0.0),
            ("ab", "ac", 0.5),
            ("ac", "bc", 0.5),
            ("abc", "axc", 0.6666666666666667),
            ("xabxcdxxefxgx", "1ab2cd34ef5g6", 0.5384615384615384),
        ] {
            assert_eq!(levenshtein(a, b), want, "{a} vs {b}");
            assert_eq!(score("Levenshtein", &json!(a), Some(&json!(b))), Ok(Some(want)));
        }
        assert_eq!(score("Levenshtein", &json!("x"), None), Ok(None), "no expected, no score");
    }

    #[test]
    fn numeric_diff_matches_autoevals() {
        for (a, b, want) in
            [(0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 2.0, 0.66667), (-1.0, 2.0, 0.0), (10.0, 5.0, 2.0 / 3.0)]
        {
            assert!(close(numeric_diff(a, b), want), "{a} vs {b}: {}", numeric_diff(a, b));
        }
        let max = f64::MAX;
        assert!(close(numeric_diff(max, max), 1.0));
        assert!(close(numeric_diff(max, max / 2.0), 2.0 / 3.0));
        assert!(close(numeric_diff(max, -max), 0.0));
        assert!(close(numeric_diff(1e-320, 1e-320 / 2.0), 2.0 / 3.0));
        assert!(close(numeric_diff(0.0, max), 0.0));
        assert_eq!(score("NumericDiff", &json!(105), Some(&json!(100))).map(|s| s.map(|x| x > 0.97)), Ok(Some(true)));
        assert!(score("NumericDiff", &json!("five"), Some(&json!(5))).is_err());
    }

    #[test]
    fn exact_match_matches_autoevals() {
        assert_eq!(exact_match(&json!("a"), &json!("a")), 1.0);
        assert_eq!(exact_match(&json!("a"), &json!("b")), 0.0);
        assert_eq!(exact_match(&json!(1), &json!("1")), 1.0, "str(1) == '1'");
        assert_eq!(exact_match(&json!({"a": 1}), &json!("{\"a\":1}")), 1.0, "a JSON string is parsed");
        assert_eq!(exact_match(&json!([1, 2]), &json!([1, 2])), 1.0);
        assert_eq!(exact_match(&json!([1, 2]), &json!([2, 1])), 0.0);
        assert_eq!(exact_match(&json!(null), &json!(null)), 1.0);
        assert_eq!(exact_match(&json!("x"), &json!(null)), 0.0);
    }

    #[test]
    fn json_diff_matches_autoevals() {
        for (a, b, want) in [
            (json!(null), json!(null), 1.0),
            (json!(null), json!(""), 0.0),
            (json!([]), json!({}), 0.0),
            (json!([]), json!([]), 1.0),
            (json!({}), json!({}), 1.0),
            (json!({"a": 1}), json!({"a": 1}), 1.0),
            (json!({"a": 1}), json!({"a": 2}), 0.66667),
            (json!({"a": 1}), json!(["a", 1]), 0.5714285714285714),
            (json!({"a": 1}), json!({"b": {"a": 1}}), 0.0),
            (json!({"a": 1}), json!({"a": null}), 0.0),
            (
                json!({"mapping": {"a": "foo", "b": "bar"}}),
                json!({"mapping": {"a": "Foo", "b": "Bar"}, "Extra": 5}),
                0.33333333333333337,
            ),
            (json!("{\"x\": 1, \"y\": 2}"), json!("{\"y\": 2, \"x\": 1}"), 1.0),
            (json!("{\"o1\": {\"x\": 2, \"y\": 2}}"), json!("{\"o1\": {\"y\": 2, \"x\": 1}}"), 0.83333),
            (json!("{\"x\": 1, \"y\": 2}"), json!("{\"x\": 1, \"z\": 2}"), 0.3333),
            (json!("[1, 2]"), json!("[2, 1]"), 0.66667),
            (json!("abc"), json!("axc"), 0.66667),
            (json!("xabxcdxxefxgx"), json!("1ab2cd34ef5g6"), 0.53846),
        ] {
            let got = json_diff(&a, &b);
            assert!(close(got, want), "{a} vs {b}: got {got}, want {want}");
        }
    }

    #[test]
    fn valid_json_matches_autoevals() {
        for (s, want) in [
            ("1", 0.0),
            ("{ \"a\": 1, \"b\": \"hello\" }", 1.0),
            ("[{ \"a\": 1 }]", 1.0),
            ("[{ \"a\": 1 }", 0.0),
            ("{ \"mapping\": { \"a\": \"foo\", \"b\": \"bar\" }, \"extra\": 4 }", 1.0),
            ("{ mapping: { \"a\": \"foo\", \"b\": \"bar\" }, \"extra\": 4 }", 0.0),
        ] {
            assert_eq!(valid_json(&json!(s)), want, "{s}");
        }
        assert_eq!(valid_json(&json!({"already": "parsed"})), 1.0);
    }

    #[test]
    fn regex_matches_output_against_the_pattern_in_expected() {
        assert_eq!(score("Regex", &json!("order 42 shipped"), Some(&json!("\\d+ shipped$"))), Ok(Some(1.0)));
        assert_eq!(score("Regex", &json!("order shipped"), Some(&json!("\\d+ shipped$"))), Ok(Some(0.0)));
        assert_eq!(score("Regex", &json!("x"), None), Ok(None));
        assert!(score("Regex", &json!("x"), Some(&json!("("))).is_err());
        assert!(score("Nope", &json!("x"), None).is_err());
    }

    #[test]
    fn python_json_text_escapes_like_json_dumps() {
        assert_eq!(py_dumps(&json!({"a": [1, "é"]})), "{\"a\": [1, \"\\u00e9\"]}");
    }
}
