//! The newest official Python client: the generated REST client of the `braintrust`
//! 0.48.1 wheel (`braintrust.api.BraintrustOpenApiClient`) drives every operation
//! the newest wire model changed (`braintrust-spec-diff.md`, and `wire_model.rs` for
//! the same rows over plain HTTP), on both backends. Every answer is checked against
//! the return type the generated method declares (the wheel's TypedDict models:
//! required keys present, known keys of the declared types), and every field this
//! server declares beyond those models must be described as a Castellan extension.

use crate::common;
use crate::support;

use common::{python, run_python, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    #[ignore = "needs the official Braintrust clients: scripts/test runs it"]
    the_newest_official_client_reads_and_writes_the_newest_wire_model
);

const SCRIPT: &str = r#"
import collections.abc
import datetime
import importlib
import json
import os
import types
import typing
import urllib.request

from braintrust.api import BraintrustHTTPError, BraintrustOpenApiClient

URL = os.environ["CASTELLAN_URL"]
MODELS = "braintrust.api._generated.models."


def model(module, name):
    return getattr(importlib.import_module(MODELS + module), name)


def check(value, tp, where):
    """Checks a JSON value against a type of the wheel's models: TypedDicts (required
    keys present, known keys of the right type), unions, literals, sequences,
    mappings and scalars."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any:
        return
    if tp is type(None):
        assert value is None, f"{where}: {value!r} is not null"
    elif isinstance(tp, type) and typing.is_typeddict(tp):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object ({tp.__name__})"
        missing = tp.__required_keys__ - value.keys()
        assert not missing, f"{where}: {tp.__name__} lacks required {sorted(missing)}: {value}"
        hints = typing.get_type_hints(tp)
        for k, v in value.items():
            if k in hints:
                check(v, hints[k], f"{where}.{k}")
    elif origin in (typing.Union, types.UnionType):
        errors = []
        for a in args:
            try:
                return check(value, a, where)
            except AssertionError as e:
                errors.append(str(e))
        raise AssertionError(f"{where}: {value!r} matches none of {args}: {errors}")
    elif origin is typing.Literal:
        assert value in args, f"{where}: {value!r} is not one of {args}"
    elif origin in (collections.abc.Sequence, list):
        assert isinstance(value, list), f"{where}: {value!r} is not an array"
        for i, v in enumerate(value):
            check(v, args[0], f"{where}[{i}]")
    elif origin in (collections.abc.Mapping, dict):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        for k, v in value.items():
            check(v, args[1], f"{where}[{k!r}]")
    elif tp is bool:
        assert isinstance(value, bool), f"{where}: {value!r} is not a boolean"
    elif tp is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an integer"
    elif tp is float:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: {value!r} is not a number"
    elif tp is str:
        assert isinstance(value, str), f"{where}: {value!r} is not a string"
    else:
        raise AssertionError(f"{where}: no check for {tp!r}")


class Checked:
    """A resource of the wheel's client whose every answer is checked against the
    return type its generated method declares."""

    def __init__(self, api):
        self._api = api

    def __getattr__(self, name):
        method = getattr(self._api, name)
        returns = typing.get_type_hints(getattr(type(self._api), name))["return"]

        def call(*args, **kwargs):
            out = method(*args, **kwargs)
            check(out, returns, f"{type(self._api).__name__}.{name}")
            return out

        return call


class Client:
    def __init__(self, key):
        raw = BraintrustOpenApiClient(api_key=key, api_url=URL, enable_sdk_retries=False)
        for resource in ["api_keys", "organizations", "service_tokens", "projects", "experiments", "datasets",
                         "prompts", "functions", "groups", "roles", "acls", "project_tags", "project_groups",
                         "ai_secrets", "project_scores", "span_iframes", "views", "agents", "mcp_servers",
                         "dataset_snapshots", "simulated_users", "environments", "env_vars",
                         "project_automations", "org_automations"]:
            setattr(self, resource, Checked(getattr(raw, resource)))


def refused(status, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except BraintrustHTTPError as e:
        assert e.status_code == status, f"{status} expected, got {e.status_code}: {e.response_body}"
        return json.loads(e.response_body)
    raise AssertionError(f"{status} expected, the call succeeded")


def parse(t):
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))


owner = Client(os.environ["OWNER_KEY"])
admin = Client(os.environ["ADMIN_TOKEN"])
member = os.environ["MEMBER_ID"]
outsider = os.environ["OUTSIDER_ID"]

# 1. API keys: expires_at in every answer.
keys = owner.api_keys.get_api_key()["objects"]
assert keys and all("expires_at" in k for k in keys), keys
short = next(k for k in keys if k["name"] == "short")
assert parse(short["expires_at"]) > datetime.datetime.now(datetime.timezone.utc), short
assert "expires_at" in owner.api_keys.get_api_key_id(short["id"])
assert owner.api_keys.delete_api_key_id(short["id"])["expires_at"] == short["expires_at"]
tokens = owner.service_tokens.get_service_token()["objects"]
assert tokens and all("expires_at" in t for t in tokens), tokens

# 2. Organizations: archived_at, deleted_at, the image_rendering_mode enum.
orgs = owner.organizations.get_organization()["objects"]
org = orgs[0]["id"]
for o in [orgs[0], owner.organizations.get_organization_id(org)]:
    assert o["archived_at"] is None and o["deleted_at"] is None, o
o = owner.organizations.patch_organization_id(org, body={"image_rendering_mode": "click_to_load"})
assert o["image_rendering_mode"] == "click_to_load", o
err = refused(400, owner.organizations.patch_organization_id, org, body={"image_rendering_mode": "sepia"})
assert err["code"] == "invalid_body", err

# 3. A project's creator.
p = owner.projects.post_project(body={"name": "wheel"})
p = owner.projects.patch_project_id(p["id"], body={"user_id": member})
assert p["user_id"] == member, p
err = refused(400, owner.projects.patch_project_id, p["id"], body={"user_id": outsider})
assert err["code"] == "invalid_body", err
pid = p["id"]

# 4. internal_metadata on experiments.
meta = {"dataset_filter": {"filter": {"op": "eq", "left": {"op": "ident", "name": ["metadata", "split"]},
                                      "right": {"op": "literal", "value": "test"}}}}
e = owner.experiments.post_experiment(body={"project_id": pid, "name": "a", "internal_metadata": meta})
assert e["internal_metadata"] == meta, e
assert owner.experiments.get_experiment_id(e["id"])["internal_metadata"] == meta
listed = owner.experiments.get_experiment(project_id=pid)["objects"]
assert [x["internal_metadata"] for x in listed] == [meta], listed
e = owner.experiments.patch_experiment_id(e["id"], body={"internal_metadata": {"dataset_filter": None}})
assert e["internal_metadata"] == {"dataset_filter": None}, e
exp = e["id"]

# 5. GET fetch with max_xact_id / max_root_span_id, as POST fetch reads them.
ds = owner.datasets.post_dataset(body={"project_id": pid, "name": "d"})["id"]
for insert, post_fetch, get_fetch, oid in [
    (owner.experiments.post_experiment_id_insert, owner.experiments.post_experiment_id_fetch,
     owner.experiments.get_experiment_id_fetch, exp),
    (owner.datasets.post_dataset_id_insert, owner.datasets.post_dataset_id_fetch,
     owner.datasets.get_dataset_id_fetch, ds),
]:
    insert(oid, body={"events": [{"id": "r", "input": 1, "expected": {"a": 1}}]})
    first = post_fetch(oid)["events"][0]["_xact_id"]
    insert(oid, body={"events": [{"id": "r", "input": 2, "expected": {"a": 1}}]})
    got = get_fetch(oid, max_xact_id=first, max_root_span_id="ignored")
    assert [r["input"] for r in got["events"]] == [1], got
    assert got["events"] == post_fetch(oid, body={"max_xact_id": first, "max_root_span_id": "ignored"})["events"]
    assert [r["input"] for r in get_fetch(oid)["events"]] == [2]

# 6. Summaries: improvements and regressions always integers, diff a number or absent.
owner.experiments.post_experiment_id_insert(exp, body={"events": [{"id": "t", "input": 9, "scores": {"acc": 1}}]})
alone = owner.experiments.get_experiment_id_summarize(exp, summarize_scores=True)
assert alone["scores"]["acc"]["improvements"] == 0 and "diff" not in alone["scores"]["acc"], alone
b = owner.experiments.post_experiment(body={"project_id": pid, "name": "b"})["id"]
owner.experiments.post_experiment_id_insert(b, body={"events": [{"id": "t", "input": 9, "scores": {"acc": 0.25}}]})
cmp = owner.experiments.get_experiment_id_summarize(b, summarize_scores=True, comparison_experiment_id=exp)
assert cmp["scores"]["acc"]["regressions"] == 1 and cmp["scores"]["acc"]["diff"] == -0.75, cmp

# 7. Feedback: expected is any JSON value.
for expected in ["a string", [1, 2], None, 3.5]:
    out = owner.experiments.post_experiment_id_feedback(exp, body={"feedback": [{"id": "r", "expected": expected, "source": "api"}]})
    assert out == {"status": "success"}, out
    row = next(r for r in owner.experiments.post_experiment_id_fetch(exp)["events"] if r["id"] == "r")
    assert row["expected"] == expected, row
owner.datasets.post_dataset_id_feedback(ds, body={"feedback": [{"id": "r", "metadata": {"k": "v"}}]})
err = refused(400, owner.experiments.post_experiment_id_feedback, exp, body={"feedback": [{"id": "r", "source": "robot"}]})
assert err["code"] == "invalid_body", err

# 8. Bodies the client may omit: sent without one.
g = owner.groups.post_group(body={"name": "wheel-group"})
r = owner.roles.post_role(body={"name": "wheel-role"})
pr = owner.prompts.post_prompt(body={"project_id": pid, "name": "pr", "slug": "pr"})
fn = owner.functions.post_function(body={"project_id": pid, "name": "f", "slug": "f",
                                         "function_data": {"type": "global", "name": "Levenshtein"}})
t = owner.project_tags.post_project_tag(body={"project_id": pid, "name": "t"})
for patch, get, oid in [
    (owner.organizations.patch_organization_id, owner.organizations.get_organization_id, org),
    (owner.projects.patch_project_id, owner.projects.get_project_id, pid),
    (owner.experiments.patch_experiment_id, owner.experiments.get_experiment_id, exp),
    (owner.datasets.patch_dataset_id, owner.datasets.get_dataset_id, ds),
    (owner.groups.patch_group_id, owner.groups.get_group_id, g["id"]),
    (owner.roles.patch_role_id, owner.roles.get_role_id, r["id"]),
    (owner.prompts.patch_prompt_id, owner.prompts.get_prompt_id, pr["id"]),
    (owner.functions.patch_function_id, owner.functions.get_function_id, fn["id"]),
    (owner.project_tags.patch_project_tag_id, owner.project_tags.get_project_tag_id, t["id"]),
]:
    before = get(oid)
    assert patch(oid) == before, f"an absent body changed {oid}"
assert owner.acls.acl_batch_update() == {"added_acls": [], "removed_acls": []}
assert owner.organizations.patch_organization_members()["status"] == "success"
assert owner.experiments.post_experiment_id_fetch(exp)["events"]
assert owner.datasets.post_dataset_id_fetch(ds)["events"]

# 9. Create-and-mint: not with a user API key; with an owner's service token, dated.
mint = {"invite_users": {"service_accounts": [{"name": "wheel-bot", "token_name": "first",
                                               "token_expires_in_seconds": 3600}]}}
err = refused(403, owner.organizations.patch_organization_members, body=mint)
assert "not a user API key" in err["message"], err
out = admin.organizations.patch_organization_members(body=mint)
added = out["added_users"][0]
assert added["api_key"].startswith("bt-st-") and added["token_name"] == "first", out
minted = owner.service_tokens.get_service_token(service_token_name="first")["objects"]
left = parse(minted[0]["expires_at"]) - datetime.datetime.now(datetime.timezone.utc)
assert datetime.timedelta(minutes=59) < left <= datetime.timedelta(hours=1), minted
assert [o["id"] for o in Client(added["api_key"]).organizations.get_organization()["objects"]] == [org]
plain = owner.organizations.patch_organization_members(
    body={"invite_users": {"service_accounts": [{"name": "plain-bot"}]}})
assert plain["added_users"][0].get("api_key") is None, plain

# 10. Environments: prompts are deployed to them by slug, and read back through them.
prod = owner.environments.create_environment(body={"name": "Production", "slug": "production"})
assert prod["slug"] == "production" and prod["org_id"] == org, prod
owner.environments.create_environment(body={"name": "Staging", "slug": "staging", "description": "pre-prod"})
assert sorted(e["slug"] for e in owner.environments.list_environments()["objects"]) == ["production", "staging"]
assert owner.environments.get_environment(prod["id"])["name"] == "Production"
assert owner.environments.update_environment(prod["id"], body={"description": "live"})["description"] == "live"
err = refused(400, owner.prompts.post_prompt, body={"project_id": pid, "name": "Env", "slug": "env",
                                                     "environment_slugs": ["nowhere"]})
assert "nowhere" in err["message"], err
v1 = owner.prompts.post_prompt(body={"project_id": pid, "name": "Env", "slug": "env", "description": "one",
                                     "environment_slugs": ["production"]})
assert v1["environment_slugs"] == ["production"], v1
pr = owner.prompts.put_prompt(body={"project_id": pid, "name": "Env", "slug": "env", "description": "two",
                                    "environment_slugs": ["staging"]})
assert owner.prompts.get_prompt_id(pr["id"], environment="production")["description"] == "one"
assert owner.prompts.get_prompt_id(pr["id"], environment="staging")["description"] == "two"
assert [p["description"] for p in owner.prompts.get_prompt(slug="env", environment="production")["objects"]] == ["one"]
err = refused(404, owner.prompts.get_prompt_id, pr["id"], environment="qa")
assert err["message"] == "no environment `qa`", err
refused(404, owner.functions.get_function_id, fn["id"], environment="production")
err = refused(400, owner.prompts.get_prompt_id, pr["id"], environment="production", version=pr["_xact_id"])
assert err["code"] == "invalid_parameter", err

# 12. Project groups, and grants on every one of the seventeen object types.
pg = owner.project_groups.post_project_group(body={"name": "wheel-group", "description": "d"})
assert pg["member_projects"] == [], pg
pg = owner.project_groups.patch_project_group_id(pg["id"], body={"add_member_projects": [pid]})
assert pg["member_projects"] == [pid], pg
assert owner.project_groups.post_project_group(body={"name": "wheel-group"})["id"] == pg["id"]
assert [g["id"] for g in owner.project_groups.get_project_group(project_group_name="wheel-group")["objects"]] == [pg["id"]]
inside = owner.projects.post_project(body={"name": "wheel-inside", "project_group_name": "wheel-group"})["id"]
assert sorted(owner.project_groups.get_project_group_id(pg["id"])["member_projects"]) == sorted([pid, inside])
assert owner.project_groups.put_project_group(body={"name": "wheel-group", "description": "e"})["description"] == "e"
role = owner.roles.post_role(body={"name": "wheel-role", "member_permissions": [
    {"permission": "read", "restrict_object_type": t} for t in ["project_group", "project_group_projects", "ai_secret", "org_ai_secret", "org_account"]]})
group = owner.groups.post_group(body={"name": "wheel-grantees"})["id"]
targets = {
    "organization": org, "org_member": org, "org_project": org, "org_audit_logs": org, "org_ai_secret": org,
    "org_account": org, "group": group, "role": role["id"], "project": pid, "project_log": pid,
    "experiment": exp, "dataset": ds, "prompt": pr["id"], "project_group": pg["id"],
    "project_group_projects": pg["id"],
    "ai_secret": owner.ai_secrets.post_ai_secret(body={"name": "WHEEL_KEY", "type": "openai"})["id"],
}
for object_type, object_id in targets.items():
    a = owner.acls.post_acl(body={"object_type": object_type, "object_id": object_id, "group_id": group, "permission": "read"})
    assert a["object_type"] == object_type, a
    listed = owner.acls.get_acl(object_type=object_type, object_id=object_id)["objects"]
    assert a["id"] in [x["id"] for x in listed], (object_type, listed)
    owner.acls.delete_acl_id(a["id"])
err = refused(404, owner.acls.post_acl, body={"object_type": "ai_secret", "object_id": pid, "group_id": group, "permission": "read"})
assert err["code"] == "not_found", err
session = json.load(urllib.request.urlopen(urllib.request.Request(
    URL + "/v1/prompt_session", data=json.dumps({"project_id": pid, "name": "wheel-session"}).encode(),
    headers={"Authorization": "Bearer " + os.environ["OWNER_KEY"], "Content-Type": "application/json"})))
a = owner.acls.post_acl(body={"object_type": "prompt_session", "object_id": session["id"], "group_id": group, "permission": "read"})
assert a["object_type"] == "prompt_session", a
assert owner.project_groups.delete_project_group_id(pg["id"])["id"] == pg["id"]
refused(404, owner.project_groups.get_project_group_id, pg["id"])

# 13. Administration objects, each through the wheel's own methods.
sec = owner.ai_secrets.post_ai_secret(body={"name": "OPENAI_API_KEY", "type": "openai", "secret": "sk-wheel-0123456789abcdefghijkl",
                                            "metadata": {"api_base": "https://api.openai.com"}})
assert sec["preview_secret"] == "sk-...ijkl" and "secret" not in sec, sec
kept = owner.ai_secrets.put_ai_secret(body={"name": "OPENAI_API_KEY", "type": "openai"})
assert kept["id"] == sec["id"] and kept["preview_secret"] == "sk-...ijkl", kept
listed = [s["name"] for s in owner.ai_secrets.get_ai_secret(ai_secret_type=["openai", "anthropic"])["objects"]]
assert sorted(listed) == ["OPENAI_API_KEY", "WHEEL_KEY"], listed
assert owner.ai_secrets.patch_ai_secret_id(sec["id"], body={"name": "OPENAI_KEY"})["name"] == "OPENAI_KEY"
assert owner.ai_secrets.get_ai_secret_id(sec["id"])["preview_secret"] == "sk-...ijkl"
assert owner.ai_secrets.delete_ai_secret(body={"name": "OPENAI_KEY"})["id"] == sec["id"]
refused(404, owner.ai_secrets.get_ai_secret_id, sec["id"])
score = owner.project_scores.post_project_score(body={"project_id": pid, "name": "quality", "score_type": "categorical",
                                                      "categories": [{"name": "good", "value": 1}, {"name": "bad", "value": 0}]})
assert score["categories"][0] == {"name": "good", "value": 1}, score
err = refused(400, owner.project_scores.post_project_score, body={"project_id": pid, "name": "w", "score_type": "weighted",
                                                                  "categories": ["not", "weights"]})
assert "weighted" in err["message"], err
online = owner.project_scores.put_project_score(body={"project_id": pid, "name": "online", "score_type": "online",
                                                      "config": {"online": {"sampling_rate": 0.1, "scorers": [{"type": "global", "name": "Factuality"}]}}})
assert online["config"]["online"]["sampling_rate"] == 0.1, online
assert len(owner.project_scores.get_project_score(project_id=pid, score_type=["online", "categorical"])["objects"]) == 2
assert owner.project_scores.patch_project_score_id(score["id"], body={"description": "d"})["description"] == "d"
assert owner.project_scores.get_project_score_id(score["id"])["name"] == "quality"
owner.project_scores.delete_project_score_id(online["id"])
frame = owner.span_iframes.post_span_iframe(body={"project_id": pid, "name": "viz", "url": "https://viz.example"})
assert owner.span_iframes.patch_span_iframe_id(frame["id"], body={"post_message": True})["post_message"] is True
assert [f["id"] for f in owner.span_iframes.get_span_iframe(span_iframe_name="viz")["objects"]] == [frame["id"]]
assert owner.span_iframes.get_span_iframe_id(frame["id"])["url"] == "https://viz.example"
owner.span_iframes.delete_span_iframe_id(frame["id"])
view = owner.views.post_view(body={"object_type": "project", "object_id": pid, "view_type": "logs", "name": "errors",
                                   "view_data": {"search": {"filter": ["error IS NOT NULL"]}}})
assert [v["id"] for v in owner.views.get_view("project", pid)["objects"]] == [view["id"]]
assert owner.views.get_view_id(view["id"], "project", pid)["name"] == "errors"
assert owner.views.patch_view_id(view["id"], body={"object_type": "project", "object_id": pid, "starred": True})["starred"] is True
assert owner.views.delete_view_id(view["id"], body={"object_type": "project", "object_id": pid})["id"] == view["id"]
agent = owner.agents.post_agent(body={"project_id": pid, "name": "Support Bot"})
assert agent["slug"] == "support-bot" and agent["kind"] == "custom", agent
assert owner.agents.patch_agent_id(agent["id"], body={"description": "d"})["description"] == "d"
assert [a["id"] for a in owner.agents.get_agent(agent_name="Support Bot")["objects"]] == [agent["id"]]
owner.agents.get_agent_id(agent["id"])
owner.agents.delete_agent_id(agent["id"])
mcp = owner.mcp_servers.put_mcp_server(body={"project_id": pid, "name": "tools", "url": "https://mcp.example/sse"})
assert owner.mcp_servers.get_mcp_server_id(mcp["id"])["url"] == "https://mcp.example/sse"
assert owner.mcp_servers.patch_mcp_server_id(mcp["id"], body={"url": "https://mcp2.example"})["url"] == "https://mcp2.example"
assert len(owner.mcp_servers.get_mcp_server()["objects"]) == 1
owner.mcp_servers.delete_mcp_server_id(mcp["id"])
snap = owner.dataset_snapshots.post_dataset_snapshot(body={"dataset_id": ds, "name": "v1", "xact_id": pr["_xact_id"]})
assert snap["xact_id"] == pr["_xact_id"], snap
assert owner.dataset_snapshots.patch_dataset_snapshot_id(snap["id"], body={"name": "v1.0"})["name"] == "v1.0"
assert [x["id"] for x in owner.dataset_snapshots.get_dataset_snapshot()["objects"]] == [snap["id"]]
owner.dataset_snapshots.get_dataset_snapshot_id(snap["id"])
owner.dataset_snapshots.delete_dataset_snapshot_id(snap["id"])
su = owner.simulated_users.create_simulated_user(pid, body={"name": "grumpy", "instructions": "Be impatient.",
                                                             "voice_config": {"voice_id": "v1"}})
assert owner.simulated_users.patch_simulated_user(pid, su["id"], body={"goal": "refund"})["goal"] == "refund"
assert [x["id"] for x in owner.simulated_users.list_simulated_users(pid)["objects"]] == [su["id"]]
owner.simulated_users.get_simulated_user(pid, su["id"])
owner.simulated_users.delete_simulated_user(pid, su["id"])
assert len(owner.organizations.get_organization_api_keys()["objects"]) >= 2
alert = owner.project_automations.post_project_automation(body={"project_id": pid, "name": "errors", "config": {
    "event_type": "logs", "btql_filter": "error IS NOT NULL", "interval_seconds": 300,
    "action": {"type": "webhook", "url": "https://hooks.example/a"}}})
assert alert["signing_secret"].startswith("whsec_"), alert
assert "signing_secret" not in owner.project_automations.get_project_automation_id(alert["id"])
keep = owner.project_automations.put_project_automation(body={"project_id": pid, "name": "keep", "config": {
    "event_type": "retention", "object_type": "project_logs", "retention_days": 30}})
assert owner.project_automations.patch_project_automation_id(keep["id"], body={"description": "d"})["description"] == "d"
assert len(owner.project_automations.get_project_automation()["objects"]) == 2
owner.project_automations.delete_project_automation_id(keep["id"])
rule = owner.org_automations.post_org_automation(body={"org_id": org, "name": "org-keep", "config": {
    "event_type": "retention", "object_type": "dataset", "retention_days": 365}})
assert [r["id"] for r in owner.org_automations.get_org_automation()["objects"]] == [rule["id"]]
assert owner.org_automations.get_org_automation_id(rule["id"])["config"]["retention_days"] == 365
owner.org_automations.delete_org_automation_id(rule["id"])
owner.environments.delete_environment(prod["id"])
refused(404, owner.prompts.get_prompt_id, pr["id"], environment="production")

# 11. Every field this server declares beyond the wheel's models is described as a
# Castellan extension.
spec = json.load(urllib.request.urlopen(URL + "/openapi.json"))["components"]["schemas"]
pairs = {
    "Organization": [("organizations", "Organization")],
    "PatchOrganization": [("organizations", "PatchOrganization")],
    "ApiKey": [("common", "ApiKey")],
    "ServiceToken": [("service_tokens", "ServiceToken")],
    "Project": [("projects", "Project")],
    "CreateProject": [("projects", "CreateProject")],
    "PatchProject": [("projects", "PatchProject")],
    "Experiment": [("experiments", "Experiment")],
    "CreateExperiment": [("experiments", "CreateExperiment")],
    "PatchExperiment": [("experiments", "PatchExperiment")],
    "InternalMetadata": [("experiments", "InternalMetadata")],
    "Dataset": [("datasets", "Dataset")],
    "CreateDataset": [("datasets", "CreateDataset")],
    "PatchDataset": [("datasets", "PatchDataset")],
    "Acl": [("acls", "Acl")],
    "AclItem": [("acls", "AclItem")],
    "AclBatchUpdate": [("acls", "AclBatchUpdateRequest")],
    "AclBatchUpdateResponse": [("acls", "AclBatchUpdateResponse")],
    "Group": [("groups", "Group")],
    "CreateGroup": [("groups", "CreateGroup")],
    "PatchGroup": [("groups", "PatchGroup")],
    "Role": [("roles", "Role")],
    "CreateRole": [("roles", "CreateRole")],
    "PatchRole": [("roles", "PatchRole")],
    "MemberPermission": [("roles", "MemberPermission")],
    "User": [("users", "User")],
    "PatchOrganizationMembers": [("organizations", "PatchOrganizationMembers")],
    "InviteUsers": [("organizations", "InviteUsers")],
    "InviteServiceAccount": [("organizations", "ServiceAccount")],
    "RemoveUsers": [("organizations", "RemoveUsers")],
    "AddedUser": [("organizations", "AddedUser")],
    "PatchOrganizationMembersOutput": [("organizations", "PatchOrganizationMembersOutput")],
    "FetchEvents": [("common", "FetchEventsRequest")],
    "FeedbackItem": [("experiments", "FeedbackExperimentItem")],
    "ScoreSummary": [("experiments", "ScoreSummary")],
    "MetricSummary": [("experiments", "MetricSummary")],
    "ExperimentSummary": [("experiments", "SummarizeExperimentResponse")],
    "DatasetSummary": [("datasets", "SummarizeDatasetResponse")],
    "Function": [("prompts", "Prompt"), ("functions", "Function")],
    "CreateFunction": [("prompts", "CreatePrompt"), ("functions", "CreateFunction")],
    "PatchFunction": [("prompts", "PatchPrompt"), ("functions", "PatchFunction")],
    "EnvVar": [("env_vars", "EnvVar")],
    "ProjectTag": [("project_tags", "ProjectTag")],
    "CreateProjectTag": [("project_tags", "CreateProjectTag")],
    "PatchProjectTag": [("project_tags", "PatchProjectTag")],
    "ProjectGroup": [("project_groups", "ProjectGroup")],
    "CreateProjectGroup": [("project_groups", "CreateProjectGroup")],
    "PatchProjectGroup": [("project_groups", "PatchProjectGroup")],
    "AISecret": [("ai_secrets", "AISecret")],
    "CreateAISecret": [("ai_secrets", "CreateAISecret")],
    "PatchAISecret": [("ai_secrets", "PatchAISecret")],
    "DeleteAISecret": [("ai_secrets", "DeleteAISecret")],
    "ProjectScore": [("project_scores", "ProjectScore")],
    "CreateProjectScore": [("project_scores", "CreateProjectScore")],
    "PatchProjectScore": [("project_scores", "PatchProjectScore")],
    "SpanIFrame": [("span_iframes", "SpanIFrame")],
    "CreateSpanIFrame": [("span_iframes", "CreateSpanIFrame")],
    "PatchSpanIFrame": [("span_iframes", "PatchSpanIFrame")],
    "View": [("views", "View")],
    "CreateView": [("views", "CreateView")],
    "PatchView": [("views", "PatchView")],
    "DeleteView": [("views", "DeleteView")],
    "Agent": [("agents", "Agent")],
    "CreateAgent": [("agents", "CreateAgent")],
    "PatchAgent": [("agents", "PatchAgent")],
    "MCPServer": [("mcp_servers", "MCPServer")],
    "CreateMCPServer": [("mcp_servers", "CreateMCPServer")],
    "PatchMCPServer": [("mcp_servers", "PatchMCPServer")],
    "DatasetSnapshot": [("dataset_snapshots", "DatasetSnapshot")],
    "CreateDatasetSnapshot": [("dataset_snapshots", "CreateDatasetSnapshot")],
    "PatchDatasetSnapshot": [("dataset_snapshots", "PatchDatasetSnapshot")],
    "SimulatedUser": [("simulated_users", "SimulatedUser")],
    "CreateSimulatedUser": [("simulated_users", "CreateSimulatedUser")],
    "PatchSimulatedUser": [("simulated_users", "PatchSimulatedUser")],
    "SimulatedUserVoiceConfig": [("simulated_users", "SimulatedUserVoiceConfig")],
    "Environment": [("environments", "Environment")],
    "CreateEnvironment": [("environments", "CreateEnvironment")],
    "PatchEnvironment": [("environments", "PatchEnvironment")],
    "ProjectAutomation": [("project_automations", "ProjectAutomation")],
    "CreateProjectAutomation": [("project_automations", "CreateProjectAutomation")],
    "PatchProjectAutomation": [("project_automations", "PatchProjectAutomation")],
    "OrgAutomation": [("org_automations", "OrgAutomation")],
    "CreateOrgAutomation": [("org_automations", "CreateOrgAutomation")],
    "PatchOrgAutomation": [("org_automations", "PatchOrgAutomation")],
}
undescribed = []
for schema, models in pairs.items():
    known = set()
    for module, name in models:
        known |= set(typing.get_type_hints(model(module, name)))
    for field, declared in spec[schema].get("properties", {}).items():
        if field in known:
            continue
        text = declared.get("description") or "".join(o.get("description", "") for o in declared.get("oneOf", []))
        if "Castellan extension" not in text:
            undescribed.append(f"{schema}.{field}")
assert not undescribed, f"fields beyond the newest client not described as Castellan extensions: {undescribed}"
print("WHEEL OK")
"#;

async fn the_newest_official_client_reads_and_writes_the_newest_wire_model(b: Backend) {
    let Some(py) = python() else { return };
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let outsider = app.bootstrap("zeta", "zed@zeta.example").await;
    let member = support::member(&app, &owner, "eve@acme.example", Some("Engineers")).await;
    let (_, zed) = app.post("/api/self/me", &outsider, json!({})).await;
    let outsider_id = zed["id"].as_str().expect("id").to_owned();
    // An owner's service token: the credential (besides a console session) that may
    // create a service account and mint its token in one call.
    let (_, admin_token) = app.service_account(&owner, "admin-bot", "Owners", "ops").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_micros() as i64;
    let at = castellan_api_types::format_time(now + 3600 * 1_000_000);
    let (s, v) = app.post("/v1/api_key", &owner, json!({"name": "short", "expires_at": at})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (base, member_id) = (app.base.clone(), member.user.0.to_string());
    let out = tokio::task::spawn_blocking(move || {
        run_python(
            &py,
            SCRIPT,
            &[
                ("CASTELLAN_URL", base.as_str()),
                ("OWNER_KEY", owner.as_str()),
                ("ADMIN_TOKEN", admin_token.as_str()),
                ("MEMBER_ID", member_id.as_str()),
                ("OUTSIDER_ID", outsider_id.as_str()),
            ],
        )
    })
    .await
    .expect("join");
    assert!(out.contains("WHEEL OK"), "{out}");
}
