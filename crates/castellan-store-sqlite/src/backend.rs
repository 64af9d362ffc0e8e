//! What the shared SQL (`castellan-store/sql/`) is compiled against here.

/// The database.
pub(crate) type Db = sqlx::Sqlite;
/// One row.
pub(crate) type DbRow = sqlx::sqlite::SqliteRow;
/// The transaction the shared repositories are implemented on.
pub(crate) type SqlTx = crate::tx::SqliteTx;

use crate::sql::btql::{Arg, JsonSql, Kind, Sql};

/// The rows of `w` (`row_id, xact_id, is_root, span_id`) as one JSON array of
/// arrays, in `w`'s order (online scoring's heads: one row to decode, not one per
/// version).
pub(crate) const HEADS_JSON: &str = "(SELECT json_group_array(json_array(row_id, xact_id, is_root, span_id)) FROM w)";

/// The positions in `o` (`xact_id, row_id`) as one JSON array of pairs (a
/// retention window's old versions).
pub(crate) const POSITIONS_JSON: &str = "(SELECT json_group_array(json_array(xact_id, row_id)) FROM o)";

/// SQLite's JSON functions, for the BTQL SQL (`castellan-store/sql/btql.rs`).
pub(crate) struct Dialect;

/// A JSON value in SQLite: the row's data at a path (a bound JSON path), or a row
/// of `json_each`.
#[derive(Debug, Clone)]
pub(crate) enum JsonRef {
    Doc(String),
    Elem(String),
}

/// A `LIKE` pattern as a `GLOB` pattern (which, unlike SQLite's `LIKE`, is case
/// sensitive): `%` is `*`, `_` is `?`, and the glob's own wildcards are bracketed.
fn glob(pattern: &str) -> String {
    let mut out = String::new();
    let literal = |c: char, out: &mut String| match c {
        '*' => out.push_str("[*]"),
        '?' => out.push_str("[?]"),
        '[' => out.push_str("[[]"),
        c => out.push(c),
    };
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => literal(it.next().unwrap_or('\\'), &mut out),
            c => literal(c, &mut out),
        }
    }
    out
}

impl JsonSql for Dialect {
    type Ref = JsonRef;

    fn path_ok(path: &[String]) -> bool {
        // A quoted label of a JSON path ends at the next `"`, and backslashes in it
        // are read as escapes: such keys are matched in memory instead.
        path.iter().all(|k| !k.contains('"') && !k.contains('\\'))
    }

    fn path(sql: &mut Sql, path: &[String]) -> JsonRef {
        let mut p = String::from("$");
        for k in path {
            p.push_str(&format!(".\"{k}\""));
        }
        JsonRef::Doc(sql.arg(Arg::Text(p)))
    }

    fn is(r: &JsonRef, kind: Kind) -> String {
        let t = match r {
            JsonRef::Doc(p) => format!("json_type(e.data, {p})"),
            JsonRef::Elem(a) => format!("{a}.type"),
        };
        match kind {
            Kind::Number => format!("{t} IN ('integer', 'real')"),
            Kind::String => format!("{t} = 'text'"),
            Kind::Bool => format!("{t} IN ('true', 'false')"),
            Kind::Array => format!("{t} = 'array'"),
        }
    }

    fn is_null(r: &JsonRef) -> String {
        match r {
            JsonRef::Doc(p) => format!("(COALESCE(json_type(e.data, {p}), 'null') = 'null')"),
            JsonRef::Elem(a) => format!("({a}.type = 'null')"),
        }
    }

    fn num(r: &JsonRef) -> String {
        Self::text(r)
    }

    fn text(r: &JsonRef) -> String {
        match r {
            JsonRef::Doc(p) => format!("json_extract(e.data, {p})"),
            JsonRef::Elem(a) => format!("{a}.value"),
        }
    }

    fn boolean(r: &JsonRef) -> String {
        Self::text(r)
    }

    fn elements(sql: &mut Sql, r: &JsonRef) -> (String, JsonRef) {
        let a = sql.alias("j");
        let from = match r {
            JsonRef::Doc(p) => format!("json_each(e.data, {p}) AS {a}"),
            JsonRef::Elem(b) => format!("json_each({b}.value) AS {a}"),
        };
        (from, JsonRef::Elem(a))
    }

    fn strings(sql: &mut Sql, r: &JsonRef) -> (String, String, String) {
        let a = sql.alias("s");
        let from = match r {
            JsonRef::Doc(p) => format!("json_tree(e.data, {p}) AS {a}"),
            JsonRef::Elem(b) => format!("json_tree(json_quote({b}.value)) AS {a}"),
        };
        (from, format!("{a}.type = 'text'"), format!("{a}.value"))
    }

    fn collate(text: &str) -> String {
        text.to_owned()
    }

    fn lower(text: &str) -> String {
        format!("lower({text})")
    }

    fn like(sql: &mut Sql, text: &str, pattern: &str) -> String {
        format!("{text} GLOB {}", sql.arg(Arg::Text(glob(pattern))))
    }

    fn contains(text: &str, needle: &str) -> String {
        format!("instr({text}, {needle}) > 0")
    }
}
