//! Passwords: argon2id hashes (PHC strings), computed on a blocking thread so a
//! sign-in never stalls the async workers, and a dummy verification for unknown
//! emails so the answer's timing does not reveal who has an account.

use crate::error::{ApiError, ApiResult};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted, in bytes (argon2 has no limit; this bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password against the policy.
pub fn check_policy(password: &str, email: Option<&str>) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid_body(format!("a password must have at least {MIN_PASSWORD_CHARS} characters")));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_body(format!("a password must have at most {MAX_PASSWORD_BYTES} bytes")));
    }
    if email.is_some_and(|e| e.eq_ignore_ascii_case(password.trim())) {
        return Err(ApiError::invalid_body("a password must not be the account's email"));
    }
    Ok(())
}

fn hash_blocking(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a password nobody has, to verify against when the email is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking("castellan-dummy-password-for-timing").unwrap_or_default())
}

/// Hashes a password (argon2id, random salt).
pub async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)
}

/// Verifies a password against a stored hash, or against a dummy hash when there is
/// none, so both paths cost the same.
pub async fn verify(password: String, stored: Option<String>) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || match stored {
        Some(phc) => verify_blocking(&password, &phc),
        None => {
            let _ = verify_blocking(&password, dummy_hash());
            false
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Prepares the dummy hash ahead of the first sign-in.
pub fn warm_up() {
    let _ = dummy_hash();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse battery".into(), Some(h.clone())).await.unwrap());
        assert!(!verify("wrong horse battery".into(), Some(h)).await.unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
        assert!(!verify("x".into(), Some("not a phc string".into())).await.unwrap());
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_policy("short", None).is_err());
        assert!(check_policy("ada@example.com", Some("ADA@example.com")).is_err());
        assert!(check_policy(&"x".repeat(2000), None).is_err());
        assert!(check_policy("a long enough passphrase", Some("ada@example.com")).is_ok());
    }
}
