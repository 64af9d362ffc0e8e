//! Secret values at rest (environment variables, AI provider keys): sealed with
//! XChaCha20-Poly1305 under the master key, with associated data that binds each
//! ciphertext to its org, kind, row, what it is set on and name, so a sealed value
//! copied onto another row, moved to another project or renamed behind the server's
//! back no longer opens. The master key never
//! enters the database; a sealed value names the key that sealed it.
//!
//! Layout: `1` (format) ‖ key id (8 bytes) ‖ nonce (24 bytes) ‖ ciphertext and tag.

use crate::config::Config;
use castellan_core::OrgId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use uuid::Uuid;

const FORMAT: u8 = 1;
const ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;

/// One master key.
struct Key {
    cipher: XChaCha20Poly1305,
    id: [u8; ID_LEN],
}

impl Key {
    fn new(key: [u8; 32]) -> Key {
        let digest = Sha256::new().chain_update(b"castellan master key id\0").chain_update(key).finalize();
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        Key { cipher: XChaCha20Poly1305::new(&key.into()), id }
    }
}

/// The master key (which seals and opens secret values) and the earlier master keys
/// of a rotation (which only open).
pub struct Sealer {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let previous: Vec<String> = self.previous.iter().map(|k| hex::encode(k.id)).collect();
        write!(f, "Sealer {{ key_id: {}, previous: {previous:?} }}", hex::encode(self.current.id))
    }
}

/// What a sealed value is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// Its table (`admin_objects`, `server_secrets`).
    pub table: &'a str,
    /// Its organization.
    pub org: OrgId,
    /// Its kind (`env_var`, …).
    pub kind: &'a str,
    /// Its row.
    pub id: Uuid,
    /// What it is set on.
    pub scope: castellan_core::ObjectRef,
    /// Its name.
    pub name: &'a str,
}

impl<'a> Binding<'a> {
    /// The binding of an administration object's value.
    pub fn admin(a: &'a castellan_store::AdminRecord) -> Binding<'a> {
        Binding {
            table: "admin_objects",
            org: a.org_id,
            kind: a.kind.as_str(),
            id: a.id,
            scope: a.scope,
            name: &a.name,
        }
    }

    /// The binding of one of the server's own secrets (the URL-signing key).
    pub fn server(name: &'a str) -> Binding<'a> {
        let nil = Uuid::nil();
        Binding {
            table: "server_secrets",
            org: OrgId(nil),
            kind: "server_secret",
            id: nil,
            scope: castellan_core::ObjectRef::new(castellan_core::ObjectType::Organization, nil),
            name,
        }
    }

    /// The binding of an organization's cost-alert webhook signing secret (on its
    /// plan).
    pub fn plan_alert(org: OrgId) -> Binding<'static> {
        Binding {
            table: "org_plans",
            org,
            kind: "alert_signing_secret",
            id: org.0,
            scope: castellan_core::ObjectRef::new(castellan_core::ObjectType::Organization, org.0),
            name: "alert_webhook",
        }
    }

    fn aad(&self) -> Vec<u8> {
        let scope = format!("{}:{}", self.scope.object_type, self.scope.object_id);
        format!("castellan:v1|{}|{}|{}|{}|{}|{}", self.org.0, self.table, self.kind, self.id, scope, self.name)
            .into_bytes()
    }
}

/// The id of the key that sealed a value, from the value's first 9 bytes (format and
/// key id, as `Store::sealed_prefixes` counts them); `unreadable` for anything else.
pub fn prefix_key_id(prefix: &[u8]) -> String {
    match prefix {
        [FORMAT, id @ ..] if id.len() == ID_LEN => hex::encode(id),
        _ => "unreadable".into(),
    }
}

/// The id of the key that sealed `sealed`, if it is a sealed value at all.
pub fn sealed_key_id(sealed: &[u8]) -> Option<String> {
    (sealed.len() >= 1 + ID_LEN + NONCE_LEN && sealed[0] == FORMAT).then(|| hex::encode(&sealed[1..1 + ID_LEN]))
}

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Sealed under another master key.
    #[error("the value was sealed with master key {0}, which this server does not have")]
    OtherKey(String),
    /// Damaged, or moved onto another row or name.
    #[error("the sealed value is damaged or does not belong to this row")]
    Damaged,
}

/// Why the master key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not 32 bytes of hex.
    #[error("{0}: the master key must be 64 hexadecimal characters (32 bytes), e.g. from `openssl rand -hex 32`")]
    Malformed(String),
    /// The file could not be read or written.
    #[error("master key file `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn parse_key(source: &str, text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed(source.to_owned()))?;
    bytes.try_into().map_err(|_| KeyError::Malformed(source.to_owned()))
}

impl Sealer {
    /// A sealer over a 32-byte key.
    pub fn new(key: [u8; 32]) -> Sealer {
        Sealer { current: Key::new(key), previous: Vec::new() }
    }

    /// Parses a key written as 64 hex characters.
    pub fn from_hex(source: &str, text: &str) -> Result<Sealer, KeyError> {
        Ok(Sealer::new(parse_key(source, text)?))
    }

    /// This sealer, also opening values sealed with `key` (an earlier master key).
    pub fn with_previous(mut self, key: [u8; 32]) -> Sealer {
        let k = Key::new(key);
        if k.id != self.current.id && self.previous.iter().all(|p| p.id != k.id) {
            self.previous.push(k);
        }
        self
    }

    /// Whether this sealer opens values sealed by the key of id `id`.
    pub fn knows(&self, id: &str) -> bool {
        hex::encode(self.current.id) == id || self.previous.iter().any(|k| hex::encode(k.id) == id)
    }

    /// The ids of the earlier keys it still opens.
    pub fn previous_key_ids(&self) -> Vec<String> {
        self.previous.iter().map(|k| hex::encode(k.id)).collect()
    }

    /// Writes a new key (64 hex characters, mode 0600) to `path`, which must not
    /// exist; the key's id.
    pub fn generate_file(path: &Path) -> Result<String, KeyError> {
        write_new_key(path).map(|k| hex::encode(Key::new(k).id))
    }

    /// The master key the configuration names: `secret_key`, else the file
    /// `secret_key_file`, else (for the embedded database) `secret.key` in the data
    /// directory, generated with mode 0600 on first start. A PostgreSQL deployment
    /// names its key explicitly (every replica needs the same one); without one it
    /// has none, and storing a secret value is refused.
    ///
    /// Earlier keys (a rotation's) come from `secret_keys_previous` and from the
    /// files `<key file>.previous-<id>` beside the key file that
    /// `castellan secrets rotate-key --generate` leaves.
    pub fn load(config: &Config) -> Result<Option<Sealer>, KeyError> {
        let (sealer, file) = if let Some(k) = &config.secret_key {
            (Sealer::from_hex("secret_key", k)?, None)
        } else if let Some(path) = &config.secret_key_file {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.clone(), source })?;
            (Sealer::from_hex(&path.display().to_string(), &text)?, Some(path.clone()))
        } else if config.database_url.is_some() && config.secret_keys_previous.is_empty() {
            return Ok(None);
        } else if config.database_url.is_some() {
            return Err(KeyError::Malformed(
                "secret_keys_previous is set but there is no current key (secret_key or secret_key_file)".into(),
            ));
        } else {
            let path = Sealer::default_file(config);
            (generated(&path)?, Some(path))
        };
        let mut sealer = sealer;
        for (i, k) in config.secret_keys_previous.iter().enumerate() {
            sealer = sealer.with_previous(parse_key(&format!("secret_keys_previous[{i}]"), k)?);
        }
        if let Some(file) = file {
            for path in previous_files(&file)? {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| KeyError::Io { path: path.clone(), source })?;
                sealer = sealer.with_previous(parse_key(&path.display().to_string(), &text)?);
            }
        }
        Ok(Some(sealer))
    }

    /// The generated key file of the embedded database.
    pub fn default_file(config: &Config) -> PathBuf {
        config.data_dir.join("secret.key")
    }

    /// The key's id, as sealed values name it.
    pub fn key_id(&self) -> String {
        hex::encode(self.current.id)
    }

    /// Seals `value` for the row `binding` describes.
    pub fn seal(&self, binding: Binding<'_>, value: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = binding.aad();
        let sealed = self
            .current
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value.as_bytes(), aad: &aad })
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory inputs");
        let mut out = Vec::with_capacity(1 + ID_LEN + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed for the row `binding` describes.
    pub fn open(&self, binding: Binding<'_>, sealed: &[u8]) -> Result<String, OpenError> {
        if sealed.len() < 1 + ID_LEN + NONCE_LEN || sealed[0] != FORMAT {
            return Err(OpenError::Damaged);
        }
        let (id, rest) = sealed[1..].split_at(ID_LEN);
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::OtherKey(hex::encode(id)))?;
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let aad = binding.aad();
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: &aad })
            .map_err(|_| OpenError::Damaged)?;
        String::from_utf8(plain).map_err(|_| OpenError::Damaged)
    }
}

/// Reads the generated key at `path`, making it (mode 0600) if there is none.
fn generated(path: &Path) -> Result<Sealer, KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => Sealer::from_hex(&path.display().to_string(), &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_new_key(path).map(Sealer::new),
        Err(e) => Err(io(e)),
    }
}

/// Writes a random key to `path` (which must not exist), mode 0600.
fn write_new_key(path: &Path) -> Result<[u8; 32], KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let key: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut f, format!("{}\n", hex::encode(key)).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(key)
}

/// The earlier keys a rotation left beside `file`: `<file>.previous-<id>`.
pub fn previous_files(file: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let Some(dir) = file.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d }) else {
        return Ok(Vec::new());
    };
    let Some(stem) = file.file_name().and_then(|n| n.to_str()) else { return Ok(Vec::new()) };
    let prefix = format!("{stem}.previous-");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(KeyError::Io { path: dir.to_owned(), source }),
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// A masked preview of a secret value: at most seven characters of a value of 24 or
/// more, nothing (not even its length) of a shorter one.
pub fn preview(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 24 {
        return "********".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str) -> Binding<'_> {
        let scope = castellan_core::ObjectRef::new(castellan_core::ObjectType::Project, Uuid::from_u128(4));
        Binding {
            table: "admin_objects",
            org: OrgId(Uuid::from_u128(1)),
            kind: "env_var",
            id: Uuid::from_u128(2),
            scope,
            name,
        }
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_own_row_and_name() {
        let s = Sealer::new([7; 32]);
        let sealed = s.seal(binding("OPENAI_API_KEY"), "sk-secret");
        assert!(!sealed.windows(9).any(|w| w == b"sk-secret"), "the value is not stored in the clear");
        assert_eq!(s.open(binding("OPENAI_API_KEY"), &sealed).unwrap(), "sk-secret");
        assert!(matches!(s.open(binding("OTHER"), &sealed), Err(OpenError::Damaged)));
        let moved = Binding { id: Uuid::from_u128(3), ..binding("OPENAI_API_KEY") };
        assert!(matches!(s.open(moved, &sealed), Err(OpenError::Damaged)));
        let other_project = castellan_core::ObjectRef::new(castellan_core::ObjectType::Project, Uuid::from_u128(5));
        let elsewhere = Binding { scope: other_project, ..binding("OPENAI_API_KEY") };
        assert!(matches!(s.open(elsewhere, &sealed), Err(OpenError::Damaged)));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(s.open(binding("OPENAI_API_KEY"), &flipped), Err(OpenError::Damaged)));
        assert_ne!(sealed, s.seal(binding("OPENAI_API_KEY"), "sk-secret"), "every seal has a fresh nonce");
    }

    #[test]
    fn a_value_sealed_under_another_key_names_that_key() {
        let (a, b) = (Sealer::new([1; 32]), Sealer::new([2; 32]));
        let sealed = a.seal(binding("K"), "v");
        match b.open(binding("K"), &sealed) {
            Err(OpenError::OtherKey(id)) => assert_eq!(id, a.key_id()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_generated_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/secret.key");
        let first = generated(&path).unwrap();
        assert_eq!(generated(&path).unwrap().key_id(), first.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(generated(&path), Err(KeyError::Malformed(_))));
    }

    #[test]
    fn previews_show_little_of_long_values_and_nothing_of_short_ones() {
        assert_eq!(preview("sk-proj-abcdefghijklmnop"), "sk-...mnop");
        assert_eq!(preview("hunter2"), "********");
        assert_eq!(preview("ab"), preview("0123456789abcdefghijklm"), "short values show nothing, not even length");
    }

    #[test]
    fn debug_output_shows_the_key_id_only() {
        let s = Sealer::new([9; 32]);
        let shown = format!("{s:?}");
        assert!(shown.contains(&s.key_id()) && !shown.contains("0909"), "{shown}");
    }
}
