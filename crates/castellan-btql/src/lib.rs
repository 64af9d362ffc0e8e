//! BTQL, Braintrust's query language, as one plan ([`Query`]) parsed from any of its
//! three forms:
//!
//! * the JSON form the SDKs send (`{"select": [{"op": "star"}], "from": {"op":
//!   "function", …}, "filter": {"op": "eq", …}}`, see [`json`]);
//! * the text form (`select: * | from: project_logs('…') | filter: metadata.model =
//!   'gpt-4o' and scores.accuracy > 0.5 | sort: created desc | limit: 10`, see [`text`]);
//! * the SQL form `bt sql` sends (`SELECT * FROM project_logs('…') WHERE … ORDER BY
//!   … LIMIT …`).
//!
//! [`print::query`] prints a plan in the text form (parsing it back gives the same
//! plan), and [`eval`] evaluates one over a row in memory. Every error names where it
//! is (`at 1:17: …`, or a path into the JSON form).
//!
//! Pure: no I/O, no async; the SQL a plan becomes is the store's business.

pub mod ast;
pub mod eval;
pub mod fields;
pub mod json;
pub mod lex;
pub mod print;
pub mod text;

pub use ast::*;

/// Parses a query (`query`: the JSON form, or a string in the text or SQL form; `at`
/// names where it sits in the request) and checks the fields it names against its
/// source.
pub fn parse(query: &serde_json::Value, at: &str) -> Result<Query, Error> {
    let (q, fields) = match query {
        serde_json::Value::String(s) => text::parse_string(s)?,
        other => json::parse(other, at)?,
    };
    fields::validate(&q, &fields)?;
    Ok(q)
}

/// Parses a string query (text or SQL form) and checks its fields.
pub fn parse_str(src: &str) -> Result<Query, Error> {
    parse(&serde_json::Value::String(src.to_owned()), "query")
}

#[cfg(test)]
mod tests;

/// Parses a bare boolean expression in the text or SQL form (a saved filter, such
/// as an online scoring rule's `btql_filter`).
pub fn parse_expr(src: &str) -> Result<Expr, Error> {
    let mut p = text::Parser::new(src)?;
    let e = p.expr()?;
    p.expect_end()?;
    Ok(e)
}
