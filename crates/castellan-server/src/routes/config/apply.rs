//! Making a plan's changes in one write transaction, each through the `Write`
//! operation its own endpoint uses (so the change feed, the lockout guard and the
//! audit log follow), and each audited once, as its endpoint audits it.

use super::kinds;
use super::step::{Plan, Step};
use crate::access::{AuditEvent, Caller, Write};
use crate::error::{ApiError, ApiResult};
use crate::routes::{group, role};
use castellan_api_types::{format_time, ConfigAction, ConfigChange, ProjectGroup};
use castellan_core::{ObjectRef, ObjectType, OrgId};
use castellan_store::{AdminKind, AdminRecord, GroupRecord, ProjectRecord, RoleRecord};
use serde::Serialize;
use serde_json::{json, Value};

/// An error of one change, naming it (the code and status stay those of the error).
pub fn named(e: ApiError, c: &ConfigChange) -> ApiError {
    let action = match c.action {
        ConfigAction::Add => "adding",
        ConfigAction::Change => "changing",
        ConfigAction::Remove => "removing",
    };
    let at = |m: String| format!("{action} {} `{}`: {m}", c.kind, c.name);
    match e {
        ApiError::BadRequest { code, message } => ApiError::BadRequest { code, message: at(message) },
        ApiError::Forbidden(m) => ApiError::Forbidden(at(m)),
        ApiError::NotFound(m) => ApiError::NotFound(at(m)),
        other => other,
    }
}

/// Makes every change of `plan` in `w` (not committed).
pub async fn execute(w: &mut Write, caller: &Caller, plan: &Plan) -> ApiResult<()> {
    let org = plan.batch.org;
    let now = w.now();
    // The new roles and groups first: an entry may name one listed after it.
    for (step, change) in plan.steps.iter().zip(&plan.changes) {
        let made = match step {
            Step::AddRole { id, name, description, .. } => {
                let r = RoleRecord {
                    id: *id,
                    org_id: Some(org),
                    name: name.clone(),
                    description: description.clone(),
                    user_id: Some(caller.user.id),
                    created: now,
                };
                w.create_role(&r).await
            }
            Step::AddGroup { id, name, description, .. } => {
                let g = GroupRecord {
                    id: *id,
                    org_id: org,
                    name: name.clone(),
                    description: description.clone(),
                    user_id: Some(caller.user.id),
                    created: now,
                };
                w.create_group(&g).await
            }
            _ => Ok(()),
        };
        made.map_err(|e| named(e, change))?;
    }
    for (step, change) in plan.steps.iter().zip(&plan.changes) {
        run(w, caller, org, step).await.map_err(|e| named(e, change))?;
    }
    // Whatever the changes, the organization keeps an owner and a member.
    w.guard(org);
    Ok(())
}

async fn audit<T: Serialize>(
    w: &mut Write,
    org: OrgId,
    (event, kind): (&str, &str),
    (id, name): (uuid::Uuid, &str),
    before: Option<&T>,
    after: Option<&T>,
) -> ApiResult<()> {
    w.audit(AuditEvent {
        org,
        event_type: event,
        resource_type: kind,
        resource_id: Some(id),
        resource_name: Some(name),
        before,
        after,
    })
    .await
}

fn gone(what: &str, id: impl std::fmt::Display) -> ApiError {
    ApiError::not_found(what, id)
}

fn spec(kind: AdminKind) -> ApiResult<kinds::KindSpec> {
    kinds::spec(kind).ok_or_else(|| ApiError::Internal(format!("{} is not a listed kind", kind.as_str())))
}

/// A project group's audited form, as its own endpoint audits a change.
fn audited_group(a: &AdminRecord, members: &[castellan_core::ProjectId]) -> Value {
    json!({
        "name": a.name,
        "description": a.data.get("description"),
        "member_projects": members.iter().map(|p| p.0).collect::<Vec<_>>(),
    })
}

async fn run(w: &mut Write, caller: &Caller, org: OrgId, step: &Step) -> ApiResult<()> {
    let now = w.now();
    match step {
        Step::Settings(after) => {
            let before = w.tx().get_org(org).await?.ok_or_else(|| gone("organization", org))?;
            w.update_org(&before, after).await
        }
        Step::AddRole { id, permissions, inherits, .. } => {
            let r = w.tx().get_role(*id).await?.ok_or_else(|| gone("role", id))?;
            for p in permissions {
                w.add_role_permission(r.id, *p).await?;
            }
            for i in inherits {
                w.add_role_role(r.id, *i).await?;
            }
            let after = role::to_wire(w.tx(), &r).await?;
            audit(w, org, ("role.created", "role"), (r.id.0, &r.name), None, Some(&after)).await
        }
        Step::ChangeRole { id, description, add, remove, add_inherits, remove_inherits } => {
            let r = w.tx().get_role(*id).await?.ok_or_else(|| gone("role", id))?;
            let before = role::to_wire(w.tx(), &r).await?;
            if &r.description != description {
                w.update_role(&RoleRecord { description: description.clone(), ..r.clone() }).await?;
            }
            for p in remove {
                w.remove_role_permission(org, r.id, *p).await?;
            }
            for i in remove_inherits {
                w.remove_role_role(org, r.id, *i).await?;
            }
            for p in add {
                w.add_role_permission(r.id, *p).await?;
            }
            for i in add_inherits {
                w.add_role_role(r.id, *i).await?;
            }
            let r = w.tx().get_role(*id).await?.ok_or_else(|| gone("role", id))?;
            let after = role::to_wire(w.tx(), &r).await?;
            audit(w, org, ("role.updated", "role"), (r.id.0, &r.name), Some(&before), Some(&after)).await
        }
        Step::RemoveRole(id) => {
            let r = w.tx().get_role(*id).await?.ok_or_else(|| gone("role", id))?;
            let before = role::to_wire(w.tx(), &r).await?;
            w.delete_role(org, &r).await?;
            audit(w, org, ("role.deleted", "role"), (r.id.0, &r.name), Some(&before), None).await
        }
        Step::AddGroup { id, users, groups, .. } => {
            let g = w.tx().get_group(*id).await?.ok_or_else(|| gone("group", id))?;
            for u in users {
                w.add_group_user(g.id, *u).await?;
            }
            for m in groups {
                w.add_group_group(g.id, *m).await?;
            }
            let after = group::to_wire(w.tx(), &g).await?;
            audit(w, org, ("group.created", "group"), (g.id.0, &g.name), None, Some(&after)).await
        }
        Step::ChangeGroup { id, description, add_users, remove_users, add_groups, remove_groups } => {
            let g = w.tx().get_group(*id).await?.ok_or_else(|| gone("group", id))?;
            let before = group::to_wire(w.tx(), &g).await?;
            if &g.description != description {
                w.update_group(&GroupRecord { description: description.clone(), ..g.clone() }).await?;
            }
            for u in remove_users {
                w.remove_group_user(org, g.id, *u).await?;
            }
            for m in remove_groups {
                w.remove_group_group(org, g.id, *m).await?;
            }
            for u in add_users {
                w.add_group_user(g.id, *u).await?;
            }
            for m in add_groups {
                w.add_group_group(g.id, *m).await?;
            }
            let g = w.tx().get_group(*id).await?.ok_or_else(|| gone("group", id))?;
            let after = group::to_wire(w.tx(), &g).await?;
            audit(w, org, ("group.updated", "group"), (g.id.0, &g.name), Some(&before), Some(&after)).await
        }
        Step::RemoveGroup(id) => {
            let g = w.tx().get_group(*id).await?.ok_or_else(|| gone("group", id))?;
            let before = group::to_wire(w.tx(), &g).await?;
            w.delete_group(&g).await?;
            audit(w, org, ("group.deleted", "group"), (g.id.0, &g.name), Some(&before), None).await
        }
        Step::AddProject { id, name, description, settings } => {
            let p = ProjectRecord {
                id: *id,
                org_id: org,
                name: name.clone(),
                description: description.clone(),
                user_id: Some(caller.user.id),
                settings: settings.clone(),
                created: now,
            };
            w.create_project(&p).await
        }
        Step::ChangeProject { id, description, settings } => {
            let before = w.tx().get_project(*id).await?.ok_or_else(|| gone("project", id))?;
            let after =
                ProjectRecord { description: description.clone(), settings: settings.clone(), ..before.clone() };
            w.update_project(&before, &after).await
        }
        Step::AddProjectGroup { id, name, description, projects } => {
            let a = AdminRecord {
                id: *id,
                kind: AdminKind::ProjectGroup,
                org_id: org,
                scope: ObjectRef::new(ObjectType::Organization, org.0),
                name: name.clone(),
                data: json!({"description": description, "user_id": caller.user.id.0}),
                secret: None,
                secret_updated_at: None,
                secret_updated_by: None,
                created: now,
                updated: now,
            };
            let wire = ProjectGroup {
                id: *id,
                org_id: org.0,
                name: name.clone(),
                description: description.clone(),
                created: Some(format_time(now)),
                user_id: Some(caller.user.id.0),
                deleted_at: None,
                member_projects: projects.iter().map(|p| p.0).collect(),
            };
            w.create_project_group_with(&a, projects, &wire).await
        }
        Step::ChangeProjectGroup { id, description, add, remove } => {
            let before = w.tx().get_admin(*id).await?.ok_or_else(|| gone("project group", id))?;
            let before_members = w.tx().group_project_ids(*id).await?;
            let mut after = before.clone();
            after.data["description"] = json!(description);
            if after != before {
                after.updated = now;
            }
            for p in remove {
                w.remove_group_project(&before, *p).await?;
            }
            for p in add {
                w.add_group_project(&before, *p).await?;
            }
            let after_members = w.tx().group_project_ids(*id).await?;
            let (b, a) = (audited_group(&before, &before_members), audited_group(&after, &after_members));
            w.update_admin(&after, &b, &a).await
        }
        Step::RemoveProjectGroup(id) => {
            let a = w.tx().get_admin(*id).await?.ok_or_else(|| gone("project group", id))?;
            let members = w.tx().group_project_ids(*id).await?;
            w.delete_project_group(&a, &audited_group(&a, &members)).await
        }
        Step::AddObject { id, kind, scope, name, data } => {
            let spec = spec(*kind)?;
            let mut data = data.clone();
            if spec.records_creator {
                data.insert("user_id".into(), json!(caller.user.id.0));
            }
            if let Some((key, derive)) = spec.derived {
                data.insert(key.into(), json!(derive(name)));
            }
            let a = AdminRecord {
                id: *id,
                kind: *kind,
                org_id: org,
                scope: *scope,
                name: name.clone(),
                data: Value::Object(data),
                secret: None,
                secret_updated_at: None,
                secret_updated_by: None,
                created: now,
                updated: now,
            };
            w.create_admin(&a, &(spec.audited)(&a)).await
        }
        Step::ChangeObject { id, data } => {
            let before = w.tx().get_admin(*id).await?.ok_or_else(|| gone("object", id))?;
            let spec = spec(before.kind)?;
            // Only the document's keys change: a sealed value and what derives from it stay.
            let after = AdminRecord { data: kinds::merged(&spec, &before.data, data), updated: now, ..before.clone() };
            w.update_admin(&after, &(spec.audited)(&before), &(spec.audited)(&after)).await
        }
        Step::RemoveObject(id) => {
            let a = w.tx().get_admin(*id).await?.ok_or_else(|| gone("object", id))?;
            if a.kind == AdminKind::Environment {
                // Its assignments (which a document does not hold) go with it.
                return crate::routes::environment::delete_in(w, &a).await;
            }
            let spec = spec(a.kind)?;
            w.delete_admin(&a, &(spec.audited)(&a)).await
        }
        Step::AddGrant(acl) => {
            let acl = castellan_store::AclRecord { created: now, ..(**acl).clone() };
            w.grant(&acl).await
        }
        Step::RemoveGrant(id) => {
            let acl = w.tx().get_acl(*id).await?.ok_or_else(|| gone("acl", id))?;
            w.revoke_grant(&acl).await
        }
    }
}
