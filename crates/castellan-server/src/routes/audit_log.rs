//! `/v1/audit_log` (Castellan extension): the tamper-evident record of every change.
//! Reading it needs `read` on the org's audit logs (`org_audit_logs`).

use super::OrgName;
use crate::access::Caller;
use crate::error::ApiResult;
use crate::extract::{empty_as_none, Limit, Query, MAX_LIMIT};
use axum::Json;
use castellan_api_types::{format_time, parse_time, AuditLogEntry, ListResponse};
use castellan_core::{ObjectRef, ObjectType, Permission, UserId};
use castellan_store::audit::AuditRecord;
use castellan_store::AuditFilter;
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

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
        details: json(&r.record.details),
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
    }
}

/// A sequence-number parameter (given with no value, it is absent); sequence
/// numbers are stored as signed 64-bit values.
fn seq<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match empty_as_none::<_, u64>(d)? {
        Some(n) if n > i64::MAX as u64 => Err(D::Error::custom(format_args!("is out of range: `{n}`"))),
        other => Ok(other),
    }
}

/// An RFC 3339 time parameter, as microseconds (given with no value, it is absent).
fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match empty_as_none::<_, String>(d)? {
        None => Ok(None),
        Some(s) => parse_time(&s)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format_args!("must be an RFC 3339 time, got `{s}`"))),
    }
}

/// The audit log's filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only records written at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "time")]
    #[param(value_type = Option<String>)]
    since: Option<i64>,
    /// Only records written at or before this time (RFC 3339).
    #[serde(default, deserialize_with = "time")]
    #[param(value_type = Option<String>)]
    until: Option<i64>,
    /// Only the changes made by this user.
    actor_id: Option<Uuid>,
    /// Only events of this type (`acl.created`), or of a family with a prefix ending
    /// in `.` (`acl.`).
    #[serde(default, deserialize_with = "empty_as_none")]
    event_type: Option<String>,
    /// Only changes to resources of this type (`acl`, `project`, …).
    #[serde(default, deserialize_with = "empty_as_none")]
    resource_type: Option<String>,
    /// Only changes to this resource.
    resource_id: Option<Uuid>,
    /// Only records before this one: the `seq` of the last record of the previous page.
    #[serde(default, deserialize_with = "seq")]
    before_seq: Option<u64>,
    /// Only records after this one: the `seq` of the first record of the page after
    /// this one in the newest-first order. The records just after it are answered
    /// (still newest first), so a page can be walked back.
    #[serde(default, deserialize_with = "seq")]
    after_seq: Option<u64>,
    /// The most records to return, at most 1000 (the default).
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit,
}

/// The org's audit records, newest first. Filters: `since`/`until` (RFC 3339),
/// `actor_id`, `event_type` (exact, or a prefix ending in `.` such as `acl.`),
/// `resource_type`, `resource_id`. Page with `before_seq` = the last record's `seq`
/// (older records), or back with `after_seq` = the first record's `seq` (newer ones).
#[utoipa::path(get, path = "/v1/audit_log", tag = "AuditLog", params(OrgName, AuditQuery),
    responses((status = 200, body = ListResponse<AuditLogEntry>)))]
pub async fn list(
    caller: Caller,
    Query(org): Query<OrgName>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<ListResponse<AuditLogEntry>>> {
    let org = caller.org(org.get()).await?;
    let permit = caller.require(Permission::Read, ObjectRef::new(ObjectType::OrgAuditLogs, org.id.0)).await?;
    let filter = AuditFilter {
        org: org.id,
        since: q.since,
        until: q.until,
        actor: q.actor_id.map(UserId),
        event_type: q.event_type,
        resource_type: q.resource_type,
        resource_id: q.resource_id,
        after_seq: q.after_seq,
    };
    let mut tx = caller.state().read(&permit).await?;
    let rows = tx.list_audit(&filter, q.before_seq, q.limit.get()).await?;
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
#[utoipa::path(get, path = "/v1/audit_log/chain", tag = "AuditLog", params(OrgName, ChainQuery),
    responses((status = 200, body = ChainPage)))]
pub async fn chain(
    caller: Caller,
    Query(org): Query<OrgName>,
    Query(q): Query<ChainQuery>,
) -> ApiResult<Json<ChainPage>> {
    let org = caller.org(org.get()).await?;
    let permit = caller.require(Permission::Read, ObjectRef::new(ObjectType::OrgAuditLogs, org.id.0)).await?;
    let after = q.after_seq.unwrap_or(0);
    let limit = q.limit.get().clamp(1, MAX_LIMIT);
    let mut tx = caller.state().read(&permit).await?;
    let records = tx.audit_chain(org.id, after, limit).await?;
    let head = tx.audit_head(org.id).await?.map(|(seq, hash)| ChainHead { seq, hash });
    Ok(Json(ChainPage { org_id: org.id.0, records, head }))
}

/// Where a slice of the chain starts and how long it is.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChainQuery {
    /// Only records after this one: the `seq` of the last record read (default: from
    /// the start).
    #[serde(default, deserialize_with = "seq")]
    after_seq: Option<u64>,
    /// The most records to return, at most 1000 (the default); 0 reads as 1.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit,
}
