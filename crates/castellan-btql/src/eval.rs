//! Evaluating a plan over one row in memory: the reference the SQL pushed down to a
//! database must agree with (a differential test holds them together), and the
//! evaluator of what a database cannot express, of projections and of constants.
//!
//! A row is a JSON object shaped as `fetch` answers it (`id`, `_xact_id`, `span_id`,
//! `root_span_id`, the object's ids, and the row's own fields).

use crate::ast::*;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

/// `span_parents` missing, null or empty: a root span (or a row without spans).
pub fn is_root(row: &Map<String, Value>) -> bool {
    match row.get("span_parents") {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The JSON value a field path reads (`Null` when missing).
pub fn field<'a>(row: &'a Map<String, Value>, path: &[String]) -> Cow<'a, Value> {
    let Some((top, rest)) = path.split_first() else { return Cow::Owned(Value::Null) };
    let mut cur: &Value = match top.as_str() {
        "is_root" => return Cow::Owned(Value::Bool(is_root(row))),
        "_pagination_key" => row.get("_xact_id").unwrap_or(&Value::Null),
        t => match row.get(t) {
            Some(v) => v,
            None => return Cow::Owned(Value::Null),
        },
    };
    for k in rest {
        match cur {
            Value::Object(m) => match m.get(k) {
                Some(v) => cur = v,
                None => return Cow::Owned(Value::Null),
            },
            _ => return Cow::Owned(Value::Null),
        }
    }
    Cow::Borrowed(cur)
}

fn literal(l: &Literal) -> Value {
    match l {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Number(n) => serde_json::Number::from_f64(*n).map(Value::Number).unwrap_or(Value::Null),
        Literal::String(s) => Value::String(s.clone()),
    }
}

/// Compares two values of the same scalar type; `None` across types, with null, or
/// for arrays and objects.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// The value of an expression (a predicate's value is a boolean).
pub fn value<'a>(e: &Expr, row: &'a Map<String, Value>) -> Cow<'a, Value> {
    match e {
        Expr::Field(p) => field(row, p),
        Expr::Literal(l) => Cow::Owned(literal(l)),
        Expr::Arith(op, a, b) => {
            let (x, y) = (value(a, row), value(b, row));
            let n = match (x.as_ref(), y.as_ref()) {
                (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => match op {
                        ArithOp::Add => Some(x + y),
                        ArithOp::Sub => Some(x - y),
                        ArithOp::Mul => Some(x * y),
                        ArithOp::Div if y == 0.0 => None,
                        ArithOp::Div => Some(x / y),
                    },
                    _ => None,
                },
                _ => None,
            };
            Cow::Owned(n.and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null))
        }
        _ => Cow::Owned(Value::Bool(test(e, row))),
    }
}

/// `LIKE`: `%` any run of characters, `_` one character, `\` takes the next one
/// literally.
pub fn like(s: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut pat = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        pat.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(it.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let s: Vec<char> = s.chars().collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if j < pat.len() && (pat[j] == P::One || pat[j] == P::Char(s[i])) {
            i += 1;
            j += 1;
        } else if j < pat.len() && pat[j] == P::Any {
            star = Some((j, i));
            j += 1;
        } else if let Some((sj, si)) = star {
            j = sj + 1;
            i = si + 1;
            star = Some((sj, si + 1));
        } else {
            return false;
        }
    }
    while j < pat.len() && pat[j] == P::Any {
        j += 1;
    }
    j == pat.len()
}

fn strings<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

/// Whether a row passes a predicate (a value is true only if it is `true`).
pub fn test(e: &Expr, row: &Map<String, Value>) -> bool {
    match e {
        Expr::Field(_) | Expr::Literal(_) | Expr::Arith(..) => truthy(&value(e, row)),
        Expr::Cmp(op, a, b) => compare(&value(a, row), &value(b, row)).is_some_and(|o| op.holds(o)),
        Expr::And(v) => v.iter().all(|x| test(x, row)),
        Expr::Or(v) => v.iter().any(|x| test(x, row)),
        Expr::Not(x) => !test(x, row),
        Expr::IsNull(x) => value(x, row).is_null(),
        Expr::IsNotNull(x) => !value(x, row).is_null(),
        Expr::In(x, lits) => {
            let v = value(x, row);
            lits.iter().any(|l| compare(&v, &literal(l)) == Some(Ordering::Equal))
        }
        Expr::Like { expr, pattern, case_insensitive } => match value(expr, row).as_ref() {
            Value::String(s) if *case_insensitive => like(&s.to_ascii_lowercase(), &pattern.to_ascii_lowercase()),
            Value::String(s) => like(s, pattern),
            _ => false,
        },
        Expr::Match(x, text) => {
            let v = value(x, row);
            let mut found = Vec::new();
            strings(&v, &mut found);
            let needle = text.to_ascii_lowercase();
            found.iter().any(|s| s.to_ascii_lowercase().contains(&needle))
        }
        Expr::Includes(x, l) => match value(x, row).as_ref() {
            Value::Array(a) => {
                let want = literal(l);
                a.iter()
                    .any(|el| if want.is_null() { el.is_null() } else { compare(el, &want) == Some(Ordering::Equal) })
            }
            _ => false,
        },
    }
}

/// The sort key of a value: its type's rank (null 0, false 1, true 2, number 3,
/// string 4, array or object 5), then the number, then the string.
pub fn sort_key(v: &Value) -> (i64, f64, String) {
    match v {
        Value::Null => (0, 0.0, String::new()),
        Value::Bool(false) => (1, 0.0, String::new()),
        Value::Bool(true) => (2, 0.0, String::new()),
        Value::Number(n) => (3, n.as_f64().unwrap_or(0.0), String::new()),
        Value::String(s) => (4, 0.0, s.clone()),
        _ => (5, 0.0, String::new()),
    }
}

/// Orders two sort keys as the database does (strings by code point).
pub fn cmp_keys(a: &(i64, f64, String), b: &(i64, f64, String)) -> Ordering {
    a.0.cmp(&b.0)
        .then(a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal))
        .then_with(|| a.2.as_bytes().cmp(b.2.as_bytes()))
}

/// The answered row for `select` columns: each alias with its expression's value.
pub fn project(cols: &[Projection], row: &Map<String, Value>) -> Map<String, Value> {
    cols.iter().map(|c| (c.alias.clone(), value(&c.expr, row).into_owned())).collect()
}

/// A constant expression's truth (fields read as null).
pub fn constant(e: &Expr) -> bool {
    test(e, &Map::new())
}
