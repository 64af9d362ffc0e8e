//! The fields a query may name: the top-level fields of a row, which of them are
//! columns of the event table rather than JSON, and which are the same for every row
//! of a log.

use crate::ast::{Error, Expr, Position, Query, Source};

/// Top-level fields holding JSON (any path below them is allowed).
pub const JSON_FIELDS: [&str; 16] = [
    "input",
    "output",
    "expected",
    "error",
    "scores",
    "metadata",
    "metrics",
    "tags",
    "span_attributes",
    "span_parents",
    "context",
    "origin",
    "classifications",
    "facets",
    "created",
    "comment",
];

/// Scalar fields computed from the row's columns.
pub const ROW_FIELDS: [&str; 6] = ["id", "_xact_id", "_pagination_key", "span_id", "root_span_id", "is_root"];

/// What a field path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRef<'a> {
    /// `id`: the row id.
    RowId,
    /// `_xact_id` (and `_pagination_key`, which orders the same): the version's
    /// transaction id, a 19-digit string.
    XactId,
    /// `span_id`: the row's, or its id when it has none.
    SpanId,
    /// `root_span_id`: the row's trace, or its id.
    RootSpanId,
    /// `is_root`: `span_parents` is missing, null or empty.
    IsRoot,
    /// A path into the row's JSON.
    Data(&'a [String]),
}

/// What `path` reads (after [`validate`] and [`bind_constants`]).
pub fn classify(path: &[String]) -> FieldRef<'_> {
    match path.first().map(String::as_str) {
        Some("id") => FieldRef::RowId,
        Some("_xact_id" | "_pagination_key") => FieldRef::XactId,
        Some("span_id") => FieldRef::SpanId,
        Some("root_span_id") => FieldRef::RootSpanId,
        Some("is_root") => FieldRef::IsRoot,
        _ => FieldRef::Data(path),
    }
}

/// The fields every row of a log shares (its object's ids), for `source`.
pub fn constant_fields(source: Source) -> &'static [&'static str] {
    match source {
        Source::Experiment => &["project_id", "experiment_id"],
        Source::Dataset => &["project_id", "dataset_id"],
        Source::ProjectLogs => &["project_id", "org_id", "log_id"],
        Source::PlaygroundLogs => &["project_id", "prompt_session_id", "log_id"],
    }
}

fn known(source: Source) -> Vec<&'static str> {
    let mut v: Vec<&str> = ROW_FIELDS.iter().chain(JSON_FIELDS.iter()).copied().collect();
    v.extend_from_slice(constant_fields(source));
    v
}

/// Checks every field a query names against the fields of its source's rows: an
/// unknown top-level field, or a path below a scalar field, is an error at the
/// field's position (`positions` holds each field's, in the order they were read).
pub fn validate(q: &Query, positions: &[(Vec<String>, Position)]) -> Result<(), Error> {
    let fields = known(q.from.source);
    for (path, at) in positions {
        let Some(top) = path.first() else {
            return Err(Error::new(at.clone(), "empty field name"));
        };
        if !fields.contains(&top.as_str()) {
            let mut sorted = fields.clone();
            sorted.sort_unstable();
            return Err(Error::new(
                at.clone(),
                format!("unknown field `{top}` for {} rows; known fields: {}", q.from.source.name(), sorted.join(", ")),
            ));
        }
        if path.len() > 1 && !JSON_FIELDS.contains(&top.as_str()) {
            return Err(Error::new(at.clone(), format!("`{top}` is a scalar: it has no field `{}`", path[1])));
        }
    }
    Ok(())
}

/// Replaces the fields every row of the log shares by their values (`value_of`
/// answers them: the log's ids), so the rest of the plan sees only row fields.
pub fn bind_constants(e: Expr, source: Source, value_of: &impl Fn(&str) -> Option<String>) -> Expr {
    let consts = constant_fields(source);
    e.map_fields(&|path: Vec<String>| {
        if path.len() == 1 && consts.contains(&path[0].as_str()) {
            match value_of(&path[0]) {
                Some(v) => Expr::Literal(crate::ast::Literal::String(v)),
                None => Expr::Literal(crate::ast::Literal::Null),
            }
        } else {
            Expr::Field(path)
        }
    })
}
