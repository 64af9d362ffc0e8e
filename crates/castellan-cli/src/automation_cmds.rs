//! `castellan automation`: automations (alerts, retention, environment updates) and
//! online scoring rules, with their run history and delivery log.
//!
//! An automation is named by its id, or by its name: a project's with `--project`
//! (an id or a name), an organization's without. An online scoring rule (a
//! `project_score` of type `online`) is named the same way as a project automation;
//! its runs are the worker's passes.

use crate::client::{ApiFailure, Client};
use crate::output::{cell, emit, Table};
use anyhow::{bail, Result};
use castellan_api_types as api;
use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// What to do.
#[derive(Debug, Subcommand)]
pub enum AutomationAction {
    /// List automations: a project's (`--project`), else every one you can read,
    /// the organization's included.
    List {
        /// The project (id or name).
        #[arg(long)]
        project: Option<String>,
    },
    /// The newest runs (at most 100) of an automation or online scoring rule:
    /// started, finished, status, count, error.
    Runs {
        /// The automation's id, or its name (with `--project` for a project's).
        automation: String,
        /// The project (id or name) a named automation belongs to.
        #[arg(long)]
        project: Option<String>,
    },
    /// The newest deliveries (at most 100) of an alert's or environment-update
    /// automation's notifications.
    Deliveries {
        /// The automation's id, or its name (with `--project`).
        automation: String,
        /// The project (id or name) a named automation belongs to.
        #[arg(long)]
        project: Option<String>,
    },
}

/// What a name or id resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Project,
    Org,
    OnlineScore,
}

impl Kind {
    fn base(self) -> &'static str {
        match self {
            Kind::Project => "/v1/project_automation",
            Kind::Org => "/v1/org_automation",
            Kind::OnlineScore => "/v1/project_score",
        }
    }
}

fn not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiFailure>().is_some_and(|f| f.status == reqwest::StatusCode::NOT_FOUND)
}

/// A project's id, from its id or name.
async fn project_id(client: &Client, project: &str) -> Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(project) {
        return Ok(id);
    }
    let l: api::ListResponse<api::Project> = client.get("/v1/project", &[("project_name", project.into())]).await?;
    match l.objects.as_slice() {
        [one] => Ok(one.id),
        [] => bail!("project `{project}` not found"),
        _ => bail!(
            "several projects are named `{project}` (in several organizations?); choose one with --org or use its id"
        ),
    }
}

/// Finds the automation (or online scoring rule) `target` names.
async fn resolve(client: &Client, target: &str, project: Option<&str>) -> Result<(Kind, Uuid)> {
    if let Ok(id) = Uuid::parse_str(target) {
        for kind in [Kind::Project, Kind::Org, Kind::OnlineScore] {
            match client.get::<Value>(&format!("{}/{id}", kind.base()), &[]).await {
                Ok(v) if kind != Kind::OnlineScore || is_online(&v) => return Ok((kind, id)),
                Ok(_) => bail!("`{id}` is a project score but not an online scoring rule"),
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        bail!("automation `{id}` not found");
    }
    match project {
        Some(p) => {
            let pid = project_id(client, p).await?;
            let q = [("project_id", pid.to_string()), ("project_automation_name", target.to_owned())];
            let autos: api::ListResponse<api::ProjectAutomation> = client.get(Kind::Project.base(), &q).await?;
            if let Some(a) = autos.objects.first() {
                return Ok((Kind::Project, a.id));
            }
            let q = [("project_id", pid.to_string()), ("project_score_name", target.to_owned())];
            let scores: api::ListResponse<Value> = client.get(Kind::OnlineScore.base(), &q).await?;
            match scores.objects.iter().find(|s| is_online(s)).and_then(|s| s["id"].as_str()) {
                Some(id) => Ok((Kind::OnlineScore, Uuid::parse_str(id)?)),
                None => bail!("project `{p}` has no automation or online scoring rule named `{target}`"),
            }
        }
        None => {
            let q = [("org_automation_name", target.to_owned())];
            let autos: api::ListResponse<api::OrgAutomation> = client.get(Kind::Org.base(), &q).await?;
            match autos.objects.as_slice() {
                [one] => Ok((Kind::Org, one.id)),
                [] => bail!(
                    "no organization automation is named `{target}`; name a project's automation with --project <PROJECT>"
                ),
                _ => bail!("several organizations have an automation named `{target}`; choose one with --org"),
            }
        }
    }
}

fn is_online(score: &Value) -> bool {
    score["score_type"] == "online"
}

fn event(config: &Value) -> String {
    let e = config["event_type"].as_str().unwrap_or("-");
    match (e, config["status"].as_str()) {
        (_, Some("paused")) => format!("{e} (paused)"),
        _ => e.to_owned(),
    }
}

/// `castellan automation list --json`.
#[derive(Debug, Serialize)]
struct Listed {
    project_automations: Vec<api::ProjectAutomation>,
    org_automations: Vec<api::OrgAutomation>,
}

fn listed_table(l: &Listed) -> String {
    let mut t = Table::new(vec!["ID", "NAME", "ON", "EVENT"]);
    for a in &l.org_automations {
        t.row(vec![a.id.to_string(), a.name.clone(), "organization".into(), event(&a.config)]);
    }
    for a in &l.project_automations {
        t.row(vec![a.id.to_string(), a.name.clone(), format!("project {}", a.project_id), event(&a.config)]);
    }
    t.render()
}

fn runs_table(l: &api::ListResponse<api::AutomationRun>) -> String {
    if l.objects.is_empty() {
        return "no runs yet\n".into();
    }
    let mut t = Table::new(vec!["STARTED", "FINISHED", "STATUS", "COUNT", "ERROR"]);
    for r in &l.objects {
        t.row(vec![r.started.clone(), cell(&r.finished), r.status.clone(), r.count.to_string(), cell(&r.error)]);
    }
    t.render()
}

/// The delivery log as a table (also `castellan plan alerts`).
pub fn deliveries_table(l: &api::ListResponse<api::AutomationDelivery>) -> String {
    if l.objects.is_empty() {
        return "no deliveries yet\n".into();
    }
    let mut t = Table::new(vec!["CREATED", "EVENT", "STATUS", "ATTEMPTS", "HTTP", "TARGET", "ERROR"]);
    for d in &l.objects {
        let detail = |k: &str| d.details.as_ref().and_then(|v| v.get(k)).and_then(Value::as_str).unwrap_or("-");
        let event = match d.details.as_ref().and_then(|v| v.get("is_test")).and_then(Value::as_bool) {
            Some(true) => format!("{} (test)", detail("event")),
            _ => detail("event").to_owned(),
        };
        t.row(vec![
            d.created.clone(),
            event,
            d.status.clone(),
            d.attempts.to_string(),
            d.http_status.map_or_else(|| "-".into(), |s| s.to_string()),
            detail("target").to_owned(),
            cell(&d.error),
        ]);
    }
    t.render()
}

/// Runs `castellan automation`.
pub async fn automation(client: &Client, json: bool, action: AutomationAction) -> Result<()> {
    match action {
        AutomationAction::List { project } => {
            let mut q = Vec::new();
            if let Some(p) = &project {
                q.push(("project_id", project_id(client, p).await?.to_string()));
            }
            let projects: api::ListResponse<api::ProjectAutomation> = client.get(Kind::Project.base(), &q).await?;
            let orgs: api::ListResponse<api::OrgAutomation> = match project {
                Some(_) => api::ListResponse { objects: Vec::new() },
                None => client.get(Kind::Org.base(), &[]).await?,
            };
            let l = Listed { project_automations: projects.objects, org_automations: orgs.objects };
            emit(json, &l, listed_table);
        }
        AutomationAction::Runs { automation, project } => {
            let (kind, id) = resolve(client, &automation, project.as_deref()).await?;
            let l: api::ListResponse<api::AutomationRun> =
                client.get(&format!("{}/{id}/runs", kind.base()), &[]).await?;
            emit(json, &l, runs_table);
        }
        AutomationAction::Deliveries { automation, project } => {
            let (kind, id) = resolve(client, &automation, project.as_deref()).await?;
            if kind != Kind::Project {
                bail!("`{automation}` delivers no notifications (only a project's alert and environment-update automations do)");
            }
            let l: api::ListResponse<api::AutomationDelivery> =
                client.get(&format!("{}/{id}/deliveries", kind.base()), &[]).await?;
            emit(json, &l, deliveries_table);
        }
    }
    Ok(())
}
