//! Stored records to wire types.

use castellan_api_types as api;
use castellan_api_types::format_time;
use castellan_store::{AclRecord, KeyRecord, OrgRecord, ProjectRecord, UserRecord};

/// An organization on the wire.
pub fn org(o: &OrgRecord) -> api::Organization {
    api::Organization {
        id: o.id.0,
        name: o.name.clone(),
        api_url: o.api_url.clone(),
        is_universal_api: o.is_universal_api,
        is_dataplane_private: o.is_dataplane_private,
        proxy_url: o.proxy_url.clone(),
        realtime_url: o.realtime_url.clone(),
        created: Some(format_time(o.created)),
        archived_at: None,
        deleted_at: None,
        image_rendering_mode: o.image_rendering_mode.as_deref().and_then(api::ImageRenderingMode::parse),
        strict_delegation: o.settings.get("strict_delegation").and_then(|v| v.as_bool()).unwrap_or(false),
    }
}

/// A user on the wire.
pub fn user(u: &UserRecord) -> api::User {
    api::User {
        id: u.id.0,
        given_name: u.given_name.clone(),
        family_name: u.family_name.clone(),
        email: u.email.clone(),
        avatar_url: u.avatar_url.clone(),
        created: Some(format_time(u.created)),
    }
}

/// A project on the wire.
pub fn project(p: &ProjectRecord) -> api::Project {
    api::Project {
        id: p.id.0,
        org_id: p.org_id.0,
        name: p.name.clone(),
        description: p.description.clone(),
        created: Some(format_time(p.created)),
        deleted_at: None,
        user_id: p.user_id.map(|u| u.0),
        settings: p.settings.clone(),
    }
}

/// An API key on the wire (never the secret).
pub fn api_key(k: &KeyRecord, owner: Option<&UserRecord>) -> api::ApiKey {
    api::ApiKey {
        id: k.id.0,
        created: Some(format_time(k.created)),
        name: k.name.clone(),
        preview_name: k.preview_name.clone(),
        user_id: Some(k.user_id.0),
        user_email: owner.and_then(|u| u.email.clone()),
        user_given_name: owner.and_then(|u| u.given_name.clone()),
        user_family_name: owner.and_then(|u| u.family_name.clone()),
        org_id: k.org_id.map(|o| o.0),
        last_used: k.last_used.map(format_time),
        expires_at: k.expires_at.map(format_time),
    }
}

/// An ACL on the wire.
pub fn acl(a: &AclRecord) -> api::Acl {
    api::Acl {
        id: a.id.0,
        object_type: a.object_type,
        object_id: a.object_id,
        user_id: a.user_id.map(|u| u.0),
        group_id: a.group_id.map(|g| g.0),
        permission: a.permission,
        restrict_object_type: a.restrict_object_type,
        role_id: a.role_id.map(|r| r.0),
        _object_org_id: a.org_id.0,
        created: Some(format_time(a.created)),
        expires_at: a.expires_at.map(format_time),
    }
}
