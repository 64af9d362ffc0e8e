//! The handlers every administration object shares (AI secrets, project scores,
//! span iframes, views, agents, MCP servers, dataset snapshots, simulated users,
//! environments): a resource's module validates its body into a [`Draft`] or a
//! change and calls these, which authorize, read, write, seal and audit.
//!
//! Authorization: an object is decided on [`AdminRecord::guard`] (what it is set
//! on; an AI secret is an object of its own). Reading one takes `read` there;
//! creating one takes what [`Setting::CREATE`] says on what it is set on; changing
//! one takes `update` and deleting one [`Setting::DELETE`]. One the caller cannot
//! read answers 404 whether or not it exists.

use super::Written;
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Page;
use crate::secrets::{preview, Binding};
use castellan_core::{Name, ObjectRef, ObjectType, OrgId, Permission};
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// How a new object of a kind is authorized on what it is set on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Creation {
    /// `update` on it (a setting of the org, project or object).
    Update,
    /// `create` of an object of this type under it.
    Child(ObjectType),
}

/// One kind of administration object, as its routes serve it.
pub(crate) trait Setting {
    /// The stored kind.
    const KIND: AdminKind;
    /// What a new one needs on what it is set on.
    const CREATE: Creation = Creation::Update;
    /// What deleting one needs on [`AdminRecord::guard`].
    const DELETE: Permission = Permission::Update;
    /// Keys of `data` a replace keeps (who created it, its position, the preview of
    /// its sealed value).
    const KEPT: &'static [&'static str] = &["user_id", "position", "preview"];
    /// Whether every member of the org may read them (environments), besides those
    /// with `read` on what decides them.
    const MEMBERS_READ: bool = false;
    /// The body field that carries a sealed value, if the kind has one.
    const SECRET_FIELD: &'static str = "secret";
    /// The answer.
    type Wire: Serialize;
    /// The answer for a stored record.
    fn wire(a: &AdminRecord) -> Self::Wire;
    /// The record's shape in the audit log (the answer unless it shows something an
    /// audit-log reader may not see, like a secret's preview).
    fn audited(a: &AdminRecord) -> Self::Wire {
        Self::wire(a)
    }
}

/// A new or replacing object, validated.
pub(crate) struct Draft {
    /// What it is set on.
    pub scope: ObjectRef,
    /// Its name (unique per kind on what it is set on).
    pub name: String,
    /// Its kind-specific fields.
    pub data: Map<String, Value>,
    /// A secret value to seal, if any (`None` keeps a stored one on replace).
    pub secret: Option<String>,
}

/// A change to an existing object, validated.
#[derive(Default)]
pub(crate) struct Change {
    /// A new name.
    pub name: Option<String>,
    /// Fields to set (object-valued fields are deep-merged, as Braintrust's `PATCH`
    /// does).
    pub data: Map<String, Value>,
    /// Fields to replace whole.
    pub replace: Map<String, Value>,
    /// A new secret value.
    pub secret: Option<String>,
}

/// A text field of `data`.
pub(crate) fn text(a: &AdminRecord, key: &str) -> Option<String> {
    a.data.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A field of `data`, null when absent.
pub(crate) fn field(a: &AdminRecord, key: &str) -> Option<Value> {
    a.data.get(key).filter(|v| !v.is_null()).cloned()
}

/// A name, checked like every other name (not blank, not too long, no controls).
pub(crate) fn name(field: &'static str, value: &str) -> ApiResult<String> {
    Ok(Name::parse(field, value).map_err(super::invalid)?.into_inner())
}

/// Who created it, from `data`.
pub(crate) fn creator(a: &AdminRecord) -> Option<Uuid> {
    text(a, "user_id").and_then(|u| Uuid::parse_str(&u).ok())
}

/// Merges `patch` into `target`: objects key by key (recursively), anything else
/// replaced.
pub(crate) fn deep_merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => deep_merge(slot, v),
                    _ => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

/// The org that owns `scope` (the caller has been authorized on it).
fn org_of(caller: &Caller, scope: ObjectRef) -> ApiResult<OrgId> {
    caller
        .state()
        .index()
        .snapshot()
        .org_of(scope)
        .map(OrgId)
        .ok_or_else(|| ApiError::not_found(scope.object_type.as_str(), scope.object_id))
}

/// Seals `value` onto `a` (the row as it will be stored) and notes who changed it;
/// nothing changes when `a` already holds that value.
pub(crate) fn seal(caller: &Caller, a: &mut AdminRecord, value: &str, now: i64) -> ApiResult<()> {
    let sealer = caller.state().sealer()?;
    let binding = Binding::admin(a);
    if a.secret.as_ref().is_some_and(|s| sealer.open(binding, s).is_ok_and(|old| old == value)) {
        return Ok(());
    }
    a.secret = Some(sealer.seal(binding, value));
    a.secret_updated_at = Some(now);
    a.secret_updated_by = Some(caller.user.id);
    // Automations seal a webhook's signing secret and header values together: no
    // preview of that.
    if a.kind != AdminKind::ProjectAutomation {
        if let Some(m) = a.data.as_object_mut() {
            m.insert("preview".into(), json!(preview(value)));
        }
    }
    Ok(())
}

/// Seals the stored value of `before` again for `after` (renamed): the sealed value
/// is bound to the name. `field` is the body field that could carry a new value
/// instead (named in the refusal when the stored one does not open).
pub(crate) fn reseal(caller: &Caller, before: &AdminRecord, after: &mut AdminRecord, field: &str) -> ApiResult<()> {
    let Some(sealed) = &before.secret else { return Ok(()) };
    let sealer = caller.state().sealer()?;
    let old = Binding::admin(before);
    let value = sealer.open(old, sealed).map_err(|e| {
        ApiError::bad_request(format!(
            "the stored value cannot be opened to seal it under the new name ({e}); send `{field}` with the rename"
        ))
    })?;
    let new = Binding { name: &after.name, scope: after.scope, ..old };
    after.secret = Some(sealer.seal(new, &value));
    Ok(())
}

/// One page of the objects `filter` names (its `orgs` are filled in from the
/// caller's scope) that the caller can read and `keep` accepts.
pub(crate) async fn list<S: Setting>(
    caller: &Caller,
    page: &Page,
    org_name: Option<&str>,
    mut filter: AdminFilter,
    keep: impl Fn(&AdminRecord) -> bool,
) -> ApiResult<Vec<S::Wire>> {
    let scope = caller.list_scope(org_name).await?;
    filter.kind = S::KIND;
    filter.orgs = scope.orgs().to_vec();
    let mut tx = caller.state().read_scope(&scope).await?;
    let readable = |a: &AdminRecord| {
        scope.visible(Permission::Read, a.guard()) || (S::MEMBERS_READ && scope.orgs().contains(&a.org_id))
    };
    let rows = super::admin_page(&mut *tx, &filter, page, |a| readable(a) && keep(a)).await?;
    Ok(rows.iter().map(S::wire).collect())
}

/// A filter of every object of kind `S` (narrowed by the caller).
pub(crate) fn filter<S: Setting>() -> AdminFilter {
    AdminFilter { kind: S::KIND, orgs: Vec::new(), scope_type: None, scope_id: None, ids: Vec::new(), name: None }
}

/// The object of kind `S` named `name` on `scope`, if the caller can read it.
pub(crate) async fn find<S: Setting>(
    caller: &Caller,
    org_name: Option<&str>,
    scope: ObjectRef,
    name: &str,
) -> ApiResult<Option<AdminRecord>> {
    let ls = caller.list_scope(org_name).await?;
    let mut tx = caller.state().read_scope(&ls).await?;
    Ok(tx
        .find_admin(S::KIND, scope, name)
        .await?
        .filter(|a| ls.visible(Permission::Read, a.guard()) || (S::MEMBERS_READ && ls.orgs().contains(&a.org_id))))
}

/// Creates an object, or (`replace`) replaces the one of that name, or (a create
/// that finds one the caller can read) answers it unchanged with
/// `x-bt-found-existing`.
pub(crate) async fn create<S: Setting>(
    caller: &Caller,
    org_name: Option<&str>,
    d: Draft,
    replace: bool,
) -> ApiResult<Written<S::Wire>> {
    let found = find::<S>(caller, org_name, d.scope, &d.name).await?;
    let permit = match (&found, replace) {
        (Some(a), false) => return Ok(Written::existing(S::wire(a))),
        (Some(a), true) => caller.require(Permission::Update, a.guard()).await?,
        (None, _) => match S::CREATE {
            Creation::Update => caller.require(Permission::Update, d.scope).await?,
            Creation::Child(t) => caller.require_create(t, d.scope).await?,
        },
    };
    let org = org_of(caller, d.scope)?;
    let mut w = caller.state().write(&permit).await?;
    let now = w.now();
    let stored = w.tx().find_admin(S::KIND, d.scope, &d.name).await?;
    if stored.as_ref().map(|a| a.id) != found.as_ref().map(|a| a.id) {
        // It appeared or went away since it was looked up: try again.
        return Err(ApiError::BadRequest {
            code: crate::error::ErrorCode::NameTaken,
            message: format!("{} `{}` was created or deleted meanwhile; retry", S::KIND.as_str(), d.name),
        });
    }
    let out = match stored {
        Some(before) => {
            let mut after = before.clone();
            let mut data = d.data;
            for k in S::KEPT {
                if let Some(v) = before.data.get(*k) {
                    data.insert((*k).into(), v.clone());
                }
            }
            after.data = Value::Object(data);
            if let Some(v) = &d.secret {
                seal(caller, &mut after, v, now)?;
            }
            if after == before {
                return Ok(Written { revision: None, found_existing: false, body: S::wire(&before) });
            }
            after.updated = now;
            w.update_admin(&after, &S::audited(&before), &S::audited(&after)).await?;
            S::wire(&after)
        }
        None => {
            let mut data = d.data;
            data.insert("user_id".into(), json!(caller.user.id.0));
            let mut a = AdminRecord {
                id: Uuid::now_v7(),
                kind: S::KIND,
                org_id: org,
                scope: d.scope,
                name: d.name,
                data: Value::Object(data),
                secret: None,
                secret_updated_at: None,
                secret_updated_by: None,
                created: now,
                updated: now,
            };
            if let Some(v) = &d.secret {
                seal(caller, &mut a, v, now)?;
            }
            w.create_admin(&a, &S::audited(&a)).await?;
            S::wire(&a)
        }
    };
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// One object, by id (`read` on what decides it).
pub(crate) async fn retrieve<S: Setting>(caller: &Caller, id: Uuid) -> ApiResult<S::Wire> {
    Ok(S::wire(&load::<S>(caller, id, Permission::Read).await?))
}

/// Loads an object by id for a caller who holds `permission` on what decides it (or,
/// to read a kind every member may read, a member of its org).
pub(crate) async fn load<S: Setting>(caller: &Caller, id: Uuid, permission: Permission) -> ApiResult<AdminRecord> {
    if S::MEMBERS_READ && permission == Permission::Read {
        let ls = caller.list_scope(None).await?;
        let mut tx = caller.state().read_scope(&ls).await?;
        let a = tx.get_admin(id).await?.filter(|a| a.kind == S::KIND && ls.orgs().contains(&a.org_id));
        return a.ok_or_else(|| ApiError::not_found(S::KIND.as_str(), id));
    }
    Ok(caller.state().admin_for(caller, S::KIND, id, permission).await?.0)
}

/// Changes an object (`update` on what decides it); `check` sees the stored record
/// first and may refuse.
pub(crate) async fn update<S: Setting>(
    caller: &Caller,
    id: Uuid,
    c: Change,
    check: impl FnOnce(&AdminRecord) -> ApiResult<()>,
) -> ApiResult<Written<S::Wire>> {
    let (_, permit) = caller.state().admin_for(caller, S::KIND, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let missing = || ApiError::not_found(S::KIND.as_str(), id);
    let before = w.tx().get_admin(id).await?.filter(|a| a.kind == S::KIND).ok_or_else(missing)?;
    check(&before)?;
    let mut after = before.clone();
    let now = w.now();
    for (k, v) in c.data {
        let slot = after.data.as_object_mut().map(|m| m.entry(k).or_insert(Value::Null));
        if let Some(slot) = slot {
            deep_merge(slot, v);
        }
    }
    if let Some(m) = after.data.as_object_mut() {
        m.extend(c.replace);
    }
    if let Some(n) = c.name.filter(|n| *n != before.name) {
        after.name = n;
        if c.secret.is_none() {
            reseal(caller, &before, &mut after, S::SECRET_FIELD)?;
        }
    }
    if let Some(v) = &c.secret {
        seal(caller, &mut after, v, now)?;
    }
    if after == before {
        return Ok(Written { revision: None, found_existing: false, body: S::wire(&before) });
    }
    after.updated = now;
    w.update_admin(&after, &S::audited(&before), &S::audited(&after)).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, S::wire(&after)))
}

/// Deletes an object ([`Setting::DELETE`] on what decides it); `check` sees it
/// first and may refuse.
pub(crate) async fn remove<S: Setting>(
    caller: &Caller,
    id: Uuid,
    check: impl FnOnce(&AdminRecord) -> ApiResult<()>,
) -> ApiResult<Written<S::Wire>> {
    let (_, permit) = caller.state().admin_for(caller, S::KIND, id, S::DELETE).await?;
    let mut w = caller.state().write(&permit).await?;
    let missing = || ApiError::not_found(S::KIND.as_str(), id);
    let a = w.tx().get_admin(id).await?.filter(|a| a.kind == S::KIND).ok_or_else(missing)?;
    check(&a)?;
    w.delete_admin(&a, &S::audited(&a)).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, S::wire(&a)))
}

/// The project a project-scoped object is set on, as an authorization object.
pub(crate) fn project(id: Uuid) -> ObjectRef {
    ObjectRef::new(ObjectType::Project, id)
}
