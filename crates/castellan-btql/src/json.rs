//! The JSON form, as the SDKs send it:
//!
//! ```json
//! {"select": [{"op": "star"}] | [{"expr": E, "alias": "a"}, …],
//!  "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
//!           "args": [{"op": "literal", "value": "<id>"}], "shape": "spans"},
//!  "filter": E, "sort": [{"expr": E, "dir": "asc" | "desc"}], "limit": 100, "cursor": "…"}
//! ```
//!
//! where an expression `E` is `{"op": "ident", "name": [...]}`, `{"op": "literal",
//! "value": …}`, `{"op": "and" | "or", "children": [...]}` (or `"left"`/`"right"`),
//! `{"op": "not", "expr": E}`, `{"op": "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "in" |
//! "like" | "ilike" | "match" | "includes" | "add" | "sub" | "mul" | "div", "left": E,
//! "right": E}`, `{"op": "isnull" | "isnotnull", "expr": E}`, `{"op": "neg", "expr":
//! E}`, or a string in the text form's expression syntax.

use crate::ast::*;
use crate::text::{check_pattern, comparison};
use serde_json::{Map, Value};

type R<T> = Result<T, Error>;

/// Keys of the query object that are accepted and have no effect here.
const IGNORED: [&str; 4] = ["preview_length", "inference_budget", "use_columnstore", "brainstore_realtime"];
/// Keys of BTQL this server does not implement.
const UNSUPPORTED: [&str; 6] = ["dimensions", "measures", "pivot", "unpivot", "summary", "comparison_key"];

struct Ctx {
    fields: FieldUses,
}

fn at(path: &str) -> Position {
    Position::Json(path.to_owned())
}

fn bad<T>(path: &str, msg: impl Into<String>) -> R<T> {
    Err(Error::new(at(path), msg))
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Parses the JSON form, with the positions of the fields it names. `base` is the
/// path of the query object in the request (`query`).
pub fn parse(v: &Value, base: &str) -> Result<(Query, FieldUses), Error> {
    let Value::Object(m) = v else {
        return bad(base, format!("the query must be an object or a string, got {}", describe(v)));
    };
    let mut cx = Ctx { fields: Vec::new() };
    for k in m.keys() {
        let known = ["select", "from", "filter", "sort", "limit", "cursor"].contains(&k.as_str());
        if UNSUPPORTED.contains(&k.as_str()) {
            return bad(&format!("{base}.{k}"), format!("`{k}` is not supported"));
        }
        if !known && !IGNORED.contains(&k.as_str()) {
            return bad(
                &format!("{base}.{k}"),
                format!("unknown key `{k}`; a query has `select`, `from`, `filter`, `sort`, `limit` and `cursor`"),
            );
        }
    }
    let from = match m.get("from") {
        Some(f) => from(f, &format!("{base}.from"))?,
        None => return bad(base, "the query has no `from`"),
    };
    let select = match m.get("select") {
        None | Some(Value::Null) => Select::Star,
        Some(s) => select(&mut cx, s, &format!("{base}.select"))?,
    };
    let filter = match m.get("filter") {
        None | Some(Value::Null) => None,
        Some(f) => Some(expr(&mut cx, f, &format!("{base}.filter"))?),
    };
    let sort = match m.get("sort") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, k)| sort_key(&mut cx, k, &format!("{base}.sort[{i}]")))
            .collect::<R<Vec<_>>>()?,
        Some(other) => {
            return bad(&format!("{base}.sort"), format!("`sort` must be an array, got {}", describe(other)))
        }
    };
    let limit = match m.get("limit") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            return bad(&format!("{base}.limit"), format!("`limit` must be a whole number, got {}", describe(other)))
        }
    };
    let cursor = match m.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return bad(&format!("{base}.cursor"), format!("`cursor` must be a string, got {}", describe(other)))
        }
    };
    Ok((Query { select, from, filter, sort, limit, cursor }, cx.fields))
}

fn obj<'a>(v: &'a Value, path: &str) -> R<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => bad(path, format!("expected an object, got {}", describe(other))),
    }
}

fn op<'a>(m: &'a Map<String, Value>, path: &str) -> R<&'a str> {
    match m.get("op") {
        Some(Value::String(s)) => Ok(s),
        _ => bad(path, "expected an object with an `op`"),
    }
}

fn child<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> R<&'a Value> {
    m.get(key).ok_or_else(|| {
        Error::new(at(path), format!("`{}` needs `{key}`", m.get("op").map(|o| o.to_string()).unwrap_or_default()))
    })
}

fn from(v: &Value, path: &str) -> R<From> {
    let m = obj(v, path)?;
    let name_of = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(n) => match n.get("name") {
                Some(Value::Array(a)) if a.len() == 1 => a[0].as_str().map(str::to_owned),
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        }
    };
    if m.get("op").and_then(Value::as_str).is_some_and(|o| o != "function") {
        return bad(path, "`from` must be `{\"op\": \"function\", \"name\": …, \"args\": […]}`");
    }
    let name = m.get("name").and_then(name_of).ok_or_else(|| {
        Error::new(
            at(&format!("{path}.name")),
            "expected the source's name (`{\"op\": \"ident\", \"name\": [\"project_logs\"]}`)",
        )
    })?;
    let source = Source::parse(&name).ok_or_else(|| {
        Error::new(
            at(&format!("{path}.name")),
            format!("unknown source `{name}`; use `experiment`, `dataset`, `project_logs` or `playground_logs`"),
        )
    })?;
    let args = match m.get("args") {
        Some(Value::Array(a)) => a,
        _ => return bad(&format!("{path}.args"), "expected `args`: one literal, the object's id"),
    };
    let id = match args.as_slice() {
        [a] => match a {
            Value::String(s) => s.clone(),
            Value::Object(l) if l.get("op").and_then(Value::as_str) == Some("literal") => match l.get("value") {
                Some(Value::String(s)) => s.clone(),
                other => {
                    return bad(
                        &format!("{path}.args[0].value"),
                        format!("the object's id must be a string, got {}", describe(other.unwrap_or(&Value::Null))),
                    )
                }
            },
            other => return bad(&format!("{path}.args[0]"), format!("expected a literal id, got {}", describe(other))),
        },
        _ => {
            return bad(&format!("{path}.args"), format!("expected one argument, the object's id; got {}", args.len()))
        }
    };
    match m.get("shape") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "spans" => {}
        Some(other) => {
            return bad(
                &format!("{path}.shape"),
                format!("the shape {} is not supported; use \"spans\"", describe(other)),
            )
        }
    }
    Ok(From { source, id })
}

fn select(cx: &mut Ctx, v: &Value, path: &str) -> R<Select> {
    let Value::Array(items) = v else {
        return bad(path, format!("`select` must be an array, got {}", describe(v)));
    };
    if items.len() == 1 && obj(&items[0], path).ok().and_then(|m| m.get("op")).and_then(Value::as_str) == Some("star") {
        return Ok(Select::Star);
    }
    let mut cols = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let m = obj(item, &p)?;
        if m.get("op").and_then(Value::as_str) == Some("star") {
            return bad(&p, "`*` cannot be mixed with other columns");
        }
        let e = expr(cx, child(m, "expr", &p)?, &format!("{p}.expr"))?;
        let alias = match (m.get("alias"), &e) {
            (Some(Value::String(a)), _) => a.clone(),
            (None | Some(Value::Null), Expr::Field(f)) => f.last().cloned().unwrap_or_default(),
            _ => return bad(&p, "a computed column needs an `alias`"),
        };
        cols.push(Projection { expr: e, alias });
    }
    Ok(Select::Columns(cols))
}

fn sort_key(cx: &mut Ctx, v: &Value, path: &str) -> R<SortKey> {
    let m = obj(v, path)?;
    let e = expr(cx, child(m, "expr", path)?, &format!("{path}.expr"))?;
    let desc = match m.get("dir") {
        None | Some(Value::Null) => false,
        Some(Value::String(d)) if d.eq_ignore_ascii_case("asc") => false,
        Some(Value::String(d)) if d.eq_ignore_ascii_case("desc") => true,
        Some(other) => {
            return bad(&format!("{path}.dir"), format!("`dir` must be \"asc\" or \"desc\", got {}", describe(other)))
        }
    };
    Ok(SortKey { expr: e, desc })
}

fn literal(v: &Value, path: &str) -> R<Literal> {
    Ok(match v {
        Value::Null => Literal::Null,
        Value::Bool(b) => Literal::Bool(*b),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => Literal::Number(f),
            _ => return bad(path, format!("number `{n}` is out of range")),
        },
        Value::String(s) => Literal::String(s.clone()),
        other => return bad(path, format!("expected a string, number, boolean or null, got {}", describe(other))),
    })
}

/// A `{"op": "literal", "value": …}` (or a bare JSON scalar).
fn literal_expr(v: &Value, path: &str) -> R<Literal> {
    match v {
        Value::Object(m) if m.get("op").and_then(Value::as_str) == Some("literal") => {
            literal(m.get("value").unwrap_or(&Value::Null), &format!("{path}.value"))
        }
        Value::Object(_) => bad(path, "expected a literal (`{\"op\": \"literal\", \"value\": …}`)"),
        other => literal(other, path),
    }
}

fn string_literal(v: &Value, path: &str, what: &str) -> R<String> {
    match literal_expr(v, path)? {
        Literal::String(s) => Ok(s),
        other => bad(path, format!("{what} must be a string literal, got {other:?}")),
    }
}

fn expr(cx: &mut Ctx, v: &Value, path: &str) -> R<Expr> {
    if let Value::String(src) = v {
        // An expression in the text syntax, positions relative to the string.
        let (e, fields) = crate::text::parse_expr(src)
            .map_err(|e| Error::new(at(path), format!("in the expression text, at {}: {}", e.at, e.message)))?;
        cx.fields.extend(fields.into_iter().map(|(f, _)| (f, at(path))));
        return Ok(e);
    }
    let m = obj(v, path)?;
    if let (None, Some(Value::String(src))) = (m.get("op"), m.get("btql")) {
        return expr(cx, &Value::String(src.clone()), &format!("{path}.btql"));
    }
    let o = op(m, path)?;
    let b = Box::new;
    let sub = |cx: &mut Ctx, key: &str| -> R<Expr> { expr(cx, child(m, key, path)?, &format!("{path}.{key}")) };
    let cmp = CmpOp::ALL.into_iter().find(|c| c.name() == o);
    if let Some(c) = cmp {
        let (l, r) = (sub(cx, "left")?, sub(cx, "right")?);
        return Ok(comparison(c, l, r));
    }
    if let Some(a) = ArithOp::ALL.into_iter().find(|a| a.name() == o) {
        return Ok(Expr::Arith(a, b(sub(cx, "left")?), b(sub(cx, "right")?)));
    }
    Ok(match o {
        "ident" => {
            let name = match m.get("name") {
                Some(Value::Array(a)) if !a.is_empty() => a
                    .iter()
                    .enumerate()
                    .map(|(i, s)| match s {
                        Value::String(s) => Ok(s.clone()),
                        other => bad(
                            &format!("{path}.name[{i}]"),
                            format!("a name must be a string, got {}", describe(other)),
                        ),
                    })
                    .collect::<R<Vec<_>>>()?,
                _ => return bad(&format!("{path}.name"), "`ident` needs `name`: a non-empty array of strings"),
            };
            cx.fields.push((name.clone(), at(path)));
            Expr::Field(name)
        }
        "literal" => Expr::Literal(literal(m.get("value").unwrap_or(&Value::Null), &format!("{path}.value"))?),
        "and" | "or" => {
            let kids = match (m.get("children"), m.get("left"), m.get("right")) {
                (Some(Value::Array(c)), _, _) => c
                    .iter()
                    .enumerate()
                    .map(|(i, c)| expr(cx, c, &format!("{path}.children[{i}]")))
                    .collect::<R<Vec<_>>>()?,
                (None, Some(_), Some(_)) => vec![sub(cx, "left")?, sub(cx, "right")?],
                _ => return bad(path, format!("`{o}` needs `children` (an array) or `left` and `right`")),
            };
            let and = o == "and";
            match kids.len() {
                // An empty AND is true, an empty OR false, as in logic.
                0 => Expr::Literal(Literal::Bool(and)),
                1 => kids.into_iter().next().unwrap_or(Expr::Literal(Literal::Bool(and))),
                _ if and => Expr::And(kids),
                _ => Expr::Or(kids),
            }
        }
        "not" => Expr::Not(b(sub(cx, "expr")?)),
        "neg" => match sub(cx, "expr")? {
            Expr::Literal(Literal::Number(n)) => Expr::Literal(Literal::Number(-n)),
            e => Expr::Arith(ArithOp::Sub, b(Expr::Literal(Literal::Number(0.0))), b(e)),
        },
        "isnull" => Expr::IsNull(b(sub(cx, "expr")?)),
        "isnotnull" => Expr::IsNotNull(b(sub(cx, "expr")?)),
        "in" => {
            let left = sub(cx, "left")?;
            let rpath = format!("{path}.right");
            let right = child(m, "right", path)?;
            let items = match right {
                Value::Array(a) => a.clone(),
                Value::Object(r) if r.get("op").and_then(Value::as_str) == Some("literal") => match r.get("value") {
                    Some(Value::Array(a)) => a.clone(),
                    other => {
                        return bad(
                            &rpath,
                            format!("`in` needs an array literal, got {}", describe(other.unwrap_or(&Value::Null))),
                        )
                    }
                },
                Value::Object(r) if r.get("op").and_then(Value::as_str) == Some("array") => match r.get("children") {
                    Some(Value::Array(a)) => a.clone(),
                    _ => return bad(&rpath, "`array` needs `children`"),
                },
                other => return bad(&rpath, format!("`in` needs an array literal, got {}", describe(other))),
            };
            if items.is_empty() {
                return bad(&rpath, "an `in` list needs at least one value");
            }
            let lits = items
                .iter()
                .enumerate()
                .map(|(i, v)| literal_expr(v, &format!("{rpath}[{i}]")))
                .collect::<R<Vec<_>>>()?;
            Expr::In(b(left), lits)
        }
        "like" | "ilike" => {
            let left = sub(cx, "left")?;
            let rpath = format!("{path}.right");
            let pattern = string_literal(child(m, "right", path)?, &rpath, "a pattern")?;
            check_pattern(&pattern).map_err(|msg| Error::new(at(&rpath), msg))?;
            Expr::Like { expr: b(left), pattern, case_insensitive: o == "ilike" }
        }
        "match" => {
            let left = sub(cx, "left")?;
            let text = string_literal(child(m, "right", path)?, &format!("{path}.right"), "the text to match")?;
            Expr::Match(b(left), text)
        }
        "includes" | "contains" => {
            let left = sub(cx, "left")?;
            Expr::Includes(b(left), literal_expr(child(m, "right", path)?, &format!("{path}.right"))?)
        }
        "star" => return bad(path, "`*` is only allowed in `select`"),
        other => {
            return bad(
                path,
                format!(
                    "unknown operator `{other}`; use ident, literal, and, or, not, eq, ne, lt, le, gt, ge, in, like, \
                     ilike, match, includes, isnull, isnotnull, add, sub, mul, div or neg"
                ),
            )
        }
    })
}

/// The JSON form of an expression (the inverse of parsing it).
pub fn expr_json(e: &Expr) -> Value {
    use serde_json::json;
    let lit = |l: &Literal| match l {
        Literal::Null => Value::Null,
        Literal::Bool(b) => json!(b),
        Literal::Number(n) => json!(n),
        Literal::String(s) => json!(s),
    };
    let l = |l: &Literal| json!({"op": "literal", "value": lit(l)});
    match e {
        Expr::Field(p) => json!({"op": "ident", "name": p}),
        Expr::Literal(x) => l(x),
        Expr::Cmp(op, a, b) => json!({"op": op.name(), "left": expr_json(a), "right": expr_json(b)}),
        Expr::Arith(op, a, b) => json!({"op": op.name(), "left": expr_json(a), "right": expr_json(b)}),
        Expr::And(v) => json!({"op": "and", "children": v.iter().map(expr_json).collect::<Vec<_>>()}),
        Expr::Or(v) => json!({"op": "or", "children": v.iter().map(expr_json).collect::<Vec<_>>()}),
        Expr::Not(x) => json!({"op": "not", "expr": expr_json(x)}),
        Expr::IsNull(x) => json!({"op": "isnull", "expr": expr_json(x)}),
        Expr::IsNotNull(x) => json!({"op": "isnotnull", "expr": expr_json(x)}),
        Expr::In(x, v) => {
            json!({"op": "in", "left": expr_json(x), "right": {"op": "literal", "value": v.iter().map(lit).collect::<Vec<_>>()}})
        }
        Expr::Like { expr, pattern, case_insensitive } => {
            json!({"op": if *case_insensitive { "ilike" } else { "like" }, "left": expr_json(expr), "right": {"op": "literal", "value": pattern}})
        }
        Expr::Match(x, t) => json!({"op": "match", "left": expr_json(x), "right": {"op": "literal", "value": t}}),
        Expr::Includes(x, v) => json!({"op": "includes", "left": expr_json(x), "right": l(v)}),
    }
}
