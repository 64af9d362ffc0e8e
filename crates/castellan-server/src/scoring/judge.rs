//! LLM-as-judge: a `function_type: scorer` prompt whose `parser` is an
//! `llm_classifier` (`choice_scores`, `use_cot`), rendered with the span (mustache,
//! as Braintrust renders prompts), sent to an OpenAI-compatible chat-completions
//! endpoint (`<api_base>/chat/completions`, the key as a bearer token), and the
//! choice it selects (a `select_choice` tool call, or the content) turned into the
//! score.

use serde_json::{json, Map, Value};
use std::time::Duration;

/// A scorer prompt, ready to call.
#[derive(Debug, Clone)]
pub struct Judge {
    /// The score's name (the prompt's name).
    pub name: String,
    /// The chat messages, templates not yet rendered.
    pub messages: Vec<Value>,
    /// The model asked for.
    pub model: String,
    /// Extra request parameters (`temperature`, `max_tokens`, …).
    pub params: Map<String, Value>,
    /// Choice → score.
    pub choice_scores: Map<String, Value>,
    /// Whether the tool asks for reasons first.
    pub use_cot: bool,
}

/// Where and how to call the provider. The key is never logged (no `Debug`).
pub struct Provider {
    /// `https://…/v1`, without the trailing `/chat/completions`.
    pub api_base: String,
    /// The bearer key.
    pub key: String,
    /// The provider's name (for messages).
    pub name: String,
}

/// The model a scorer asks for when its prompt names none.
pub const DEFAULT_MODEL: &str = "gpt-4o";

impl Judge {
    /// Reads a scorer prompt's `prompt_data`; why it cannot be a judge.
    pub fn from_prompt(name: &str, prompt_data: &Value) -> Result<Judge, String> {
        let parser = prompt_data.get("parser").filter(|p| !p.is_null()).ok_or_else(|| {
            format!("scorer `{name}` has no `prompt_data.parser`: an LLM judge needs an `llm_classifier` parser")
        })?;
        if parser.get("type").and_then(Value::as_str) != Some("llm_classifier") {
            return Err(format!("scorer `{name}`: `prompt_data.parser.type` must be `llm_classifier`"));
        }
        let choice_scores = parser
            .get("choice_scores")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty() && m.values().all(Value::is_number))
            .cloned()
            .ok_or_else(|| format!("scorer `{name}`: `parser.choice_scores` must map each choice to a number"))?;
        let use_cot = parser.get("use_cot").and_then(Value::as_bool).unwrap_or(false);
        let prompt = prompt_data.get("prompt").cloned().unwrap_or(Value::Null);
        let messages = match prompt.get("type").and_then(Value::as_str) {
            Some("completion") => {
                vec![json!({"role": "user", "content": prompt.get("content").cloned().unwrap_or(json!(""))})]
            }
            _ => prompt.get("messages").and_then(Value::as_array).cloned().unwrap_or_default(),
        };
        if messages.is_empty() {
            return Err(format!("scorer `{name}` has no prompt messages"));
        }
        let options = prompt_data.get("options").cloned().unwrap_or(Value::Null);
        let model = options.get("model").and_then(Value::as_str).unwrap_or(DEFAULT_MODEL).to_owned();
        let mut params = options.get("params").and_then(Value::as_object).cloned().unwrap_or_default();
        // Braintrust's own keys, not the provider's.
        for k in ["use_cache", "response_format", "tool_choice", "function_call", "n", "stream"] {
            params.remove(k);
        }
        params.entry("temperature").or_insert(json!(0));
        Ok(Judge { name: name.to_owned(), messages, model, params, choice_scores, use_cot })
    }

    /// The chat-completions request for a span (`vars`: input, output, expected,
    /// metadata, …).
    pub fn request(&self, vars: &Value) -> Value {
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if let Some(obj) = m.as_object_mut() {
                    match obj.get_mut("content") {
                        Some(Value::String(s)) => *s = render(s, vars),
                        Some(Value::Array(parts)) => {
                            for p in parts.iter_mut() {
                                if let Some(Value::String(t)) = p.get_mut("text") {
                                    *t = render(t, vars);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                m
            })
            .collect();
        let choices: Vec<&String> = self.choice_scores.keys().collect();
        let mut properties = Map::new();
        if self.use_cot {
            properties.insert(
                "reasons".into(),
                json!({"description": "Write out in a step by step manner your reasoning to be sure that your \
                       conclusion is correct. Avoid simply stating the correct answer at the outset.",
                       "title": "Reasons", "type": "string"}),
            );
        }
        properties.insert(
            "choice".into(),
            json!({"description": "The choice", "title": "Choice", "type": "string", "enum": choices}),
        );
        let required = if self.use_cot { json!(["reasons", "choice"]) } else { json!(["choice"]) };
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model));
        body.insert("messages".into(), json!(messages));
        body.insert(
            "tools".into(),
            json!([{"type": "function", "function": {
                "name": "select_choice",
                "description": "Call this function to select a choice.",
                "parameters": {"type": "object", "properties": properties, "required": required}}}]),
        );
        body.insert("tool_choice".into(), json!({"type": "function", "function": {"name": "select_choice"}}));
        for (k, v) in &self.params {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }

    /// The score a chat-completions answer selects, and the choice (with the
    /// rationale, when asked for).
    pub fn parse(&self, answer: &Value) -> Result<(f64, Value), String> {
        let message = answer
            .pointer("/choices/0/message")
            .ok_or("the provider's answer has no `choices[0].message`".to_string())?;
        let args = message
            .pointer("/tool_calls/0/function/arguments")
            .or_else(|| message.pointer("/function_call/arguments"))
            .and_then(Value::as_str);
        let (choice, rationale) = match args {
            Some(a) => {
                let v: Value = serde_json::from_str(a)
                    .map_err(|e| format!("the provider's tool call arguments are not JSON: {e}"))?;
                let c = v.get("choice").and_then(Value::as_str).ok_or("the tool call names no `choice`")?;
                (c.trim().to_owned(), v.get("reasons").cloned())
            }
            None => {
                let content = message.get("content").and_then(Value::as_str).unwrap_or("").trim();
                match serde_json::from_str::<Value>(content) {
                    Ok(v) if v.get("choice").is_some_and(Value::is_string) => {
                        (v["choice"].as_str().unwrap_or("").trim().to_owned(), v.get("reasons").cloned())
                    }
                    _ => (content.to_owned(), None),
                }
            }
        };
        let score = self
            .choice_scores
            .get(&choice)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("the judge chose `{choice}`, which is not one of its `choice_scores`"))?;
        let mut meta = json!({"choice": choice});
        if let Some(r) = rationale {
            let text = match r {
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"),
                Value::String(s) => s,
                other => other.to_string(),
            };
            meta["rationale"] = json!(text);
        }
        Ok((score, meta))
    }
}

/// Why a provider call failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub struct CallError {
    /// What went wrong (never the key).
    pub message: String,
    /// A timeout, a 429, a 5xx, or an unreadable answer.
    pub retryable: bool,
}

/// Calls the provider once.
pub async fn call(http: &reqwest::Client, p: &Provider, body: &Value, timeout: Duration) -> Result<Value, CallError> {
    let url = format!("{}/chat/completions", p.api_base.trim_end_matches('/'));
    let sent = http.post(&url).bearer_auth(&p.key).timeout(timeout).json(body).send().await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_timeout() { "timed out" } else { "failed" };
            return Err(CallError {
                message: format!("provider `{}`: the request to {url} {what}: {}", p.name, e.without_url()),
                retryable: true,
            });
        }
    };
    let status = resp.status();
    let text = resp.text().await.map_err(|e| CallError {
        message: format!("provider `{}`: reading the answer failed: {}", p.name, e.without_url()),
        retryable: true,
    })?;
    if !status.is_success() {
        let snippet: String = text.chars().take(300).collect();
        return Err(CallError {
            message: format!("provider `{}` answered {status}: {snippet}", p.name),
            retryable: status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408,
        });
    }
    serde_json::from_str(&text).map_err(|e| CallError {
        message: format!("provider `{}` answered with something that is not JSON: {e}", p.name),
        retryable: true,
    })
}

/// Renders a mustache template as Braintrust renders prompts: `{{a.b}}` and
/// `{{{a}}}` insert values (strings as they are, anything else as JSON; nothing is
/// HTML-escaped), `{{#a}}…{{/a}}` and `{{^a}}…{{/a}}` are sections (a list repeats
/// with each item as `{{.}}`), `{{! … }}` is a comment.
pub fn render(template: &str, vars: &Value) -> String {
    let mut out = String::new();
    render_into(template, &[vars], &mut out);
    out
}

fn lookup<'a>(stack: &[&'a Value], name: &str) -> Option<&'a Value> {
    if name == "." {
        return stack.last().copied();
    }
    let mut parts = name.split('.');
    let first = parts.next()?;
    let base = stack.iter().rev().find_map(|v| v.get(first))?;
    parts.try_fold(base, |v, p| match v {
        Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
        other => other.get(p),
    })
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => true,
    }
}

/// The end of the section `name` that starts at `rest`: (inner, after).
fn section<'t>(rest: &'t str, name: &str) -> Option<(&'t str, &'t str)> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(off) = rest[i..].find("{{") {
        let at = i + off;
        let close = rest[at..].find("}}")? + at;
        let tag = rest[at + 2..close].trim();
        let (sigil, tname) = tag.split_at(tag.chars().next().map_or(0, char::len_utf8));
        if (sigil == "#" || sigil == "^") && tname.trim() == name {
            depth += 1;
        } else if sigil == "/" && tname.trim() == name {
            if depth == 0 {
                return Some((&rest[..at], &rest[close + 2..]));
            }
            depth -= 1;
        }
        i = close + 2;
    }
    None
}

fn render_into(template: &str, stack: &[&Value], out: &mut String) {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let (tag, tail) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find("}}}") {
                Some(end) => (format!("&{}", &inner[..end]), &inner[end + 3..]),
                None => break,
            }
        } else {
            match after.find("}}") {
                Some(end) => (after[..end].to_owned(), &after[end + 2..]),
                None => {
                    out.push_str(&rest[start..]);
                    return;
                }
            }
        };
        let tag = tag.trim();
        rest = tail;
        if let Some(c) = tag.strip_prefix('!') {
            let _ = c;
            continue;
        }
        if let Some(name) = tag.strip_prefix('#').or_else(|| tag.strip_prefix('^')).map(str::trim) {
            let inverted = tag.starts_with('^');
            let Some((inner, after)) = section(rest, name) else {
                return;
            };
            rest = after;
            let v = lookup(stack, name);
            match (inverted, v) {
                (true, _) => {
                    if !truthy(v) {
                        render_into(inner, stack, out);
                    }
                }
                (false, Some(Value::Array(items))) => {
                    for item in items {
                        let mut s = stack.to_vec();
                        s.push(item);
                        render_into(inner, &s, out);
                    }
                }
                (false, Some(obj @ Value::Object(_))) => {
                    let mut s = stack.to_vec();
                    s.push(obj);
                    render_into(inner, &s, out);
                }
                (false, v) => {
                    if truthy(v) {
                        render_into(inner, stack, out);
                    }
                }
            }
            continue;
        }
        let name = tag.strip_prefix('&').unwrap_or(tag).trim();
        out.push_str(&text_of(lookup(stack, name)));
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_values_paths_and_sections() {
        let vars = json!({"input": {"q": "2+2?"}, "output": "4", "expected": null, "metadata": {"tags": ["a", "b"]}});
        assert_eq!(render("Q: {{input.q}} A: {{output}}", &vars), "Q: 2+2? A: 4");
        assert_eq!(render("{{input}}", &vars), "{\"q\":\"2+2?\"}");
        assert_eq!(render("<{{{output}}}>{{! hidden }}", &vars), "<4>");
        assert_eq!(render("{{#metadata.tags}}[{{.}}]{{/metadata.tags}}", &vars), "[a][b]");
        assert_eq!(render("{{^expected}}none{{/expected}}", &vars), "none");
        assert_eq!(render("x & <y> {{output}}", &vars), "x & <y> 4", "nothing is HTML-escaped");
    }

    fn judge() -> Judge {
        Judge::from_prompt(
            "Correct",
            &json!({"prompt": {"type": "chat", "messages": [{"role": "user", "content": "Is {{output}} right for {{input}}?"}]},
                    "options": {"model": "judge-1", "params": {"temperature": 0.5, "use_cache": true}},
                    "parser": {"type": "llm_classifier", "use_cot": true, "choice_scores": {"Y": 1, "N": 0}}}),
        )
        .unwrap()
    }

    #[test]
    fn a_classifier_prompt_becomes_a_tool_call_request() {
        let r = judge().request(&json!({"input": "1+1", "output": "2"}));
        assert_eq!(r["model"], "judge-1");
        assert_eq!(r["messages"][0]["content"], "Is 2 right for 1+1?");
        assert_eq!(r["temperature"], 0.5);
        assert!(r.get("use_cache").is_none());
        assert_eq!(r["tool_choice"]["function"]["name"], "select_choice");
        assert_eq!(r["tools"][0]["function"]["parameters"]["properties"]["choice"]["enum"], json!(["N", "Y"]));
        assert_eq!(r["tools"][0]["function"]["parameters"]["required"], json!(["reasons", "choice"]));
    }

    #[test]
    fn answers_are_parsed_from_tool_calls_or_content() {
        let j = judge();
        let tool = json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "select_choice",
            "arguments": "{\"reasons\": \"it adds up\", \"choice\": \"Y\"}"}}]}}]});
        assert_eq!(j.parse(&tool).unwrap().0, 1.0);
        assert_eq!(j.parse(&tool).unwrap().1["rationale"], "it adds up");
        assert_eq!(j.parse(&json!({"choices": [{"message": {"content": " N "}}]})).unwrap().0, 0.0);
        assert!(j.parse(&json!({"choices": [{"message": {"content": "maybe"}}]})).is_err());
        assert!(j.parse(&json!({"nope": 1})).is_err());
        assert!(Judge::from_prompt("x", &json!({"prompt": {"messages": []}})).is_err());
    }
}
