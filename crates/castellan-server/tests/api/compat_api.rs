//! Compatibility with the official `braintrust-api` Python client (0.6.0, from PyPI):
//! projects, organizations, members, users, groups, roles, ACLs, API keys and env vars driven
//! through the unmodified client against a real server, on both backends.

use crate::common;

use common::{python, run_python, Backend, TestApp};

on_both_backends!(
    #[ignore = "needs the official Braintrust clients: scripts/test runs it"]
    the_official_python_client_drives_the_admin_api
);

const SCRIPT: &str = r#"
import os
import braintrust_api
from braintrust_api import Braintrust

URL = os.environ["CASTELLAN_URL"]
c = Braintrust(api_key=os.environ["OWNER_KEY"], base_url=URL, max_retries=0)
other_user = os.environ["OTHER_USER"]

# Projects: create-or-get, retrieve, update, auto-paginated list, delete.
p = c.projects.create(name="compat")
assert c.projects.create(name="compat").id == p.id, "create returns the existing project"
assert c.projects.retrieve(p.id).name == "compat"
up = c.projects.update(p.id, settings={"comparison_key": "input"})
assert up.settings.comparison_key == "input", up
made = [c.projects.create(name=f"page-{i}").id for i in range(5)]
seen = [x.id for x in c.projects.list(limit=2)]
assert set(made) <= set(seen) and len(seen) == len(set(seen)) == 6, seen
assert [x.id for x in c.projects.list(project_name="page-3")] == [made[3]]
assert c.projects.delete(made[0]).id == made[0]
try:
    c.projects.retrieve(made[0])
    raise AssertionError("deleted project still readable")
except braintrust_api.NotFoundError:
    pass

# Organizations.
orgs = list(c.organizations.list())
assert len(orgs) == 1 and orgs[0].name == "acme"
org = orgs[0]
assert c.organizations.update(org.id, api_url="https://api.acme.example").api_url == "https://api.acme.example"
assert c.organizations.retrieve(org.id).id == org.id

# Members and users.
out = c.organizations.members.update(invite_users={"ids": [other_user], "group_name": "Engineers"})
assert out.status == "success" and out.org_id == org.id, out
emails = sorted(u.email for u in c.users.list())
assert emails == ["ada@acme.example", "zed@zeta.example"], emails
assert c.users.retrieve(other_user).email == "zed@zeta.example"

# Groups.
g = c.groups.create(name="compat-group", member_users=[other_user], description="d")
assert g.member_users == [other_user]
assert c.groups.create(name="compat-group").id == g.id
g = c.groups.update(g.id, remove_member_users=[other_user], name="compat-team")
assert g.member_users == [] and g.name == "compat-team"
g = c.groups.replace(name="compat-team", member_users=[other_user])
assert g.member_users == [other_user]
assert g.id in [x.id for x in c.groups.list()]
assert [x.name for x in c.groups.list(group_name="Owners")] == ["Owners"]
assert c.groups.retrieve(g.id).name == "compat-team"

# Roles.
owner_role = list(c.roles.list(role_name="Owner"))
assert len(owner_role) == 1 and owner_role[0].org_id is None
r = c.roles.create(name="compat-role", member_permissions=[{"permission": "read", "restrict_object_type": None}])
r = c.roles.update(r.id, add_member_permissions=[{"permission": "update", "restrict_object_type": "project"}])
assert sorted((m.permission, m.restrict_object_type) for m in r.member_permissions) == [("read", None), ("update", "project")]
assert c.roles.retrieve(r.id).name == "compat-role"
r2 = c.roles.replace(name="compat-role", member_permissions=[{"permission": "read"}])
assert len(r2.member_permissions) == 1

# ACLs.
a = c.acls.create(object_id=p.id, object_type="project", group_id=g.id, permission="read")
assert c.acls.create(object_id=p.id, object_type="project", group_id=g.id, permission="read").id == a.id
assert a.id in [x.id for x in c.acls.list(object_id=p.id, object_type="project")]
assert c.acls.retrieve(a.id).permission == "read"
res = c.acls.batch_update(
    add_acls=[{"object_id": p.id, "object_type": "project", "group_id": g.id, "role_id": r.id}],
    remove_acls=[{"object_id": p.id, "object_type": "project", "group_id": g.id, "permission": "read"}],
)
assert len(res.added_acls) == 1 and len(res.removed_acls) == 1, res
gone = c.acls.find_and_delete(object_id=p.id, object_type="project", group_id=g.id, role_id=r.id)
assert gone.role_id == r.id
b = c.acls.create(object_id=org.id, object_type="org_project", user_id=other_user, permission="read")
assert c.acls.delete(b.id).id == b.id
try:
    c.acls.create(object_id=p.id, object_type="project", permission="read")
    raise AssertionError("an ACL without a grantee was accepted")
except braintrust_api.BadRequestError:
    pass

# API keys.
k = c.api_keys.create(name="compat-key")
assert k.key.startswith("sk-") and k.preview_name.endswith(k.key[-4:])
c2 = Braintrust(api_key=k.key, base_url=URL, max_retries=0)
assert len(list(c2.projects.list())) >= 1
assert c.api_keys.retrieve(k.id).name == "compat-key"
assert k.id in [x.id for x in c.api_keys.list()]
c.api_keys.delete(k.id)
try:
    list(c2.projects.list())
    raise AssertionError("a revoked key still works")
except braintrust_api.AuthenticationError:
    pass

# Environment variables: the value goes in, never comes back.
ev = c.env_vars.create(name="OPENAI_API_KEY", object_type="project", object_id=p.id, value="sk-compat-0123456789abcdef")
assert ev.object_type == "project" and ev.object_id == p.id, ev
assert "0123456789" not in ev.model_dump_json() and ev.preview_secret == "sk-...cdef", ev
assert c.env_vars.create(name="OPENAI_API_KEY", object_type="project", object_id=p.id).id == ev.id
ov = c.env_vars.create(name="REGION", object_type="organization", object_id=org.id, value="eu-west-1")
assert c.env_vars.retrieve(ev.id).name == "OPENAI_API_KEY"
listed = c.env_vars.list(object_type="project", object_id=p.id)
assert [x.id for x in listed.objects] == [ev.id], listed
assert sorted(x.name for x in c.env_vars.list().objects) == ["OPENAI_API_KEY", "REGION"]
assert [x.id for x in c.env_vars.list(env_var_name="REGION").objects] == [ov.id]
renamed = c.env_vars.update(ev.id, name="OPENAI_KEY")
assert renamed.name == "OPENAI_KEY" and renamed.preview_secret == ev.preview_secret, renamed
rep = c.env_vars.replace(name="REGION", object_type="organization", object_id=org.id, value="us-east-1")
assert rep.id == ov.id and rep.secret_updated_at != ov.secret_updated_at, rep
assert c.env_vars.delete(ev.id).id == ev.id
try:
    c.env_vars.retrieve(ev.id)
    raise AssertionError("deleted env var still readable")
except braintrust_api.NotFoundError:
    pass

# Project tags.
t = c.project_tags.create(project_id=p.id, name="good", color="green")
assert c.project_tags.create(project_id=p.id, name="good").id == t.id
assert c.project_tags.update(t.id, description="looks right").description == "looks right"
assert [x.id for x in c.project_tags.list(project_id=p.id)] == [t.id]
assert c.project_tags.replace(project_id=p.id, name="good", color="blue").color == "blue"
assert c.project_tags.retrieve(t.id).name == "good"
assert c.project_tags.delete(t.id).id == t.id

# AI secrets: sealed, previewed, deleted by name.
sec = c.ai_secrets.create(name="ANTHROPIC_API_KEY", type="anthropic", secret="sk-ant-compat-0123456789abcdef")
assert sec.preview_secret == "sk-...cdef" and "0123456789" not in sec.model_dump_json(), sec
assert c.ai_secrets.create(name="ANTHROPIC_API_KEY").id == sec.id
assert c.ai_secrets.replace(name="ANTHROPIC_API_KEY", type="anthropic", metadata={"models": ["claude"]}).preview_secret == "sk-...cdef"
assert [x.id for x in c.ai_secrets.list(ai_secret_type="anthropic")] == [sec.id]
assert c.ai_secrets.update(sec.id, secret="sk-ant-rotated-9999999999999999wxyz").preview_secret == "sk-...wxyz"
assert c.ai_secrets.retrieve(sec.id).name == "ANTHROPIC_API_KEY"
assert c.ai_secrets.find_and_delete(name="ANTHROPIC_API_KEY").id == sec.id
try:
    c.ai_secrets.retrieve(sec.id)
    raise AssertionError("deleted ai secret still readable")
except braintrust_api.NotFoundError:
    pass

# Project scores, span iframes, views.
sc = c.project_scores.create(project_id=p.id, name="tone", score_type="minimum", categories=["politeness", "clarity"])
assert sc.categories == ["politeness", "clarity"], sc
assert c.project_scores.create(project_id=p.id, name="tone", score_type="slider").id == sc.id
assert c.project_scores.update(sc.id, description="worst of").description == "worst of"
assert [x.id for x in c.project_scores.list(project_id=p.id)] == [sc.id]
assert c.project_scores.replace(project_id=p.id, name="tone", score_type="maximum", categories=["clarity"]).score_type == "maximum"
try:
    c.project_scores.create(project_id=p.id, name="bad", score_type="categorical", categories={"a": 1})
    raise AssertionError("a categorical score took weights")
except braintrust_api.BadRequestError:
    pass
assert c.project_scores.delete(sc.id).id == sc.id
fr = c.span_iframes.create(project_id=p.id, name="viz", url="https://viz.example")
assert c.span_iframes.update(fr.id, name="viz2").name == "viz2"
assert c.span_iframes.update(fr.id, name="viz").name == "viz"
assert [x.id for x in c.span_iframes.list()] == [fr.id]
assert c.span_iframes.replace(project_id=p.id, name="viz", url="https://viz2.example").url == "https://viz2.example"
assert c.span_iframes.retrieve(fr.id).name == "viz"
assert c.span_iframes.delete(fr.id).id == fr.id
vw = c.views.create(object_type="project", object_id=p.id, view_type="experiments", name="mine")
assert c.views.retrieve(vw.id, object_type="project", object_id=p.id).name == "mine"
assert c.views.update(vw.id, object_type="project", object_id=p.id, name="ours").name == "ours"
assert [x.id for x in c.views.list(object_type="project", object_id=p.id)] == [vw.id]
assert c.views.delete(vw.id, object_type="project", object_id=p.id).id == vw.id

# The invited engineer: may create projects, may not manage access.
e = Braintrust(api_key=os.environ["OTHER_KEY"], base_url=URL, max_retries=0, default_headers={"x-bt-org-name": "acme"})
e.projects.create(name="by-engineer", org_name="acme")
try:
    e.acls.create(object_id=p.id, object_type="project", user_id=other_user, permission="delete")
    raise AssertionError("an engineer managed access")
except braintrust_api.PermissionDeniedError:
    pass
try:
    e.env_vars.create(name="MINE", object_type="organization", object_id=org.id, value="x")
    raise AssertionError("an engineer set an org-wide env var")
except braintrust_api.PermissionDeniedError:
    pass

# Removing the member takes their groups with them; cleanup.
c.organizations.members.update(remove_users={"ids": [other_user]})
assert c.groups.retrieve(g.id).member_users == []
c.groups.delete(g.id)
c.roles.delete(r.id)
try:
    c.groups.retrieve(g.id)
    raise AssertionError("deleted group still readable")
except braintrust_api.NotFoundError:
    pass
print("COMPAT OK")
"#;

async fn the_official_python_client_drives_the_admin_api(b: Backend) {
    let Some(py) = python() else { return };
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let other = app.bootstrap("zeta", "zed@zeta.example").await;
    let (_, me) = app.post("/api/self/me", &other, serde_json::json!({})).await;
    let other_user = me["id"].as_str().expect("id").to_owned();
    // zed joins acme the only way an existing account can: invited, then accepting
    // while signed in; the key it gets acts in acme only. The script then puts the
    // member in Engineers through the client's `invite_users.ids`.
    let invite = serde_json::json!({"invite_users": {"emails": ["zed@zeta.example"]}});
    let (s, inv) = app.patch("/v1/organization/members", &owner, invite).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{inv}");
    let token = inv["invitations"][0]["token"].as_str().expect("token");
    let (s, acc) = app.post("/api/invitation/accept", &other, serde_json::json!({"token": token})).await;
    assert_eq!(s, reqwest::StatusCode::OK, "{acc}");
    let other = acc["api_key"].as_str().expect("acme key").to_owned();
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_python(
            &py,
            SCRIPT,
            &[
                ("CASTELLAN_URL", base.as_str()),
                ("OWNER_KEY", owner.as_str()),
                ("OTHER_KEY", other.as_str()),
                ("OTHER_USER", other_user.as_str()),
            ],
        )
    })
    .await
    .expect("join");
    assert!(out.contains("COMPAT OK"), "{out}");
}
