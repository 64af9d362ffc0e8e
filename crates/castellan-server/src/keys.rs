//! Credential secrets: generation, hashing and masked previews.
//!
//! A secret is 43 characters from a 62-letter alphabet (≥ 256 bits of entropy) after
//! its prefix. Only its SHA-256 is stored: with that much entropy a fast hash is as
//! safe as a slow one, and it lets every request authenticate with one indexed lookup.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Prefix of user API keys.
pub const API_KEY_PREFIX: &str = "sk-";
/// Prefix of service tokens.
pub const SERVICE_TOKEN_PREFIX: &str = "bt-st-";
/// Prefix of SCIM provisioning tokens.
pub const SCIM_TOKEN_PREFIX: &str = "scim-";

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_CHARS: usize = 43;

/// A freshly minted secret.
pub struct Minted {
    /// The raw secret, shown once.
    pub raw: String,
    /// What is stored.
    pub hash: String,
    /// The masked preview.
    pub preview: String,
}

/// Mints a new secret with `prefix`.
pub fn mint(prefix: &str) -> Minted {
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..SECRET_CHARS).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    let raw = format!("{prefix}{body}");
    Minted { hash: hash(&raw), preview: preview(prefix, &body), raw }
}

/// The stored form of a secret.
pub fn hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

fn preview(prefix: &str, body: &str) -> String {
    let tail: String = body.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{prefix}****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_are_long_random_and_previewed_by_their_last_four() {
        let a = mint(API_KEY_PREFIX);
        let b = mint(API_KEY_PREFIX);
        assert_ne!(a.raw, b.raw);
        assert!(a.raw.starts_with("sk-") && a.raw.len() == 3 + 43);
        assert_eq!(a.hash, hash(&a.raw));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.preview.contains(&a.raw[3..20]));
        assert!(a.preview.ends_with(&a.raw[a.raw.len() - 4..]));
        // log2(62^43) > 256.
        assert!((43.0_f64) * 62f64.log2() > 256.0);
    }
}
