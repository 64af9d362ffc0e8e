//! Experiment summaries: scores and metrics per trace, then across traces, compared
//! with another experiment trace by trace.
//!
//! Scores are gathered from every span of a trace (an Eval's scorers write their
//! scores on child spans, not on the root): a trace's score is the mean over its
//! spans that carry it, and the experiment's score the mean over its traces that
//! carry it. Traces are matched with the comparison's by the root span's `input`; a
//! matched trace whose score went up is an improvement, down a regression. Metrics
//! (duration from the root span's `metrics.start`/`end`, token counts summed over
//! spans) work the same way, except that lower is better.

use castellan_api_types::{MetricSummary, ScoreSummary};
use castellan_store::StoredEvent;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Token metrics summed over a trace's spans.
const TOKEN_METRICS: [&str; 3] = ["prompt_tokens", "completion_tokens", "total_tokens"];

/// What one trace contributes.
#[derive(Debug, Default, Clone, PartialEq)]
struct Trace {
    input: Option<String>,
    scores: BTreeMap<String, (f64, u32)>,
    metrics: BTreeMap<String, f64>,
}

impl Trace {
    fn score(&self, name: &str) -> Option<f64> {
        self.scores.get(name).filter(|(_, n)| *n > 0).map(|(s, n)| s / f64::from(*n))
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn traces(rows: &[StoredEvent]) -> Vec<Trace> {
    let mut by_root: HashMap<String, Trace> = HashMap::new();
    let mut order = Vec::new();
    for e in rows {
        let Value::Object(row) = &e.data else { continue };
        let root = super::rows::root_span_id(&e.row_id, row);
        if !by_root.contains_key(&root) {
            order.push(root.clone());
        }
        let t = by_root.entry(root).or_default();
        if let Some(Value::Object(scores)) = row.get("scores") {
            for (name, v) in scores {
                if let Some(x) = number(v) {
                    let s = t.scores.entry(name.clone()).or_insert((0.0, 0));
                    s.0 += x;
                    s.1 += 1;
                }
            }
        }
        let metrics = row.get("metrics").and_then(Value::as_object);
        if let Some(m) = metrics {
            for name in TOKEN_METRICS {
                if let Some(x) = m.get(name).and_then(number) {
                    *t.metrics.entry(name.to_owned()).or_insert(0.0) += x;
                }
            }
        }
        if super::rows::is_root(row) {
            t.input = row.get("input").map(castellan_store::audit::canonical_json);
            if let Some(m) = metrics {
                if let (Some(start), Some(end)) = (m.get("start").and_then(number), m.get("end").and_then(number)) {
                    t.metrics.insert("duration".into(), end - start);
                }
            }
        }
    }
    order.into_iter().filter_map(|r| by_root.remove(&r)).collect()
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = xs.fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// Against the comparison: improvements, regressions and the comparison's mean.
type Versus = (u64, u64, Option<f64>);

/// Per name: the experiment's mean and, against the comparison, (improvements,
/// regressions, comparison mean). `higher_is_better` decides which way is up.
fn compare(
    cur: &[Trace],
    base: Option<&[Trace]>,
    names: &[String],
    get: impl Fn(&Trace, &str) -> Option<f64>,
    higher_is_better: bool,
) -> BTreeMap<String, (f64, Option<Versus>)> {
    let base_by_input: HashMap<&str, &Trace> = base
        .unwrap_or(&[])
        .iter()
        .rev() // the first trace of an input wins
        .filter_map(|t| t.input.as_deref().map(|i| (i, t)))
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let Some(avg) = mean(cur.iter().filter_map(|t| get(t, name))) else { continue };
        let cmp = base.map(|b| {
            let (mut up, mut down) = (0u64, 0u64);
            for t in cur {
                let matched = t.input.as_deref().and_then(|i| base_by_input.get(i));
                if let (Some(x), Some(y)) = (get(t, name), matched.and_then(|m| get(m, name))) {
                    let better = if higher_is_better { x > y } else { x < y };
                    let worse = if higher_is_better { x < y } else { x > y };
                    up += u64::from(better);
                    down += u64::from(worse);
                }
            }
            (up, down, mean(b.iter().filter_map(|t| get(t, name))))
        });
        out.insert(name.clone(), (avg, cmp));
    }
    out
}

/// The score and metric summaries of `rows`, compared with `base` when given.
pub fn summarize(
    rows: &[StoredEvent],
    base: Option<&[StoredEvent]>,
) -> (BTreeMap<String, ScoreSummary>, BTreeMap<String, MetricSummary>) {
    let cur = traces(rows);
    let base = base.map(traces);
    let mut score_names: Vec<String> = cur.iter().flat_map(|t| t.scores.keys().cloned()).collect();
    score_names.sort();
    score_names.dedup();
    let scores = compare(&cur, base.as_deref(), &score_names, |t, n| t.score(n), true)
        .into_iter()
        .map(|(name, (score, cmp))| {
            let (improvements, regressions, diff) = match cmp {
                Some((up, down, base_mean)) => (up, down, base_mean.map(|b| score - b)),
                None => (0, 0, None),
            };
            (name.clone(), ScoreSummary { name, score, improvements, regressions, diff })
        })
        .collect();
    let mut metric_names: Vec<String> = cur.iter().flat_map(|t| t.metrics.keys().cloned()).collect();
    metric_names.sort();
    metric_names.dedup();
    let metrics = compare(&cur, base.as_deref(), &metric_names, |t, n| t.metrics.get(n).copied(), false)
        .into_iter()
        .map(|(name, (metric, cmp))| {
            let (improvements, regressions, diff) = match cmp {
                // Metrics change relatively (the SDK prints the diff as a percentage).
                Some((up, down, base_mean)) => (up, down, base_mean.filter(|b| *b != 0.0).map(|b| (metric - b) / b)),
                None => (0, 0, None),
            };
            let unit = if name == "duration" { "s" } else { "tok" }.to_owned();
            (name.clone(), MetricSummary { name, metric, unit, improvements, regressions, diff })
        })
        .collect();
    (scores, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use castellan_core::ProjectId;
    use castellan_store::XactId;
    use serde_json::json;

    fn ev(id: &str, data: Value) -> StoredEvent {
        StoredEvent {
            row_id: id.into(),
            xact_id: XactId(XactId::BASE),
            project_id: ProjectId::generate(),
            deleted: false,
            data,
        }
    }

    /// An Eval-shaped trace: a root with the input, scorer children with the scores.
    fn trace(root: &str, input: i64, scores: &[(&str, f64)], secs: f64) -> Vec<StoredEvent> {
        let mut out = vec![ev(
            root,
            json!({"root_span_id": root, "span_id": root, "span_parents": null, "input": input,
                   "metrics": {"start": 100.0, "end": 100.0 + secs}}),
        )];
        for (i, (name, v)) in scores.iter().enumerate() {
            out.push(ev(
                &format!("{root}-s{i}"),
                json!({"root_span_id": root, "span_parents": [root], "scores": {*name: v}, "metrics": {"total_tokens": 10}}),
            ));
        }
        out
    }

    #[test]
    fn scores_come_from_every_span_of_a_trace_and_average_over_traces() {
        let mut rows = trace("a", 1, &[("exact", 1.0), ("len", 0.5)], 2.0);
        rows.extend(trace("b", 2, &[("exact", 0.0)], 4.0));
        let (scores, metrics) = summarize(&rows, None);
        assert_eq!(scores["exact"].score, 0.5);
        assert_eq!(scores["len"].score, 0.5);
        assert_eq!(scores["exact"].diff, None);
        assert_eq!(metrics["duration"].metric, 3.0);
        assert_eq!(metrics["duration"].unit, "s");
        assert_eq!(metrics["total_tokens"].metric, 15.0);
    }

    #[test]
    fn a_comparison_matches_traces_by_input() {
        let mut cur = trace("a", 1, &[("exact", 1.0)], 1.0);
        cur.extend(trace("b", 2, &[("exact", 0.0)], 1.0));
        cur.extend(trace("c", 3, &[("exact", 1.0)], 1.0));
        let mut base = trace("x", 1, &[("exact", 0.0)], 2.0);
        base.extend(trace("y", 2, &[("exact", 1.0)], 0.5));
        base.extend(trace("z", 9, &[("exact", 0.0)], 1.0));
        let (scores, metrics) = summarize(&cur, Some(&base));
        let s = &scores["exact"];
        assert_eq!((s.improvements, s.regressions), (1, 1));
        assert!((s.diff.unwrap_or_default() - (2.0 / 3.0 - 1.0 / 3.0)).abs() < 1e-9);
        let d = &metrics["duration"];
        assert_eq!((d.improvements, d.regressions), (1, 1), "lower is better for durations");
    }

    #[test]
    fn rows_without_numbers_contribute_nothing() {
        let rows = vec![ev("a", json!({"scores": {"x": null, "y": "high"}})), ev("b", json!("not an object"))];
        let (scores, metrics) = summarize(&rows, None);
        assert!(scores.is_empty() && metrics.is_empty());
    }
}
