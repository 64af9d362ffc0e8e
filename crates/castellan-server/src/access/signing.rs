//! Signed URLs: how a client without a bearer header (the SDK uploading an
//! attachment or an oversized payload) is authorized for one operation on one blob
//! until a deadline.
//!
//! The signature is an HMAC-SHA256, under a secret the server generates on first
//! start and keeps in the database, sealed under the master key where there is one
//! (so every replica verifies every URL), over the
//! method, the blob's purpose, its key and the expiry. The secret never leaves the
//! process and is never logged.

use super::data::BlobPermit;
use crate::error::{ApiError, ApiResult};
use castellan_store::BlobPurpose;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a signed URL stays valid, in seconds.
pub const SIGNED_URL_TTL_SECS: i64 = 3600;

/// The secret's name in the database, where the server has no master key.
pub const SECRET_NAME: &str = "url_signing_v1";
/// Its name where it is sealed under the master key (every server with one).
pub const SEALED_SECRET_NAME: &str = "url_signing.sealed";

/// Signs and verifies URLs.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

/// Percent-encodes a path segment (keys are client-chosen strings).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Signer {
    /// A signer with this secret.
    pub fn new(key: Vec<u8>) -> Signer {
        Signer { key }
    }

    /// A key for another purpose, derived from this secret (HMAC of `label`), so
    /// every replica derives the same one.
    pub fn derive(&self, label: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(b"castellan derived key\n");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn mac(&self, method: &str, purpose: BlobPurpose, key: &str, expires: i64) -> ApiResult<Hmac<Sha256>> {
        // HMAC accepts keys of any length, so this does not fail in practice.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .map_err(|e| ApiError::Internal(format!("signing key unusable: {e}")))?;
        // Newlines cannot occur in the method, the purpose or the number, so the
        // fields cannot bleed into each other; the key goes last.
        mac.update(format!("{method}\n{}\n{expires}\n{key}", purpose.as_str()).as_bytes());
        Ok(mac)
    }

    /// The URL `{base}{path}/{key}?expires=…&sig=…` allowing `method` on the blob
    /// until `expires` (unix seconds).
    pub fn url(
        &self,
        base: &str,
        path: &str,
        method: &str,
        purpose: BlobPurpose,
        key: &str,
        expires: i64,
    ) -> ApiResult<String> {
        let sig = hex::encode(self.mac(method, purpose, key, expires)?.finalize().into_bytes());
        Ok(format!("{}{path}/{}?expires={expires}&sig={sig}", base.trim_end_matches('/'), encode_segment(key)))
    }

    /// Checks a signed request: 403 when the signature is missing, wrong (tampered
    /// with, or for another method or blob) or expired.
    pub fn verify(
        &self,
        method: &str,
        purpose: BlobPurpose,
        key: &str,
        expires: Option<&str>,
        sig: Option<&str>,
        now_secs: i64,
    ) -> ApiResult<BlobPermit> {
        let invalid = || ApiError::Forbidden("the signed URL is not valid for this request".into());
        let expires: i64 = expires.and_then(|e| e.parse().ok()).ok_or_else(invalid)?;
        let sig = sig.and_then(|s| hex::decode(s).ok()).ok_or_else(invalid)?;
        self.mac(method, purpose, key, expires)?.verify_slice(&sig).map_err(|_| invalid())?;
        if expires < now_secs {
            return Err(ApiError::Forbidden("the signed URL has expired; ask for a new one".into()));
        }
        Ok(BlobPermit::signed(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, String) {
        let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut e = String::new();
        let mut s = String::new();
        for kv in q.split('&') {
            match kv.split_once('=') {
                Some(("expires", v)) => e = v.into(),
                Some(("sig", v)) => s = v.into(),
                _ => {}
            }
        }
        (e, s)
    }

    #[test]
    fn a_signed_url_verifies_for_its_own_operation_only() {
        let s = Signer::new(b"secret".to_vec());
        let url = s.url("http://h/", "/attachment/blob", "PUT", BlobPurpose::Attachment, "k 1", 100).unwrap();
        assert!(url.starts_with("http://h/attachment/blob/k%201?expires=100&sig="), "{url}");
        let (e, sig) = parts(&url);
        assert!(s.verify("PUT", BlobPurpose::Attachment, "k 1", Some(&e), Some(&sig), 99).is_ok());
        assert!(s.verify("GET", BlobPurpose::Attachment, "k 1", Some(&e), Some(&sig), 99).is_err());
        assert!(s.verify("PUT", BlobPurpose::Logs3Overflow, "k 1", Some(&e), Some(&sig), 99).is_err());
        assert!(s.verify("PUT", BlobPurpose::Attachment, "k 2", Some(&e), Some(&sig), 99).is_err());
        assert!(s.verify("PUT", BlobPurpose::Attachment, "k 1", Some("101"), Some(&sig), 99).is_err());
        assert!(s.verify("PUT", BlobPurpose::Attachment, "k 1", Some(&e), None, 99).is_err());
        let other = Signer::new(b"other".to_vec());
        assert!(other.verify("PUT", BlobPurpose::Attachment, "k 1", Some(&e), Some(&sig), 99).is_err());
    }

    #[test]
    fn an_expired_url_is_refused_with_a_clear_message() {
        let s = Signer::new(b"secret".to_vec());
        let (e, sig) = parts(&s.url("http://h", "/b", "GET", BlobPurpose::Attachment, "k", 100).unwrap());
        let err = s.verify("GET", BlobPurpose::Attachment, "k", Some(&e), Some(&sig), 101).unwrap_err();
        assert!(err.to_string().contains("expired"));
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        assert_eq!(format!("{:?}", Signer::new(b"hunter2".to_vec())), "Signer(<redacted>)");
    }
}
