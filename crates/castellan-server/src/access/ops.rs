//! The changes a write transaction can make. Each operation does the SQL, its
//! cascade, the change every replica applies to its index, the lockout guard and
//! the audit record together, so a handler cannot do one without the others.
//!
//! Where the audited shape of a resource is only known once more rows are written
//! (a group with its members, a role with its permissions), the operation leaves
//! the audit record owed: [`Write::audit`] pays it and [`Write::commit`] refuses a
//! write that still owes one. Handlers reach the transaction only through
//! [`Write::tx`], for reads; a test (`mutations_stay_in_access`) fails if code
//! outside this module calls a mutating repository method.

use super::{AuditEvent, Write};
use crate::change::Change;
use crate::dto;
use crate::error::ApiResult;
use castellan_core::{ObjectRef, ObjectType, OrgId, ProjectId, RoleId, UserId};
use castellan_store::{
    AclRecord, AdminKind, AdminRecord, GroupRecord, InvitationRecord, NewKey, ObjectRecord, OrgRecord, ProjectRecord,
    RolePermission, RoleRecord, SessionRecord, UserRecord,
};
use serde::Serialize;
use uuid::Uuid;

fn project_ref(id: Uuid) -> ObjectRef {
    ObjectRef::new(ObjectType::Project, id)
}

impl Write {
    // --- organizations -------------------------------------------------------

    /// Creates an organization (the row, `AddOrg`, `organization.created`). Its
    /// built-in groups and grants are the caller's to add (`seed::create_org`).
    pub async fn create_org(&mut self, org: &OrgRecord) -> ApiResult<()> {
        self.tx.insert_org(org).await?;
        self.changes.push(Change::AddOrg { org: org.id.0 });
        self.audit_org(org, "organization.created", None, Some(&dto::org(org))).await
    }

    /// Stores `after`, the changed form of `before`, and audits the change.
    pub async fn update_org(&mut self, before: &OrgRecord, after: &OrgRecord) -> ApiResult<()> {
        self.tx.update_org(after).await?;
        self.audit_org(after, "organization.updated", Some(&dto::org(before)), Some(&dto::org(after))).await
    }

    /// Deletes an organization and everything in it.
    pub async fn delete_org(&mut self, org: &OrgRecord) -> ApiResult<()> {
        let now = self.now;
        self.tx.delete_org(org.id, now).await?;
        self.drop_admin_under(org.id.0).await?;
        self.changes.push(Change::RemoveOrg { org: org.id.0 });
        self.audit_org(org, "organization.deleted", Some(&dto::org(org)), None).await
    }

    async fn audit_org(
        &mut self,
        org: &OrgRecord,
        event_type: &str,
        before: Option<&castellan_api_types::Organization>,
        after: Option<&castellan_api_types::Organization>,
    ) -> ApiResult<()> {
        self.audit(AuditEvent {
            org: org.id,
            event_type,
            resource_type: "organization",
            resource_id: Some(org.id.0),
            resource_name: Some(&org.name),
            before,
            after,
        })
        .await
    }

    // --- projects ------------------------------------------------------------

    /// Creates a project under its org.
    pub async fn create_project(&mut self, p: &ProjectRecord) -> ApiResult<()> {
        self.tx.insert_project(p).await?;
        let org = ObjectRef::new(ObjectType::Organization, p.org_id.0);
        self.changes.push(Change::AddObject { object: project_ref(p.id.0), parent: org });
        self.audit_project(p, "project.created", None, Some(&dto::project(p))).await
    }

    /// Stores `after`, the changed form of `before`; replicas drop their copy.
    pub async fn update_project(&mut self, before: &ProjectRecord, after: &ProjectRecord) -> ApiResult<()> {
        self.tx.update_project(after).await?;
        self.changes.push(Change::UpdateProject { project: after.id.0 });
        self.audit_project(after, "project.updated", Some(&dto::project(before)), Some(&dto::project(after))).await
    }

    /// Deletes a project, its contents and every grant on it and its logs.
    pub async fn delete_project(&mut self, p: &ProjectRecord) -> ApiResult<()> {
        let now = self.now;
        self.tx.delete_project(p.id, now).await?;
        self.drop_admin_under(p.id.0).await?;
        // The project leaves its groups with it (replicas drop it from them on
        // `RemoveObject`); each group's record says so.
        for (group, _) in self.tx.delete_group_projects_of(p.id.0).await? {
            let name = self.tx.get_admin(group).await?.map(|g| g.name);
            self.audit(AuditEvent::<(), _> {
                org: p.org_id,
                event_type: "project_group.updated",
                resource_type: "project_group",
                resource_id: Some(group),
                resource_name: name.as_deref(),
                before: None,
                after: Some(&serde_json::json!({"removed_member_projects": [p.id.0], "reason": "project deleted"})),
            })
            .await?;
        }
        for t in [ObjectType::Project, ObjectType::ProjectLog] {
            self.drop_acls_on(t, p.id.0).await?;
        }
        let inside = self.tx.delete_acls_inside(p.id).await?;
        self.audit_acls_deleted(&inside).await?;
        self.changes.push(Change::RemoveObject { object: project_ref(p.id.0) });
        self.audit_project(p, "project.deleted", Some(&dto::project(p)), None).await
    }

    async fn audit_project(
        &mut self,
        p: &ProjectRecord,
        event_type: &str,
        before: Option<&castellan_api_types::Project>,
        after: Option<&castellan_api_types::Project>,
    ) -> ApiResult<()> {
        self.audit(AuditEvent {
            org: p.org_id,
            event_type,
            resource_type: "project",
            resource_id: Some(p.id.0),
            resource_name: Some(&p.name),
            before,
            after,
        })
        .await
    }

    // --- objects in a project (experiments, datasets, prompts, functions, …) --

    /// Creates an object under its project; `wire` is the object as answers show it.
    pub async fn create_object<A: Serialize>(&mut self, o: &ObjectRecord, wire: &A) -> ApiResult<()> {
        self.tx.insert_object(o).await?;
        self.changes.push(Change::AddObject {
            object: ObjectRef::new(o.kind.object_type(), o.id),
            parent: project_ref(o.project_id.0),
        });
        self.audit_object::<(), A>(o, "created", None, Some(wire)).await
    }

    /// Stores `o`, changed; `before` and `after` are its answers before and after.
    pub async fn update_object<B: Serialize, A: Serialize>(
        &mut self,
        o: &ObjectRecord,
        before: &B,
        after: &A,
    ) -> ApiResult<()> {
        self.tx.update_object(o).await?;
        self.audit_object(o, "updated", Some(before), Some(after)).await
    }

    /// Keeps `o` as it is now as a version (functions and prompts), as part of
    /// the create or update that made it.
    pub async fn record_version(&mut self, o: &ObjectRecord) -> ApiResult<()> {
        Ok(self.tx.insert_object_version(o).await?)
    }

    /// Deletes an object and every grant on it.
    pub async fn delete_object<B: Serialize>(&mut self, o: &ObjectRecord, before: &B) -> ApiResult<()> {
        let now = self.now;
        let object_type = o.kind.object_type();
        self.tx.delete_object(o.id, now).await?;
        self.drop_admin_under(o.id).await?;
        self.drop_acls_on(object_type, o.id).await?;
        self.changes.push(Change::RemoveObject { object: ObjectRef::new(object_type, o.id) });
        self.audit_object::<B, ()>(o, "deleted", Some(before), None).await
    }

    /// Records feedback on a prompt (`POST /v1/prompt/{id}/feedback`): Castellan keeps
    /// no prompt events, so, as Braintrust keeps comments in a row's audit trail, each
    /// request is one `prompt.feedback` audit record (the items, who, when). The
    /// prompt itself, and its versions, do not change.
    pub async fn prompt_feedback<A: Serialize>(&mut self, o: &ObjectRecord, feedback: &A) -> ApiResult<()> {
        self.audit_object::<(), A>(o, "feedback", None, Some(feedback)).await
    }

    async fn audit_object<B: Serialize, A: Serialize>(
        &mut self,
        o: &ObjectRecord,
        action: &str,
        before: Option<&B>,
        after: Option<&A>,
    ) -> ApiResult<()> {
        let event_type = format!("{}.{action}", o.kind.as_str());
        self.audit(AuditEvent {
            org: o.org_id,
            event_type: &event_type,
            resource_type: o.kind.as_str(),
            resource_id: Some(o.id),
            resource_name: Some(&o.name),
            before,
            after,
        })
        .await
    }

    // --- groups ----------------------------------------------------------------

    /// Creates a group; its audit record (with its members) is owed.
    pub async fn create_group(&mut self, g: &GroupRecord) -> ApiResult<()> {
        self.tx.insert_group(g).await?;
        self.changes.push(Change::AddGroup { group: g.id.0, org: g.org_id.0 });
        self.owe_audit("group", g.id.0);
        Ok(())
    }

    /// Stores a group's changed name or description; its audit record is owed.
    pub async fn update_group(&mut self, g: &GroupRecord) -> ApiResult<()> {
        self.tx.update_group(g).await?;
        self.owe_audit("group", g.id.0);
        Ok(())
    }

    /// Deletes a group, its memberships and every grant to or on it (each audited),
    /// and guards its org against lockout; the group's own record is owed.
    pub async fn delete_group(&mut self, g: &GroupRecord) -> ApiResult<()> {
        let now = self.now;
        let gone = self.tx.delete_acls_referencing(Some(g.id), None).await?;
        self.audit_acls_deleted(&gone).await?;
        self.drop_acls_on(ObjectType::Group, g.id.0).await?;
        self.tx.delete_group(g.id, now).await?;
        self.changes.push(Change::RemoveGroup { group: g.id.0 });
        // A SCIM-managed group's mark goes with it.
        let member_ref = ObjectRef::new(ObjectType::OrgMember, g.org_id.0);
        if let Some(a) = self.tx.find_admin(AdminKind::ScimGroup, member_ref, &g.id.0.to_string()).await? {
            let before = a.data.clone();
            self.delete_admin(&a, &before).await?;
        }
        self.guard(g.org_id);
        self.owe_audit("group", g.id.0);
        Ok(())
    }

    // --- roles -----------------------------------------------------------------

    /// Creates a role; an org's role owes its audit record (with its permissions).
    pub async fn create_role(&mut self, r: &RoleRecord) -> ApiResult<()> {
        self.tx.insert_role(r).await?;
        self.changes.push(Change::AddRole { role: r.id.0, org: r.org_id.map(|o| o.0) });
        if r.org_id.is_some() {
            self.owe_audit("role", r.id.0);
        }
        Ok(())
    }

    /// Stores a role's changed name or description; its audit record is owed.
    pub async fn update_role(&mut self, r: &RoleRecord) -> ApiResult<()> {
        self.tx.update_role(r).await?;
        self.owe_audit("role", r.id.0);
        Ok(())
    }

    /// Deletes an org's role and every grant of it or on it (each audited), and
    /// guards the org against lockout; the role's own record is owed.
    pub async fn delete_role(&mut self, org: OrgId, r: &RoleRecord) -> ApiResult<()> {
        let now = self.now;
        let gone = self.tx.delete_acls_referencing(None, Some(r.id)).await?;
        self.audit_acls_deleted(&gone).await?;
        self.drop_acls_on(ObjectType::Role, r.id.0).await?;
        self.tx.delete_role(r.id, now).await?;
        self.changes.push(Change::RemoveRole { role: r.id.0 });
        self.guard(org);
        self.owe_audit("role", r.id.0);
        Ok(())
    }

    /// Adds a permission to a role; `false` if it had it.
    pub async fn add_role_permission(&mut self, role: RoleId, p: RolePermission) -> ApiResult<bool> {
        let added = self.tx.add_role_permission(role, p).await?;
        if added {
            self.changes.push(Change::AddRolePermission {
                role: role.0,
                permission: p.permission,
                restrict_object_type: p.restrict_object_type,
            });
        }
        Ok(added)
    }

    /// Takes a permission from an org's role and guards the org against lockout.
    pub async fn remove_role_permission(&mut self, org: OrgId, role: RoleId, p: RolePermission) -> ApiResult<bool> {
        let removed = self.tx.remove_role_permission(role, p).await?;
        if removed {
            self.changes.push(Change::RemoveRolePermission {
                role: role.0,
                permission: p.permission,
                restrict_object_type: p.restrict_object_type,
            });
            self.guard(org);
        }
        Ok(removed)
    }

    /// Makes `role` inherit `member`'s permissions; `false` if it did.
    pub async fn add_role_role(&mut self, role: RoleId, member: RoleId) -> ApiResult<bool> {
        let added = self.tx.add_role_role(role, member).await?;
        if added {
            self.changes.push(Change::AddRoleInherit { role: role.0, member_role: member.0 });
        }
        Ok(added)
    }

    /// Stops `role` inheriting `member` and guards the org against lockout.
    pub async fn remove_role_role(&mut self, org: OrgId, role: RoleId, member: RoleId) -> ApiResult<bool> {
        let removed = self.tx.remove_role_role(role, member).await?;
        if removed {
            self.changes.push(Change::RemoveRoleInherit { role: role.0, member_role: member.0 });
            self.guard(org);
        }
        Ok(removed)
    }

    // --- grants ----------------------------------------------------------------

    /// Adds a grant (the row, `acl.created`, the change).
    pub async fn grant(&mut self, acl: &AclRecord) -> ApiResult<()> {
        self.tx.insert_acl(acl).await?;
        self.audit_acl("acl.created", acl, true).await?;
        self.changes.push(Change::AddAcl { acl: acl.clone() });
        Ok(())
    }

    /// Deletes a grant and guards its org against lockout.
    pub async fn revoke_grant(&mut self, acl: &AclRecord) -> ApiResult<()> {
        self.tx.delete_acl(acl.id).await?;
        self.audit_acl("acl.deleted", acl, false).await?;
        self.changes.push(Change::RemoveAcl { id: acl.id.0 });
        self.guard(acl.org_id);
        Ok(())
    }

    /// Deletes every grant to `user` in `org` (a member leaving).
    pub async fn revoke_grants_of(&mut self, org: OrgId, user: UserId) -> ApiResult<()> {
        let gone = self.tx.delete_acls_of_user(org, user).await?;
        self.audit_acls_deleted(&gone).await?;
        for a in &gone {
            self.changes.push(Change::RemoveAcl { id: a.id.0 });
        }
        self.guard(org);
        Ok(())
    }

    /// Deletes the grants on an object that is going away (its removal takes them
    /// out of every index); each is audited.
    async fn drop_acls_on(&mut self, object_type: ObjectType, id: Uuid) -> ApiResult<()> {
        let gone = self.tx.delete_acls_on(object_type, id).await?;
        self.audit_acls_deleted(&gone).await
    }

    async fn audit_acls_deleted(&mut self, acls: &[AclRecord]) -> ApiResult<()> {
        for a in acls {
            self.audit_acl("acl.deleted", a, false).await?;
        }
        Ok(())
    }

    async fn audit_acl(&mut self, event_type: &str, acl: &AclRecord, created: bool) -> ApiResult<()> {
        let out = dto::acl(acl);
        self.audit(AuditEvent {
            org: acl.org_id,
            event_type,
            resource_type: "acl",
            resource_id: Some(acl.id.0),
            resource_name: None,
            before: if created { None } else { Some(&out) },
            after: if created { Some(&out) } else { None },
        })
        .await
    }

    // --- administration objects (env vars, …) -----------------------------------

    /// Creates an administration object; `wire` is it as answers show it (never a
    /// secret value).
    pub async fn create_admin<A: Serialize>(&mut self, a: &AdminRecord, wire: &A) -> ApiResult<()> {
        self.tx.insert_admin(a).await?;
        if a.kind == AdminKind::AiSecret {
            // An AI secret is an object grants can name.
            let parent = ObjectRef::new(ObjectType::OrgAiSecret, a.org_id.0);
            self.changes.push(Change::AddObject { object: a.guard(), parent });
        }
        self.audit_admin::<(), A>(a, "created", None, Some(wire)).await
    }

    /// Stores `a`, changed; `before` and `after` are its answers before and after.
    pub async fn update_admin<B: Serialize, A: Serialize>(
        &mut self,
        a: &AdminRecord,
        before: &B,
        after: &A,
    ) -> ApiResult<()> {
        self.tx.update_admin(a).await?;
        self.audit_admin(a, "updated", Some(before), Some(after)).await
    }

    /// Stores an administration object's value sealed again under another master key
    /// (the same value: nothing else changes, nothing is audited per row; the
    /// rotation audits its count with [`Write::audit_rotation`]).
    pub async fn reseal_admin(&mut self, a: &AdminRecord) -> ApiResult<()> {
        Ok(self.tx.update_admin(a).await?)
    }

    /// Audits that `count` of an org's sealed values were sealed again under the
    /// master key `key_id`.
    pub async fn audit_rotation(&mut self, org: OrgId, count: u64, key_id: &str) -> ApiResult<()> {
        let after = serde_json::json!({"resealed": count, "key_id": key_id});
        self.audit(AuditEvent::<(), _> {
            org,
            event_type: "secrets.rotated",
            resource_type: "master_key",
            resource_id: None,
            resource_name: Some(key_id),
            before: None,
            after: Some(&after),
        })
        .await
    }

    /// Stores an organization's plan (`plan.updated`, with the plans before and
    /// after as answers show them).
    pub async fn set_plan<B: Serialize, A: Serialize>(
        &mut self,
        plan: &castellan_store::PlanRecord,
        before: &B,
        after: &A,
    ) -> ApiResult<()> {
        self.tx.put_plan(plan).await?;
        self.audit(AuditEvent {
            org: plan.org_id,
            event_type: "plan.updated",
            resource_type: "org_account",
            resource_id: Some(plan.org_id.0),
            resource_name: None,
            before: Some(before),
            after: Some(after),
        })
        .await
    }

    /// Audits a cost-alert threshold the organization's usage crossed.
    pub async fn audit_crossing(&mut self, c: &castellan_store::UsageCrossing) -> ApiResult<()> {
        let name = format!("{} {}%", c.metric, c.threshold);
        self.audit(AuditEvent::<(), _> {
            org: c.org_id,
            event_type: "usage.threshold_crossed",
            resource_type: "org_account",
            resource_id: Some(c.org_id.0),
            resource_name: Some(&name),
            before: None,
            after: Some(c),
        })
        .await
    }

    /// Audits one automation run (a retention sweep: what it deleted, per object).
    pub async fn audit_run<A: Serialize>(&mut self, a: &AdminRecord, event: &str, after: &A) -> ApiResult<()> {
        let event_type = format!("{}.{event}", a.kind.as_str());
        self.audit(AuditEvent::<(), A> {
            org: a.org_id,
            event_type: &event_type,
            resource_type: a.kind.as_str(),
            resource_id: Some(a.id),
            resource_name: Some(&a.name),
            before: None,
            after: Some(after),
        })
        .await
    }

    /// Deletes an administration object and its sealed secret for good.
    pub async fn delete_admin<B: Serialize>(&mut self, a: &AdminRecord, before: &B) -> ApiResult<()> {
        if a.kind == AdminKind::AiSecret {
            // Its grants go with it (each audited).
            self.drop_acls_on(ObjectType::AiSecret, a.id).await?;
            self.changes.push(Change::RemoveObject { object: a.guard() });
        }
        self.tx.delete_admin(a.id).await?;
        self.audit_admin::<B, ()>(a, "deleted", Some(before), None).await
    }

    /// Deletes the administration objects set on something that is going away (an
    /// org, a project and what is inside it, an object); each is audited.
    async fn drop_admin_under(&mut self, scope: Uuid) -> ApiResult<()> {
        for a in self.tx.delete_admin_under(scope).await? {
            let before = serde_json::json!({
                "id": a.id,
                "name": a.name,
                "object_type": a.scope.object_type,
                "object_id": a.scope.object_id,
            });
            self.audit_admin::<_, ()>(&a, "deleted", Some(&before), None).await?;
        }
        Ok(())
    }

    async fn audit_admin<B: Serialize, A: Serialize>(
        &mut self,
        a: &AdminRecord,
        action: &str,
        before: Option<&B>,
        after: Option<&A>,
    ) -> ApiResult<()> {
        let event_type = format!("{}.{action}", a.kind.as_str());
        self.audit(AuditEvent {
            org: a.org_id,
            event_type: &event_type,
            resource_type: a.kind.as_str(),
            resource_id: Some(a.id),
            resource_name: Some(&a.name),
            before,
            after,
        })
        .await
    }

    // --- project groups ------------------------------------------------------------

    /// Creates a project group (its definition, `AddProjectGroup`, its audit record
    /// with `wire`).
    pub async fn create_project_group<A: Serialize>(&mut self, a: &AdminRecord, wire: &A) -> ApiResult<()> {
        self.create_project_group_with(a, &[], wire).await
    }

    /// Creates a project group holding `projects` from the start (its definition,
    /// `AddProjectGroup`, each `AddGroupProject`, one audit record with `wire`).
    pub async fn create_project_group_with<A: Serialize>(
        &mut self,
        a: &AdminRecord,
        projects: &[ProjectId],
        wire: &A,
    ) -> ApiResult<()> {
        let now = self.now;
        self.tx.insert_admin(a).await?;
        self.changes.push(Change::AddProjectGroup { group: a.id, org: a.org_id.0 });
        for p in projects {
            if self.tx.add_group_project(a.id, *p, a.org_id, now).await? {
                self.changes.push(Change::AddGroupProject { group: a.id, project: p.0 });
            }
        }
        self.audit_admin::<(), A>(a, "created", None, Some(wire)).await
    }

    /// Deletes a project group: its memberships, every grant on it or on all its
    /// projects (each audited), and the group; its projects stay. Guards the org
    /// against lockout.
    pub async fn delete_project_group<B: Serialize>(&mut self, a: &AdminRecord, before: &B) -> ApiResult<()> {
        self.tx.delete_group_projects_of(a.id).await?;
        self.drop_acls_on(ObjectType::ProjectGroupProjects, a.id).await?;
        self.drop_acls_on(ObjectType::ProjectGroup, a.id).await?;
        self.tx.delete_admin(a.id).await?;
        self.changes.push(Change::RemoveProjectGroup { group: a.id });
        self.guard(a.org_id);
        self.audit_admin::<B, ()>(a, "deleted", Some(before), None).await
    }

    /// Puts a project in a project group; `false` if it was there. The group's
    /// record (with its members) is owed.
    pub async fn add_group_project(&mut self, group: &AdminRecord, project: ProjectId) -> ApiResult<bool> {
        let now = self.now;
        let added = self.tx.add_group_project(group.id, project, group.org_id, now).await?;
        if added {
            self.changes.push(Change::AddGroupProject { group: group.id, project: project.0 });
            self.owe_audit("project_group", group.id);
        }
        Ok(added)
    }

    /// Takes a project out of a project group and guards the org against lockout;
    /// `false` if it was not there. The group's record is owed.
    pub async fn remove_group_project(&mut self, group: &AdminRecord, project: ProjectId) -> ApiResult<bool> {
        let removed = self.tx.remove_group_project(group.id, project).await?;
        if removed {
            self.changes.push(Change::RemoveGroupProject { group: group.id, project: project.0 });
            self.guard(group.org_id);
            self.owe_audit("project_group", group.id);
        }
        Ok(removed)
    }

    // --- people, credentials, invitations ---------------------------------------

    /// Creates an account (a person or a service account). It belongs to no org
    /// yet: joining one ([`Write::add_member`]) is what is audited.
    pub async fn create_user(&mut self, u: &UserRecord, password_hash: Option<&str>) -> ApiResult<()> {
        self.tx.insert_user(u).await?;
        if let Some(h) = password_hash {
            self.tx.set_password_hash(u.id, Some(h)).await?;
        }
        Ok(())
    }

    /// Stores a key or token (hashed) and audits `<kind>.created` in its org.
    pub async fn create_key(&mut self, key: &NewKey) -> ApiResult<()> {
        self.tx.insert_key(key).await?;
        let r = &key.record;
        let Some(org) = r.org_id else { return Ok(()) };
        let event_type = format!("{}.created", r.kind.as_str());
        self.audit(AuditEvent::<(), _> {
            org,
            event_type: &event_type,
            resource_type: r.kind.as_str(),
            resource_id: Some(r.id.0),
            resource_name: Some(&r.name),
            before: None,
            after: Some(r),
        })
        .await
    }

    /// Stores an invitation (its token hashed); the caller audits it with its answer.
    pub async fn create_invitation(&mut self, inv: &InvitationRecord, token_hash: &str) -> ApiResult<()> {
        self.tx.insert_invitation(inv, token_hash).await?;
        self.owe_audit("invitation", inv.id);
        Ok(())
    }

    /// Marks an invitation used; `false` if it already was.
    pub async fn use_invitation(&mut self, id: Uuid) -> ApiResult<bool> {
        let now = self.now;
        let used = self.tx.accept_invitation(id, now).await?;
        if used {
            self.owe_audit("invitation", id);
        }
        Ok(used)
    }

    /// Stores a new session (token and CSRF secret hashed).
    pub(super) async fn create_session(
        &mut self,
        s: &SessionRecord,
        token_hash: &str,
        csrf_hash: &str,
    ) -> ApiResult<()> {
        Ok(self.tx.insert_session(s, token_hash, csrf_hash).await?)
    }

    /// Ends one of `user`'s sessions; `false` if it is not theirs or already ended.
    pub(super) async fn end_session(&mut self, user: UserId, id: Uuid) -> ApiResult<bool> {
        let now = self.now;
        Ok(self.tx.revoke_session(user, id, now).await?)
    }

    /// Sets `user`'s password and ends their other sessions; how many ended.
    pub(super) async fn set_password(&mut self, user: UserId, hash: &str, keep: Option<Uuid>) -> ApiResult<u64> {
        let now = self.now;
        self.tx.set_password_hash(user, Some(hash)).await?;
        Ok(self.tx.revoke_user_sessions(user, keep, now).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The repositories whose rows the authorization index, the change feed and the
    /// audit log describe, by file.
    const REPOSITORIES: [(&str, &[&str]); 3] = [
        (
            "traits.rs",
            &[
                "OrgRepo",
                "UserRepo",
                "SessionRepo",
                "IdentityRepo",
                "ProjectRepo",
                "KeyRepo",
                "AccessRepo",
                "AuditRepo",
            ],
        ),
        ("data_repo.rs", &["ObjectRepo"]),
        ("admin.rs", &["AdminRepo"]),
    ];
    const MUTATING: [&str; 9] =
        ["insert_", "update_", "delete_", "add_", "remove_", "set_", "revoke_", "accept_", "append_"];

    /// The mutating methods of those repositories, read from their declarations.
    fn mutating_methods() -> Vec<String> {
        let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("../castellan-store/src");
        let mut names = Vec::new();
        for (file, traits) in REPOSITORIES {
            let text = std::fs::read_to_string(store.join(file)).expect("store source");
            let mut current: Option<String> = None;
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("pub trait ") {
                    current = rest.split(|c: char| !c.is_alphanumeric()).next().map(str::to_owned);
                } else if line.starts_with('}') {
                    current = None;
                } else if let (Some(t), Some(at)) = (&current, line.find("async fn ")) {
                    let name: String =
                        line[at + 9..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if traits.contains(&t.as_str()) && MUTATING.iter().any(|p| name.starts_with(p)) {
                        names.push(name);
                    }
                }
            }
        }
        names
    }

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn mutations_stay_in_access() {
        let names = mutating_methods();
        assert!(names.len() > 30, "the repository declarations were not read: {names:?}");
        for n in ["insert_group", "delete_object", "insert_admin", "add_group_project"] {
            assert!(names.iter().any(|x| x == n), "{n} was not read");
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut offenders = Vec::new();
        for f in files.iter().filter(|f| !f.starts_with(src.join("access"))) {
            let text: String = std::fs::read_to_string(f).expect("source").split_whitespace().collect();
            for n in &names {
                if text.contains(&format!("tx().{n}(")) || text.contains(&format!("tx.{n}(")) {
                    offenders.push(format!("{} calls {n}", f.display()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "writes outside access/ must go through Write's operations (change feed, audit, lockout): {offenders:#?}"
        );
    }

    /// The modules a part of the crate names, read from its sources.
    fn imports(part: &Path) -> Vec<String> {
        let mut files = Vec::new();
        if part.is_dir() {
            sources(part, &mut files);
        } else {
            files.push(part.to_owned());
        }
        let mut found = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("source");
            for (i, _) in text.match_indices("crate::") {
                let name: String = text[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !found.contains(&name) {
                    found.push(name);
                }
            }
        }
        found
    }

    #[test]
    fn access_dataplane_and_seeding_import_no_circle() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        // Each part, and what it must never name: nothing above it.
        let rules: [(&str, &[&str]); 3] = [
            ("access", &["routes", "dataplane", "seed", "serve", "state"]),
            ("dataplane", &["routes", "seed", "serve", "state"]),
            ("seed.rs", &["routes", "dataplane", "serve", "state"]),
        ];
        for (part, forbidden) in rules {
            let names = imports(&src.join(part));
            assert!(names.contains(&"error".to_owned()), "{part}'s imports were not read: {names:?}");
            let bad: Vec<&String> = names.iter().filter(|n| forbidden.contains(&n.as_str())).collect();
            assert!(bad.is_empty(), "{part} imports {bad:?}, which would make a circle");
        }
    }
}
