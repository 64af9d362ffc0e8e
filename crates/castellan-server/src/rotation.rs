//! Master-key rotation: every sealed value (administration objects' values,
//! cost-alert signing secrets and the URL-signing key) sealed again under the current master key, in small
//! transactions, while servers keep serving.
//!
//! The procedure (docs/operations.md): give every server the new key as
//! `secret_key` and the old one in `secret_keys_previous` (or, with key files, let
//! `castellan secrets rotate-key --generate` move the old file aside), restart them
//! one by one (they open values sealed with either key and seal with the new one),
//! then run `castellan secrets rotate-key`; afterwards no value needs the old key.

use crate::access::{AppState, SystemKey};
use crate::error::{ApiError, ApiResult};
use crate::secrets::{sealed_key_id, Binding};
use castellan_core::OrgId;
use serde::Serialize;
use std::collections::BTreeMap;

/// How many values one transaction re-seals.
const BATCH: usize = 200;

/// What a rotation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rotation {
    /// The master key everything is sealed with now.
    pub key_id: String,
    /// Values sealed again.
    pub resealed: u64,
    /// Values already sealed with it.
    pub unchanged: u64,
    /// Whether the URL-signing key was sealed again.
    pub signing_key_resealed: bool,
    /// Sealed values per master key after the rotation.
    pub by_key: BTreeMap<String, i64>,
}

/// Sealed values per master key id.
pub async fn status(state: &AppState) -> ApiResult<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for (prefix, n) in state.sealed_prefixes().await? {
        let id = crate::secrets::prefix_key_id(&prefix);
        *out.entry(id).or_insert(0) += n;
    }
    Ok(out)
}

/// Seals every value again under the current master key; `progress(done, total)`
/// after each batch.
pub async fn rotate(state: &AppState, system: &SystemKey, progress: impl Fn(u64, u64)) -> ApiResult<Rotation> {
    let sealer = state.sealer()?;
    let key_id = sealer.key_id();
    let total: u64 = status(state).await?.values().map(|n| u64::try_from(*n).unwrap_or(0)).sum();
    let mut out = Rotation { key_id: key_id.clone(), ..Rotation::default() };
    let permit = system.permit();
    let mut after = None;
    loop {
        let page = {
            let mut tx = state.read(&permit).await?;
            tx.sealed_admin_page(after, BATCH).await?
        };
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let mut w = state.write(&permit).await?;
        let mut per_org: BTreeMap<OrgId, u64> = BTreeMap::new();
        for listed in &page {
            // Read again under the write lock: it may have changed or gone.
            let Some(mut a) = w.tx().get_admin(listed.id).await? else { continue };
            let Some(sealed) = a.secret.clone() else { continue };
            if sealed_key_id(&sealed).as_deref() == Some(key_id.as_str()) {
                out.unchanged += 1;
                continue;
            }
            let value = sealer.open(Binding::admin(&a), &sealed).map_err(|e| {
                ApiError::Internal(format!("{} `{}` ({}) does not open: {e}", a.kind.as_str(), a.name, a.id))
            })?;
            a.secret = Some(sealer.seal(Binding::admin(&a), &value));
            w.reseal_admin(&a).await?;
            *per_org.entry(a.org_id).or_insert(0) += 1;
            out.resealed += 1;
        }
        for (org, n) in per_org {
            w.audit_rotation(org, n, &key_id).await?;
        }
        w.commit().await?;
        progress(out.resealed + out.unchanged, total);
    }
    // Cost-alert signing secrets, on organizations' plans.
    let mut after = None;
    loop {
        let page = {
            let mut tx = state.read(&permit).await?;
            tx.sealed_plan_page(after, BATCH).await?
        };
        let Some(last) = page.last() else { break };
        after = Some(last.org_id);
        let mut w = state.write(&permit).await?;
        let mut per_org: BTreeMap<OrgId, u64> = BTreeMap::new();
        for p in &page {
            let Some(sealed) = &p.alert_secret else { continue };
            if sealed_key_id(sealed).as_deref() == Some(key_id.as_str()) {
                out.unchanged += 1;
                continue;
            }
            let binding = Binding::plan_alert(p.org_id);
            let value = sealer.open(binding, sealed).map_err(|e| {
                ApiError::Internal(format!("the cost-alert signing secret of org {} does not open: {e}", p.org_id.0))
            })?;
            // Only if unchanged since it was read (a rotation of the secret in between
            // sealed it under the current key already).
            if w.tx().reseal_plan_secret(p.org_id, sealed, &sealer.seal(binding, &value)).await? {
                *per_org.entry(p.org_id).or_insert(0) += 1;
                out.resealed += 1;
            }
        }
        for (org, n) in per_org {
            w.audit_rotation(org, n, &key_id).await?;
        }
        w.commit().await?;
        progress(out.resealed + out.unchanged, total);
    }
    out.signing_key_resealed = state.reseal_signing_key(system).await?;
    out.by_key = status(state).await?;
    progress(total, total);
    Ok(out)
}
