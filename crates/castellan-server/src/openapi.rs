//! The OpenAPI document, generated from the handlers' annotations. A test compares it
//! with the committed `openapi.json` so the published API cannot drift unnoticed.

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
    components(schemas(castellan_api_types::ErrorBody)),
    security(("bearerAuth" = [])),
)]
struct ApiDoc;

/// The document: the operations the router registers (`routes::api`), then the
/// security scheme, the error answers and the revision headers on every operation.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::routes::api().into_openapi());
    for m in [&BearerAuth as &dyn Modify, &Errors, &Revisions] {
        m.modify(&mut doc);
    }
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn document_json() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
    s.push('\n');
    s
}
