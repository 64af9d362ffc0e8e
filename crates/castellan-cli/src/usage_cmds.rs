//! `castellan usage` (an organization's metered usage per day or month) and
//! `castellan plan` (its plan: limits, enforcement, cost-alert thresholds).

use crate::client::Client;
use crate::output::{emit, Table};
use anyhow::{bail, Result};
use castellan_api_types as api;
use clap::{Args, Subcommand};

/// Which usage to show.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// First UTC day, `YYYY-MM-DD` [default: the first of this month].
    #[arg(long)]
    from: Option<String>,
    /// Last UTC day, inclusive, `YYYY-MM-DD` [default: today].
    #[arg(long)]
    to: Option<String>,
    /// `day` or `month`.
    #[arg(long, default_value = "day")]
    granularity: String,
}

/// What to do with the plan.
#[derive(Debug, Subcommand)]
pub enum PlanAction {
    /// Show the organization's plan.
    Show,
    /// The newest deliveries of its cost alerts to `alert_webhook_url`.
    Alerts,
    /// Change the organization's plan (only the options given; `none` removes a
    /// limit). With `--reset`, every option not given takes the server's default.
    Set {
        /// Processed bytes per month, or `none`.
        #[arg(long)]
        processed_bytes: Option<String>,
        /// Spans per month, or `none`.
        #[arg(long)]
        spans: Option<String>,
        /// Scores per month, or `none`.
        #[arg(long)]
        scores: Option<String>,
        /// `soft` (warn) or `hard` (refuse with 429).
        #[arg(long)]
        enforcement: Option<String>,
        /// Cost-alert thresholds in percent, comma-separated (`50,75,90,100`).
        #[arg(long, value_delimiter = ',')]
        alert_thresholds: Option<Vec<i64>>,
        /// Where cost alerts go (a webhook URL), or `none`. Setting the first one
        /// generates the secret cost alerts are signed with, printed once.
        #[arg(long)]
        alert_webhook_url: Option<String>,
        /// Generate a new signing secret for the cost-alert webhook (printed once).
        #[arg(long)]
        rotate_alert_signing_secret: bool,
        /// Start from the server's default plan instead of the current one.
        #[arg(long)]
        reset: bool,
    },
}

fn limit(field: &str, v: Option<String>) -> Result<Option<Option<i64>>> {
    match v.as_deref() {
        None => Ok(None),
        Some("none") => Ok(Some(None)),
        Some(s) => match s.replace('_', "").parse::<i64>() {
            Ok(n) => Ok(Some(Some(n))),
            Err(_) => bail!("--{field} must be a whole number or `none`, got `{s}`"),
        },
    }
}

/// The organization's id: the one named by `--org`, else the caller's only one.
async fn org_id(client: &Client, org: Option<&str>) -> Result<uuid::Uuid> {
    let orgs: api::ListResponse<api::Organization> = client.get("/v1/organization", &[]).await?;
    let found: Vec<_> = orgs.objects.iter().filter(|o| org.is_none_or(|n| o.name.eq_ignore_ascii_case(n))).collect();
    match found.as_slice() {
        [one] => Ok(one.id),
        [] => bail!("organization `{}` not found", org.unwrap_or_default()),
        _ => bail!("your key belongs to several organizations; choose one with --org"),
    }
}

fn show_limit(v: Option<i64>) -> String {
    v.map_or_else(|| "unlimited".into(), |n| n.to_string())
}

fn render_plan(p: &api::OrgPlan) -> String {
    let mut t = Table::new(vec!["SETTING", "VALUE"]);
    t.row(vec!["processed_bytes / month".into(), show_limit(p.limits.processed_bytes)]);
    t.row(vec!["spans / month".into(), show_limit(p.limits.spans)]);
    t.row(vec!["scores / month".into(), show_limit(p.limits.scores)]);
    t.row(vec!["enforcement".into(), p.enforcement.clone()]);
    let thresholds: Vec<String> = p.alert_thresholds.iter().map(|t| format!("{t}%")).collect();
    t.row(vec!["alert_thresholds".into(), thresholds.join(", ")]);
    t.row(vec!["alert_webhook_url".into(), p.alert_webhook_url.clone().unwrap_or_else(|| "-".into())]);
    let signing = match (&p.alert_signing_secret_updated_at, &p.alert_webhook_url) {
        (Some(at), _) => format!("signed (secret generated {at})"),
        (None, Some(_)) => "unsigned (rotate to get a secret)".into(),
        (None, None) => "-".into(),
    };
    t.row(vec!["alert_signing".into(), signing]);
    t.row(vec!["source".into(), p.source.clone()]);
    let mut out = t.render();
    if let Some(secret) = &p.alert_signing_secret {
        out.push_str(&format!(
            "\nCost-alert signing secret (shown once, store it now; deliveries carry\n\
             x-castellan-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">):\n{secret}\n"
        ));
    }
    out
}

fn against(a: &api::UsageAgainstLimit) -> String {
    match (a.limit, a.percent) {
        (Some(l), Some(p)) => format!("{} of {l} ({p}%)", a.used),
        _ => format!("{} (unlimited)", a.used),
    }
}

/// Runs `castellan usage`.
pub async fn usage(client: &Client, json: bool, args: UsageArgs) -> Result<()> {
    let mut query = vec![("granularity", args.granularity)];
    if let Some(f) = args.from {
        query.push(("from", f));
    }
    if let Some(t) = args.to {
        query.push(("to", t));
    }
    let out: api::UsageAnswer = client.get("/v1/usage", &query).await?;
    emit(json, &out, |u| {
        let mut t = Table::new(vec!["PERIOD", "PROCESSED_BYTES", "SPANS", "SCORES"]);
        for p in &u.periods {
            t.row(vec![p.period.clone(), p.processed_bytes.to_string(), p.spans.to_string(), p.scores.to_string()]);
        }
        t.row(vec![
            "total".into(),
            u.totals.processed_bytes.to_string(),
            u.totals.spans.to_string(),
            u.totals.scores.to_string(),
        ]);
        let m = &u.current_month;
        format!(
            "{}\n{} ({} enforcement): processed_bytes {}, spans {}, scores {}\n",
            t.render(),
            m.period,
            m.enforcement,
            against(&m.processed_bytes),
            against(&m.spans),
            against(&m.scores)
        )
    });
    Ok(())
}

/// Runs `castellan plan`.
pub async fn plan(client: &Client, json: bool, org: Option<&str>, action: PlanAction) -> Result<()> {
    let id = org_id(client, org).await?;
    let path = format!("/v1/organization/{id}/plan");
    let out: api::OrgPlan = match action {
        PlanAction::Show => client.get(&path, &[]).await?,
        PlanAction::Alerts => {
            let l: api::ListResponse<api::AutomationDelivery> = client.get(&format!("{path}/alerts"), &[]).await?;
            emit(json, &l, crate::automation_cmds::deliveries_table);
            return Ok(());
        }
        PlanAction::Set {
            processed_bytes,
            spans,
            scores,
            enforcement,
            alert_thresholds,
            alert_webhook_url,
            rotate_alert_signing_secret,
            reset,
        } => {
            let limits = api::PlanLimitsPatch {
                processed_bytes: limit("processed-bytes", processed_bytes)?,
                spans: limit("spans", spans)?,
                scores: limit("scores", scores)?,
            };
            let body = api::PlanUpdate {
                limits: Some(limits),
                enforcement,
                alert_thresholds,
                alert_webhook_url: alert_webhook_url.map(|u| Some(u).filter(|u| u != "none")),
                rotate_alert_signing_secret: rotate_alert_signing_secret.then_some(true),
            };
            let method = if reset { reqwest::Method::PUT } else { reqwest::Method::PATCH };
            client.call(method, &path, &[], Some(&body)).await?
        }
    };
    emit(json, &out, render_plan);
    Ok(())
}
