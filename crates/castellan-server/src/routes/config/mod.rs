//! `/v1/config` (Castellan extension): configuration as code. Export an
//! organization's whole administration state as one document (JSON, or TOML for
//! files), plan the changes that bring the live state to a document, and apply them
//! in one transaction.
//!
//! Reading the state (export, plan, apply) takes `read` and `read_acls` on the whole
//! organization (granted on it without a restriction, as owners hold them). Apply
//! then authorizes every change as its own endpoint would (`create` on the
//! organization for a new group, `delete_acls` on a grant's object to remove it,
//! strict delegation for each grant when the organization has it on, …), on the
//! state before the apply plus the objects it makes, so nobody gains through apply
//! what the endpoints would refuse them; and the lockout guard holds at commit.

mod apply;
mod kinds;
mod live;
mod norm;
mod path;
mod plan;
mod step;

pub(crate) use kinds::{required, text, KindSpec};

use super::{OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Query};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use castellan_api_types::{ConfigApplied, ConfigDocument, ConfigPlan, ConfigRefusal};
use castellan_store::{OrgRecord, Revision};
use live::Live;
use norm::Norm;
use serde::Deserialize;
use std::collections::BTreeSet;
use step::{NewIds, Plan};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(export_document)).routes(routes!(plan_document)).routes(routes!(apply_document))
}

/// The media type of the TOML form of a document.
const TOML: &str = "application/toml";

/// A document's text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigFormat {
    /// JSON (`application/json`).
    Json,
    /// TOML (`application/toml`), the form of `castellan config` files.
    Toml,
}

/// How to answer an export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFormat {
    /// `json` or `toml`; without it, TOML when `Accept` names `application/toml`,
    /// else JSON.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(inline)]
    format: Option<ConfigFormat>,
}

/// The guard of an apply.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplyGuard {
    /// Apply only if the plan is still this one (the `plan_hash` of a plan);
    /// otherwise 409 `plan_changed` and nothing changes.
    #[serde(default, deserialize_with = "empty_as_none")]
    expected_plan_hash: Option<String>,
}

/// A document in a request body: TOML when `Content-Type` names
/// `application/toml`, else JSON; errors name the entry (`groups[2].users`) or the
/// line.
pub struct DocumentBody(pub ConfigDocument);

impl<S: Send + Sync> FromRequest<S> for DocumentBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let toml =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("toml"));
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body is larger than the server accepts".into())
            } else {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            }
        })?;
        let doc: ConfigDocument = if toml {
            let text =
                std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid_body("a TOML document must be UTF-8"))?;
            toml::from_str(text)
                .map_err(|e| ApiError::invalid_body(format!("invalid document: {}", e.to_string().trim())))?
        } else {
            let value: serde_json::Value = crate::extract::parse_json(&bytes)?;
            serde_path_to_error::deserialize(value).map_err(|e| {
                let at = e.path().to_string();
                ApiError::invalid_body(format!("invalid document at `{at}`: {}", e.inner()))
            })?
        };
        // PostgreSQL cannot store U+0000; refused the same on every backend.
        if serde_json::to_string(&doc).is_ok_and(|s| s.contains("\\u0000")) {
            return Err(ApiError::invalid_body("strings may not contain the character U+0000"));
        }
        Ok(DocumentBody(doc))
    }
}

/// The system roles' names (a document may grant them, never define them).
fn system_roles(live: &Live) -> BTreeSet<String> {
    live.roles.iter().filter(|(_, r)| r.rec.org_id.is_none()).map(|(n, _)| n.clone()).collect()
}

/// A document and the organization it is planned for: the one `org_name` (or the
/// `x-bt-org-name` header) names, else the document's own.
struct Planned {
    org: OrgRecord,
    want: Norm,
    ids: NewIds,
    plan: Plan,
}

async fn planned(caller: &Caller, org_name: Option<&str>, doc: &ConfigDocument) -> ApiResult<Planned> {
    let target = org_name.or(caller.header_org()).unwrap_or(&doc.organization);
    let org = caller.org(Some(target)).await?;
    let permit = caller.require_whole_org(org.id).await?;
    let now = caller.state().now();
    let mut tx = caller.state().read(&permit).await?;
    let live = Live::load(&mut *tx, org.clone(), now).await?;
    let want = Norm::from_document(doc, &system_roles(&live), now)?;
    let mut ids = NewIds::default();
    let plan = plan::plan(&mut *tx, &want, &live, &mut ids).await?;
    Ok(Planned { org, want, ids, plan })
}

/// Opens the write, plans again under its lock (the plan must not have changed),
/// makes every change, then commits (`commit`) or checks and rolls back (a dry run).
async fn run(caller: &Caller, p: &mut Planned, commit: bool) -> ApiResult<Option<Revision>> {
    let plan = &p.plan;
    let permit = caller
        .require_batch(plan.batch.clone())
        .await
        .map_err(|(i, e)| apply::named(e, &plan.changes[plan.need_of.get(i).copied().unwrap_or(0)]))?;
    let mut w = caller.state().write(&permit).await?;
    let org = w.tx().get_org(p.org.id).await?.ok_or_else(|| ApiError::not_found("organization", p.org.id))?;
    let now = w.now();
    let live = Live::load(w.tx(), org, now).await?;
    let again = plan::plan(w.tx(), &p.want, &live, &mut p.ids).await?;
    if again.hash != plan.hash || again.batch != plan.batch || !again.refusals.is_empty() {
        return Err(ApiError::PlanChanged(
            "the organization changed while the plan was made; nothing was changed: plan again".into(),
        ));
    }
    apply::execute(&mut w, caller, &again).await?;
    if commit {
        Ok(Some(w.commit().await?))
    } else {
        w.check_and_discard().await?;
        Ok(None)
    }
}

/// Castellan extension: the organization's whole administration state as one
/// document: settings, members, roles, groups (with their members), projects (with
/// their settings), project groups, administration objects (secret-bearing ones by
/// name and type only: never a value or a preview) and every unexpired grant, by
/// names, sorted. Needs `read` and `read_acls` on the whole organization.
#[utoipa::path(get, path = "/v1/config/export", tag = "Config", params(OrgName, ExportFormat),
    responses((status = 200, description = "the document", content(
        (ConfigDocument = "application/json"), (String = "application/toml")))))]
pub async fn export_document(
    caller: Caller,
    Query(org): Query<OrgName>,
    Query(f): Query<ExportFormat>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let org = caller.org(org.get()).await?;
    let permit = caller.require_whole_org(org.id).await?;
    let mut tx = caller.state().read(&permit).await?;
    let live = Live::load(&mut *tx, org, caller.state().now()).await?;
    let doc = live.norm.to_document(&live.org.name);
    let accepts_toml = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(TOML));
    match f.format {
        Some(ConfigFormat::Toml) => toml_answer(&doc),
        None if accepts_toml => toml_answer(&doc),
        _ => Ok(Json(doc).into_response()),
    }
}

fn toml_answer(doc: &ConfigDocument) -> ApiResult<Response> {
    let body = toml::to_string_pretty(doc).map_err(|e| {
        ApiError::bad_request(format!("this document cannot be written as TOML ({e}); export it as JSON"))
    })?;
    let text = format!(
        "# The configuration of organization `{}` (Castellan, format {}).\n\
         # `castellan config plan -f FILE` shows what applying it would change.\n\n{body}",
        doc.organization, doc.version
    );
    let mut resp = text.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/toml; charset=utf-8"));
    Ok(resp)
}

/// Castellan extension: the changes that would bring the organization (`org_name`,
/// else the document's `organization`) to the document, in the order apply makes
/// them, and everything apply would refuse: accounts it would have to create, objects
/// inside projects that do not exist, changes the caller may not make, and (from a
/// dry run in a transaction that is rolled back) lockout, cycles and name clashes.
/// Needs `read` and `read_acls` on the whole organization. The body is the document
/// in JSON, or in TOML with `Content-Type: application/toml`.
#[utoipa::path(post, path = "/v1/config/plan", tag = "Config", params(OrgName),
    request_body(content((ConfigDocument = "application/json"), (ConfigDocument = "application/toml"))),
    responses((status = 200, body = ConfigPlan)))]
pub async fn plan_document(
    caller: Caller,
    Query(org): Query<OrgName>,
    DocumentBody(doc): DocumentBody,
) -> ApiResult<Json<ConfigPlan>> {
    let mut p = planned(&caller, org.get(), &doc).await?;
    if p.plan.refusals.is_empty() && !p.plan.changes.is_empty() {
        for (i, e) in caller.batch_refusals(&p.plan.batch) {
            let c = &p.plan.changes[p.plan.need_of[i]];
            let r = ConfigRefusal { kind: c.kind.clone(), name: c.name.clone(), reason: e.to_string() };
            if !p.plan.refusals.contains(&r) {
                p.plan.refusals.push(r);
            }
        }
        if p.plan.refusals.is_empty() {
            if let Err(e) = run(&caller, &mut p, false).await {
                let name = p.org.name.clone();
                p.plan.refusals.push(ConfigRefusal { kind: "apply".into(), name, reason: e.to_string() });
            }
        }
    }
    let plan = p.plan;
    Ok(Json(ConfigPlan {
        organization: p.org.name,
        changes: plan.changes,
        refusals: plan.refusals,
        notes: plan.notes,
        plan_hash: plan.hash,
    }))
}

/// Castellan extension: applies a document to the organization (`org_name`, else the
/// document's `organization`): every change of its plan, in one transaction, each
/// audited once and authorized as its own endpoint would authorize it; any refusal
/// (an account to create, a missing object, a change the caller may not make,
/// lockout, a cycle) changes nothing and answers the error naming the entry. Applying
/// the same document again changes nothing. With `expected_plan_hash`, applies only
/// that plan (409 `plan_changed` otherwise).
#[utoipa::path(post, path = "/v1/config/apply", tag = "Config", params(OrgName, ApplyGuard),
    request_body(content((ConfigDocument = "application/json"), (ConfigDocument = "application/toml"))),
    responses((status = 200, body = ConfigApplied),
        (status = 409, description = "the plan is not the one expected", body = castellan_api_types::ErrorBody)))]
pub async fn apply_document(
    caller: Caller,
    Query(org): Query<OrgName>,
    Query(guard): Query<ApplyGuard>,
    DocumentBody(doc): DocumentBody,
) -> ApiResult<Written<ConfigApplied>> {
    let mut p = planned(&caller, org.get(), &doc).await?;
    if let Some(h) = guard.expected_plan_hash.filter(|h| *h != p.plan.hash) {
        return Err(ApiError::PlanChanged(format!(
            "the plan is now `{}`, not the expected `{h}`; nothing was changed: plan again",
            p.plan.hash
        )));
    }
    if !p.plan.refusals.is_empty() {
        let reasons: Vec<String> =
            p.plan.refusals.iter().map(|r| format!("{} `{}`: {}", r.kind, r.name, r.reason)).collect();
        return Err(ApiError::bad_request(format!(
            "the document cannot be applied, nothing was changed: {}",
            reasons.join("; ")
        )));
    }
    let revision = if p.plan.changes.is_empty() { None } else { run(&caller, &mut p, true).await? };
    let body = ConfigApplied { organization: p.org.name, changes: p.plan.changes, plan_hash: p.plan.hash, revision };
    Ok(match revision {
        Some(rev) => Written::at(rev, body),
        None => Written { revision: None, found_existing: false, body },
    })
}
