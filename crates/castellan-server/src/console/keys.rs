//! API keys (one's own; owners see and revoke every key of the org) and service
//! accounts with their tokens (owners only, as the API decides). A new secret is in
//! the answer to its creation only: the page shows it once, with a copy button.

use super::filters;
use super::grants::expiry;
use super::members::{load_groups, name_of};
use super::{body, fields, one, query, see_other, Ctx, FormError, ListQuery, Notice, Page, Pager, Session};
use crate::error::ApiError;
use crate::routes::{api_key, members, service_token, user};
use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use castellan_api_types::{ApiKey, ServiceToken};
use castellan_core::KeyId;
use serde_json::json;
use uuid::Uuid;

pub(super) fn routes() -> Router<crate::state::App> {
    Router::new()
        .route("/o/{org}/settings/api-keys", get(keys_page).post(create_key))
        .route("/o/{org}/settings/api-keys/{id}/revoke", post(revoke_key))
        .route("/o/{org}/settings/service-accounts", get(accounts_page).post(create_account))
        .route("/o/{org}/settings/service-accounts/tokens", post(create_token))
        .route("/o/{org}/settings/service-accounts/tokens/{id}/revoke", post(revoke_token))
}

/// A secret shown once.
pub struct Secret {
    /// What it is.
    pub label: String,
    /// The raw value.
    pub value: String,
}

#[derive(Template)]
#[template(path = "console/api_keys.html")]
struct KeysPage<'a> {
    base: String,
    csrf: &'a str,
    keys: Vec<ApiKey>,
    pager: Pager,
    pager_label: &'static str,
    owner: bool,
    me: Uuid,
    secret: Option<Secret>,
    err: FormError,
}

async fn keys_render(
    ctx: &Ctx,
    lq: &ListQuery,
    err: FormError,
    secret: Option<Secret>,
    notice: Option<String>,
) -> Page {
    // One page of the org's keys the caller may see (`GET /v1/organization/api_keys`).
    let page = lq.api_page();
    let page: Vec<(&str, &str)> = page.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let keys = api_key::list_org(
        ctx.caller.clone(),
        query(&page)?,
        query(&[])?,
        query(&[])?,
        query(&[("org_name", ctx.org_name())])?,
    )
    .await?
    .0
    .objects;
    let base = ctx.base();
    let (keys, pager) = lq.cut(keys, |k| k.id.to_string(), |q| format!("{base}/settings/api-keys?{q}"));
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let p = KeysPage {
        base: ctx.base(),
        csrf: &ctx.csrf,
        keys,
        pager,
        pager_label: "Pages of API keys",
        owner: ctx.caller.is_owner(ctx.org.id),
        me: ctx.caller.user.id.0,
        secret,
        err,
    };
    ctx.page_status(status, "API keys", "settings/api-keys", p, notice)
}

async fn keys_page(
    session: Session,
    Path(org): Path<String>,
    q: axum::extract::Query<Notice>,
    lq: axum::extract::Query<ListQuery>,
) -> Page {
    let ctx = session.org(&org).await?;
    keys_render(&ctx, &lq.0, FormError::default(), None, q.0.take()).await
}

/// Creates an API key (`POST /v1/api_key`) and shows it once.
async fn create_key(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let b = body(
        json!({"name": one(&form, "name").trim(), "org_name": ctx.org_name(), "expires_at": expiry(one(&form, "expires_at"))}),
    )?;
    match api_key::create(ctx.caller.clone(), b).await {
        Ok(w) => {
            let secret = Secret { label: format!("API key “{}”", w.body.api_key.name), value: w.body.key };
            keys_render(&ctx, &ListQuery::default(), FormError::default(), Some(secret), Some("API key created".into()))
                .await
        }
        Err(e) => {
            let err = FormError::new("create", &e, &["name", "expires_at"], fields(&form));
            keys_render(&ctx, &ListQuery::default(), err, None, None).await
        }
    }
}

/// Revokes an API key (`DELETE /v1/api_key/{id}`).
async fn revoke_key(session: Session, Path((org, id)): Path<(String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    match api_key::remove(ctx.caller.clone(), crate::extract::Path(KeyId(id))).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/api-keys?notice=API%20key%20revoked", ctx.base()))),
        Err(e) => {
            let err = FormError::new("revoke", &e, &[], Default::default());
            keys_render(&ctx, &ListQuery::default(), err, None, None).await
        }
    }
}

struct Account {
    id: Uuid,
    name: String,
    groups: Vec<String>,
    tokens: Vec<ServiceToken>,
}

#[derive(Template)]
#[template(path = "console/service_accounts.html")]
struct AccountsPage<'a> {
    base: String,
    csrf: &'a str,
    accounts: Vec<Account>,
    q: String,
    pager: Pager,
    pager_label: &'static str,
    groups: Vec<(Uuid, String)>,
    secret: Option<Secret>,
    err: FormError,
    owner: bool,
}

async fn accounts_render(
    ctx: &Ctx,
    lq: &ListQuery,
    err: FormError,
    secret: Option<Secret>,
    notice: Option<String>,
) -> Page {
    // The token list answers only the orgs the caller owns; the engine says whether
    // to offer the forms (the API refuses them to anyone else anyway).
    let owner = ctx.caller.is_owner(ctx.org.id);
    let groups = load_groups(ctx).await?;
    // One page of service accounts (`GET /v1/user?user_type=service_account`), then
    // the tokens of just those (`GET /v1/service_token?service_account_id=…`).
    let (users, pager) = if owner {
        let page = lq.api_page();
        let page: Vec<(&str, &str)> = page.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let users = user::list(
            ctx.caller.clone(),
            query(&page)?,
            query(&[("user_type", "service_account"), ("search", lq.search())])?,
            query(&[("org_name", ctx.org_name())])?,
        )
        .await?
        .0
        .objects;
        let base = ctx.base();
        lq.cut(users, |u| u.id.to_string(), |q| format!("{base}/settings/service-accounts?{q}"))
    } else {
        (vec![], Pager::default())
    };
    let ids: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    let tokens = if ids.is_empty() {
        vec![]
    } else {
        let of: Vec<(&str, &str)> = ids.iter().map(|i| ("service_account_id", i.as_str())).collect();
        service_token::list(
            ctx.caller.clone(),
            query(&[("limit", "1000")])?,
            query(&of)?,
            query(&[("org_name", ctx.org_name())])?,
        )
        .await?
        .0
        .objects
    };
    let accounts = users
        .into_iter()
        .map(|u| Account {
            id: u.id,
            name: name_of(&u),
            groups: {
                let mine = super::members::direct_groups(ctx, u.id);
                groups.iter().filter(|g| mine.contains(&g.id)).map(|g| g.name.clone()).collect()
            },
            tokens: tokens.iter().filter(|t| t.service_account_id == Some(u.id)).cloned().collect(),
        })
        .collect();
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let p = AccountsPage {
        base: ctx.base(),
        csrf: &ctx.csrf,
        accounts,
        q: lq.search().to_owned(),
        pager,
        pager_label: "Pages of service accounts",
        groups: groups.iter().map(|g| (g.id, g.name.clone())).collect(),
        secret,
        err,
        owner,
    };
    ctx.page_status(status, "Service accounts", "settings/service-accounts", p, notice)
}

async fn accounts_page(
    session: Session,
    Path(org): Path<String>,
    q: axum::extract::Query<Notice>,
    lq: axum::extract::Query<ListQuery>,
) -> Page {
    let ctx = session.org(&org).await?;
    accounts_render(&ctx, &lq.0, FormError::default(), None, q.0.take()).await
}

/// Creates a service account in a group, and its first token when named
/// (`PATCH /v1/organization/members` with `invite_users.service_accounts`).
async fn create_account(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let token = Some(one(&form, "token_name").trim().to_owned()).filter(|s| !s.is_empty());
    let account = json!({"name": one(&form, "name").trim(), "token_name": token});
    let mut invite = json!({"service_accounts": [account]});
    if !one(&form, "group_id").is_empty() {
        invite["group_ids"] = json!([one(&form, "group_id")]);
    }
    let refused = |e: &ApiError| FormError::new("create", e, &["name", "token_name", "group_id"], fields(&form));
    let b = body(json!({"org_name": ctx.org_name(), "invite_users": invite}))?;
    match members::patch_members(ctx.caller.clone(), b).await {
        Ok(w) => {
            let secret = w.body.added_users.unwrap_or_default().into_iter().find_map(|a| {
                a.api_key
                    .map(|t| Secret {
                        label: format!("Service token for “{}”", one(&form, "name").trim()), value: t
                    })
            });
            accounts_render(
                &ctx,
                &ListQuery::default(),
                FormError::default(),
                secret,
                Some("Service account created".into()),
            )
            .await
        }
        Err(e) => accounts_render(&ctx, &ListQuery::default(), refused(&e), None, None).await,
    }
}

/// Mints a token for a service account (`POST /v1/service_token`).
async fn create_token(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let b = body(json!({
        "name": one(&form, "name").trim(),
        "service_account_id": one(&form, "service_account_id"),
        "org_name": ctx.org_name(),
        "expires_at": expiry(one(&form, "expires_at")),
    }));
    let result = match b {
        Ok(b) => service_token::create(ctx.caller.clone(), b).await.map_err(super::Fail),
        Err(e) => Err(e),
    };
    match result {
        Ok(w) => {
            let secret =
                Secret { label: format!("Service token “{}”", w.body.service_token.name), value: w.body.key };
            accounts_render(
                &ctx,
                &ListQuery::default(),
                FormError::default(),
                Some(secret),
                Some("Service token created".into()),
            )
            .await
        }
        Err(super::Fail(e)) => {
            let form_name = format!("token-{}", one(&form, "service_account_id"));
            let err = FormError::new(&form_name, &e, &["name", "expires_at"], fields(&form));
            accounts_render(&ctx, &ListQuery::default(), err, None, None).await
        }
    }
}

/// Revokes a service token (`DELETE /v1/service_token/{id}`).
async fn revoke_token(session: Session, Path((org, id)): Path<(String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    match service_token::remove(ctx.caller.clone(), crate::extract::Path(KeyId(id))).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/service-accounts?notice=Service%20token%20revoked", ctx.base()))),
        Err(e) => {
            let err = FormError::new("revoke", &e, &[], Default::default());
            accounts_render(&ctx, &ListQuery::default(), err, None, None).await
        }
    }
}
