//! `POST /insert-functions`: what `braintrust push` and `project.publish()` send — a
//! batch of function definitions (prompts, LLM scorers, parameters, code functions
//! whose bundle is referenced by id), each created like `POST /v1/function` (or
//! `/v1/prompt` for prompts) and authorized the same way. Code bundles are stored
//! as definitions and listed, never executed by Castellan.

use super::function::{create_in, Mode};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use axum::Json;
use castellan_api_types::CreateFunction;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(insert_functions))
}

/// The most definitions one request may carry.
const MAX_FUNCTIONS: usize = 1000;

/// `POST /insert-functions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InsertFunctions {
    /// The definitions: `POST /v1/function` bodies, each with an optional
    /// `if_exists` (`error`, the default; `replace`; `ignore`).
    #[schema(value_type = Vec<Object>)]
    pub functions: Vec<Value>,
}

/// One function written (or found).
#[derive(Debug, Serialize, ToSchema)]
pub struct InsertedFunction {
    /// Id.
    pub id: uuid::Uuid,
    /// The project.
    pub project_id: uuid::Uuid,
    /// Slug.
    pub slug: String,
    /// The version written, or the existing one's.
    #[serde(rename = "_xact_id")]
    pub xact_id: String,
    /// Whether it existed and was kept (`if_exists: ignore`).
    pub found_existing: bool,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct InsertFunctionsOutput {
    /// One per definition, in order.
    pub functions: Vec<InsertedFunction>,
}

#[derive(Clone, Copy, PartialEq)]
enum IfExists {
    Error,
    Replace,
    Ignore,
}

/// Creates (or replaces, or keeps) each function of a batch. With `if_exists:
/// error` (the default), a slug already taken in its project refuses the whole
/// request before anything is written.
#[utoipa::path(post, path = "/insert-functions", tag = "Functions", request_body = InsertFunctions,
    responses((status = 200, body = InsertFunctionsOutput)))]
pub async fn insert_functions(
    caller: Caller,
    Body(body): Body<InsertFunctions>,
) -> ApiResult<Json<InsertFunctionsOutput>> {
    if body.functions.len() > MAX_FUNCTIONS {
        return Err(ApiError::invalid_body(format!("at most {MAX_FUNCTIONS} functions per request")));
    }
    let mut defs = Vec::with_capacity(body.functions.len());
    for (i, f) in body.functions.into_iter().enumerate() {
        let Value::Object(mut m) = f else {
            return Err(ApiError::invalid_body(format!("`functions[{i}]` must be an object")));
        };
        let if_exists = match m.remove("if_exists") {
            None | Some(Value::Null) => IfExists::Error,
            Some(Value::String(s)) if s == "error" => IfExists::Error,
            Some(Value::String(s)) if s == "replace" => IfExists::Replace,
            Some(Value::String(s)) if s == "ignore" => IfExists::Ignore,
            Some(other) => {
                return Err(ApiError::invalid_body(format!(
                    "`functions[{i}].if_exists` must be `error`, `replace` or `ignore`, got `{other}`"
                )))
            }
        };
        let def: CreateFunction = serde_json::from_value(Value::Object(m))
            .map_err(|e| ApiError::invalid_body(format!("`functions[{i}]`: {e}")))?;
        let prompt = def.function_data.as_ref().and_then(|d| d.get("type")).and_then(Value::as_str) == Some("prompt");
        defs.push((def, if_exists, if prompt { Mode::Prompt } else { Mode::Function }));
    }
    // `if_exists: error`: refuse before writing anything.
    for (def, if_exists, _) in &defs {
        if *if_exists == IfExists::Error
            && super::function::find_by_slug(&caller, def.project_id, &def.slug).await?.is_some()
        {
            return Err(ApiError::BadRequest {
                code: crate::error::ErrorCode::NameTaken,
                message: format!(
                    "a function with slug `{}` already exists in project `{}` (use `if_exists: replace` or `ignore`)",
                    def.slug, def.project_id
                ),
            });
        }
    }
    let mut out = Vec::with_capacity(defs.len());
    for (def, if_exists, mode) in defs {
        let written = create_in(&caller, def, mode, if_exists == IfExists::Replace).await?;
        let f = written.body;
        out.push(InsertedFunction {
            id: f.id,
            project_id: f.project_id,
            slug: f.slug,
            xact_id: f._xact_id,
            found_existing: written.found_existing,
        });
    }
    Ok(Json(InsertFunctionsOutput { functions: out }))
}
