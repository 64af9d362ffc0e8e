//! OpenTelemetry trace ingest: OTLP/HTTP requests (protobuf or JSON) decoded into
//! spans, and spans mapped to log rows the way Braintrust maps them: the
//! `braintrust.*` attributes set fields directly; the GenAI semantic conventions
//! (`gen_ai.*`), OpenInference (`input.value`, `llm.*`) and the Vercel AI SDK
//! (`ai.*`) give input, output, model metadata and token metrics; what is parsed
//! leaves `metadata`, everything else stays there under its own key.

use prost::Message;
use serde_json::{json, Map, Value};

/// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// Spans of one resource.
#[derive(Clone, PartialEq, Message)]
pub struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
}

/// A resource (its attributes).
#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// Spans of one instrumentation scope.
#[derive(Clone, PartialEq, Message)]
pub struct ScopeSpans {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<Scope>,
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
}

/// An instrumentation scope.
#[derive(Clone, PartialEq, Message)]
pub struct Scope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

/// One span.
#[derive(Clone, PartialEq, Message)]
pub struct Span {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    pub name: String,
    #[prost(int32, tag = "6")]
    pub kind: i32,
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
}

/// A span event.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

/// A span's status (`code` 2 is an error).
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(int32, tag = "3")]
    pub code: i32,
}

/// An attribute.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// An attribute value.
#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

/// The kinds of attribute value.
pub mod any_value {
    /// One attribute value.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        #[prost(message, tag = "6")]
        KvlistValue(super::KeyValueList),
        #[prost(bytes = "vec", tag = "7")]
        BytesValue(Vec<u8>),
    }
}

/// An array attribute value.
#[derive(Clone, PartialEq, Message)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// A map attribute value.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// Why a request did not decode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Decodes an OTLP/HTTP protobuf body.
pub fn decode_protobuf(body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    ExportTraceServiceRequest::decode(body).map_err(|e| DecodeError(format!("not an OTLP protobuf trace request: {e}")))
}

/// Decodes an OTLP/HTTP JSON body (camelCase keys, hex ids, 64-bit integers as
/// strings or numbers).
pub fn decode_json(body: &Value) -> Result<ExportTraceServiceRequest, DecodeError> {
    let bad = |what: &str| DecodeError(format!("not an OTLP JSON trace request: {what}"));
    let get = |v: &Value, camel: &str, snake: &str| v.get(camel).or_else(|| v.get(snake)).cloned();
    let list = |v: Option<Value>, what: &str| -> Result<Vec<Value>, DecodeError> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(bad(&format!("`{what}` must be an array"))),
        }
    };
    let mut out = ExportTraceServiceRequest::default();
    for rs in list(get(body, "resourceSpans", "resource_spans"), "resourceSpans")? {
        let resource = match rs.get("resource") {
            Some(r) => Some(Resource { attributes: json_attributes(r.get("attributes"))? }),
            None => None,
        };
        let mut scope_spans = Vec::new();
        for ss in list(get(&rs, "scopeSpans", "scope_spans"), "scopeSpans")? {
            let scope = ss.get("scope").map(|s| Scope {
                name: s.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                version: s.get("version").and_then(Value::as_str).unwrap_or_default().to_owned(),
            });
            let mut spans = Vec::new();
            for (i, sp) in list(ss.get("spans").cloned(), "spans")?.into_iter().enumerate() {
                let hexed = |camel: &str, snake: &str| -> Result<Vec<u8>, DecodeError> {
                    match get(&sp, camel, snake) {
                        None | Some(Value::Null) => Ok(Vec::new()),
                        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
                        Some(Value::String(s)) => {
                            hex::decode(&s).map_err(|_| bad(&format!("spans[{i}].{camel} must be hex, got `{s}`")))
                        }
                        Some(_) => Err(bad(&format!("spans[{i}].{camel} must be a hex string"))),
                    }
                };
                let nanos = |camel: &str, snake: &str| -> Result<u64, DecodeError> {
                    match get(&sp, camel, snake) {
                        None | Some(Value::Null) => Ok(0),
                        Some(Value::String(s)) => {
                            s.parse().map_err(|_| bad(&format!("spans[{i}].{camel} must be a number, got `{s}`")))
                        }
                        Some(Value::Number(n)) => {
                            n.as_u64().ok_or_else(|| bad(&format!("spans[{i}].{camel} must be a whole number")))
                        }
                        Some(_) => Err(bad(&format!("spans[{i}].{camel} must be a number"))),
                    }
                };
                let mut events = Vec::new();
                for e in list(sp.get("events").cloned(), "events")? {
                    events.push(Event {
                        time_unix_nano: 0,
                        name: e.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        attributes: json_attributes(e.get("attributes"))?,
                    });
                }
                spans.push(Span {
                    trace_id: hexed("traceId", "trace_id")?,
                    span_id: hexed("spanId", "span_id")?,
                    parent_span_id: hexed("parentSpanId", "parent_span_id")?,
                    name: sp.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    kind: sp.get("kind").and_then(Value::as_i64).unwrap_or(0) as i32,
                    start_time_unix_nano: nanos("startTimeUnixNano", "start_time_unix_nano")?,
                    end_time_unix_nano: nanos("endTimeUnixNano", "end_time_unix_nano")?,
                    attributes: json_attributes(sp.get("attributes"))?,
                    events,
                    status: sp.get("status").map(|s| Status {
                        message: s.get("message").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        code: s.get("code").and_then(Value::as_i64).unwrap_or(0) as i32,
                    }),
                });
            }
            scope_spans.push(ScopeSpans { scope, spans });
        }
        out.resource_spans.push(ResourceSpans { resource, scope_spans });
    }
    Ok(out)
}

fn json_attributes(v: Option<&Value>) -> Result<Vec<KeyValue>, DecodeError> {
    let Some(Value::Array(items)) = v else { return Ok(Vec::new()) };
    items
        .iter()
        .map(|kv| {
            let key = kv.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
            Ok(KeyValue { key, value: kv.get("value").map(json_any).transpose()? })
        })
        .collect()
}

fn json_any(v: &Value) -> Result<AnyValue, DecodeError> {
    use any_value::Value as V;
    let value = if let Some(s) = v.get("stringValue").and_then(Value::as_str) {
        Some(V::StringValue(s.to_owned()))
    } else if let Some(b) = v.get("boolValue").and_then(Value::as_bool) {
        Some(V::BoolValue(b))
    } else if let Some(i) = v.get("intValue") {
        let n = match i {
            Value::String(s) => s.parse().ok(),
            other => other.as_i64(),
        };
        Some(V::IntValue(n.ok_or_else(|| DecodeError(format!("an intValue must be an integer, got `{i}`")))?))
    } else if let Some(d) = v.get("doubleValue").and_then(Value::as_f64) {
        Some(V::DoubleValue(d))
    } else if let Some(a) = v.get("arrayValue") {
        let values = match a.get("values") {
            Some(Value::Array(vs)) => vs.iter().map(json_any).collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        Some(V::ArrayValue(ArrayValue { values }))
    } else if let Some(m) = v.get("kvlistValue") {
        Some(V::KvlistValue(KeyValueList { values: json_attributes(m.get("values"))? }))
    } else if let Some(b) = v.get("bytesValue").and_then(Value::as_str) {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|_| DecodeError("a bytesValue must be base64".into()))?;
        Some(V::BytesValue(bytes))
    } else {
        None
    };
    Ok(AnyValue { value })
}

/// An attribute value as JSON.
fn to_json(v: &AnyValue) -> Value {
    use any_value::Value as V;
    match &v.value {
        None => Value::Null,
        Some(V::StringValue(s)) => json!(s),
        Some(V::BoolValue(b)) => json!(b),
        Some(V::IntValue(i)) => json!(i),
        Some(V::DoubleValue(d)) => json!(d),
        Some(V::ArrayValue(a)) => Value::Array(a.values.iter().map(to_json).collect()),
        Some(V::KvlistValue(m)) => Value::Object(
            m.values.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, to_json))).collect(),
        ),
        Some(V::BytesValue(b)) => json!(hex::encode(b)),
    }
}

/// A string attribute holding JSON, parsed; any other value as it is.
fn parsed(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                serde_json::from_str(s).unwrap_or_else(|_| v.clone())
            } else {
                v.clone()
            }
        }
        other => other.clone(),
    }
}

/// Collects flattened messages (`prefix.0.role`, `prefix.0.content`, or
/// OpenInference's `prefix.0.message.role`) into a list, removing the keys used.
fn flattened_messages(attrs: &mut Map<String, Value>, prefix: &str) -> Option<Value> {
    let start = format!("{prefix}.");
    let keys: Vec<String> = attrs.keys().filter(|k| k.starts_with(&start)).cloned().collect();
    if keys.is_empty() {
        return None;
    }
    let mut by_index: std::collections::BTreeMap<usize, Map<String, Value>> = Default::default();
    for k in keys {
        let rest = &k[start.len()..];
        let Some((idx, field)) = rest.split_once('.') else { continue };
        let Ok(i) = idx.parse::<usize>() else { continue };
        let field = field.strip_prefix("message.").unwrap_or(field);
        if let Some(v) = attrs.remove(&k) {
            by_index.entry(i).or_default().insert(field.to_owned(), parsed(&v));
        }
    }
    (!by_index.is_empty()).then(|| Value::Array(by_index.into_values().map(Value::Object).collect()))
}

/// Where the spans go: a project's logs or an experiment.
#[derive(Debug, Clone, Copy)]
pub enum Destination {
    /// A project's logs.
    ProjectLogs(uuid::Uuid),
    /// An experiment.
    Experiment(uuid::Uuid),
}

fn seconds(nanos: u64) -> Value {
    json!(nanos as f64 / 1e9)
}

/// The log row a span becomes.
pub fn span_row(span: &Span, dest: Destination) -> Result<Value, DecodeError> {
    if span.span_id.len() != 8 || span.trace_id.len() != 16 {
        return Err(DecodeError(format!(
            "span `{}` needs a 16-byte trace id and an 8-byte span id (got {} and {} bytes)",
            span.name,
            span.trace_id.len(),
            span.span_id.len()
        )));
    }
    let mut attrs: Map<String, Value> =
        span.attributes.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, to_json))).collect();
    let mut input: Option<Value> = None;
    let mut output: Option<Value> = None;
    let mut expected: Option<Value> = None;
    let mut metadata = Map::new();
    let mut metrics = Map::new();
    let mut scores: Option<Value> = None;
    let mut tags: Option<Value> = None;
    let mut span_attributes = Map::new();
    span_attributes.insert("name".into(), json!(span.name));
    let mut take = |k: &str| attrs.remove(k);

    // Braintrust's own attributes set fields directly.
    for k in ["braintrust.input_json", "braintrust.input"] {
        if let Some(v) = take(k) {
            input = Some(parsed(&v));
        }
    }
    for k in ["braintrust.output_json", "braintrust.output"] {
        if let Some(v) = take(k) {
            output = Some(parsed(&v));
        }
    }
    if let Some(v) = take("braintrust.expected") {
        expected = Some(parsed(&v));
    }
    if let Some(Value::Object(m)) = take("braintrust.metadata").map(|v| parsed(&v)) {
        metadata.extend(m);
    }
    if let Some(Value::Object(m)) = take("braintrust.metrics").map(|v| parsed(&v)) {
        metrics.extend(m);
    }
    if let Some(v) = take("braintrust.scores") {
        scores = Some(parsed(&v));
    }
    if let Some(v) = take("braintrust.tags") {
        tags = Some(parsed(&v));
    }
    if let Some(Value::Object(m)) = take("braintrust.span_attributes").map(|v| parsed(&v)) {
        span_attributes.extend(m);
    }
    let _ = take("braintrust.parent");

    // GenAI semantic conventions.
    let mut llm = false;
    for k in ["gen_ai.input.messages", "gen_ai.prompt"] {
        if let Some(v) = take(k) {
            input = input.or(Some(parsed(&v)));
            llm = true;
        }
    }
    for k in ["gen_ai.output.messages", "gen_ai.completion"] {
        if let Some(v) = take(k) {
            output = output.or(Some(parsed(&v)));
            llm = true;
        }
    }
    if let Some(m) = flattened_messages(&mut attrs, "gen_ai.prompt") {
        input = input.or(Some(m));
        llm = true;
    }
    if let Some(m) = flattened_messages(&mut attrs, "gen_ai.completion") {
        output = output.or(Some(m));
        llm = true;
    }
    let mut take = |k: &str| attrs.remove(k);
    for (k, field) in [
        ("gen_ai.request.model", "model"),
        ("gen_ai.response.model", "model"),
        ("gen_ai.system", "provider"),
        ("gen_ai.provider.name", "provider"),
        ("gen_ai.request.temperature", "temperature"),
        ("gen_ai.request.max_tokens", "max_tokens"),
        ("gen_ai.request.top_p", "top_p"),
        ("llm.model_name", "model"),
        ("llm.provider", "provider"),
        ("llm.system", "provider"),
        ("ai.model.id", "model"),
        ("ai.model.provider", "provider"),
    ] {
        if let Some(v) = take(k) {
            metadata.entry(field).or_insert(v);
            llm = true;
        }
    }
    for (k, metric) in [
        ("gen_ai.usage.input_tokens", "prompt_tokens"),
        ("gen_ai.usage.prompt_tokens", "prompt_tokens"),
        ("gen_ai.usage.output_tokens", "completion_tokens"),
        ("gen_ai.usage.completion_tokens", "completion_tokens"),
        ("gen_ai.usage.total_tokens", "tokens"),
        ("llm.token_count.prompt", "prompt_tokens"),
        ("llm.token_count.completion", "completion_tokens"),
        ("llm.token_count.total", "tokens"),
        ("llm.usage.total_tokens", "tokens"),
        ("ai.usage.promptTokens", "prompt_tokens"),
        ("ai.usage.completionTokens", "completion_tokens"),
    ] {
        if let Some(v) = take(k) {
            if v.is_number() {
                metrics.entry(metric).or_insert(v);
                llm = true;
            } else {
                metadata.insert(k.into(), v);
            }
        }
    }
    // OpenInference.
    if let Some(v) = take("input.value") {
        input = input.or(Some(parsed(&v)));
    }
    if let Some(v) = take("output.value") {
        output = output.or(Some(parsed(&v)));
    }
    let _ = take("input.mime_type");
    let _ = take("output.mime_type");
    if let Some(Value::Object(m)) = take("llm.invocation_parameters").map(|v| parsed(&v)) {
        for (k, v) in m {
            metadata.entry(k).or_insert(v);
        }
        llm = true;
    }
    if let Some(kind) = take("openinference.span.kind") {
        let t = match kind.as_str().unwrap_or_default().to_ascii_uppercase().as_str() {
            "LLM" => "llm",
            "TOOL" => "tool",
            "CHAIN" | "AGENT" => "task",
            "EVALUATOR" => "score",
            _ => "function",
        };
        span_attributes.entry("type").or_insert(json!(t));
    }
    if let Some(m) = flattened_messages(&mut attrs, "llm.input_messages") {
        input = input.or(Some(m));
        llm = true;
    }
    if let Some(m) = flattened_messages(&mut attrs, "llm.output_messages") {
        output = output.or(Some(m));
        llm = true;
    }
    // Vercel AI SDK.
    let mut take = |k: &str| attrs.remove(k);
    for k in ["ai.prompt.messages", "ai.prompt"] {
        if let Some(v) = take(k) {
            input = input.or(Some(parsed(&v)));
        }
    }
    if let Some(v) = take("ai.response.text") {
        output = output.or(Some(v));
    }
    if llm {
        span_attributes.entry("type").or_insert(json!("llm"));
    }
    if let (Some(p), Some(c)) =
        (metrics.get("prompt_tokens").and_then(Value::as_f64), metrics.get("completion_tokens").and_then(Value::as_f64))
    {
        metrics.entry("tokens").or_insert(json!(p + c));
    }
    // Whatever was not parsed stays in metadata under its own key.
    for (k, v) in attrs {
        metadata.entry(k).or_insert(v);
    }
    if span.start_time_unix_nano > 0 {
        metrics.insert("start".into(), seconds(span.start_time_unix_nano));
    }
    if span.end_time_unix_nano > 0 {
        metrics.insert("end".into(), seconds(span.end_time_unix_nano));
    }
    let span_id = hex::encode(&span.span_id);
    let mut row = Map::new();
    match dest {
        Destination::ProjectLogs(p) => {
            row.insert("project_id".into(), json!(p));
            row.insert("log_id".into(), json!("g"));
        }
        Destination::Experiment(e) => {
            row.insert("experiment_id".into(), json!(e));
        }
    }
    row.insert("id".into(), json!(span_id));
    row.insert("span_id".into(), json!(span_id));
    row.insert("root_span_id".into(), json!(hex::encode(&span.trace_id)));
    if !span.parent_span_id.is_empty() {
        row.insert("span_parents".into(), json!([hex::encode(&span.parent_span_id)]));
    }
    if span.start_time_unix_nano > 0 {
        let micros = i64::try_from(span.start_time_unix_nano / 1000).unwrap_or(i64::MAX);
        row.insert("created".into(), json!(castellan_api_types::format_time(micros)));
    }
    for (k, v) in [("input", input), ("output", output), ("expected", expected), ("scores", scores), ("tags", tags)] {
        if let Some(v) = v {
            row.insert(k.into(), v);
        }
    }
    if let Some(s) = &span.status {
        if s.code == 2 {
            row.insert("error".into(), json!(if s.message.is_empty() { "error" } else { s.message.as_str() }));
        }
    }
    for e in span.events.iter().filter(|e| e.name == "exception") {
        let get = |k: &str| e.attributes.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.as_ref()).map(to_json);
        let message = get("exception.message").or_else(|| get("exception.type")).unwrap_or(json!("exception"));
        row.entry("error").or_insert(message);
    }
    if !metadata.is_empty() {
        row.insert("metadata".into(), Value::Object(metadata));
    }
    row.insert("metrics".into(), Value::Object(metrics));
    row.insert("span_attributes".into(), Value::Object(span_attributes));
    Ok(Value::Object(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }) }
    }

    fn s(v: &str) -> any_value::Value {
        any_value::Value::StringValue(v.into())
    }

    fn span(attributes: Vec<KeyValue>) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "chat".into(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_001_500_000_000,
            attributes,
            ..Span::default()
        }
    }

    #[test]
    fn genai_attributes_become_input_output_model_and_tokens() {
        let p = uuid::Uuid::from_u128(9);
        let row = span_row(
            &span(vec![
                kv("gen_ai.request.model", s("gpt-4o")),
                kv("gen_ai.system", s("openai")),
                kv("gen_ai.prompt.0.role", s("user")),
                kv("gen_ai.prompt.0.content", s("hi")),
                kv("gen_ai.completion.0.role", s("assistant")),
                kv("gen_ai.completion.0.content", s("hello")),
                kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(7)),
                kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(3)),
                kv("http.route", s("/chat")),
            ]),
            Destination::ProjectLogs(p),
        )
        .expect("row");
        assert_eq!(row["input"], json!([{"role": "user", "content": "hi"}]));
        assert_eq!(row["output"], json!([{"role": "assistant", "content": "hello"}]));
        assert_eq!(row["metadata"], json!({"model": "gpt-4o", "provider": "openai", "http.route": "/chat"}));
        assert_eq!(
            (row["metrics"]["prompt_tokens"].clone(), row["metrics"]["tokens"].clone()),
            (json!(7), json!(10.0))
        );
        assert_eq!(row["metrics"]["end"], json!(1_700_000_001.5));
        assert_eq!(row["span_attributes"], json!({"name": "chat", "type": "llm"}));
        assert_eq!(
            (row["span_id"].as_str(), row["root_span_id"].as_str()),
            (Some("0202020202020202"), Some("01010101010101010101010101010101"))
        );
        assert_eq!(row["span_parents"], json!(["0303030303030303"]));
        assert_eq!(row["log_id"], "g");
    }

    #[test]
    fn braintrust_and_openinference_attributes_and_errors() {
        let mut sp = span(vec![
            kv("braintrust.input_json", s(r#"{"q": 1}"#)),
            kv("braintrust.metadata", s(r#"{"env": "prod"}"#)),
            kv("braintrust.scores", s(r#"{"accuracy": 1}"#)),
            kv("output.value", s("done")),
            kv("openinference.span.kind", s("TOOL")),
        ]);
        sp.status = Some(Status { message: "boom".into(), code: 2 });
        let row = span_row(&sp, Destination::Experiment(uuid::Uuid::from_u128(1))).expect("row");
        assert_eq!((row["input"].clone(), row["output"].clone()), (json!({"q": 1}), json!("done")));
        assert_eq!((row["metadata"].clone(), row["scores"].clone()), (json!({"env": "prod"}), json!({"accuracy": 1})));
        assert_eq!((row["error"].as_str(), row["span_attributes"]["type"].as_str()), (Some("boom"), Some("tool")));
        assert!(row.get("project_id").is_none() && row["experiment_id"].is_string());
    }

    #[test]
    fn json_and_protobuf_decode_to_the_same_request() {
        let sp = span(vec![kv("a", any_value::Value::IntValue(5)), kv("b", s("x"))]);
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans { scope: None, spans: vec![sp] }],
            }],
        };
        let bytes = req.encode_to_vec();
        let from_proto = decode_protobuf(&bytes).expect("proto");
        let as_json = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "01010101010101010101010101010101", "spanId": "0202020202020202",
            "parentSpanId": "0303030303030303", "name": "chat",
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1_700_000_001_500_000_000u64,
            "attributes": [{"key": "a", "value": {"intValue": "5"}}, {"key": "b", "value": {"stringValue": "x"}}]
        }]}]}]});
        let from_json = decode_json(&as_json).expect("json");
        assert_eq!(from_proto, from_json);
        assert!(decode_protobuf(b"\xff\xff\xff").is_err());
        assert!(decode_json(&json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]})).is_err());
    }
}
