//! SCIM PATCH (RFC 7644 §3.5.2) over a resource's JSON: `add`, `remove` and
//! `replace`, with a path (`attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`) or
//! without one (the value is an object of attribute paths, as Okta sends
//! `{"op":"replace","value":{"active":false}}`). Operation names are compared
//! case-insensitively (Entra ID sends `"Add"`, `"Replace"`, `"Remove"`). The result
//! is validated as a whole afterwards, so a bad value changes nothing.

use super::filter::{self, Filter};
use super::schema::ENTERPRISE;
use super::ScimError;
use serde_json::{json, Map, Value};

/// Which resource a PATCH applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

const USER_ATTRS: [&str; 8] =
    ["userName", "name", "displayName", "title", "active", "emails", "externalId", ENTERPRISE];
const GROUP_ATTRS: [&str; 3] = ["displayName", "members", "externalId"];
const READ_ONLY: [&str; 4] = ["id", "meta", "groups", "schemas"];

fn subs(attr: &str) -> &'static [&'static str] {
    match attr {
        "name" => &["formatted", "familyName", "givenName"],
        "emails" => &["value", "type", "primary", "display"],
        "members" => &["value", "display", "type", "$ref"],
        a if a == ENTERPRISE => &["employeeNumber", "costCenter", "organization", "division", "department", "manager"],
        _ => &[],
    }
}

fn canonical(kind: Kind, attr: &str) -> Option<&'static str> {
    let list: &[&'static str] = match kind {
        Kind::User => &USER_ATTRS,
        Kind::Group => &GROUP_ATTRS,
    };
    list.iter().copied().find(|a| a.eq_ignore_ascii_case(attr))
}

fn invalid_path(detail: String) -> ScimError {
    ScimError::bad("invalidPath", detail)
}

/// Applies a PatchOp body to `doc`.
pub fn apply(doc: &mut Value, body: &Value, kind: Kind) -> Result<(), ScimError> {
    if let Some(schemas) = filter::get_ci(body, "schemas") {
        let ok = schemas.as_array().is_some_and(|a| a.iter().any(|s| s.as_str() == Some(super::schema::PATCH)));
        if !ok {
            return Err(ScimError::bad("invalidSyntax", format!("`schemas` must list `{}`", super::schema::PATCH)));
        }
    }
    let ops = filter::get_ci(body, "Operations")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ScimError::bad("invalidSyntax", "a PATCH needs a non-empty `Operations` list"))?;
    for (i, op) in ops.iter().enumerate() {
        let name = filter::get_ci(op, "op").and_then(Value::as_str).map(str::to_ascii_lowercase);
        let name = match name.as_deref() {
            Some(n @ ("add" | "remove" | "replace")) => n.to_owned(),
            _ => {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    format!("`Operations[{i}].op` must be `add`, `remove` or `replace`"),
                ))
            }
        };
        let path = match filter::get_ci(op, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(invalid_path(format!("`Operations[{i}].path` must be a string, got {other}"))),
        };
        let value = filter::get_ci(op, "value");
        match path {
            Some(p) => at_path(doc, &name, &p, value, kind)?,
            None => {
                if name == "remove" {
                    return Err(ScimError::bad("noTarget", format!("`Operations[{i}]`: `remove` needs a `path`")));
                }
                let Some(obj) = value.and_then(Value::as_object) else {
                    return Err(ScimError::bad(
                        "invalidValue",
                        format!("`Operations[{i}]` has no `path`, so its `value` must be an object of attributes"),
                    ));
                };
                for (k, v) in obj {
                    // Okta names the resource's `id` beside the changes; read-only
                    // values in a path-less value are ignored (RFC 7644 §3.5.2).
                    if ["schemas", "id", "meta"].iter().any(|r| k.eq_ignore_ascii_case(r)) {
                        continue;
                    }
                    if k.eq_ignore_ascii_case(ENTERPRISE) && v.is_object() && kind == Kind::User {
                        for (sk, sv) in v.as_object().into_iter().flatten() {
                            at_path(doc, &name, &format!("{ENTERPRISE}:{sk}"), Some(sv), kind)?;
                        }
                        continue;
                    }
                    at_path(doc, &name, k, Some(v), kind)?;
                }
            }
        }
    }
    Ok(())
}

fn merge(into: &mut Value, from: &Value) {
    match (into.as_object_mut(), from.as_object()) {
        (Some(a), Some(b)) => {
            for (k, v) in b {
                let key = filter::key_ci(a, k).unwrap_or_else(|| k.clone());
                a.insert(key, v.clone());
            }
        }
        _ => *into = from.clone(),
    }
}

fn value_of(v: &Value) -> Option<String> {
    match filter::get_ci(v, "value").unwrap_or(v) {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn set_sub(elem: &mut Value, sub: &str, value: Option<&Value>) -> Result<(), ScimError> {
    let Some(o) = elem.as_object_mut() else {
        return Err(invalid_path(format!("`{sub}` is a sub-attribute of a value that is not complex")));
    };
    let key = filter::key_ci(o, sub).unwrap_or_else(|| sub.to_owned());
    match value {
        Some(v) => {
            o.insert(key, v.clone());
        }
        None => {
            o.remove(&key);
        }
    }
    Ok(())
}

/// The attribute and value of a filter `attr eq "v"`: the value a new element gets
/// when an `add` or `replace` by filter matches nothing (Entra ID's
/// `emails[type eq "work"].value`).
fn simple_eq(f: &Filter) -> Option<(String, Value)> {
    match f {
        Filter::Compare(p, filter::Op::Eq, v) if p.filter.is_none() && p.sub.is_none() => {
            Some((p.attr.clone(), v.clone()))
        }
        _ => None,
    }
}

fn at_path(doc: &mut Value, op: &str, p: &str, value: Option<&Value>, kind: Kind) -> Result<(), ScimError> {
    let path = filter::parse_path(p).map_err(|e| invalid_path(format!("path `{p}`: {e}")))?;
    if READ_ONLY.iter().any(|a| a.eq_ignore_ascii_case(&path.attr)) {
        return Err(ScimError::bad("mutability", format!("`{}` is read-only", path.attr)));
    }
    let attr = canonical(kind, &path.attr)
        .ok_or_else(|| invalid_path(format!("path `{p}`: `{}` is not an attribute of this resource", path.attr)))?;
    let sub = match &path.sub {
        None => None,
        Some(s) => Some(
            subs(attr)
                .iter()
                .copied()
                .find(|x| x.eq_ignore_ascii_case(s))
                .ok_or_else(|| invalid_path(format!("path `{p}`: `{attr}` has no sub-attribute `{s}`")))?,
        ),
    };
    if path.filter.is_some() && !matches!(attr, "emails" | "members") {
        return Err(invalid_path(format!("path `{p}`: `{attr}` is not multi-valued")));
    }
    if op != "remove" && value.is_none() {
        return Err(ScimError::bad("invalidValue", format!("`{op}` of `{p}` needs a `value`")));
    }
    let Some(obj) = doc.as_object_mut() else { return Err(invalid_path("the resource is not an object".into())) };
    let key = filter::key_ci(obj, attr).unwrap_or_else(|| attr.to_owned());
    match (&path.filter, sub) {
        (None, None) => match op {
            "remove" => {
                let listed: Option<Vec<String>> = match value {
                    Some(Value::Array(a)) => Some(a.iter().filter_map(value_of).collect()),
                    Some(v @ Value::Object(_)) => Some(value_of(v).into_iter().collect()),
                    _ => None,
                };
                match (listed, obj.get_mut(&key)) {
                    // Entra ID removes members by listing them in `value`.
                    (Some(vals), Some(Value::Array(items))) => {
                        items.retain(|it| value_of(it).is_none_or(|v| !vals.contains(&v)));
                    }
                    _ => {
                        obj.remove(&key);
                    }
                }
            }
            "add" => {
                let v = value.cloned().unwrap_or(Value::Null);
                match obj.get_mut(&key) {
                    Some(Value::Array(items)) => {
                        let new: Vec<Value> = match v {
                            Value::Array(a) => a,
                            other => vec![other],
                        };
                        for n in new {
                            let dup = value_of(&n)
                                .is_some_and(|nv| items.iter().any(|it| value_of(it).as_ref() == Some(&nv)));
                            if !dup {
                                items.push(n);
                            }
                        }
                    }
                    Some(existing @ Value::Object(_)) if v.is_object() => merge(existing, &v),
                    _ => {
                        let v = match (attr, v) {
                            ("emails" | "members", Value::Object(o)) => Value::Array(vec![Value::Object(o)]),
                            (_, v) => v,
                        };
                        obj.insert(key, v);
                    }
                }
            }
            _ => {
                let v = value.cloned().unwrap_or(Value::Null);
                match obj.get_mut(&key) {
                    Some(existing @ Value::Object(_)) if v.is_object() => merge(existing, &v),
                    _ => {
                        let v = match (attr, v) {
                            ("emails" | "members", Value::Object(o)) => Value::Array(vec![Value::Object(o)]),
                            (_, v) => v,
                        };
                        obj.insert(key, v);
                    }
                }
            }
        },
        (None, Some(s)) => {
            if op == "remove" {
                match obj.get_mut(&key) {
                    Some(Value::Array(items)) => {
                        for it in items.iter_mut() {
                            set_sub(it, s, None)?;
                        }
                    }
                    Some(v @ Value::Object(_)) => set_sub(v, s, None)?,
                    _ => {}
                }
                return Ok(());
            }
            let target = obj.entry(key).or_insert_with(|| json!({}));
            match target {
                Value::Array(items) => {
                    for it in items.iter_mut() {
                        set_sub(it, s, value)?;
                    }
                }
                Value::Null => {
                    *target = json!({});
                    set_sub(target, s, value)?;
                }
                other => set_sub(other, s, value)?,
            }
        }
        (Some(f), sub) => {
            if op == "remove" && !obj.contains_key(&key) {
                return Ok(());
            }
            let target = obj.entry(key).or_insert_with(|| json!([]));
            if target.is_null() {
                *target = json!([]);
            }
            let Some(items) = target.as_array_mut() else {
                return Err(invalid_path(format!("path `{p}`: `{attr}` is not multi-valued")));
            };
            let hits: Vec<usize> = (0..items.len()).filter(|i| filter::matches(&items[*i], f)).collect();
            match op {
                "remove" => match sub {
                    None => {
                        let mut i = 0;
                        items.retain(|_| {
                            let keep = !hits.contains(&i);
                            i += 1;
                            keep
                        });
                    }
                    Some(s) => {
                        for i in hits {
                            set_sub(&mut items[i], s, None)?;
                        }
                    }
                },
                _ => {
                    if hits.is_empty() {
                        let Some((fa, fv)) = simple_eq(f) else {
                            return Err(ScimError::bad("noTarget", format!("path `{p}` matches no value")));
                        };
                        let mut new = Map::new();
                        new.insert(fa, fv);
                        let mut new = Value::Object(new);
                        match sub {
                            Some(s) => set_sub(&mut new, s, value)?,
                            None => merge(&mut new, value.unwrap_or(&Value::Null)),
                        }
                        items.push(new);
                    } else {
                        for i in hits {
                            match sub {
                                Some(s) => set_sub(&mut items[i], s, value)?,
                                None => merge(&mut items[i], value.unwrap_or(&Value::Null)),
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
