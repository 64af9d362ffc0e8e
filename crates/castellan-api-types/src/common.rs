//! Envelopes shared by every endpoint.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every list endpoint answers `{"objects": [...]}`, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListResponse<T> {
    /// The page.
    pub objects: Vec<T>,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code (`not_found`, `bad_request`, …).
    pub code: String,
    /// What went wrong, for people. User input appears in backticks.
    pub message: String,
}

/// `GET /v1`: a greeting that needs no credential.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceInfo {
    /// Always `castellan`.
    pub name: String,
    /// Server version.
    pub version: String,
    /// `Hello, World!`, as Braintrust answers.
    pub message: String,
}

/// Formats unix epoch microseconds as RFC 3339 (UTC, microsecond precision).
pub fn format_time(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        None => String::new(),
    }
}

/// Parses an RFC 3339 time to unix epoch microseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_micros())
}

/// Deserializes a field that may be absent (`None`), null (`Some(None)`) or set.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        let t = 1_795_443_372_470_123;
        assert_eq!(format_time(t), "2026-11-23T14:16:12.470123Z");
        assert_eq!(parse_time(&format_time(t)), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }
}
