//! Endpoints about the service itself and the caller: `GET /v1`, `GET /openapi.json`,
//! `POST /api/apikey/login`, `POST /api/self/me`.

use crate::access::{AppState, Caller};
use crate::error::ApiResult;
use axum::extract::State;
use axum::Json;
use castellan_api_types::{OrgRef, SelfInfo, ServiceInfo};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(hello))
        .route("/v1/", axum::routing::get(hello))
        .routes(routes!(openapi))
        .routes(routes!(login))
        .routes(routes!(me))
        // The TypeScript SDK asks with GET.
        .route("/api/self/me", axum::routing::get(me))
}

/// Says hello; needs no credential.
#[utoipa::path(get, path = "/v1", tag = "Meta", security(()), responses((status = 200, body = ServiceInfo)))]
pub async fn hello() -> Json<ServiceInfo> {
    Json(ServiceInfo {
        name: "castellan".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        message: "Hello, World!".into(),
    })
}

/// The OpenAPI document of this server.
#[utoipa::path(get, path = "/openapi.json", tag = "Meta", security(()), responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}

/// One organization in the login answer, as the Braintrust SDK reads it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgInfo {
    /// Org id.
    pub id: uuid::Uuid,
    /// Org name.
    pub name: String,
    /// Where the SDK sends data-plane calls.
    pub api_url: String,
    /// Proxy URL.
    pub proxy_url: String,
    /// Realtime URL (unused).
    pub realtime_url: Option<String>,
    /// Braintrust flag.
    pub is_universal_api: Option<bool>,
    /// Git metadata settings; null means the SDK collects none.
    pub git_metadata: Option<serde_json::Value>,
}

/// The SDK login answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginInfo {
    /// The caller's organizations.
    pub org_info: Vec<OrgInfo>,
}

/// SDK login: the organizations the credential can use and where their API is.
#[utoipa::path(post, path = "/api/apikey/login", tag = "Meta", responses((status = 200, body = LoginInfo)))]
pub async fn login(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<LoginInfo>> {
    let default_url = state.config().public_url();
    let mut org_info = Vec::new();
    for id in &caller.orgs {
        let o = caller.org_by_id(*id).await?;
        let api_url = o.api_url.clone().unwrap_or_else(|| default_url.clone());
        org_info.push(OrgInfo {
            id: o.id.0,
            name: o.name.clone(),
            proxy_url: o.proxy_url.clone().unwrap_or_else(|| api_url.clone()),
            api_url,
            realtime_url: o.realtime_url.clone(),
            is_universal_api: o.is_universal_api,
            git_metadata: None,
        });
    }
    Ok(Json(LoginInfo { org_info }))
}

/// Who the credential acts as, and its organizations.
#[utoipa::path(post, path = "/api/self/me", tag = "Meta", responses((status = 200, body = SelfInfo)))]
pub async fn me(caller: Caller) -> ApiResult<Json<SelfInfo>> {
    let mut organizations = Vec::new();
    for id in &caller.orgs {
        let o = caller.org_by_id(*id).await?;
        organizations.push(OrgRef { id: o.id.0, name: o.name });
    }
    Ok(Json(SelfInfo {
        id: caller.user.id.0,
        email: caller.user.email.clone(),
        given_name: caller.user.given_name.clone(),
        family_name: caller.user.family_name.clone(),
        organizations,
    }))
}
