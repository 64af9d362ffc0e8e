//! Delivering an automation's notification through its action: a webhook (signed,
//! with its custom headers), a Slack message or a PagerDuty event. Every request goes
//! through the outbound guard ([`crate::outbound`]); transient failures (no
//! connection, a time-out, 429, 5xx, Slack's `ratelimited`) are retried with
//! exponential backoff; each delivery is recorded with its attempts and outcome.
//!
//! Webhooks carry Braintrust's payload unchanged plus Castellan's headers:
//! `x-castellan-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under
//! the automation's signing secret>`, `x-castellan-delivery` (the delivery id: the
//! same on every retry, so a receiver can drop duplicates) and `x-castellan-event`.

use crate::access::{AppState, Permit};
use crate::error::{ApiError, ApiResult};
use crate::secrets::Binding;
use castellan_core::ObjectType;
use castellan_store::{AdminKind, AdminRecord, DeliveryRecord};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use std::time::Duration;
use uuid::Uuid;

/// One notification to deliver.
#[derive(Debug, Clone)]
pub struct Notification {
    /// What it is about (`logs`, `environment_update`, `cost_alert`).
    pub event: &'static str,
    /// A test (`POST …/test`).
    pub is_test: bool,
    /// The JSON body of a webhook.
    pub payload: Value,
    /// One line for people (Slack text, PagerDuty summary).
    pub message: String,
    /// The run that sends it.
    pub run_id: Option<Uuid>,
}

/// The signature header's value for `body` at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// `after 1 attempt`, `after 3 attempts`.
pub fn after(attempts: i64) -> String {
    format!("after {attempts} attempt{}", if attempts == 1 { "" } else { "s" })
}

/// What one attempt came to.
enum Attempt {
    Ok(Option<u16>),
    /// Worth trying again (and how long the receiver asked to wait, if it did).
    Retry(Option<u16>, String, Option<Duration>),
    Fail(Option<u16>, String),
}

/// The sealed part of a webhook action: its signing secret and header values.
pub(crate) fn opened_webhook(state: &AppState, a: &AdminRecord) -> ApiResult<(Option<String>, Map<String, Value>)> {
    let Some(sealed) = &a.secret else { return Ok((None, Map::new())) };
    let opened = state
        .sealer()?
        .open(Binding::admin(a), sealed)
        .map_err(|e| ApiError::bad_request(format!("the automation's sealed values cannot be opened ({e})")))?;
    let v: Value = serde_json::from_str(&opened).unwrap_or(Value::Null);
    let secret = v.get("signing_secret").and_then(Value::as_str).map(str::to_owned);
    let headers = v.get("headers").and_then(Value::as_object).cloned().unwrap_or_default();
    Ok((secret, headers))
}

/// The value of env var `name` in force for `a`'s scope: a project's own, else the
/// organization's; opened.
async fn env_value(state: &AppState, permit: &Permit, a: &AdminRecord, name: &str) -> ApiResult<Option<String>> {
    let vars = state.jobs(permit).all_admin(AdminKind::EnvVar).await?;
    let pick = |t: ObjectType, id: Uuid| {
        vars.iter()
            .find(|v| v.org_id == a.org_id && v.scope.object_type == t && v.scope.object_id == id && v.name == name)
    };
    let found = match a.scope.object_type {
        ObjectType::Project => {
            pick(ObjectType::Project, a.scope.object_id).or_else(|| pick(ObjectType::Organization, a.org_id.0))
        }
        _ => pick(ObjectType::Organization, a.org_id.0),
    };
    let Some(v) = found else { return Ok(None) };
    let Some(sealed) = &v.secret else { return Ok(None) };
    let opened = state
        .sealer()?
        .open(Binding::admin(v), sealed)
        .map_err(|e| ApiError::bad_request(format!("env var `{name}` cannot be opened ({e})")))?;
    Ok(Some(opened))
}

/// Renders `{{a.b}}` placeholders from the payload (unknown ones render empty).
pub fn render(template: &str, payload: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let path = rest[i + 2..i + j].trim();
        let mut v = payload;
        for seg in path.split('.') {
            v = v.get(seg).unwrap_or(&Value::Null);
        }
        match v {
            Value::String(s) => out.push_str(s),
            Value::Null => {}
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

async fn post(
    state: &AppState,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    read_body: bool,
) -> (Attempt, Option<Value>) {
    let client = match state.outbound().client_for(url).await {
        Ok(c) => c,
        Err(crate::outbound::OutboundError::Resolve(m)) => return (Attempt::Retry(None, m, None), None),
        Err(e) => return (Attempt::Fail(None, e.to_string()), None),
    };
    let mut req = client.post(url).header("content-type", "application/json").body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send().await {
        Err(e) => {
            let what = if e.is_timeout() { "timed out" } else { "could not connect" };
            (Attempt::Retry(None, format!("{what}: {}", short_error(&e)), None), None)
        }
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(60)));
            let parsed = if read_body { resp.json::<Value>().await.ok() } else { None };
            let attempt = match status {
                200..=299 => Attempt::Ok(Some(status)),
                429 => Attempt::Retry(Some(status), "the receiver answered 429 Too Many Requests".into(), retry_after),
                500..=599 => Attempt::Retry(Some(status), format!("the receiver answered {status}"), None),
                300..=399 => {
                    Attempt::Fail(Some(status), format!("the receiver answered {status} (redirects are not followed)"))
                }
                _ => Attempt::Fail(Some(status), format!("the receiver answered {status}")),
            };
            (attempt, parsed)
        }
    }
}

fn short_error(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s.chars().take(300).collect()
}

/// One attempt of `action` for `n`.
async fn attempt(
    state: &AppState,
    permit: &Permit,
    a: &AdminRecord,
    action: &Value,
    n: &Notification,
    delivery: Uuid,
    keys: &Result<WebhookKeys, String>,
) -> Attempt {
    let kind = action.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "webhook" => {
            let url = action.get("url").and_then(Value::as_str).unwrap_or_default();
            let keys = match keys {
                Ok(k) => k,
                Err(e) => return Attempt::Fail(None, e.clone()),
            };
            let body = serde_json::to_vec(&n.payload).unwrap_or_default();
            let mut headers: Vec<(String, String)> =
                keys.headers.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect();
            if let Some(secret) = &keys.secret {
                headers.push(("x-castellan-signature".into(), signature(secret, state.now() / 1_000_000, &body)));
            }
            headers.push(("x-castellan-delivery".into(), delivery.to_string()));
            headers.push(("x-castellan-event".into(), n.event.into()));
            post(state, url, &headers, &body, false).await.0
        }
        "slack" => {
            let token = match env_value(state, permit, a, "SLACK_BOT_TOKEN").await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    return Attempt::Fail(
                        None,
                        "Slack is not configured: set the env var `SLACK_BOT_TOKEN` (a bot token) on the organization or project".into(),
                    )
                }
                Err(e) => return Attempt::Fail(None, e.to_string()),
            };
            let text = match action.get("message_template").and_then(Value::as_str) {
                Some(t) => render(t, &n.payload),
                None => n.message.clone(),
            };
            let body = json!({
                "channel": action.get("channel"),
                "text": text,
                "unfurl_links": false,
            });
            let url = format!("{}/chat.postMessage", state.config().slack_api_url.trim_end_matches('/'));
            let headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
            match post(state, &url, &headers, &serde_json::to_vec(&body).unwrap_or_default(), true).await {
                (Attempt::Ok(s), Some(reply)) => match reply.get("ok").and_then(Value::as_bool) {
                    Some(true) => Attempt::Ok(s),
                    _ => {
                        let err = reply.get("error").and_then(Value::as_str).unwrap_or("unknown_error").to_owned();
                        if err == "ratelimited" {
                            Attempt::Retry(s, "Slack answered `ratelimited`".into(), None)
                        } else {
                            Attempt::Fail(s, format!("Slack refused the message: `{err}`"))
                        }
                    }
                },
                (Attempt::Ok(s), None) => Attempt::Fail(s, "Slack's answer was not JSON".into()),
                (other, _) => other,
            }
        }
        "pagerduty" => {
            let name = action.get("routing_key_secret_name").and_then(Value::as_str).unwrap_or_default();
            let key = match env_value(state, permit, a, name).await {
                Ok(Some(k)) => k,
                Ok(None) => {
                    return Attempt::Fail(
                        None,
                        format!("PagerDuty is not configured: the env var `{name}` (the routing key) is not set"),
                    )
                }
                Err(e) => return Attempt::Fail(None, e.to_string()),
            };
            let body = json!({
                "routing_key": key,
                "event_action": "trigger",
                "dedup_key": delivery.to_string(),
                "payload": {
                    "summary": n.message,
                    "source": "castellan",
                    "severity": action.get("severity").and_then(Value::as_str).unwrap_or("error"),
                    "custom_details": n.payload,
                },
            });
            let url = format!("{}/v2/enqueue", state.config().pagerduty_api_url.trim_end_matches('/'));
            post(state, &url, &[], &serde_json::to_vec(&body).unwrap_or_default(), false).await.0
        }
        other => Attempt::Fail(None, format!("the action type `{other}` cannot be delivered")),
    }
}

/// What an action sends to, for the delivery log (never a secret: a webhook's URL
/// without its query string, a Slack channel, a PagerDuty key's env var name).
fn target(action: &Value) -> Value {
    match action.get("type").and_then(Value::as_str) {
        Some("webhook") => {
            let url = action.get("url").and_then(Value::as_str).unwrap_or_default();
            json!(url.split(['?', '#']).next().unwrap_or_default())
        }
        Some("slack") => action.get("channel").cloned().unwrap_or(Value::Null),
        Some("pagerduty") => action.get("routing_key_secret_name").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// A webhook's signing secret (none: deliveries are not signed) and custom headers.
#[derive(Clone, Default)]
pub struct WebhookKeys {
    /// The signing secret.
    pub secret: Option<String>,
    /// Custom headers, name to value.
    pub headers: Map<String, Value>,
}

impl std::fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookKeys")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A new webhook signing secret (`whsec_` and 64 hex digits).
pub fn new_signing_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// Delivers `n` through `action` of automation `a` (its sealed signing secret and
/// header values opened for it), retrying transient failures with exponential
/// backoff; the delivery as recorded, under `a`'s id.
pub async fn deliver(
    state: &AppState,
    permit: &Permit,
    a: &AdminRecord,
    action: &Value,
    n: &Notification,
) -> ApiResult<DeliveryRecord> {
    deliver_with(state, permit, a, action, n, None).await
}

/// [`deliver`], with the webhook's signing secret and headers given (`None`: the
/// ones sealed on `a`), for notifications that are not an automation's (cost
/// alerts, recorded under the organization's id).
pub async fn deliver_with(
    state: &AppState,
    permit: &Permit,
    a: &AdminRecord,
    action: &Value,
    n: &Notification,
    keys: Option<WebhookKeys>,
) -> ApiResult<DeliveryRecord> {
    let jobs = state.jobs(permit);
    let keys = match keys {
        Some(k) => Ok(k),
        None if action.get("type").and_then(Value::as_str) == Some("webhook") => {
            opened_webhook(state, a).map(|(secret, headers)| WebhookKeys { secret, headers }).map_err(|e| e.to_string())
        }
        None => Ok(WebhookKeys::default()),
    };
    let mut d = DeliveryRecord {
        id: Uuid::now_v7(),
        automation_id: a.id,
        org_id: a.org_id,
        run_id: n.run_id,
        created: state.now(),
        finished: None,
        status: "pending".into(),
        attempts: 0,
        http_status: None,
        error: None,
        details: Some(json!({
            "kind": action.get("type").and_then(Value::as_str).unwrap_or_default(),
            "target": target(action),
            "event": n.event,
            "is_test": n.is_test,
        })),
    };
    jobs.record_delivery(&d).await?;
    let attempts = state.config().webhook_attempts.max(1);
    let mut wait = state.config().webhook_backoff;
    for i in 1..=attempts {
        d.attempts = i64::from(i);
        let outcome = attempt(state, permit, a, action, n, d.id, &keys).await;
        let (retry, asked) = match outcome {
            Attempt::Ok(s) => {
                d.http_status = s.map(i64::from);
                d.status = "ok".into();
                d.error = None;
                break;
            }
            Attempt::Fail(s, m) => {
                d.http_status = s.map(i64::from);
                d.error = Some(m);
                (false, None)
            }
            Attempt::Retry(s, m, after) => {
                d.http_status = s.map(i64::from);
                d.error = Some(m);
                (true, after)
            }
        };
        if !retry || i == attempts {
            d.status = "failed".into();
            break;
        }
        jobs.record_delivery(&d).await?;
        tokio::time::sleep(asked.map_or(wait, |a| a.max(wait))).await;
        wait = wait.saturating_mul(2);
    }
    d.finished = Some(state.now());
    jobs.record_delivery(&d).await?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_time_dot_body() {
        // Independently: HMAC-SHA256("whsec_test", "1700000000.{}").
        let s = signature("whsec_test", 1_700_000_000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="), "{s}");
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("whsec_other", 1_700_000_000, b"{}"));
        assert_ne!(s, signature("whsec_test", 1_700_000_001, b"{}"));
    }

    #[test]
    fn templates_render_payload_paths() {
        let p = json!({"automation": {"name": "errors"}, "details": {"count": 5}});
        assert_eq!(render("{{automation.name}}: {{ details.count }} logs{{missing}}", &p), "errors: 5 logs");
        assert_eq!(render("unclosed {{x", &p), "unclosed {{x");
    }
}
