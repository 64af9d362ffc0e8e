//! `/v1/audit_log` (Castellan extension): the tamper-evident record of every change.
//! Reading it needs `read` on the org's audit logs (`org_audit_logs`).

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, MAX_LIMIT};
use axum::Json;
use castellan_api_types::{format_time, parse_time, AuditLogEntry, ListResponse};
use castellan_core::{ObjectRef, ObjectType, Permission, UserId};
use castellan_store::audit::AuditRecord;
use castellan_store::AuditFilter;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(chain))
}

/// A record on the wire.
pub fn to_wire(r: &AuditRecord) -> AuditLogEntry {
    let json = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str(s).ok());
    AuditLogEntry {
        id: r.id,
        seq: r.seq,
        revision: r.revision,
        created: format_time(r.record.created),
        org_id: r.record.org_id.0,
        actor_id: r.record.actor_id.map(|u| u.0),
        impersonator_id: r.record.impersonator_id.map(|u| u.0),
        event_type: r.record.event_type.clone(),
        resource_type: r.record.resource_type.clone(),
        resource_id: r.record.resource_id,
        resource_name: r.record.resource_name.clone(),
        before: json(&r.record.before),
        after: json(&r.record.after),
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
    }
}

/// A sequence-number parameter; sequence numbers are stored as signed 64-bit values.
fn seq_param(q: &Params, name: &str) -> ApiResult<Option<u64>> {
    match q.parsed::<u64>(name, "a whole number")? {
        Some(n) if n > i64::MAX as u64 => Err(ApiError::invalid_parameter(format!("`{name}` is out of range: `{n}`"))),
        other => Ok(other),
    }
}

fn time_param(q: &Params, name: &str) -> ApiResult<Option<i64>> {
    match q.str(name) {
        None => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_parameter(format!("`{name}` must be an RFC 3339 time, got `{s}`"))),
    }
}

/// The org's audit records, newest first. Filters: `since`/`until` (RFC 3339),
/// `actor_id`, `event_type` (exact, or a prefix ending in `.` such as `acl.`),
/// `resource_type`, `resource_id`. Page with `before_seq` = the last record's `seq`.
#[utoipa::path(get, path = "/v1/audit_log", tag = "AuditLog",
    params(("org_name" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query),
           ("actor_id" = Option<uuid::Uuid>, Query), ("event_type" = Option<String>, Query), ("resource_type" = Option<String>, Query),
           ("resource_id" = Option<uuid::Uuid>, Query), ("before_seq" = Option<u64>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = ListResponse<AuditLogEntry>)))]
pub async fn list(caller: Caller, q: Params) -> ApiResult<Json<ListResponse<AuditLogEntry>>> {
    let org = caller.org(q.str("org_name")).await?;
    let permit = caller.require(Permission::Read, ObjectRef::new(ObjectType::OrgAuditLogs, org.id.0)).await?;
    let filter = AuditFilter {
        org: org.id,
        since: time_param(&q, "since")?,
        until: time_param(&q, "until")?,
        actor: q.uuid("actor_id")?.map(UserId),
        event_type: q.str("event_type").map(str::to_owned),
        resource_type: q.str("resource_type").map(str::to_owned),
        resource_id: q.uuid("resource_id")?,
    };
    let before = seq_param(&q, "before_seq")?;
    let mut tx = caller.state().read(&permit).await?;
    let rows = tx.list_audit(&filter, before, q.limit()?).await?;
    Ok(Json(ListResponse { objects: rows.iter().map(to_wire).collect() }))
}

/// The chain head: the last record's position and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainHead {
    /// The last record's `seq`.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// A slice of the chain, oldest first, with the current head.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainPage {
    /// The org.
    pub org_id: uuid::Uuid,
    /// Records with `seq > after_seq`, ascending, with every stored field exactly as
    /// hashed (`before`/`after` are the JSON text that was hashed).
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<AuditRecord>,
    /// The head when this page was read.
    pub head: Option<ChainHead>,
}

/// The org's chain in order, for export and independent verification (`castellan
/// audit verify` recomputes every hash). Page with `after_seq`.
#[utoipa::path(get, path = "/v1/audit_log/chain", tag = "AuditLog",
    params(("org_name" = Option<String>, Query), ("after_seq" = Option<u64>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = ChainPage)))]
pub async fn chain(caller: Caller, q: Params) -> ApiResult<Json<ChainPage>> {
    let org = caller.org(q.str("org_name")).await?;
    let permit = caller.require(Permission::Read, ObjectRef::new(ObjectType::OrgAuditLogs, org.id.0)).await?;
    let after = seq_param(&q, "after_seq")?.unwrap_or(0);
    let limit = q.limit()?.clamp(1, MAX_LIMIT);
    let mut tx = caller.state().read(&permit).await?;
    let records = tx.audit_chain(org.id, after, limit).await?;
    let head = tx.audit_head(org.id).await?.map(|(seq, hash)| ChainHead { seq, hash });
    Ok(Json(ChainPage { org_id: org.id.0, records, head }))
}
