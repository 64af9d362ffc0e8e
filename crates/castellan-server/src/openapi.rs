//! The OpenAPI document, generated from the handlers' annotations. A test compares it
//! with the committed `openapi.json` so the published API cannot drift unnoticed.

use crate::routes::{
    acl, api_key, attachment, audit_log, auth, dataset, experiment, function, group, logs3, members, meta,
    organization, project, project_logs, prompt, prompt_session, role, service_token, summarize, user,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("API key or service token").build(),
            ),
        );
    }
}

/// The error answers every operation can give, all with the `ErrorBody` shape.
struct Errors;

impl Modify for Errors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let body = || ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let answers = [
            ("400", "bad input: malformed JSON, wrong types, unknown enum values, broken rules (`code` says which)"),
            ("401", "no credential, or an unknown, revoked or expired one"),
            ("403", "the object is visible but the action is not allowed (or a missing CSRF token)"),
            ("404", "no such object, or the caller cannot see it"),
            ("413", "the body is larger than the server accepts"),
            ("429", "too many requests; see `Retry-After`"),
            ("500", "a server fault; the body says nothing more"),
            ("503", "`x-castellan-min-revision` was not reached in time"),
        ];
        for item in doc.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                for (code, what) in answers {
                    op.responses.responses.entry(code.to_owned()).or_insert_with(|| {
                        ResponseBuilder::new().description(what).content("application/json", body()).build().into()
                    });
                }
            }
        }
    }
}

/// Castellan's read-your-writes headers, on every operation: the request header
/// `x-castellan-min-revision` and the response header `x-castellan-revision`.
struct Revisions;

impl Modify for Revisions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        let int = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).build();
        let param = ParameterBuilder::new()
            .name("x-castellan-min-revision")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Castellan extension: serve this request only once this replica has applied this revision \
                 (a value from an earlier `x-castellan-revision`); 503 `revision_not_reached` if it cannot in time.",
            ))
            .schema(Some(int()))
            .build();
        let header = HeaderBuilder::new()
            .schema(int())
            .description(Some(
                "Castellan extension: the revision a write committed at, or the revision a read was served at.",
            ))
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                op.parameters.get_or_insert_with(Vec::new).push(param.clone());
                for resp in op.responses.responses.values_mut() {
                    if let utoipa::openapi::RefOr::T(r) = resp {
                        r.headers.insert("x-castellan-revision".into(), header.clone());
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Castellan",
        description = "Access control and administration for AI evaluation and observability platforms. \
            Speaks Braintrust's REST API; Castellan's extensions are marked as such.",
        license(name = "Apache-2.0")
    ),
    paths(
        meta::hello, meta::openapi, meta::login, meta::me,
        organization::list, organization::create, organization::retrieve, organization::update, organization::remove,
        user::list, user::retrieve,
        project::list, project::create, project::retrieve, project::update, project::remove,
        api_key::list, api_key::create, api_key::retrieve, api_key::remove,
        acl::list, acl::create, acl::find_and_delete, acl::retrieve, acl::remove, acl::list_org, acl::batch_update,
        acl::explain, acl::who_can, acl::what_can,
        group::list, group::create, group::replace, group::retrieve, group::update, group::remove,
        role::list, role::create, role::replace, role::retrieve, role::update, role::remove,
        members::patch_members, members::accept,
        audit_log::list, audit_log::chain,
        service_token::list, service_token::create, service_token::replace, service_token::retrieve, service_token::remove,
        service_token::remove_by_body,
        auth::login, auth::logout, auth::change_password, auth::sessions, auth::revoke_session,
        logs3::version, logs3::logs3, logs3::overflow, logs3::overflow_upload,
        attachment::announce, attachment::status, attachment::info, attachment::upload, attachment::download,
        experiment::list, experiment::create, experiment::retrieve, experiment::update, experiment::remove,
        experiment::insert, experiment::fetch_get, experiment::fetch_post, experiment::feedback, summarize::experiment,
        dataset::list, dataset::create, dataset::retrieve, dataset::update, dataset::remove,
        dataset::insert, dataset::fetch_get, dataset::fetch_post, dataset::feedback, summarize::dataset,
        project_logs::insert, project_logs::fetch_get, project_logs::fetch_post, project_logs::feedback,
        prompt::list, prompt::create, prompt::replace, prompt::retrieve, prompt::update, prompt::remove,
        function::list, function::create, function::replace, function::retrieve, function::update, function::remove,
        prompt_session::list, prompt_session::create, prompt_session::retrieve, prompt_session::update,
        prompt_session::remove, prompt_session::insert, prompt_session::fetch,
    ),
    components(schemas(castellan_api_types::ErrorBody)),
    modifiers(&BearerAuth, &Errors, &Revisions),
    security(("bearerAuth" = [])),
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn document_json() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
    s.push('\n');
    s
}
