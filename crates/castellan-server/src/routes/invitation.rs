//! Pending invitations of an organization (Castellan extension): list them and
//! revoke one. Both need `create` on (org_member O) — "Manage members" — as sending
//! them does.

use super::{OrgName, Written};
use crate::access::{AuditEvent, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use axum::Json;
use castellan_api_types::{format_time, Invitation, ListResponse};
use castellan_core::{ObjectRef, ObjectType, Permission};
use castellan_store::InvitationRecord;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(revoke))
}

fn wire(inv: &InvitationRecord) -> Invitation {
    Invitation {
        id: inv.id,
        email: inv.email.clone(),
        group_ids: inv.group_ids.iter().map(|g| g.0).collect(),
        created: Some(format_time(inv.created)),
        expires_at: Some(format_time(inv.expires_at)),
        token: None,
    }
}

/// Castellan extension: the organization's invitations not yet accepted or revoked,
/// oldest first (expired ones included, with their `expires_at`); never a token.
/// Needs `create` on the org's members ("Manage members").
#[utoipa::path(get, path = "/v1/organization/invitations", tag = "Organizations", params(OrgName),
    responses((status = 200, body = ListResponse<Invitation>)))]
pub async fn list(caller: Caller, Query(org): Query<OrgName>) -> ApiResult<Json<ListResponse<Invitation>>> {
    let org = caller.org(org.get()).await?;
    let permit = caller.require(Permission::Create, ObjectRef::new(ObjectType::OrgMember, org.id.0)).await?;
    let mut tx = caller.state().read(&permit).await?;
    let rows = tx.list_invitations(org.id).await?;
    Ok(Json(ListResponse { objects: rows.iter().map(wire).collect() }))
}

/// Castellan extension: revokes a pending invitation; its token stops working at
/// once. Needs `create` on the org's members ("Manage members").
#[utoipa::path(delete, path = "/v1/organization/invitations/{invitation_id}", tag = "Organizations",
    params(("invitation_id" = Uuid, Path), OrgName), responses((status = 200, body = Invitation)))]
pub async fn revoke(
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(org): Query<OrgName>,
) -> ApiResult<Written<Invitation>> {
    let org = caller.org(org.get()).await?;
    let permit = caller.require(Permission::Create, ObjectRef::new(ObjectType::OrgMember, org.id.0)).await?;
    let mut w = caller.state().write(&permit).await?;
    let not_found = || ApiError::not_found("invitation", id);
    let inv = w.tx().list_invitations(org.id).await?.into_iter().find(|i| i.id == id).ok_or_else(not_found)?;
    if !w.use_invitation(inv.id).await? {
        return Err(not_found());
    }
    let before = wire(&inv);
    w.audit(AuditEvent::<_, ()> {
        org: org.id,
        event_type: "invitation.revoked",
        resource_type: "invitation",
        resource_id: Some(inv.id),
        resource_name: Some(&inv.email),
        before: Some(&before),
        after: None,
    })
    .await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, before))
}
