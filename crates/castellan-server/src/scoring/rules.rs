//! Online rules as the worker reads them from their `project_score`, and the few
//! fields of a span that decide whether a rule takes it.

use crate::dataplane::rows;
use castellan_btql::Expr;
use castellan_core::{OrgId, ProjectId};
use castellan_store::{AdminRecord, EventHead};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A scorer as a rule names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum ScorerRef {
    Global(String),
    Function { id: String, version: Option<String> },
}

impl ScorerRef {
    /// How the retry queue names it: `global:<name>`, `function:<id>@<version>`.
    pub(super) fn key(&self) -> String {
        match self {
            ScorerRef::Global(n) => format!("global:{n}"),
            ScorerRef::Function { id, version } => format!("function:{id}@{}", version.as_deref().unwrap_or("")),
        }
    }

    /// The scorer a [`ScorerRef::key`] names.
    pub(super) fn parse(key: &str) -> Option<ScorerRef> {
        if let Some(n) = key.strip_prefix("global:") {
            return Some(ScorerRef::Global(n.to_owned()));
        }
        let (id, version) = key.strip_prefix("function:")?.rsplit_once('@')?;
        Some(ScorerRef::Function { id: id.to_owned(), version: Some(version.to_owned()).filter(|v| !v.is_empty()) })
    }
}

/// An online rule, read from its `project_score`.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) id: Uuid,
    pub(super) org_id: OrgId,
    pub(super) project: ProjectId,
    pub(super) created: i64,
    pub(super) rate: f64,
    pub(super) scorers: Vec<ScorerRef>,
    pub(super) filter: Option<Result<Expr, String>>,
    pub(super) root: bool,
    pub(super) names: Vec<String>,
    pub(super) skip_logging: bool,
    /// Why the rule cannot run here (a scope this server does not run, stored
    /// before such rules were refused).
    pub(super) unsupported: Option<String>,
}

impl Rule {
    /// Whether the rule may take a row version, from what is known without its
    /// contents: a rule of root spans only takes roots, and a span it samples out
    /// (by the span id, when stored apart) is never taken.
    pub(super) fn may_take(&self, h: &EventHead) -> bool {
        if self.names.is_empty() && !h.is_root {
            return false;
        }
        h.span_id.as_deref().is_none_or(|s| super::sampled(self.id, s, self.rate))
    }
}

/// The active online rule a project score is, if it is one.
pub(super) fn rule_of(a: &AdminRecord) -> Option<Rule> {
    if a.data.get("score_type").and_then(Value::as_str) != Some("online") {
        return None;
    }
    let o = a.data.pointer("/config/online")?;
    if o.get("status").and_then(Value::as_str) == Some("paused") {
        return None;
    }
    let scorers = o
        .get("scorers")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|s| match s.get("type").and_then(Value::as_str) {
                    Some("global") => Some(ScorerRef::Global(s.get("name")?.as_str()?.to_owned())),
                    Some("function") => Some(ScorerRef::Function {
                        id: s.get("id")?.as_str()?.to_owned(),
                        version: s.get("version").and_then(Value::as_str).map(str::to_owned),
                    }),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<String> = o
        .get("apply_to_span_names")
        .and_then(Value::as_array)
        .map(|n| n.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let root = o.get("apply_to_root_span").and_then(Value::as_bool).unwrap_or(names.is_empty());
    let unsupported = match o.pointer("/scope/type").and_then(Value::as_str) {
        None | Some("span") => None,
        Some(t) => Some(format!("scope `{t}` is not run by this server (only `span`)")),
    };
    Some(Rule {
        id: a.id,
        org_id: a.org_id,
        project: ProjectId(a.scope.object_id),
        created: a.created,
        rate: o.get("sampling_rate").and_then(Value::as_f64).unwrap_or(0.0),
        scorers,
        filter: o.get("btql_filter").and_then(Value::as_str).filter(|f| !f.trim().is_empty()).map(super::parse_filter),
        root,
        names,
        skip_logging: o.get("skip_logging").and_then(Value::as_bool).unwrap_or(false),
        unsupported,
    })
}

/// The fields of a span that decide whether a rule takes it.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Head {
    #[serde(default)]
    pub(super) span_id: Option<String>,
    #[serde(default)]
    span_parents: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    pub(super) span_attributes: Option<HeadAttributes>,
    #[serde(default)]
    metrics: Option<HeadMetrics>,
    #[serde(default)]
    pub(super) created: Option<String>,
    #[serde(default)]
    pub(super) comment: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct HeadAttributes {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct HeadMetrics {
    #[serde(default)]
    start: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    end: Option<serde::de::IgnoredAny>,
}

impl Head {
    /// From a parsed row whose fields have unusual types (a number as a name…).
    pub(super) fn of(row: &Map<String, Value>) -> Head {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let attrs = row.get("span_attributes");
        let metric =
            |k: &str| row.get("metrics").and_then(|m| m.get(k)).filter(|v| !v.is_null()).map(|_| serde::de::IgnoredAny);
        Head {
            span_id: text(row.get("span_id")),
            span_parents: (!rows::is_root(row)).then(|| vec![serde::de::IgnoredAny]),
            span_attributes: Some(HeadAttributes {
                name: text(attrs.and_then(|a| a.get("name"))),
                kind: text(attrs.and_then(|a| a.get("type"))),
                purpose: text(attrs.and_then(|a| a.get("purpose"))),
            }),
            metrics: Some(HeadMetrics { start: metric("start"), end: metric("end") }),
            created: text(row.get("created")),
            comment: row.get("comment").filter(|c| !c.is_null()).map(|_| serde::de::IgnoredAny),
        }
    }

    pub(super) fn is_root(&self) -> bool {
        self.span_parents.as_ref().is_none_or(Vec::is_empty)
    }

    /// A span the scoring itself wrote (never scored in turn).
    pub(super) fn is_scorer_span(&self) -> bool {
        self.span_attributes
            .as_ref()
            .is_some_and(|a| a.kind.as_deref() == Some("score") || a.purpose.as_deref() == Some("scorer"))
    }

    /// A span that has ended, or never said it started (a plain log row).
    pub(super) fn complete(&self) -> bool {
        self.metrics.as_ref().is_none_or(|m| m.start.is_none() || m.end.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn open_spans_and_scorer_spans_are_not_scored() {
        let head = |v: &str| serde_json::from_str::<Head>(v).unwrap();
        assert!(!head(r#"{"metrics": {"start": 1.0}, "input": {"big": [1, 2]}}"#).complete());
        assert!(head(r#"{"metrics": {"start": 1.0, "end": 2.0}}"#).complete());
        assert!(!head(r#"{"metrics": {"start": 1.0, "end": null}}"#).complete());
        assert!(head(r#"{"input": 1}"#).complete());
        assert!(head(r#"{"span_attributes": {"type": "score"}}"#).is_scorer_span());
        assert!(head(r#"{"span_parents": null}"#).is_root() && head(r#"{"span_parents": []}"#).is_root());
        assert!(!head(r#"{"span_parents": ["p"]}"#).is_root());
        assert!(head(r#"{"comment": null}"#).comment.is_none() && head(r#"{"comment": "x"}"#).comment.is_some());
        // Unusual types fall back to the whole row.
        assert!(serde_json::from_str::<Head>(r#"{"span_attributes": {"name": 5}}"#).is_err());
        let m = json!({"span_attributes": {"name": 5, "type": "score"}, "span_parents": ["p"]});
        let h = Head::of(m.as_object().unwrap());
        assert!(h.is_scorer_span() && !h.is_root() && h.complete());
    }

    #[test]
    fn scorer_keys_name_their_scorer_back() {
        for s in [
            ScorerRef::Global("ExactMatch".into()),
            ScorerRef::Function { id: "correctness".into(), version: None },
            ScorerRef::Function { id: "a@b".into(), version: Some("1000192656880881099".into()) },
        ] {
            assert_eq!(ScorerRef::parse(&s.key()), Some(s));
        }
        assert_eq!(ScorerRef::parse("mystery:x"), None);
    }

    #[test]
    fn rules_of_root_spans_pass_over_children_and_spans_sampled_out_unread() {
        let rule = Rule {
            id: Uuid::from_u128(7),
            org_id: OrgId(Uuid::nil()),
            project: ProjectId(Uuid::nil()),
            created: 0,
            rate: 0.5,
            scorers: Vec::new(),
            filter: None,
            root: true,
            names: Vec::new(),
            skip_logging: false,
            unsupported: None,
        };
        let head = |span: Option<&str>, is_root: bool| EventHead {
            row_id: "r".into(),
            xact_id: castellan_store::XactId(1),
            is_root,
            span_id: span.map(str::to_owned),
        };
        let (inn, out) =
            (0..100).map(|i| format!("s{i}")).partition::<Vec<_>, _>(|s| super::super::sampled(rule.id, s, rule.rate));
        assert!(rule.may_take(&head(Some(&inn[0]), true)));
        assert!(!rule.may_take(&head(Some(&out[0]), true)), "sampled out");
        assert!(!rule.may_take(&head(Some(&inn[0]), false)), "not a root");
        assert!(rule.may_take(&head(None, true)), "no span id stored: read it");
        let named = Rule { names: vec!["llm".into()], root: false, ..rule };
        assert!(named.may_take(&head(Some(&inn[0]), false)), "a named rule looks at children");
    }
}
