//! What the shared SQL (`castellan-store/sql/`) is compiled against here.

/// The database.
pub(crate) type Db = sqlx::Postgres;
/// One row.
pub(crate) type DbRow = sqlx::postgres::PgRow;
/// The transaction the shared repositories are implemented on.
pub(crate) type SqlTx = crate::tx::PgTx;

use crate::sql::btql::{Arg, JsonSql, Kind, Sql};

/// The rows of `w` (`row_id, xact_id, is_root, span_id`) as one JSON array of
/// arrays, by transaction id then row id (online scoring's heads: one row to
/// decode, not one per version).
pub(crate) const HEADS_JSON: &str = "(SELECT COALESCE(json_agg(json_build_array(row_id, xact_id, is_root, span_id) \
     ORDER BY xact_id, row_id), '[]'::json)::text FROM w)";

/// The positions in `o` (`xact_id, row_id`) as one JSON array of pairs, in order
/// (a retention window's old versions).
pub(crate) const POSITIONS_JSON: &str =
    "(SELECT COALESCE(json_agg(json_build_array(xact_id, row_id) ORDER BY xact_id, row_id), '[]'::json)::text FROM o)";

/// PostgreSQL's JSON operators, for the BTQL SQL (`castellan-store/sql/btql.rs`).
/// Event data is `json` (kept as sent): `->` walks it, `json_typeof` tells types,
/// `#>> '{}'` reads a scalar; text compares under `COLLATE "C"` (code point order, as
/// SQLite and the in-memory evaluator compare).
pub(crate) struct Dialect;

impl JsonSql for Dialect {
    type Ref = String;

    fn path_ok(_path: &[String]) -> bool {
        true
    }

    fn path(sql: &mut Sql, path: &[String]) -> String {
        let steps: String = path.iter().map(|k| format!(" -> {}", sql.arg(Arg::Text(k.clone())))).collect();
        format!("(e.data{steps})")
    }

    fn is(r: &String, kind: Kind) -> String {
        let t = match kind {
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Bool => "boolean",
            Kind::Array => "array",
        };
        format!("json_typeof({r}) = '{t}'")
    }

    fn is_null(r: &String) -> String {
        format!("(COALESCE(json_typeof({r}), 'null') = 'null')")
    }

    fn num(r: &String) -> String {
        format!("({r} #>> '{{}}')")
    }

    fn text(r: &String) -> String {
        format!("({r} #>> '{{}}')")
    }

    fn boolean(r: &String) -> String {
        format!("CAST(({r} #>> '{{}}') AS BOOLEAN)")
    }

    fn elements(sql: &mut Sql, r: &String) -> (String, String) {
        let a = sql.alias("j");
        (format!("json_array_elements(CASE WHEN json_typeof({r}) = 'array' THEN {r} END) AS {a}(v)"), format!("{a}.v"))
    }

    fn strings(sql: &mut Sql, r: &String) -> (String, String, String) {
        let a = sql.alias("s");
        (
            format!("jsonb_path_query(CAST({r} AS JSONB), 'strict $.**') AS {a}(v)"),
            format!("jsonb_typeof({a}.v) = 'string'"),
            format!("({a}.v #>> '{{}}')"),
        )
    }

    fn collate(text: &str) -> String {
        format!("({text} COLLATE \"C\")")
    }

    fn lower(text: &str) -> String {
        format!("lower({text})")
    }

    fn like(sql: &mut Sql, text: &str, pattern: &str) -> String {
        format!("{text} LIKE {}", sql.arg(Arg::Text(pattern.to_owned())))
    }

    fn contains(text: &str, needle: &str) -> String {
        format!("strpos({text}, {needle}) > 0")
    }
}
