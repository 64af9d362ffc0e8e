//! A small HTTP client for Castellan's API, built on the shared wire types.

use anyhow::{anyhow, Context, Result};
use castellan_api_types::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Talks to one server with one credential.
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    org: Option<String>,
    anonymous: bool,
}

/// An error answer from the server.
#[derive(Debug)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// The server's code and message.
    pub body: ErrorBody,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status.as_u16(), self.body.code, self.body.message)
    }
}

impl std::error::Error for ApiFailure {}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8000`).
    pub fn new(base: &str, api_key: Option<String>, org: Option<String>) -> Result<Client> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("castellan-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Client { http, base: base.trim_end_matches('/').to_owned(), api_key, org, anonymous: false })
    }

    /// Sends a request and decodes a JSON answer.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T> {
        let mut req = self.request(method.clone(), path, query)?;
        if let Some(b) = body {
            req = req.json(b);
        }
        let bytes = self.answer(req, &method, path).await?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the answer to {method} {path} is not what was expected"))
    }

    /// A request with the credential and the org header.
    fn request(&self, method: Method, path: &str, query: &[(&str, String)]) -> Result<reqwest::RequestBuilder> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url).query(query);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        } else if !self.anonymous {
            return Err(anyhow!("no API key: pass --api-key or set CASTELLAN_API_KEY"));
        }
        if let Some(o) = &self.org {
            req = req.header("x-bt-org-name", o);
        }
        Ok(req)
    }

    /// Sends a request; the body of a successful answer, else the server's error.
    async fn answer(&self, req: reqwest::RequestBuilder, method: &Method, path: &str) -> Result<Vec<u8>> {
        let resp = req.send().await.with_context(|| format!("cannot reach {}{path}", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await.with_context(|| format!("reading the answer to {method} {path}"))?;
        if !status.is_success() {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                code: "unknown".into(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
            return Err(ApiFailure { status, body }.into());
        }
        Ok(bytes.to_vec())
    }

    /// `GET` of a text answer in the media type `accept`.
    pub async fn get_text(&self, path: &str, query: &[(&str, String)], accept: &str) -> Result<String> {
        let req = self.request(Method::GET, path, query)?.header(reqwest::header::ACCEPT, accept);
        let bytes = self.answer(req, &Method::GET, path).await?;
        String::from_utf8(bytes).with_context(|| format!("the answer to GET {path} is not UTF-8"))
    }

    /// `POST` of a body of media type `content_type` as it is; decodes a JSON answer.
    pub async fn post_raw<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<T> {
        let req =
            self.request(Method::POST, path, query)?.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        let bytes = self.answer(req, &Method::POST, path).await?;
        serde_json::from_slice(&bytes).with_context(|| format!("the answer to POST {path} is not what was expected"))
    }

    /// `GET`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T> {
        self.call::<(), T>(Method::GET, path, query, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    /// Whether a credential is configured.
    pub fn has_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// `POST` without any credential (accepting an invitation for a new account).
    pub async fn post_anonymous<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let anon =
            Client { http: self.http.clone(), base: self.base.clone(), api_key: None, org: None, anonymous: true };
        anon.call(Method::POST, path, &[], Some(body)).await
    }

    /// `PATCH` with a JSON body.
    pub async fn patch<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::PATCH, path, &[], Some(body)).await
    }

    /// `DELETE`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), T>(Method::DELETE, path, &[], None).await
    }
}
