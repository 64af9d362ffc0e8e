//! The authenticated caller and every authorization decision made for it.

use super::{Actor, AppState, Permit, Target};
use crate::error::{ApiError, ApiResult};
use castellan_authz::Snapshot;
use castellan_core::{ObjectRef, ObjectType, OrgId, Permission};
use castellan_store::{KeyRecord, Micros, OrgRecord, SessionRecord, UserRecord};
use std::sync::Arc;

/// Header that selects the organization (as the `bt` CLI and the AI proxy send it).
pub const ORG_HEADER: &str = "x-bt-org-name";

/// How a request authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API key or service token (`Authorization: Bearer …`).
    Key(KeyRecord),
    /// A console session cookie.
    Session(SessionRecord),
}

/// An authenticated request's identity.
#[derive(Clone)]
pub struct Caller {
    pub(super) state: AppState,
    /// The user (or service account) whose permissions apply (the impersonated user
    /// when an owner impersonates).
    pub user: UserRecord,
    /// The credential used.
    pub credential: Credential,
    /// The live organizations the user belongs to.
    pub orgs: Vec<OrgId>,
    /// Who acts, for the audit log.
    pub actor: Actor,
    /// The client's address, if known.
    pub ip: Option<String>,
    pub(super) header_org: Option<String>,
    /// The one organization the credential may act in (an API key or service token
    /// is bound to the org it was made for); `None` for a console session.
    pub(super) bound_org: Option<OrgId>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").field("user", &self.user.id).field("actor", &self.actor).finish()
    }
}

/// The 404 for an object the caller cannot see.
fn not_found(obj: ObjectRef) -> ApiError {
    let kind = match obj.object_type {
        t if t.is_org_noun() => "organization",
        ObjectType::ProjectLog => "project",
        other => other.as_str(),
    };
    ApiError::not_found(kind, obj.object_id)
}

/// Whether `obj` lies outside the org a credential is bound to (objects of no org,
/// the system roles, lie in every org).
fn outside(snap: &Snapshot, bound: Option<OrgId>, obj: ObjectRef) -> bool {
    match bound {
        None => false,
        Some(b) => snap.org_of(obj).is_some_and(|o| o != b.0),
    }
}

/// The decision for `permission` on an existing object: allowed, 403 when the object
/// is readable, 404 otherwise (its existence is not leaked). An object outside the
/// credential's org is 404, whatever the engine says.
pub(super) fn decide(
    snap: &Snapshot,
    (user, bound): (uuid::Uuid, Option<OrgId>),
    permission: Permission,
    obj: ObjectRef,
    now: Micros,
) -> ApiResult<()> {
    if !snap.contains(obj) || outside(snap, bound, obj) {
        return Err(not_found(obj));
    }
    if snap.check(user, permission, obj, now) {
        return Ok(());
    }
    if permission != Permission::Read && snap.check(user, Permission::Read, obj, now) {
        return Err(ApiError::Forbidden(format!(
            "you may read {} `{}` but lack `{permission}` on it",
            obj.object_type, obj.object_id
        )));
    }
    Err(not_found(obj))
}

pub(super) fn decide_create(
    snap: &Snapshot,
    (user, bound): (uuid::Uuid, Option<OrgId>),
    child: ObjectType,
    parent: ObjectRef,
    now: Micros,
) -> ApiResult<()> {
    if !snap.contains(parent) || outside(snap, bound, parent) {
        return Err(not_found(parent));
    }
    if snap.can_create(user, child, parent, now) {
        return Ok(());
    }
    if snap.check(user, Permission::Read, parent, now) {
        return Err(ApiError::Forbidden(format!(
            "you may not create {} {child} in {} `{}`",
            article(child),
            parent.object_type,
            parent.object_id
        )));
    }
    Err(not_found(parent))
}

/// "a" or "an" before an object type's name.
fn article(t: ObjectType) -> &'static str {
    if t.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// True when `user` holds all eight permissions on the organization: an owner.
fn owns(snap: &Snapshot, user: uuid::Uuid, org: OrgId, now: Micros) -> bool {
    let obj = ObjectRef::new(ObjectType::Organization, org.0);
    Permission::ALL.iter().all(|p| snap.check(user, *p, obj, now))
}

/// Re-checks a permit against the newest snapshot (inside a write transaction).
pub(super) fn recheck(state: &AppState, permit: &Permit) -> ApiResult<()> {
    let Some(user) = permit.actor.user else { return Ok(()) };
    let snap = state.index().snapshot();
    let now = state.now();
    let who = (user.0, permit.bound_org);
    if let Some(batch) = &permit.batch {
        return super::batch::decide_all(&snap, who, batch, now).map_err(|(_, e)| e);
    }
    match (permit.target, permit.permission) {
        (Target::Object(obj), Some(p)) => decide(&snap, who, p, obj, now),
        (Target::Create { child, parent }, _) => decide_create(&snap, who, child, parent, now),
        _ => Ok(()),
    }
}

impl Caller {
    /// The state, for handlers that need the clock or config.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub(super) fn now(&self) -> Micros {
        self.state.now()
    }

    pub(super) fn permit(&self, permission: Option<Permission>, target: Target) -> Permit {
        Permit { actor: self.actor, permission, target, bound_org: self.bound_org, batch: None }
    }

    /// The org named by the `x-bt-org-name` header, if any.
    pub fn header_org(&self) -> Option<&str> {
        self.header_org.as_deref().filter(|s| !s.is_empty())
    }

    /// The org the credential is bound to, if any (API keys and service tokens).
    pub fn bound_org(&self) -> Option<OrgId> {
        self.bound_org
    }

    /// Whether the caller is a service account.
    pub fn is_service_account(&self) -> bool {
        self.user.kind == castellan_store::UserKind::ServiceAccount
    }

    /// Whether the caller may do `permission` on `obj` (no error, for filters).
    pub fn can(&self, permission: Permission, obj: ObjectRef) -> bool {
        let snap = self.state.index().snapshot();
        !outside(&snap, self.bound_org, obj) && snap.check(self.user.id.0, permission, obj, self.now())
    }

    /// Runs `decide` on the current snapshot; on a denial, if a newer revision is
    /// known to exist (PostgreSQL announced a commit this replica has not applied
    /// yet), catches the index up and decides again, so a grant or object another
    /// replica has just committed is honoured. On SQLite the index was brought to the
    /// newest revision when the request authenticated. A denial thus costs no query
    /// unless the database is ahead.
    pub(super) async fn decide_fresh(&self, decide: impl Fn(&Snapshot) -> ApiResult<()>) -> ApiResult<()> {
        match decide(&self.state.index().snapshot()) {
            Ok(()) => Ok(()),
            Err(first) => {
                let ahead = self.state.0.commits.as_ref().is_some_and(|c| {
                    c.announced.load(std::sync::atomic::Ordering::SeqCst) > self.state.index().revision()
                });
                if !ahead {
                    return Err(first);
                }
                let before = self.state.index().revision();
                let after = self.state.index().catch_up().await.map_err(|e| ApiError::Internal(e.to_string()))?;
                if after == before {
                    return Err(first);
                }
                decide(&self.state.index().snapshot())
            }
        }
    }

    /// A member knows its own organization exists: a refusal on the org or one of its
    /// nouns is a 403 for a member, whatever the engine says about reading it.
    pub(super) fn member_refusal(&self, obj: ObjectRef, e: ApiError, what: &str) -> ApiError {
        match e {
            ApiError::NotFound(_) if obj.object_type.is_org_noun() && self.member_of(OrgId(obj.object_id)) => {
                ApiError::Forbidden(format!("you may not {what} in this organization"))
            }
            other => other,
        }
    }

    /// Authorizes `permission` on an existing object.
    pub async fn require(&self, permission: Permission, obj: ObjectRef) -> ApiResult<Permit> {
        let (who, now) = ((self.user.id.0, self.bound_org), self.now());
        self.decide_fresh(|s| decide(s, who, permission, obj, now))
            .await
            .map_err(|e| self.member_refusal(obj, e, &format!("`{permission}` the {}", obj.object_type)))?;
        Ok(self.permit(Some(permission), Target::Object(obj)))
    }

    /// Authorizes creating an object of type `child` under `parent`.
    pub async fn require_create(&self, child: ObjectType, parent: ObjectRef) -> ApiResult<Permit> {
        let (who, now) = ((self.user.id.0, self.bound_org), self.now());
        self.decide_fresh(|s| decide_create(s, who, child, parent, now))
            .await
            .map_err(|e| self.member_refusal(parent, e, &format!("create {} {child}", article(child))))?;
        Ok(self.permit(Some(Permission::Create), Target::Create { child, parent }))
    }

    /// Whether the caller is an owner (all eight permissions) of `org`.
    pub fn is_owner(&self, org: OrgId) -> bool {
        self.member_of(org) && owns(&self.state.index().snapshot(), self.user.id.0, org, self.now())
    }

    /// Whether the caller belongs to `org`.
    pub fn member_of(&self, org: OrgId) -> bool {
        self.orgs.contains(&org)
    }

    /// Authorizes acting on a key: one's own key in an org one still belongs to (not
    /// for service accounts: their tokens are their owners' to manage), or any key of
    /// an org one owns.
    pub fn key_permit(&self, key: &KeyRecord) -> ApiResult<Permit> {
        let own =
            key.user_id == self.user.id && !self.is_service_account() && key.org_id.is_none_or(|o| self.member_of(o));
        let owner = key.org_id.is_some_and(|o| self.member_of(o) && self.is_owner(o));
        if own || owner {
            Ok(self.permit(None, Target::Key { key: key.id, org: key.org_id }))
        } else {
            Err(ApiError::not_found("key", key.id))
        }
    }

    /// Authorizes minting a credential in `org`: any person who is a member may mint
    /// a key for themselves; nobody mints one while impersonating; a service account
    /// only authenticates with the tokens its org's owners manage, so it mints none
    /// unless it is an owner itself.
    pub fn new_key_permit(&self, org: OrgId) -> ApiResult<Permit> {
        if !self.member_of(org) {
            return Err(ApiError::not_found("organization", org));
        }
        if self.actor.impersonator.is_some() {
            return Err(ApiError::Forbidden("credentials cannot be minted while impersonating another user".into()));
        }
        if self.is_service_account() && !self.is_owner(org) {
            return Err(ApiError::Forbidden(
                "a service account cannot mint credentials; its organization's owners manage its service tokens".into(),
            ));
        }
        Ok(self.permit(None, Target::NewKey(org)))
    }

    /// Authorizes creating an organization: any person signed in as themselves may
    /// (they become its first owner); service accounts and impersonators may not.
    pub fn require_new_org(&self) -> ApiResult<Permit> {
        if self.is_service_account() || self.actor.impersonator.is_some() {
            return Err(ApiError::Forbidden(
                "organizations are created by people signed in as themselves, not by service accounts or impersonators"
                    .into(),
            ));
        }
        Ok(self.permit(None, Target::NewOrg))
    }

    /// The organization the request is about: `explicit` (an `org_name` parameter or
    /// body field), else the `x-bt-org-name` header, else the caller's only org.
    pub async fn org(&self, explicit: Option<&str>) -> ApiResult<OrgRecord> {
        let name = explicit.filter(|s| !s.is_empty()).or(self.header_org.as_deref().filter(|s| !s.is_empty()));
        let mut tx = self.state.0.store.read().await?;
        match name {
            Some(name) => {
                let org = tx.find_org_by_name(name).await?;
                match org {
                    Some(o) if self.member_of(o.id) => Ok(o),
                    _ => Err(ApiError::NotFound(format!("organization `{name}` not found"))),
                }
            }
            None => match self.orgs.as_slice() {
                [only] => tx.get_org(*only).await?.ok_or_else(|| ApiError::not_found("organization", only)),
                [] => Err(ApiError::bad_request("your credential does not belong to any organization")),
                many => Err(ApiError::bad_request(format!(
                    "your credential belongs to {} organizations; choose one with `org_name` or the `{ORG_HEADER}` header",
                    many.len()
                ))),
            },
        }
    }

    /// An organization by id, if the caller belongs to it.
    pub async fn org_by_id(&self, id: OrgId) -> ApiResult<OrgRecord> {
        if !self.member_of(id) {
            return Err(ApiError::not_found("organization", id));
        }
        let mut tx = self.state.0.store.read().await?;
        tx.get_org(id).await?.ok_or_else(|| ApiError::not_found("organization", id))
    }

    /// The scope of a list: one org when `org_name` (or the header) names one the
    /// caller belongs to, else every org the caller belongs to.
    pub async fn list_scope(&self, org_name: Option<&str>) -> ApiResult<ListScope> {
        let named = org_name.filter(|s| !s.is_empty()).or(self.header_org.as_deref().filter(|s| !s.is_empty()));
        let orgs = match named {
            Some(_) => vec![self.org(named).await?.id],
            None => self.orgs.clone(),
        };
        // Memberships are applied a moment before the snapshot that carries them is
        // published; if one names an org the snapshot lacks yet, catch up first.
        let snap = self.state.index().snapshot();
        if orgs.iter().any(|o| !snap.contains(ObjectRef::new(ObjectType::Organization, o.0))) {
            self.state.index().catch_up().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        Ok(ListScope {
            user: self.user.id.0,
            orgs,
            bound_org: self.bound_org,
            snapshot: self.state.index().snapshot(),
            now: self.now(),
        })
    }
}

/// The orgs a list may draw from and the snapshot its rows are filtered with.
pub struct ListScope {
    user: uuid::Uuid,
    orgs: Vec<OrgId>,
    bound_org: Option<OrgId>,
    snapshot: Arc<Snapshot>,
    now: Micros,
}

impl ListScope {
    /// The orgs in scope.
    pub fn orgs(&self) -> &[OrgId] {
        &self.orgs
    }

    /// Whether a row is visible: the caller holds `permission` on `obj`.
    pub fn visible(&self, permission: Permission, obj: ObjectRef) -> bool {
        !outside(&self.snapshot, self.bound_org, obj) && self.snapshot.check(self.user, permission, obj, self.now)
    }

    /// Whether the caller owns `org` (an org in scope).
    pub fn owns(&self, org: OrgId) -> bool {
        self.orgs.contains(&org) && owns(&self.snapshot, self.user, org, self.now)
    }

    /// The orgs in scope where the caller holds `permission` on `(object_type, org)`.
    pub fn orgs_where(&self, permission: Permission, object_type: ObjectType) -> Vec<OrgId> {
        self.orgs.iter().copied().filter(|o| self.visible(permission, ObjectRef::new(object_type, o.0))).collect()
    }
}
