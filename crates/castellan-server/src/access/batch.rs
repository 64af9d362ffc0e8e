//! Authorizing a batch of changes to one organization (configuration apply): every
//! change needs what its own endpoint would need, and all of it is decided on one
//! snapshot, to which only the objects the batch makes are added. Those carry no
//! grant of their own, so what anyone may do on one is exactly what its parent's
//! chain already gives: a batch can never authorize itself with a grant, a
//! membership or a role it is about to write.

use super::caller::{decide, decide_create};
use super::{Caller, Permit, Target};
use crate::error::{ApiError, ApiResult};
use castellan_authz::{Mutation, NearMissReason, Snapshot};
use castellan_core::{ObjectRef, ObjectType, OrgId, Permission};
use castellan_store::Micros;
use std::sync::Arc;
use uuid::Uuid;

/// What one change of a batch needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `permission` on an object (one that exists, or one the batch makes).
    On(Permission, ObjectRef),
    /// Creating an object of a type under a parent.
    Create(ObjectType, ObjectRef),
    /// Holding a permission on an object itself, unrestricted or restricted to the
    /// type (strict delegation: a grantor only grants what it holds).
    Hold(Permission, Option<ObjectType>, ObjectRef),
}

/// An object a batch makes, so that later needs may name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// A project of the org.
    Project(Uuid),
    /// A permission group of the org.
    Group(Uuid),
    /// A role of the org.
    Role(Uuid),
    /// A project group of the org.
    ProjectGroup(Uuid),
    /// An AI secret of the org (an object under its `org_ai_secret`).
    AiSecret(Uuid),
}

/// Everything a batch needs, in the order of its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The organization it changes.
    pub org: OrgId,
    /// The objects it makes.
    pub made: Vec<Made>,
    /// What each change needs (a change may need several).
    pub needs: Vec<Need>,
}

impl Made {
    fn mutation(self, org: Uuid) -> Mutation {
        match self {
            Made::Project(id) => Mutation::AddObject {
                object: ObjectRef::new(ObjectType::Project, id),
                parent: ObjectRef::new(ObjectType::Organization, org),
            },
            Made::Group(group) => Mutation::AddGroup { group, org },
            Made::Role(role) => Mutation::AddRole { role, org: Some(org) },
            Made::ProjectGroup(group) => Mutation::AddProjectGroup { group, org },
            Made::AiSecret(id) => Mutation::AddObject {
                object: ObjectRef::new(ObjectType::AiSecret, id),
                parent: ObjectRef::new(ObjectType::OrgAiSecret, org),
            },
        }
    }
}

/// Whether `user` holds `permission` on `obj` itself: through a grant without a
/// restriction, or, for `restrict` = T, through one restricted to T (or one that
/// would apply to objects of type T there). Strict delegation asks this of a grantor.
pub fn holds(
    snap: &Snapshot,
    user: Uuid,
    permission: Permission,
    restrict: Option<ObjectType>,
    obj: ObjectRef,
    now: Micros,
) -> bool {
    let d = snap.explain(user, permission, obj, now);
    let unrestricted = d.grants.iter().any(|g| g.restrict_object_type.is_none());
    let covers_type = restrict.is_some_and(|r| {
        d.grants.iter().any(|g| g.restrict_object_type == Some(r))
            || d.near_misses.iter().any(|m| m.reason == NearMissReason::RestrictedTo(r))
    });
    unrestricted || covers_type
}

/// The refusal of a grant under strict delegation.
pub fn delegation_refused(p: Permission, restrict: Option<ObjectType>, obj: ObjectRef) -> ApiError {
    ApiError::Forbidden(format!(
        "strict delegation is on: you cannot grant `{p}`{} on {} `{}` because you do not hold it there",
        restrict.map(|r| format!(" (restricted to {r})")).unwrap_or_default(),
        obj.object_type,
        obj.object_id
    ))
}

/// Decides every need of `batch` on `snap` plus what the batch makes: the first
/// refused need's index and answer.
pub(super) fn decide_all(
    snap: &Snapshot,
    who: (Uuid, Option<OrgId>),
    batch: &Batch,
    now: Micros,
) -> Result<(), (usize, ApiError)> {
    let trial = trial(snap, batch).map_err(|e| (0, e))?;
    for (i, need) in batch.needs.iter().enumerate() {
        decide_one(&trial, who, *need, now).map_err(|e| (i, e))?;
    }
    Ok(())
}

fn trial(snap: &Snapshot, batch: &Batch) -> ApiResult<Snapshot> {
    let muts: Vec<Mutation> = batch.made.iter().map(|m| m.mutation(batch.org.0)).collect();
    snap.apply(&muts).map_err(|e| ApiError::Internal(format!("a batch's new objects do not fit the model: {e}")))
}

fn decide_one(snap: &Snapshot, who: (Uuid, Option<OrgId>), need: Need, now: Micros) -> ApiResult<()> {
    match need {
        Need::On(p, obj) => decide(snap, who, p, obj, now),
        Need::Create(child, parent) => decide_create(snap, who, child, parent, now),
        Need::Hold(p, restrict, obj) => {
            if holds(snap, who.0, p, restrict, obj, now) {
                Ok(())
            } else {
                Err(delegation_refused(p, restrict, obj))
            }
        }
    }
}

fn object_of(need: Need) -> ObjectRef {
    match need {
        Need::On(_, obj) | Need::Hold(_, _, obj) => obj,
        Need::Create(_, parent) => parent,
    }
}

impl Caller {
    /// Decides every need of a batch (for a plan, which lists every refusal): the
    /// refused ones, by index, each with the answer its endpoint would give.
    pub fn batch_refusals(&self, batch: &Batch) -> Vec<(usize, ApiError)> {
        let snap = self.state.index().snapshot();
        let who = (self.user.id.0, self.bound_org);
        let now = self.now();
        let trial = match trial(&snap, batch) {
            Ok(t) => t,
            Err(e) => return vec![(0, e)],
        };
        let mut out = Vec::new();
        for (i, need) in batch.needs.iter().enumerate() {
            if let Err(e) = decide_one(&trial, who, *need, now) {
                out.push((i, self.member_refusal(object_of(*need), e, "make this change")));
            }
        }
        out
    }

    /// Authorizes a batch of changes to one organization: every need must pass. The
    /// permit opens the batch's write transaction, which decides every need again
    /// on the newest state. A refusal answers the first refused need's index and
    /// the answer its endpoint would give.
    pub async fn require_batch(&self, batch: Batch) -> Result<Permit, (usize, ApiError)> {
        let who = (self.user.id.0, self.bound_org);
        let now = self.now();
        let refused = std::sync::atomic::AtomicUsize::new(0);
        let decided = self
            .decide_fresh(|s| {
                decide_all(s, who, &batch, now).map_err(|(i, e)| {
                    refused.store(i, std::sync::atomic::Ordering::Relaxed);
                    e
                })
            })
            .await;
        if let Err(e) = decided {
            let i = refused.load(std::sync::atomic::Ordering::Relaxed);
            let obj = batch.needs.get(i).copied().map(object_of);
            let e = match obj {
                Some(obj) => self.member_refusal(obj, e, "make this change"),
                None => e,
            };
            return Err((i, e));
        }
        let org = batch.org;
        let mut permit = self.permit(None, Target::Batch(org));
        permit.batch = Some(Arc::new(batch));
        Ok(permit)
    }

    /// Authorizes reading an organization's whole administration state (export and
    /// plan): `read` and `read_acls` on the organization itself, granted without a
    /// restriction, which reach every object in it (owners hold them).
    pub async fn require_whole_org(&self, org: OrgId) -> ApiResult<Permit> {
        let org_ref = ObjectRef::new(ObjectType::Organization, org.0);
        let permit = self.require(Permission::Read, org_ref).await?;
        let snap = self.state.index().snapshot();
        for p in [Permission::Read, Permission::ReadAcls] {
            if !holds(&snap, self.user.id.0, p, None, org_ref, self.now()) {
                return Err(ApiError::Forbidden(format!(
                    "the configuration of an organization takes `read` and `read_acls` on the whole organization \
                     (granted on it without a restriction, as owners hold them); you lack `{p}`"
                )));
            }
        }
        Ok(permit)
    }
}
