//! Settings → Single sign-on (owners only): the organization's OpenID Connect
//! configurations — add, turn enforcement on or off, delete — each through the API's
//! own `/v1/sso_config` handlers, which refuse anyone but an owner.

use super::members::load_groups;
use super::{body, fields, one, query, see_other, Ctx, FormError, Notice, Page, Session};
use crate::error::ApiError;
use crate::routes::sso_config;
use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use castellan_api_types::SsoConfig;
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub(super) fn routes() -> Router<crate::state::App> {
    Router::new()
        .route("/o/{org}/settings/single-sign-on", get(page).post(create))
        .route("/o/{org}/settings/single-sign-on/{id}/enforce", post(enforce))
        .route("/o/{org}/settings/single-sign-on/{id}/delete", post(remove))
}

#[derive(Template)]
#[template(path = "console/sso.html")]
struct SsoPage<'a> {
    base: String,
    csrf: &'a str,
    owner: bool,
    redirect_uri: String,
    configs: Vec<SsoConfig>,
    groups: Vec<String>,
    err: FormError,
}

const FIELDS: [&str; 9] = [
    "name",
    "issuer",
    "client_id",
    "client_secret",
    "allowed_email_domains",
    "groups_claim",
    "group_map",
    "default_group",
    "scopes",
];

async fn render(ctx: &Ctx, err: FormError, notice: Option<String>) -> Page {
    let owner = ctx.caller.is_owner(ctx.org.id);
    let configs = if owner {
        let list = sso_config::list(
            ctx.caller.clone(),
            query(&[("limit", "100")])?,
            query(&[])?,
            query(&[("org_name", ctx.org_name())])?,
        )
        .await?;
        list.0.objects
    } else {
        Vec::new()
    };
    let groups = if owner { load_groups(ctx).await?.into_iter().map(|g| g.name).collect() } else { Vec::new() };
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let p = SsoPage {
        base: ctx.base(),
        csrf: &ctx.csrf,
        owner,
        redirect_uri: crate::sso::redirect_uri(ctx.caller.state()),
        configs,
        groups,
        err,
    };
    ctx.page_status(status, "Single sign-on", "settings/single-sign-on", p, notice)
}

async fn page(session: Session, Path(org): Path<String>, q: axum::extract::Query<Notice>) -> Page {
    let ctx = session.org(&org).await?;
    render(&ctx, FormError::default(), q.0.take()).await
}

/// Words separated by commas, spaces or new lines.
fn words(v: &str) -> Vec<String> {
    v.split([',', ' ', '\n', '\r']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// `provider-group=Permission group` lines as a map; a line without `=` is refused.
fn group_map(v: &str) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    for line in v.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (k, g) = line.split_once('=').ok_or_else(|| {
            ApiError::invalid_body(format!("`group_map` line `{line}` is not `provider-group=Permission group`"))
        })?;
        m.insert(k.trim().to_owned(), json!(g.trim()));
    }
    Ok(m)
}

/// Adds a configuration (`POST /v1/sso_config`).
async fn create(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let opt = |k: &str| Some(one(&form, k).trim().to_owned()).filter(|s| !s.is_empty());
    let made = async {
        let mut b = json!({
            "org_name": ctx.org_name(),
            "name": one(&form, "name").trim(),
            "issuer": one(&form, "issuer").trim(),
            "client_id": one(&form, "client_id").trim(),
            "allowed_email_domains": words(one(&form, "allowed_email_domains")),
            "group_map": group_map(one(&form, "group_map"))?,
            "jit": one(&form, "jit") == "on",
        });
        for k in ["client_secret", "groups_claim", "default_group"] {
            if let Some(v) = opt(k) {
                b[k] = json!(v);
            }
        }
        let scopes = words(one(&form, "scopes"));
        if !scopes.is_empty() {
            b["scopes"] = json!(scopes);
        }
        let b = body(b).map_err(|f| f.0)?;
        sso_config::create(ctx.caller.clone(), b).await
    }
    .await;
    match made {
        Ok(_) => Ok(see_other(&format!("{}/settings/single-sign-on?notice=SSO%20configuration%20added", ctx.base()))),
        Err(e) => {
            let mut values = fields(&form);
            values.remove("client_secret");
            render(&ctx, FormError::new("create", &e, &FIELDS, values), None).await
        }
    }
}

/// Turns enforcement on or off (`PATCH /v1/sso_config/{id}`).
async fn enforce(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let on = one(&form, "enforced") == "true";
    let result = match body(json!({"enforced": on})) {
        Ok(b) => sso_config::update(ctx.caller.clone(), crate::extract::Path(id), b).await,
        Err(f) => Err(f.0),
    };
    match result {
        Ok(_) => {
            let notice = if on { "Enforcement%20on" } else { "Enforcement%20off" };
            Ok(see_other(&format!("{}/settings/single-sign-on?notice={notice}", ctx.base())))
        }
        Err(e) => render(&ctx, FormError::new(&format!("row-{id}"), &e, &[], Default::default()), None).await,
    }
}

/// Deletes a configuration (`DELETE /v1/sso_config/{id}`).
async fn remove(session: Session, Path((org, id)): Path<(String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    match sso_config::remove(ctx.caller.clone(), crate::extract::Path(id)).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/single-sign-on?notice=SSO%20configuration%20deleted", ctx.base()))),
        Err(e) => render(&ctx, FormError::new(&format!("row-{id}"), &e, &[], Default::default()), None).await,
    }
}
