//! The SCIM discovery documents (RFC 7643 §5–§7): the service provider's
//! configuration, its resource types and the schemas of the attributes it keeps.

use serde_json::{json, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The schemas whose URN may prefix an attribute path.
pub const KNOWN_SCHEMAS: [&str; 3] = [ENTERPRISE, USER, GROUP];

/// The extension URN `path` starts with, if any (its attributes live under it).
pub fn extension_urn(path: &str) -> Option<&'static str> {
    let l = path.to_ascii_lowercase();
    let e = ENTERPRISE.to_ascii_lowercase();
    (l == e || l.starts_with(&format!("{e}:"))).then_some(ENTERPRISE)
}

/// The largest page a list returns.
pub const MAX_RESULTS: usize = 200;

fn attr(name: &str, ty: &str, multi: bool, required: bool, mutability: &str, uniqueness: &str, exact: bool) -> Value {
    json!({
        "name": name, "type": ty, "multiValued": multi, "description": name, "required": required,
        "caseExact": exact, "mutability": mutability, "returned": "default", "uniqueness": uniqueness,
    })
}

fn s(name: &str) -> Value {
    attr(name, "string", false, false, "readWrite", "none", false)
}

fn complex(name: &str, multi: bool, subs: Vec<Value>) -> Value {
    let mut a = attr(name, "complex", multi, false, "readWrite", "none", false);
    a["subAttributes"] = Value::Array(subs);
    a
}

fn typed(name: &str, canonical: &[&str]) -> Value {
    let mut a = s(name);
    a["canonicalValues"] = json!(canonical);
    a
}

fn primary() -> Value {
    attr("primary", "boolean", false, false, "readWrite", "none", false)
}

fn meta(id: &str, name: &str, description: &str, attributes: Vec<Value>, base: &str) -> Value {
    json!({
        "schemas": [SCHEMA], "id": id, "name": name, "description": description, "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

/// The User schema: the attributes Castellan keeps for a member.
pub fn user_schema(base: &str) -> Value {
    let mut user_name = attr("userName", "string", false, true, "readWrite", "server", false);
    user_name["description"] = json!("Unique within the organization, compared case-insensitively.");
    let mut groups = complex(
        "groups",
        true,
        vec![
            attr("value", "string", false, false, "readOnly", "none", false),
            attr("$ref", "reference", false, false, "readOnly", "none", false),
            attr("display", "string", false, false, "readOnly", "none", false),
            attr("type", "string", false, false, "readOnly", "none", false),
        ],
    );
    groups["mutability"] = json!("readOnly");
    let attributes = vec![
        user_name,
        complex("name", false, vec![s("formatted"), s("familyName"), s("givenName")]),
        s("displayName"),
        s("title"),
        attr("active", "boolean", false, false, "readWrite", "none", false),
        complex("emails", true, vec![s("value"), typed("type", &["work", "home", "other"]), primary()]),
        groups,
    ];
    meta(USER, "User", "A member of the organization", attributes, base)
}

/// The Group schema: SCIM-managed permission groups.
pub fn group_schema(base: &str) -> Value {
    let mut members = complex(
        "members",
        true,
        vec![
            attr("value", "string", false, false, "immutable", "none", true),
            attr("$ref", "reference", false, false, "immutable", "none", false),
            attr("display", "string", false, false, "readOnly", "none", false),
            typed("type", &["User"]),
        ],
    );
    members["subAttributes"][1]["referenceTypes"] = json!(["User"]);
    let attributes = vec![attr("displayName", "string", false, true, "readWrite", "server", false), members];
    meta(GROUP, "Group", "A permission group managed by SCIM", attributes, base)
}

/// The enterprise User extension (kept as sent, for Entra ID's default mappings).
pub fn enterprise_schema(base: &str) -> Value {
    let attributes = vec![
        s("employeeNumber"),
        s("costCenter"),
        s("organization"),
        s("division"),
        s("department"),
        complex(
            "manager",
            false,
            vec![s("value"), attr("displayName", "string", false, false, "readOnly", "none", false)],
        ),
    ];
    meta(ENTERPRISE, "EnterpriseUser", "Enterprise User", attributes, base)
}

/// Every schema, by URN.
pub fn schemas(base: &str) -> Vec<Value> {
    vec![user_schema(base), group_schema(base), enterprise_schema(base)]
}

/// `/ResourceTypes`.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE], "id": "User", "name": "User", "endpoint": "/Users",
            "description": "Members of the organization", "schema": USER,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": [RESOURCE_TYPE], "id": "Group", "name": "Group", "endpoint": "/Groups",
            "description": "Permission groups managed by SCIM", "schema": GROUP, "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

/// `/ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC],
        "documentationUri": "https://github.com/castellan/castellan/blob/main/docs/scim.md",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "SCIM token",
            "description": "Authorization: Bearer <SCIM token> (castellan scim-token create)", "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}
