//! Printing a plan in the text form; parsing what is printed gives the same plan.

use crate::ast::*;
use crate::text::KEYWORDS;

/// A string literal: `'…'`, a quote doubled.
pub fn string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn name(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// A field path: `metadata.model`, `metadata."a key"`.
pub fn field(path: &[String]) -> String {
    path.iter().map(|s| name(s)).collect::<Vec<_>>().join(".")
}

/// A literal.
pub fn literal(l: &Literal) -> String {
    match l {
        Literal::Null => "null".into(),
        Literal::Bool(b) => b.to_string(),
        // `Display` of an f64 is the shortest text that parses back to it.
        Literal::Number(n) => format!("{n}"),
        Literal::String(s) => string(s),
    }
}

fn operand(e: &Expr) -> String {
    match e {
        Expr::Field(_) | Expr::Literal(_) => expr(e),
        _ => format!("({})", expr(e)),
    }
}

/// An expression; every operand that is not a field or a literal is parenthesized.
pub fn expr(e: &Expr) -> String {
    let list = |v: &[Literal]| v.iter().map(literal).collect::<Vec<_>>().join(", ");
    match e {
        Expr::Field(p) => field(p),
        Expr::Literal(l) => literal(l),
        Expr::Cmp(op, a, b) => format!("{} {} {}", operand(a), op.symbol(), operand(b)),
        Expr::Arith(op, a, b) => format!("{} {} {}", operand(a), op.symbol(), operand(b)),
        Expr::And(v) => v.iter().map(operand).collect::<Vec<_>>().join(" AND "),
        Expr::Or(v) => v.iter().map(operand).collect::<Vec<_>>().join(" OR "),
        Expr::Not(x) => format!("NOT {}", operand(x)),
        Expr::IsNull(x) => format!("{} IS NULL", operand(x)),
        Expr::IsNotNull(x) => format!("{} IS NOT NULL", operand(x)),
        Expr::In(x, v) => format!("{} IN [{}]", operand(x), list(v)),
        Expr::Like { expr: x, pattern, case_insensitive } => {
            format!("{} {} {}", operand(x), if *case_insensitive { "ILIKE" } else { "LIKE" }, string(pattern))
        }
        Expr::Match(x, t) => format!("{} MATCH {}", operand(x), string(t)),
        Expr::Includes(x, l) => format!("{} INCLUDES {}", operand(x), literal(l)),
    }
}

/// A whole query in the text form.
pub fn query(q: &Query) -> String {
    let mut parts = Vec::new();
    parts.push(match &q.select {
        Select::Star => "select: *".to_owned(),
        Select::Columns(cols) => format!(
            "select: {}",
            cols.iter().map(|c| format!("{} AS {}", operand(&c.expr), name(&c.alias))).collect::<Vec<_>>().join(", ")
        ),
    });
    parts.push(format!("from: {}({})", q.from.source.name(), string(&q.from.id)));
    if let Some(f) = &q.filter {
        parts.push(format!("filter: {}", expr(f)));
    }
    if !q.sort.is_empty() {
        let keys: Vec<String> =
            q.sort.iter().map(|k| format!("{} {}", operand(&k.expr), if k.desc { "DESC" } else { "ASC" })).collect();
        parts.push(format!("sort: {}", keys.join(", ")));
    }
    if let Some(l) = q.limit {
        parts.push(format!("limit: {l}"));
    }
    if let Some(c) = &q.cursor {
        parts.push(format!("cursor: {}", string(c)));
    }
    parts.join(" | ")
}
