//! A write transaction: the change, its audit records and its change-feed entry
//! commit together or not at all.

use super::{Actor, AppState};
use crate::change::Change;
use crate::error::{ApiError, ApiResult};
use castellan_authz::AuthzError;
use castellan_core::{GroupId, OrgId, UserId};
use castellan_store::audit::{canonical_json, NewAuditRecord};
use castellan_store::{KeyRecord, MemberRecord, Micros, Revision, Tx};
use serde::Serialize;
use uuid::Uuid;

/// An open write transaction.
pub struct Write {
    state: AppState,
    pub(super) tx: Box<dyn Tx>,
    actor: Actor,
    pub(super) now: Micros,
    pub(super) changes: Vec<Change>,
    guarded: Vec<OrgId>,
    /// Resources changed whose audit record is still to be written.
    owed: Vec<(&'static str, Uuid)>,
    /// Who acts when it is not a user (a SCIM token): the details of every record.
    audit_details: Option<serde_json::Value>,
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
        Write { state, tx, actor, now, changes: Vec::new(), guarded: Vec::new(), owed: Vec::new(), audit_details: None }
    }

    /// The transaction, for reads: every change goes through an operation of
    /// `Write` (see `ops`), which keeps the change feed and the audit log with it.
    pub fn tx(&mut self) -> &mut dyn Tx {
        &mut *self.tx
    }

    /// Notes that `resource_type` `id` changed and its audit record is still to be
    /// written (by [`Write::audit`], before commit).
    pub(super) fn owe_audit(&mut self, resource_type: &'static str, id: Uuid) {
        if !self.owed.contains(&(resource_type, id)) {
            self.owed.push((resource_type, id));
        }
    }

    /// The time of this write.
    pub fn now(&self) -> Micros {
        self.now
    }

    /// Who acts.
    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// Sets who acts, for a write authorized by a single-use secret whose owner is
    /// only known once it has been looked up (accepting an invitation).
    pub(crate) fn act_as(&mut self, user: castellan_core::UserId) {
        self.actor = Actor { user: Some(user), impersonator: None };
    }

    /// Records `details` (who acts, when it is not a user: a SCIM token) in every
    /// audit record this write makes.
    pub(crate) fn audit_details(&mut self, details: serde_json::Value) {
        self.audit_details = Some(details);
    }

    /// Suspends (`suspended`) or restores `user`'s membership of `org`: the change
    /// every replica applies to its credentials, a `member.suspended` or
    /// `member.restored` record, and (for a suspension) a lockout guard. The SCIM
    /// record that stores the state is the caller's to write first.
    pub async fn set_suspended<A: Serialize>(
        &mut self,
        org: OrgId,
        user: UserId,
        suspended: bool,
        name: Option<&str>,
        wire: &A,
    ) -> ApiResult<()> {
        let event_type = if suspended {
            self.changes.push(Change::SuspendMember { org: org.0, user: user.0 });
            self.guard(org);
            "member.suspended"
        } else {
            self.changes.push(Change::ResumeMember { org: org.0, user: user.0 });
            "member.restored"
        };
        self.audit(AuditEvent::<(), A> {
            org,
            event_type,
            resource_type: "user",
            resource_id: Some(user.0),
            resource_name: name,
            before: None,
            after: Some(wire),
        })
        .await
    }

    /// Asks commit to refuse the write if it would lock `org` out: leave it without a
    /// member, without a user in its Owners group, or without any owner (a member
    /// holding all eight permissions on it).
    pub fn guard(&mut self, org: OrgId) {
        if !self.guarded.contains(&org) {
            self.guarded.push(org);
        }
    }

    /// Makes `user` a member of `org`: the row, the change every replica applies to
    /// its memberships, and the `member.added` audit record (with `wire`, the user as
    /// the answer shows it), together. `false` (and nothing written) if already one.
    pub async fn add_member<A: Serialize>(
        &mut self,
        org: OrgId,
        user: UserId,
        name: Option<&str>,
        wire: &A,
    ) -> ApiResult<bool> {
        let now = self.now;
        if !self.tx.add_member(&MemberRecord { org_id: org, user_id: user, created: now }).await? {
            return Ok(false);
        }
        self.changes.push(Change::AddMember { org: org.0, user: user.0 });
        self.audit(AuditEvent::<(), A> {
            org,
            event_type: "member.added",
            resource_type: "user",
            resource_id: Some(user.0),
            resource_name: name,
            before: None,
            after: Some(wire),
        })
        .await?;
        Ok(true)
    }

    /// Ends `user`'s membership of `org` (the row, the change, `member.removed`) and
    /// guards the org against lockout. Group memberships, grants and keys are the
    /// caller's to drop first.
    pub async fn remove_member<B: Serialize>(
        &mut self,
        org: OrgId,
        user: UserId,
        name: Option<&str>,
        wire: &B,
    ) -> ApiResult<()> {
        self.tx.remove_member(org, user).await?;
        self.changes.push(Change::RemoveMember { org: org.0, user: user.0 });
        // Their SCIM attributes (and suspension) end with the membership.
        let member_ref = castellan_core::ObjectRef::new(castellan_core::ObjectType::OrgMember, org.0);
        let scim = self.tx.find_admin(castellan_store::AdminKind::ScimUser, member_ref, &user.0.to_string()).await?;
        if let Some(a) = scim {
            let before = a.data.clone();
            self.delete_admin(&a, &before).await?;
        }
        self.guard(org);
        self.audit(AuditEvent::<B, ()> {
            org,
            event_type: "member.removed",
            resource_type: "user",
            resource_id: Some(user.0),
            resource_name: name,
            before: Some(wire),
            after: None,
        })
        .await
    }

    /// Revokes a key or token: deletes it, tells every replica's credential cache,
    /// and audits `<kind>.deleted` with `before` (the key as the answer shows it).
    pub async fn revoke_key<B: Serialize>(&mut self, key: &KeyRecord, before: &B) -> ApiResult<()> {
        let now = self.now;
        self.tx.delete_key(key.id, now).await?;
        self.revoked(key, before).await
    }

    /// Revokes every key and token `user` holds in `org` (a member leaving).
    pub async fn revoke_keys_of(&mut self, org: OrgId, user: UserId) -> ApiResult<()> {
        let now = self.now;
        for k in self.tx.delete_keys_of(org, user, now).await? {
            self.revoked(&k, &k).await?;
        }
        Ok(())
    }

    /// The change and the audit record of a deleted key.
    async fn revoked<B: Serialize>(&mut self, key: &KeyRecord, before: &B) -> ApiResult<()> {
        self.changes.push(Change::RevokeKey { key: key.id.0 });
        let Some(org) = key.org_id else { return Ok(()) };
        let event_type = format!("{}.deleted", key.kind.as_str());
        self.audit(AuditEvent::<B, ()> {
            org,
            event_type: &event_type,
            resource_type: key.kind.as_str(),
            resource_id: Some(key.id.0),
            resource_name: Some(&key.name),
            before: Some(before),
            after: None,
        })
        .await
    }

    /// Puts `user` in `group` (the row and the change); `false` if already there.
    pub async fn add_group_user(&mut self, group: GroupId, user: UserId) -> ApiResult<bool> {
        let added = self.tx.add_group_user(group, user).await?;
        if added {
            self.changes.push(Change::AddGroupUser { group: group.0, user: user.0 });
        }
        Ok(added)
    }

    /// Takes `user` out of `group` (the row and the change) and guards the group's
    /// org against lockout; `false` if it was not there.
    pub async fn remove_group_user(&mut self, org: OrgId, group: GroupId, user: UserId) -> ApiResult<bool> {
        let removed = self.tx.remove_group_user(group, user).await?;
        if removed {
            self.changes.push(Change::RemoveGroupUser { group: group.0, user: user.0 });
            self.guard(org);
        }
        Ok(removed)
    }

    /// Makes `member` a member group of `group`; `false` if it already was.
    pub async fn add_group_group(&mut self, group: GroupId, member: GroupId) -> ApiResult<bool> {
        let added = self.tx.add_group_group(group, member).await?;
        if added {
            self.changes.push(Change::AddGroupGroup { group: group.0, member_group: member.0 });
        }
        Ok(added)
    }

    /// Takes the member group `member` out of `group` and guards the org against
    /// lockout; `false` if it was not there.
    pub async fn remove_group_group(&mut self, org: OrgId, group: GroupId, member: GroupId) -> ApiResult<bool> {
        let removed = self.tx.remove_group_group(group, member).await?;
        if removed {
            self.changes.push(Change::RemoveGroupGroup { group: group.0, member_group: member.0 });
            self.guard(org);
        }
        Ok(removed)
    }

    /// Appends an audit record (in this transaction), paying what a change of that
    /// resource owed.
    pub async fn audit<B: Serialize, A: Serialize>(&mut self, e: AuditEvent<'_, B, A>) -> ApiResult<()> {
        if let Some(id) = e.resource_id {
            self.owed.retain(|(t, i)| !(*t == e.resource_type && *i == id));
        }
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
            details: self.audit_details.as_ref().map(canonical_json),
        };
        self.tx.append_audit(rec).await?;
        Ok(())
    }

    /// Validates the recorded changes against the index (cycles, dangling
    /// references), commits, and brings this replica's index up to the new revision
    /// before returning it, so the caller's next request sees its own write.
    pub async fn commit(mut self) -> ApiResult<Revision> {
        self.validate().await?;
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

impl Write {
    /// Everything commit checks before it writes: no change left unaudited, the
    /// model accepts the changes, no guarded org locked out.
    async fn validate(&mut self) -> ApiResult<()> {
        if let Some((t, id)) = self.owed.first() {
            return Err(ApiError::Internal(format!("a write changed {t} {id} without auditing it")));
        }
        if !self.changes.is_empty() || !self.guarded.is_empty() {
            let muts: Vec<_> = self.changes.iter().filter_map(Change::to_mutation).collect();
            let trial = self.state.index().snapshot().apply(&muts).map_err(model_error)?;
            for org in std::mem::take(&mut self.guarded) {
                self.check_lockout(&trial, org).await?;
            }
        }
        Ok(())
    }

    /// Checks the write as [`Write::commit`] would, then rolls it back: a dry run
    /// (a configuration plan) learns whether it would commit, and nothing changes.
    pub async fn check_and_discard(mut self) -> ApiResult<()> {
        self.validate().await
    }

    async fn check_lockout(&mut self, after: &castellan_authz::Snapshot, org: OrgId) -> ApiResult<()> {
        let lockout = |m: &str| ApiError::BadRequest { code: crate::error::ErrorCode::Lockout, message: m.to_owned() };
        // A suspended member counts for nothing: they cannot act.
        let suspended = super::index::suspensions(&mut *self.tx, &[org]).await?;
        let mut members = self.tx.list_members(org).await?;
        let all_suspended = !members.is_empty() && members.iter().all(|m| suspended.contains(&(org.0, m.user_id.0)));
        members.retain(|m| !suspended.contains(&(org.0, m.user_id.0)));
        if all_suspended {
            return Err(lockout("this would leave the organization without an active owner"));
        }
        if members.is_empty() {
            return Err(lockout("an organization must keep at least one member"));
        }
        let owners = self.tx.find_group_by_name(org, castellan_authz::seed::BUILTIN_GROUP_NAMES[0]).await?;
        if let Some(g) = owners {
            if after.users_in_group(g.id.0).is_empty() {
                return Err(lockout("the Owners group cannot be left empty"));
            }
        }
        let org_ref = castellan_core::ObjectRef::new(castellan_core::ObjectType::Organization, org.0);
        let now = self.now;
        let has_owner = members
            .iter()
            .any(|m| castellan_core::Permission::ALL.iter().all(|p| after.check(m.user_id.0, *p, org_ref, now)));
        if !has_owner {
            return Err(lockout("this would leave the organization without an owner"));
        }
        Ok(())
    }
}

/// A change the model refuses, as a 400.
pub fn model_error(e: AuthzError) -> ApiError {
    let code = match e {
        AuthzError::GroupCycle { .. } | AuthzError::RoleCycle { .. } => crate::error::ErrorCode::Cycle,
        _ => crate::error::ErrorCode::BadRequest,
    };
    ApiError::BadRequest { code, message: e.to_string() }
}
