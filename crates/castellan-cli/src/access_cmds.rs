//! `castellan acl|group|role|member|access|audit`.

use crate::client::Client;
use crate::output::{cell, emit, Table};
use anyhow::{anyhow, bail, Result};
use castellan_api_types as api;
use castellan_store::audit::{verify_chain, AuditRecord};
use clap::Subcommand;
use serde_json::{json, Value};
use uuid::Uuid;

/// `castellan acl …`
#[derive(Debug, Subcommand)]
pub enum AclAction {
    /// The direct grants on one object.
    List {
        #[arg(long)]
        object_type: String,
        #[arg(long)]
        object_id: Uuid,
    },
    /// Every grant in the organization.
    ListOrg,
    /// Grant a permission (or a role) to a user or group on an object.
    Create {
        #[arg(long)]
        object_type: String,
        #[arg(long)]
        object_id: Uuid,
        #[arg(long, conflicts_with = "group")]
        user: Option<Uuid>,
        #[arg(long)]
        group: Option<Uuid>,
        #[arg(long, conflicts_with = "role")]
        permission: Option<String>,
        #[arg(long)]
        role: Option<Uuid>,
        /// Only on objects of this type beneath the object.
        #[arg(long)]
        restrict: Option<String>,
        /// RFC 3339 time after which the grant stops counting.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Revoke a grant by id.
    Delete { id: Uuid },
}

/// `castellan group …`
#[derive(Debug, Subcommand)]
pub enum GroupAction {
    /// List groups.
    List,
    /// Show a group and its members.
    Get { id: Uuid },
    /// Create a group (or get the existing one of that name).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// A user to put in it (repeatable).
        #[arg(long = "user")]
        users: Vec<Uuid>,
        /// A group whose users it contains (repeatable).
        #[arg(long = "member-group")]
        groups: Vec<Uuid>,
    },
    /// Change a group's name or members.
    Update {
        id: Uuid,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "add-user")]
        add_users: Vec<Uuid>,
        #[arg(long = "remove-user")]
        remove_users: Vec<Uuid>,
        #[arg(long = "add-group")]
        add_groups: Vec<Uuid>,
        #[arg(long = "remove-group")]
        remove_groups: Vec<Uuid>,
    },
    /// Delete a group and its grants.
    Delete { id: Uuid },
}

/// `castellan role …`
#[derive(Debug, Subcommand)]
pub enum RoleAction {
    /// List roles (system roles included).
    List,
    /// Show a role.
    Get { id: Uuid },
    /// Create a role. Permissions as `read` or `read:experiment` (restricted).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// A role it inherits (repeatable).
        #[arg(long = "inherit")]
        roles: Vec<Uuid>,
    },
    /// Change a role's permissions or inherited roles.
    Update {
        id: Uuid,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "add-permission")]
        add_permissions: Vec<String>,
        #[arg(long = "remove-permission")]
        remove_permissions: Vec<String>,
        #[arg(long = "add-inherit")]
        add_roles: Vec<Uuid>,
        #[arg(long = "remove-inherit")]
        remove_roles: Vec<Uuid>,
    },
    /// Delete a role and its grants.
    Delete { id: Uuid },
}

/// `castellan member …`
#[derive(Debug, Subcommand)]
pub enum MemberAction {
    /// List the organization's members.
    List,
    /// Invite people by email or existing users by id.
    Invite {
        #[arg(long = "email")]
        emails: Vec<String>,
        #[arg(long = "id")]
        ids: Vec<Uuid>,
        /// Put them in this group (by name; repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Remove members (their group memberships, grants and keys in this org go too).
    Remove {
        #[arg(long = "email")]
        emails: Vec<String>,
        #[arg(long = "id")]
        ids: Vec<Uuid>,
    },
    /// Accept an invitation with its token (prints an API key for the org once). For
    /// an address that already has an account, pass that account's `--api-key`.
    Accept {
        token: String,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
    },
}

/// `castellan access …`
#[derive(Debug, Subcommand)]
pub enum AccessAction {
    /// Why may (or may not) a user do a permission on an object.
    Explain {
        #[arg(long)]
        object_type: String,
        #[arg(long)]
        object_id: Uuid,
        #[arg(long)]
        permission: String,
        /// Default: yourself.
        #[arg(long)]
        user: Option<Uuid>,
        /// Explain creating a child of this type under the object.
        #[arg(long)]
        child: Option<String>,
    },
    /// Every user holding a permission on an object (all pages).
    WhoCan {
        #[arg(long)]
        object_type: String,
        #[arg(long)]
        object_id: Uuid,
        #[arg(long)]
        permission: String,
    },
    /// Every object of a type a user holds a permission on (all pages).
    WhatCan {
        #[arg(long)]
        object_type: String,
        #[arg(long)]
        permission: String,
        #[arg(long)]
        user: Option<Uuid>,
    },
}

/// `castellan audit …`
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Recent audit records, newest first.
    List {
        #[arg(long)]
        event_type: Option<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        actor: Option<Uuid>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Download the whole hash chain and verify every record; fails on any alteration
    /// or deletion.
    Verify {
        /// The head hash recorded by an earlier verify: also detects a truncated tail.
        #[arg(long)]
        expect_head: Option<String>,
    },
    /// Print the whole chain as JSON lines (oldest first).
    Export,
}

fn parse_perm(s: &str) -> Result<Value> {
    match s.split_once(':') {
        Some((p, r)) => Ok(json!({"permission": p, "restrict_object_type": r})),
        None => Ok(json!({"permission": s, "restrict_object_type": null})),
    }
}

fn acl_table(v: &[api::Acl]) -> String {
    let mut t = Table::new(vec!["ID", "OBJECT", "GRANTEE", "GRANT", "EXPIRES"]);
    for a in v {
        let grantee = match (a.user_id, a.group_id) {
            (Some(u), _) => format!("user {u}"),
            (None, Some(g)) => format!("group {g}"),
            _ => "-".into(),
        };
        let grant = match (a.permission, a.role_id) {
            (Some(p), _) => match a.restrict_object_type {
                Some(r) => format!("{p} (only {r})"),
                None => p.to_string(),
            },
            (None, Some(r)) => format!("role {r}"),
            _ => "-".into(),
        };
        t.row(vec![
            a.id.to_string(),
            format!("{} {}", a.object_type, a.object_id),
            grantee,
            grant,
            cell(&a.expires_at),
        ]);
    }
    t.render()
}

fn group_table(v: &[api::Group]) -> String {
    let mut t = Table::new(vec!["ID", "NAME", "USERS", "GROUPS"]);
    for g in v {
        t.row(vec![
            g.id.to_string(),
            g.name.clone(),
            g.member_users.as_ref().map(Vec::len).unwrap_or(0).to_string(),
            g.member_groups.as_ref().map(Vec::len).unwrap_or(0).to_string(),
        ]);
    }
    t.render()
}

fn role_table(v: &[api::Role]) -> String {
    let mut t = Table::new(vec!["ID", "NAME", "SCOPE", "PERMISSIONS"]);
    for r in v {
        let perms: Vec<String> = r
            .member_permissions
            .iter()
            .flatten()
            .map(|p| match p.restrict_object_type {
                Some(t) => format!("{}:{t}", p.permission),
                None => p.permission.to_string(),
            })
            .collect();
        t.row(vec![
            r.id.to_string(),
            r.name.clone(),
            if r.org_id.is_some() { "org".into() } else { "system".into() },
            perms.join(","),
        ]);
    }
    t.render()
}

/// Runs `castellan acl`.
pub async fn acl(c: &Client, json: bool, action: AclAction) -> Result<()> {
    match action {
        AclAction::List { object_type, object_id } => {
            let q = vec![("object_type", object_type), ("object_id", object_id.to_string())];
            let l: api::ListResponse<api::Acl> = c.get("/v1/acl", &q).await?;
            emit(json, &l, |l| acl_table(&l.objects));
        }
        AclAction::ListOrg => {
            let l: Vec<api::Acl> = c.get("/v1/acl/list_org", &[]).await?;
            emit(json, &l, |l| acl_table(l));
        }
        AclAction::Create { object_type, object_id, user, group, permission, role, restrict, expires_at } => {
            if user.is_none() && group.is_none() {
                bail!("pass --user or --group");
            }
            if permission.is_none() && role.is_none() {
                bail!("pass --permission or --role");
            }
            let body = json!({"object_type": object_type, "object_id": object_id, "user_id": user, "group_id": group,
                "permission": permission, "role_id": role, "restrict_object_type": restrict, "expires_at": expires_at});
            let a: api::Acl = c.post("/v1/acl", &body).await?;
            emit(json, &a, |a| acl_table(std::slice::from_ref(a)));
        }
        AclAction::Delete { id } => {
            let a: api::Acl = c.delete(&format!("/v1/acl/{id}")).await?;
            emit(json, &a, |a| format!("revoked acl {}\n", a.id));
        }
    }
    Ok(())
}

/// Runs `castellan group`.
pub async fn group(c: &Client, json: bool, org: Option<String>, action: GroupAction) -> Result<()> {
    match action {
        GroupAction::List => {
            let l: api::ListResponse<api::Group> = c.get("/v1/group", &[]).await?;
            emit(json, &l, |l| group_table(&l.objects));
        }
        GroupAction::Get { id } => {
            let g: api::Group = c.get(&format!("/v1/group/{id}"), &[]).await?;
            emit(json, &g, |g| {
                format!(
                    "{}users:  {:?}\ngroups: {:?}\n",
                    group_table(std::slice::from_ref(g)),
                    g.member_users.clone().unwrap_or_default(),
                    g.member_groups.clone().unwrap_or_default()
                )
            });
        }
        GroupAction::Create { name, description, users, groups } => {
            let body = api::CreateGroup {
                name,
                description,
                member_users: Some(users),
                member_groups: Some(groups),
                org_name: org,
            };
            let g: api::Group = c.post("/v1/group", &body).await?;
            emit(json, &g, |g| group_table(std::slice::from_ref(g)));
        }
        GroupAction::Update { id, name, add_users, remove_users, add_groups, remove_groups } => {
            let body = api::PatchGroup {
                name,
                description: None,
                add_member_users: Some(add_users),
                remove_member_users: Some(remove_users),
                add_member_groups: Some(add_groups),
                remove_member_groups: Some(remove_groups),
            };
            let g: api::Group = c.patch(&format!("/v1/group/{id}"), &body).await?;
            emit(json, &g, |g| group_table(std::slice::from_ref(g)));
        }
        GroupAction::Delete { id } => {
            let g: api::Group = c.delete(&format!("/v1/group/{id}")).await?;
            emit(json, &g, |g| format!("deleted group `{}`\n", g.name));
        }
    }
    Ok(())
}

/// Runs `castellan role`.
pub async fn role(c: &Client, json: bool, org: Option<String>, action: RoleAction) -> Result<()> {
    let perms = |v: &[String]| -> Result<Vec<Value>> { v.iter().map(|p| parse_perm(p)).collect() };
    match action {
        RoleAction::List => {
            let l: api::ListResponse<api::Role> = c.get("/v1/role", &[]).await?;
            emit(json, &l, |l| role_table(&l.objects));
        }
        RoleAction::Get { id } => {
            let r: api::Role = c.get(&format!("/v1/role/{id}"), &[]).await?;
            emit(json, &r, |r| role_table(std::slice::from_ref(r)));
        }
        RoleAction::Create { name, description, permissions, roles } => {
            let body = json!({"name": name, "description": description, "member_permissions": perms(&permissions)?,
                "member_roles": roles, "org_name": org});
            let r: api::Role = c.post("/v1/role", &body).await?;
            emit(json, &r, |r| role_table(std::slice::from_ref(r)));
        }
        RoleAction::Update { id, name, add_permissions, remove_permissions, add_roles, remove_roles } => {
            let body = json!({"name": name, "add_member_permissions": perms(&add_permissions)?,
                "remove_member_permissions": perms(&remove_permissions)?, "add_member_roles": add_roles,
                "remove_member_roles": remove_roles});
            let r: api::Role = c.patch(&format!("/v1/role/{id}"), &body).await?;
            emit(json, &r, |r| role_table(std::slice::from_ref(r)));
        }
        RoleAction::Delete { id } => {
            let r: api::Role = c.delete(&format!("/v1/role/{id}")).await?;
            emit(json, &r, |r| format!("deleted role `{}`\n", r.name));
        }
    }
    Ok(())
}

/// Runs `castellan member`.
pub async fn member(c: &Client, json: bool, org: Option<String>, action: MemberAction) -> Result<()> {
    match action {
        MemberAction::List => {
            let l: api::ListResponse<api::User> = c.get("/v1/user", &[]).await?;
            emit(json, &l, |l| {
                let mut t = Table::new(vec!["ID", "EMAIL", "NAME"]);
                for u in &l.objects {
                    let name = [u.given_name.clone(), u.family_name.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    t.row(vec![u.id.to_string(), cell(&u.email), name]);
                }
                t.render()
            });
        }
        MemberAction::Invite { emails, ids, groups } => {
            let body = json!({"invite_users": {"emails": emails, "ids": ids, "group_names": groups}, "org_name": org});
            let out: api::PatchOrganizationMembersOutput = c.patch("/v1/organization/members", &body).await?;
            emit(json, &out, |o| {
                let mut s = String::new();
                for u in o.added_users.iter().flatten() {
                    s.push_str(&format!("added {} ({})\n", u.email.as_deref().unwrap_or("-"), u.id));
                }
                for i in o.invitations.iter().flatten() {
                    s.push_str(&format!(
                        "invited {}: they accept with `castellan member accept {}`\n",
                        i.email,
                        i.token.as_deref().unwrap_or("?")
                    ));
                }
                s
            });
        }
        MemberAction::Remove { emails, ids } => {
            let body = json!({"remove_users": {"emails": emails, "ids": ids}, "org_name": org});
            let out: api::PatchOrganizationMembersOutput = c.patch("/v1/organization/members", &body).await?;
            emit(json, &out, |o| {
                format!("removed {} member(s)\n", o.removed_users.as_ref().map(Vec::len).unwrap_or(0))
            });
        }
        MemberAction::Accept { token, given_name, family_name } => {
            let body = api::AcceptInvitation { token, given_name, family_name, password: None };
            // An invitation to an address that already has an account is accepted by
            // that account, signed in with its key; a new address needs none.
            let out: api::AcceptedInvitation = if c.has_key() {
                c.post("/api/invitation/accept", &body).await?
            } else {
                c.post_anonymous("/api/invitation/accept", &body).await?
            };
            emit(json, &out, |o| {
                format!("joined organization {}\nAPI key (shown once, store it now):\n{}\n", o.org_id, o.api_key)
            });
        }
    }
    Ok(())
}

async fn all_ids(c: &Client, path: &str, mut q: Vec<(&'static str, String)>) -> Result<Vec<Uuid>> {
    let mut out = Vec::new();
    loop {
        let page: api::IdPage = c.get(path, &q).await?;
        out.extend(page.ids);
        match page.next_cursor {
            Some(next) => {
                q.retain(|(k, _)| *k != "cursor");
                q.push(("cursor", next.to_string()));
            }
            None => return Ok(out),
        }
    }
}

/// Runs `castellan access`.
pub async fn access(c: &Client, json: bool, action: AccessAction) -> Result<()> {
    match action {
        AccessAction::Explain { object_type, object_id, permission, user, child } => {
            let mut q =
                vec![("object_type", object_type), ("object_id", object_id.to_string()), ("permission", permission)];
            if let Some(u) = user {
                q.push(("user_id", u.to_string()));
            }
            if let Some(ch) = child {
                q.push(("child_object_type", ch));
            }
            let e: api::Explanation = c.get("/v1/acl/explain", &q).await?;
            emit(json, &e, |e| {
                let mut s = format!(
                    "{}: user {} {} `{}` on {} {}\n",
                    if e.allowed { "ALLOWED" } else { "DENIED" },
                    e.user_id,
                    if e.allowed { "may" } else { "may not" },
                    e.permission,
                    e.object_type,
                    e.object_id
                );
                for g in &e.grants {
                    s.push_str(&format!(
                        "  via acl {} on {} {}{}{}\n",
                        g.acl_id,
                        g.acl_object_type,
                        g.acl_object_id,
                        if g.group_chain.is_empty() { String::new() } else { format!(", groups {:?}", g.group_chain) },
                        if g.role_chain.is_empty() { String::new() } else { format!(", roles {:?}", g.role_chain) },
                    ));
                }
                for m in &e.near_misses {
                    s.push_str(&format!("  almost: acl {} ({})\n", m.acl_id, m.reason));
                }
                s
            });
        }
        AccessAction::WhoCan { object_type, object_id, permission } => {
            let q =
                vec![("object_type", object_type), ("object_id", object_id.to_string()), ("permission", permission)];
            let ids = all_ids(c, "/v1/acl/who_can", q).await?;
            emit(json, &ids, |ids| ids.iter().map(|i| format!("{i}\n")).collect());
        }
        AccessAction::WhatCan { object_type, permission, user } => {
            let mut q = vec![("object_type", object_type), ("permission", permission)];
            if let Some(u) = user {
                q.push(("user_id", u.to_string()));
            }
            let ids = all_ids(c, "/v1/acl/what_can", q).await?;
            emit(json, &ids, |ids| ids.iter().map(|i| format!("{i}\n")).collect());
        }
    }
    Ok(())
}

async fn whole_chain(c: &Client) -> Result<(Vec<AuditRecord>, Option<(u64, String)>)> {
    let mut records: Vec<AuditRecord> = Vec::new();
    let mut head = None;
    loop {
        let after = records.last().map(|r| r.seq).unwrap_or(0);
        let page: Value =
            c.get("/v1/audit_log/chain", &[("after_seq", after.to_string()), ("limit", "1000".into())]).await?;
        let batch: Vec<AuditRecord> = serde_json::from_value(page["records"].clone())?;
        if head.is_none() {
            head = match (&page["head"]["seq"], &page["head"]["hash"]) {
                (Value::Number(s), Value::String(h)) => {
                    Some((s.as_u64().ok_or_else(|| anyhow!("bad head"))?, h.clone()))
                }
                _ => None,
            };
        }
        let done = batch.len() < 1000;
        eprint!("\rread {} records", records.len() + batch.len());
        records.extend(batch);
        if done {
            eprintln!();
            return Ok((records, head));
        }
    }
}

/// Runs `castellan audit`.
pub async fn audit(c: &Client, json: bool, action: AuditAction) -> Result<()> {
    match action {
        AuditAction::List { event_type, since, actor, limit } => {
            let mut q = vec![("limit", limit.to_string())];
            if let Some(e) = event_type {
                q.push(("event_type", e));
            }
            if let Some(s) = since {
                q.push(("since", s));
            }
            if let Some(a) = actor {
                q.push(("actor_id", a.to_string()));
            }
            let l: api::ListResponse<api::AuditLogEntry> = c.get("/v1/audit_log", &q).await?;
            emit(json, &l, |l| {
                let mut t = Table::new(vec!["SEQ", "TIME", "EVENT", "RESOURCE", "ACTOR"]);
                for e in &l.objects {
                    t.row(vec![
                        e.seq.to_string(),
                        e.created.clone(),
                        e.event_type.clone(),
                        format!("{} {}", e.resource_type, e.resource_name.clone().unwrap_or_default()),
                        e.actor_id.map(|a| a.to_string()).unwrap_or_else(|| "system".into()),
                    ]);
                }
                t.render()
            });
        }
        AuditAction::Verify { expect_head } => {
            let (records, head) = whole_chain(c).await?;
            let mut breaks = verify_chain(&records, head.clone());
            if let (Some(want), Some((_, got))) = (&expect_head, &head) {
                if !records.iter().any(|r| &r.hash == want) {
                    breaks.push(castellan_store::audit::ChainBreak {
                        seq: 0,
                        problem: format!("the expected head `{want}` is not in the chain (truncated or rewritten); head is now `{got}`"),
                    });
                }
            }
            let report = json!({"records": records.len(), "head": head.as_ref().map(|h| json!({"seq": h.0, "hash": h.1})),
                "ok": breaks.is_empty(), "breaks": breaks});
            emit(json, &report, |_| {
                if breaks.is_empty() {
                    format!(
                        "OK: {} records, chain intact; head {}\n",
                        records.len(),
                        head.as_ref().map(|h| format!("{} {}", h.0, h.1)).unwrap_or_else(|| "-".into())
                    )
                } else {
                    breaks.iter().map(|b| format!("BROKEN at record {}: {}\n", b.seq, b.problem)).collect()
                }
            });
            if !breaks.is_empty() {
                bail!("the audit chain does not verify ({} problem(s))", breaks.len());
            }
        }
        AuditAction::Export => {
            let (records, _) = whole_chain(c).await?;
            for r in records {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
    }
    Ok(())
}

/// `castellan service-account …`
#[derive(Debug, Subcommand)]
pub enum ServiceAccountAction {
    /// Create a service account (owners only), optionally with a first token.
    Create {
        name: String,
        /// Mint a first token with this name (printed once).
        #[arg(long)]
        token: Option<String>,
        /// Put it in this group (by name; repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
}

/// `castellan service-token …`
#[derive(Debug, Subcommand)]
pub enum ServiceTokenAction {
    /// List the service tokens of the organizations you own.
    List,
    /// Mint a token for a service account (printed once).
    Create {
        name: String,
        #[arg(long)]
        service_account: Uuid,
        /// RFC 3339 time after which the token stops working.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Revoke a token.
    Delete { id: Uuid },
}

/// `castellan scim-token …`
#[derive(Debug, Subcommand)]
pub enum ScimTokenAction {
    /// List the SCIM tokens of the organizations you own (previews only).
    List,
    /// Mint a SCIM provisioning token for your identity provider (printed once).
    Create {
        name: String,
        /// RFC 3339 time after which the token stops working.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Revoke a SCIM token.
    Revoke { id: Uuid },
}

/// Runs `castellan scim-token`.
pub async fn scim_token(c: &Client, json: bool, org: Option<String>, action: ScimTokenAction) -> Result<()> {
    let table = |v: &[api::ScimToken]| {
        let mut t = Table::new(vec!["ID", "NAME", "PREVIEW", "CREATED", "EXPIRES", "LAST USED"]);
        for k in v {
            t.row(vec![
                k.id.to_string(),
                k.name.clone(),
                k.preview_name.clone(),
                cell(&k.created),
                cell(&k.expires_at),
                cell(&k.last_used),
            ]);
        }
        t.render()
    };
    match action {
        ScimTokenAction::List => {
            let query: Vec<(&str, String)> = org.map(|o| ("org_name", o)).into_iter().collect();
            let l: api::ListResponse<api::ScimToken> = c.get("/v1/scim_token", &query).await?;
            emit(json, &l, |l| table(&l.objects));
        }
        ScimTokenAction::Create { name, expires_at } => {
            let body = api::CreateScimToken { name, org_name: org, expires_at };
            let t: api::CreateScimTokenOutput = c.post("/v1/scim_token", &body).await?;
            emit(json, &t, |t| {
                format!(
                    "{}SCIM token (shown once, store it now; base URL: <server>/scim/v2):\n{}\n",
                    table(std::slice::from_ref(&t.scim_token)),
                    t.key
                )
            });
        }
        ScimTokenAction::Revoke { id } => {
            let t: api::ScimToken = c.delete(&format!("/v1/scim_token/{id}")).await?;
            emit(json, &t, |t| format!("revoked SCIM token `{}`\n", t.name));
        }
    }
    Ok(())
}

/// Runs `castellan service-account`.
pub async fn service_account(c: &Client, json: bool, org: Option<String>, action: ServiceAccountAction) -> Result<()> {
    match action {
        ServiceAccountAction::Create { name, token, groups } => {
            // The account first, then its token through `/v1/service_token`: creating
            // with `token_name` (create-and-mint) is refused to API keys, which is what
            // the CLI holds.
            let body = json!({"invite_users": {"service_accounts": [{"name": name}], "group_names": groups},
                "org_name": org});
            let mut out: api::PatchOrganizationMembersOutput = c.patch("/v1/organization/members", &body).await?;
            if let (Some(token), Some(account)) = (token, out.added_users.as_mut().and_then(|a| a.first_mut())) {
                let body = api::CreateServiceToken {
                    name: token,
                    service_account_id: account.id,
                    org_name: org,
                    expires_at: None,
                };
                let t: api::CreateServiceTokenOutput = c.post("/v1/service_token", &body).await?;
                account.api_key = Some(t.key);
                account.token_name = Some(t.service_token.name);
            }
            emit(json, &out, |o| {
                let mut s = String::new();
                for u in o.added_users.iter().flatten() {
                    s.push_str(&format!("created service account {}\n", u.id));
                    if let Some(k) = &u.api_key {
                        s.push_str(&format!("service token (shown once, store it now):\n{k}\n"));
                    }
                }
                s
            });
        }
    }
    Ok(())
}

/// Runs `castellan service-token`.
pub async fn service_token(c: &Client, json: bool, org: Option<String>, action: ServiceTokenAction) -> Result<()> {
    let table = |v: &[api::ServiceToken]| {
        let mut t = Table::new(vec!["ID", "NAME", "PREVIEW", "ACCOUNT", "EXPIRES", "LAST USED"]);
        for k in v {
            t.row(vec![
                k.id.to_string(),
                k.name.clone(),
                k.preview_name.clone(),
                cell(&k.service_account_name),
                cell(&k.expires_at),
                cell(&k.last_used),
            ]);
        }
        t.render()
    };
    match action {
        ServiceTokenAction::List => {
            let l: api::ListResponse<api::ServiceToken> = c.get("/v1/service_token", &[]).await?;
            emit(json, &l, |l| table(&l.objects));
        }
        ServiceTokenAction::Create { name, service_account, expires_at } => {
            let body = api::CreateServiceToken { name, service_account_id: service_account, org_name: org, expires_at };
            let t: api::CreateServiceTokenOutput = c.post("/v1/service_token", &body).await?;
            emit(json, &t, |t| {
                format!(
                    "{}service token (shown once, store it now):\n{}\n",
                    table(std::slice::from_ref(&t.service_token)),
                    t.key
                )
            });
        }
        ServiceTokenAction::Delete { id } => {
            let t: api::ServiceToken = c.delete(&format!("/v1/service_token/{id}")).await?;
            emit(json, &t, |t| format!("revoked service token `{}`\n", t.name));
        }
    }
    Ok(())
}
