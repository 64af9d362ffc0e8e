//! Signing in and out, changing one's password and accepting an invitation: each
//! calls the API's own handler (`routes::auth`, `routes::members::accept`).

use super::{assets, body, see_other, Fail, FormError, Page, Session};
use crate::access::{AppState, MaybeCaller};
use crate::error::ApiError;
use crate::routes::auth::ClientFacts;
use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::json;

pub(super) fn routes() -> Router<crate::state::App> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/account", get(account_page))
        .route("/account/password", post(change_password))
        .route("/invitation", get(invitation_page).post(accept))
}

/// A page outside the signed-in layout (sign in, accept an invitation).
#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    css: &'a str,
    mode: &'a str,
    email: &'a str,
    token: &'a str,
    error: &'a str,
    field: &'a str,
    given: &'a str,
    family: &'a str,
    org: &'a str,
    sso_error: &'a str,
    break_glass: bool,
}

fn standalone(status: StatusCode, p: LoginPage<'_>) -> Page {
    Ok((status, Html(p.render()?)).into_response())
}

fn login_form<'a>(email: &'a str, error: &'a str) -> LoginPage<'a> {
    LoginPage {
        css: &assets::CSS.path,
        mode: "login",
        email,
        token: "",
        error,
        field: "",
        given: "",
        family: "",
        org: "",
        sso_error: "",
        break_glass: false,
    }
}

/// The sign-in page showing why a single sign-on failed (`routes::sso`).
pub(crate) fn sso_failure_page(status: StatusCode, org: &str, message: &str) -> Response {
    let page = LoginPage { org, sso_error: message, ..login_form("", "") };
    match standalone(status, page) {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

async fn login_page(signed_in: MaybeCaller) -> Page {
    if signed_in.0.is_some() {
        return Ok(see_other("/"));
    }
    standalone(StatusCode::OK, login_form("", ""))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    break_glass: Option<String>,
}

/// Signs in through `POST /api/auth/login` and keeps its cookies.
async fn login(State(state): State<AppState>, facts: ClientFacts, Form(f): Form<LoginForm>) -> Page {
    let break_glass = f.break_glass.as_deref() == Some("true");
    let b = body(json!({"email": f.email.trim(), "password": f.password, "break_glass": break_glass}))?;
    match crate::routes::auth::login(State(state), facts, b).await {
        Ok(resp) => Ok(with_cookies(see_other("/"), &resp)),
        Err(e) => {
            let status = FormError::status(&e);
            let status = if matches!(e, ApiError::Unauthorized(_)) { StatusCode::UNAUTHORIZED } else { status };
            let msg = e.to_string();
            // SSO enforcement offers owners the break-glass box.
            let offer = matches!(e, ApiError::SsoRequired(_));
            standalone(status, LoginPage { break_glass: offer, ..login_form(&f.email, &msg) })
        }
    }
}

/// Copies the `Set-Cookie` headers of an API answer onto a console answer.
fn with_cookies(mut to: Response, from: &Response) -> Response {
    for c in from.headers().get_all(header::SET_COOKIE) {
        to.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    to
}

/// Signs out through `POST /api/auth/logout`.
async fn logout(session: Session, facts: ClientFacts) -> Page {
    let resp = crate::routes::auth::logout(session.caller, facts).await?;
    Ok(with_cookies(see_other("/login"), &resp))
}

/// The account page: change one's password.
#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage<'a> {
    csrf: &'a str,
    email: &'a str,
    err: FormError,
}

async fn account_page(session: Session, q: axum::extract::Query<super::Notice>) -> Page {
    let ctx = first_org(session).await?;
    let email = ctx.caller.user.email.clone().unwrap_or_default();
    ctx.page("Account", "", AccountPage { csrf: &ctx.csrf, email: &email, err: FormError::default() }, q.0.take())
}

async fn first_org(session: Session) -> Result<super::Ctx, Fail> {
    let Some(first) = session.caller.orgs.first().copied() else {
        return Err(Fail(ApiError::NotFound("your account does not belong to any organization yet".into())));
    };
    let name = session.caller.org_by_id(first).await?.name;
    session.org(&name).await
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// Changes one's password through `POST /api/auth/password`.
async fn change_password(session: Session, Form(f): Form<PasswordForm>) -> Page {
    let ctx = first_org(session).await?;
    let email = ctx.caller.user.email.clone().unwrap_or_default();
    let fields = ["current_password", "new_password", "confirm_password"];
    let refused = |e: ApiError| {
        let err = FormError::new("password", &e, &fields, Default::default());
        ctx.page_status(FormError::status(&e), "Account", "", AccountPage { csrf: &ctx.csrf, email: &email, err }, None)
    };
    if f.new_password != f.confirm_password {
        return refused(ApiError::invalid_body("`confirm_password` does not match the new password"));
    }
    let current = Some(f.current_password).filter(|p| !p.is_empty());
    let b = body(json!({"current_password": current, "new_password": f.new_password}))?;
    match crate::routes::auth::change_password(ctx.caller.clone(), b).await {
        Ok(_) => Ok(see_other("/account?notice=Your%20password%20was%20changed")),
        Err(e) => refused(e),
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn invitation_page(q: axum::extract::Query<TokenQuery>) -> Page {
    let p = LoginPage {
        css: &assets::CSS.path,
        mode: "invitation",
        email: "",
        token: &q.token,
        error: "",
        field: "",
        given: "",
        family: "",
        org: "",
        sso_error: "",
        break_glass: false,
    };
    standalone(StatusCode::OK, p)
}

#[derive(serde::Deserialize)]
struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    password: String,
}

/// Accepts an invitation through `POST /api/invitation/accept` (a new account gets
/// the password typed here), then signs the new account in.
async fn accept(
    State(state): State<AppState>,
    facts: ClientFacts,
    signed_in: MaybeCaller,
    Form(f): Form<AcceptForm>,
) -> Page {
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let password = if signed_in.0.is_some() { None } else { Some(f.password.clone()) };
    let b = body(
        json!({"token": f.token.trim(), "given_name": opt(&f.given_name), "family_name": opt(&f.family_name), "password": password}),
    )?;
    let facts2 = facts.clone();
    match crate::routes::members::accept(State(state.clone()), facts, signed_in, b).await {
        Ok(w) => {
            let email = w.body.user.email.clone().unwrap_or_default();
            if password_ok(&f.password) {
                let lb = body(json!({"email": email, "password": f.password}))?;
                if let Ok(resp) = crate::routes::auth::login(State(state), facts2, lb).await {
                    return Ok(with_cookies(see_other("/"), &resp));
                }
            }
            let p = LoginPage {
                css: &assets::CSS.path,
                mode: "accepted",
                email: &email,
                token: "",
                error: "",
                field: "",
                given: "",
                family: "",
                org: "",
                sso_error: "",
                break_glass: false,
            };
            standalone(StatusCode::OK, p)
        }
        Err(e) => {
            let msg = e.to_string();
            let field = ["password", "given_name", "family_name", "token"]
                .into_iter()
                .find(|x| msg.contains(&format!("`{x}`")) || (*x == "password" && msg.starts_with("a password")))
                .unwrap_or("");
            let p = LoginPage {
                css: &assets::CSS.path,
                mode: "invitation",
                email: "",
                token: &f.token,
                error: &msg,
                field,
                given: &f.given_name,
                family: &f.family_name,
                org: "",
                sso_error: "",
                break_glass: false,
            };
            standalone(FormError::status(&e), p)
        }
    }
}

fn password_ok(p: &str) -> bool {
    !p.is_empty()
}
