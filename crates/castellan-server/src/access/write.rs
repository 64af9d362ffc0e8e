//! A write transaction: the change, its audit records and its change-feed entry
//! commit together or not at all.

use super::{Actor, AppState};
use crate::change::Change;
use crate::error::{ApiError, ApiResult};
use castellan_authz::AuthzError;
use castellan_core::OrgId;
use castellan_store::audit::{canonical_json, NewAuditRecord};
use castellan_store::{Micros, Revision, Tx};
use serde::Serialize;
use uuid::Uuid;

/// An open write transaction.
pub struct Write {
    state: AppState,
    tx: Box<dyn Tx>,
    actor: Actor,
    now: Micros,
    changes: Vec<Change>,
}

/// One audited event.
pub struct AuditEvent<'a, B: Serialize, A: Serialize> {
    /// Whose chain it joins.
    pub org: OrgId,
    /// `<resource>.<action>`.
    pub event_type: &'a str,
    /// `project`, `api_key`, …
    pub resource_type: &'a str,
    /// The object's id.
    pub resource_id: Option<Uuid>,
    /// The object's name.
    pub resource_name: Option<&'a str>,
    /// State before (None for creations).
    pub before: Option<&'a B>,
    /// State after (None for deletions).
    pub after: Option<&'a A>,
}

impl Write {
    pub(super) fn new(state: AppState, tx: Box<dyn Tx>, actor: Actor) -> Write {
        let now = state.now();
        Write { state, tx, actor, now, changes: Vec::new() }
    }

    /// The transaction.
    pub fn tx(&mut self) -> &mut dyn Tx {
        &mut *self.tx
    }

    /// The time of this write.
    pub fn now(&self) -> Micros {
        self.now
    }

    /// Who acts.
    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// Records authorization changes to publish with this transaction.
    pub fn change(&mut self, c: Change) {
        self.changes.push(c);
    }

    /// The changes recorded so far.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Appends an audit record (in this transaction).
    pub async fn audit<B: Serialize, A: Serialize>(&mut self, e: AuditEvent<'_, B, A>) -> ApiResult<()> {
        let rec = NewAuditRecord {
            org_id: e.org,
            created: self.now,
            actor_id: self.actor.user,
            impersonator_id: self.actor.impersonator,
            event_type: e.event_type.to_owned(),
            resource_type: e.resource_type.to_owned(),
            resource_id: e.resource_id,
            resource_name: e.resource_name.map(str::to_owned),
            before: e.before.map(canonical_json),
            after: e.after.map(canonical_json),
            details: None,
        };
        self.tx.append_audit(rec).await?;
        Ok(())
    }

    /// Validates the recorded changes against the index (cycles, dangling
    /// references), commits, and brings this replica's index up to the new revision
    /// before returning it, so the caller's next request sees its own write.
    pub async fn commit(mut self) -> ApiResult<Revision> {
        if !self.changes.is_empty() {
            let muts: Vec<_> = self.changes.iter().map(Change::to_mutation).collect();
            if let Err(e) = self.state.index().snapshot().apply(&muts) {
                return Err(model_error(e));
            }
        }
        let payload = serde_json::to_value(&self.changes).map_err(|e| ApiError::Internal(e.to_string()))?;
        let rev = self.tx.record_change(self.now, &payload).await?;
        self.tx.commit().await?;
        if let Err(e) = self.state.index().catch_up().await {
            // The write is committed; the follower will retry. Report the revision.
            tracing::error!(error = %e, "could not apply a committed change to the index");
        }
        Ok(rev)
    }
}

/// A change the model refuses, as a 400.
pub fn model_error(e: AuthzError) -> ApiError {
    let code = match e {
        AuthzError::GroupCycle { .. } | AuthzError::RoleCycle { .. } => "cycle",
        _ => "bad_request",
    };
    ApiError::BadRequest { code, message: e.to_string() }
}
