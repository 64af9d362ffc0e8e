//! The one path to the database: authentication, authorization and transactions.
//!
//! Handlers never see the store. They get a [`Caller`] from the request (which
//! authenticates it), ask the caller for a [`Permit`] (which runs the authorization
//! engine), and only a permit opens a transaction ([`AppState::read`],
//! [`AppState::write`]); lists open theirs with a [`ListScope`], which filters every
//! row through the engine. A handler that skips the check has nothing to open a
//! transaction with, so it does not compile.

mod account;
pub mod auth;
mod batch;
mod caller;
mod data;
mod index;
mod ops;
pub mod signing;
mod sso;
mod write;

pub use account::SignedIn;
pub use auth::{MaybeCaller, ScimCaller};
pub use batch::{delegation_refused, holds, Batch, Made, Need};
pub use caller::{Caller, Credential, ListScope};
pub use data::{log_ref, BlobPermit, DataPermit, DataWriter};
pub use index::{Index, IndexError};
pub use sso::{Enforced, SsoOutcome};
pub use write::{model_error, AuditEvent, Write};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use castellan_core::{KeyId, ObjectRef, ObjectType, OrgId, Permission, UserId};
use castellan_store::{KeyRecord, Micros, Store, StoreError, Tx};
use std::sync::Arc;

/// The source of "now", in unix epoch microseconds. Tests inject their own.
pub type Clock = Arc<dyn Fn() -> Micros + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
    })
}

/// Everything a request handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    outbound: crate::outbound::Outbound,
    store: Arc<dyn Store>,
    index: Arc<Index>,
    config: Config,
    clock: Clock,
    limits: crate::ratelimit::Limits,
    signer: signing::Signer,
    /// The master key for secret values, when the server has one.
    sealer: Option<crate::secrets::Sealer>,
    touches: Arc<Touches>,
    flusher: tokio::task::JoinHandle<()>,
    /// The database's commit announcements, where it makes them (then the follower
    /// applies commits at once); without, a request checks the newest revision.
    commits: Option<Arc<castellan_store::CommitSignal>>,
    /// The store's change stamp when this replica last caught up (SQLite).
    caught_up_stamp: std::sync::atomic::AtomicU64,
    /// Wakes the online-scoring worker (ingest into project logs notifies it).
    scoring_wake: Arc<tokio::sync::Notify>,
    /// How busy the data writer is (the online-scoring worker gives way to ingest).
    ingest_load: Arc<crate::load::IngestLoad>,
    /// OpenID providers' metadata and keys.
    sso: crate::sso::Providers,
}

/// "Last used" times of credentials, recorded at most once a minute per credential
/// and written in batches by a background task rather than by each request.
#[derive(Default)]
struct Touches {
    inner: std::sync::Mutex<TouchState>,
}

/// The last use recorded per credential, and the uses not yet written.
type TouchState = (std::collections::HashMap<KeyId, Micros>, Vec<(KeyId, Micros)>);

impl Touches {
    /// Notes a use of `key` at `now`; `stored` is the last use the database knew.
    fn note(&self, key: KeyId, stored: Option<Micros>, now: Micros) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (last, pending) = &mut *g;
        let seen = last.get(&key).copied().or(stored);
        if seen.is_none_or(|t| now - t >= auth::TOUCH_EVERY_MICROS) {
            if last.len() >= 100_000 {
                last.clear();
            }
            last.insert(key, now);
            pending.push((key, now));
        }
    }

    /// Writes the pending uses.
    async fn flush(&self, store: &dyn Store) {
        let pending = std::mem::take(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()).1);
        for (key, at) in pending {
            if let Err(e) = store.touch_key(key, at).await {
                tracing::warn!(error = %e, "could not record key use");
            }
        }
    }
}

/// Who is acting: a user (or service account), possibly impersonated by an owner;
/// `user: None` is the system itself (bootstrap, startup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The identity whose permissions apply.
    pub user: Option<UserId>,
    /// The owner acting as `user`, if impersonating.
    pub impersonator: Option<UserId>,
}

impl Actor {
    /// The system actor.
    pub const SYSTEM: Actor = Actor { user: None, impersonator: None };
}

/// What a permit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `permission` on an existing object.
    Object(ObjectRef),
    /// Creating a `child` under `parent`.
    Create {
        /// Type of the new object.
        child: ObjectType,
        /// Its parent.
        parent: ObjectRef,
    },
    /// An API key or service token (not part of the object tree).
    Key {
        /// The key.
        key: KeyId,
        /// Its org.
        org: Option<OrgId>,
    },
    /// Minting a key for oneself in an org one belongs to.
    NewKey(OrgId),
    /// Creating an organization.
    NewOrg,
    /// Acting on the strength of a single-use secret (accepting an invitation).
    Token,
    /// Acting on one's own account (password, sessions).
    SelfAccount,
    /// A batch of changes to one organization, each authorized on its own (the
    /// permit's batch lists them).
    Batch(OrgId),
    /// The system acting on its own (bootstrap, startup seeding).
    System,
    /// A SCIM provisioning request in an org, authorized by one of its SCIM tokens.
    Scim(OrgId),
    /// A single sign-on into an org, on the strength of an ID token its provider
    /// signed (the flow verified it).
    Sso(OrgId),
}

/// Proof that the authorization check for one action passed. Only this module can
/// make one; a transaction cannot be opened without one.
#[derive(Debug, Clone)]
pub struct Permit {
    actor: Actor,
    permission: Option<Permission>,
    target: Target,
    /// The org the credential was bound to when the permit was granted.
    bound_org: Option<OrgId>,
    /// For a batch: every authorization it needs, checked again under the write lock.
    batch: Option<Arc<Batch>>,
}

impl Permit {
    /// Who acts.
    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// What was authorized.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The permit the system uses for its own writes (bootstrap, startup seeding):
    /// only a [`SystemKey`] hands it out.
    fn system() -> Permit {
        Permit { actor: Actor::SYSTEM, permission: None, target: Target::System, bound_org: None, batch: None }
    }

    /// The permit a valid single-use secret (an invitation token) grants; the handler
    /// must have verified the secret against its stored hash first (`account`).
    fn by_token(user: Option<UserId>) -> Permit {
        let actor = Actor { user, impersonator: None };
        Permit { actor, permission: None, target: Target::Token, bound_org: None, batch: None }
    }
}

/// The right to act as the system itself (seeding what every database needs,
/// first-run bootstrap). [`AppState::new`] hands out exactly one, to whoever starts
/// the process; request handlers only ever get the state, never this.
#[must_use]
pub struct SystemKey(());

impl SystemKey {
    /// The system's permit.
    pub fn permit(&self) -> Permit {
        Permit::system()
    }
}

impl std::fmt::Debug for SystemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SystemKey")
    }
}

/// Why the state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The authorization index could not be built.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The master key could not be loaded.
    #[error(transparent)]
    SecretKey(#[from] crate::secrets::KeyError),
    /// The database holds values sealed with a master key this server lacks.
    #[error("{0}")]
    WrongSecretKey(String),
    /// The data directory could not be created.
    #[error("cannot create data directory `{path}`: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Refuses to start over a database holding sealed values that this server's
/// master keys cannot open (the wrong key, or none): a clear error that names the
/// keys it needs; nothing is read further or overwritten.
async fn check_sealed_values(store: &dyn Store, sealer: Option<&crate::secrets::Sealer>) -> Result<(), OpenError> {
    let mut unknown: Vec<(String, i64)> = Vec::new();
    for (prefix, n) in store.sealed_prefixes().await? {
        let id = crate::secrets::prefix_key_id(&prefix);
        if !sealer.is_some_and(|s| s.knows(&id)) {
            unknown.push((id, n));
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }
    let which: Vec<String> = unknown.iter().map(|(id, n)| format!("{n} sealed with master key {id}")).collect();
    let have = match sealer {
        Some(s) => format!("this server has master key {} (and {:?} to open with)", s.key_id(), s.previous_key_ids()),
        None => "this server has no master key".into(),
    };
    Err(OpenError::WrongSecretKey(format!(
        "the database holds secret values this server cannot open ({}); {have}. Start it with the master key \
         they were sealed with (`secret_key`, `secret_key_file`, or `secret.key` in the data directory), or list \
         it in `secret_keys_previous` and run `castellan secrets rotate-key`. Nothing was changed.",
        which.join(", ")
    )))
}

impl AppState {
    /// Builds the state over an open store: loads the authorization index and starts
    /// the background work. Startup (`serve::prepare`) seeds the system roles.
    pub async fn new(
        store: Arc<dyn Store>,
        config: Config,
        clock: Clock,
        sealer: Option<crate::secrets::Sealer>,
    ) -> Result<(AppState, SystemKey), OpenError> {
        check_sealed_values(&*store, sealer.as_ref()).await?;
        let index = Arc::new(Index::load(store.clone()).await?);
        let candidate: [u8; 32] = rand::random();
        let signer =
            match &sealer {
                // The URL-signing key, sealed under the master key like every secret.
                Some(s) => {
                    let binding = crate::secrets::Binding::server(signing::SEALED_SECRET_NAME);
                    let sealed = s.seal(binding, &hex::encode(candidate));
                    let stored = store.server_secret(signing::SEALED_SECRET_NAME, &sealed).await?;
                    let key = s.open(binding, &stored).map_err(|e| {
                        OpenError::WrongSecretKey(format!("the URL-signing key in the database does not open: {e}"))
                    })?;
                    signing::Signer::new(hex::decode(key).map_err(|_| {
                        OpenError::WrongSecretKey("the URL-signing key in the database is damaged".into())
                    })?)
                }
                None => signing::Signer::new(store.server_secret(signing::SECRET_NAME, &candidate).await?),
            };
        let touches = Arc::new(Touches::default());
        let flusher = {
            let (store, touches) = (store.clone(), touches.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    touches.flush(&*store).await;
                }
            })
        };
        let commits = store.commit_notifications();
        let outbound = crate::outbound::Outbound::new(&config.outbound_allow, config.webhook_timeout);
        let state = AppState(Arc::new(Inner {
            outbound,
            commits,
            caught_up_stamp: std::sync::atomic::AtomicU64::new(0),
            scoring_wake: Arc::new(tokio::sync::Notify::new()),
            ingest_load: Default::default(),
            sso: crate::sso::Providers::default(),
            store,
            index,
            config,
            clock,
            limits: Default::default(),
            signer,
            sealer,
            touches,
            flusher,
        }));
        crate::passwords::warm_up();
        Ok((state, SystemKey(())))
    }

    /// What wakes the online-scoring worker (`crate::scoring`).
    pub fn scoring_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.0.scoring_wake
    }

    /// How busy the data writer has been.
    pub fn ingest_load(&self) -> &crate::load::IngestLoad {
        &self.0.ingest_load
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Now, in unix epoch microseconds.
    pub fn now(&self) -> Micros {
        (self.0.clock)()
    }

    /// The guard every outbound request goes through.
    pub fn outbound(&self) -> &crate::outbound::Outbound {
        &self.0.outbound
    }

    /// The master key that seals secret values (503 `no_master_key` without one).
    pub fn sealer(&self) -> ApiResult<&crate::secrets::Sealer> {
        self.0.sealer.as_ref().ok_or(ApiError::NoMasterKey)
    }

    /// The store's scheduler and retention calls (leases, runs, sweeps), for a holder
    /// of a permit: they run outside repository transactions, each statement short.
    pub fn jobs(&self, _permit: &Permit) -> &dyn Store {
        &*self.0.store
    }

    /// How many sealed values each master key sealed (by 9-byte prefix).
    pub async fn sealed_prefixes(&self) -> ApiResult<Vec<(Vec<u8>, i64)>> {
        Ok(self.0.store.sealed_prefixes().await?)
    }

    /// Seals the URL-signing key again under the current master key (a rotation);
    /// whether it changed.
    pub async fn reseal_signing_key(&self, _system: &SystemKey) -> ApiResult<bool> {
        let sealer = self.sealer()?;
        let name = signing::SEALED_SECRET_NAME;
        let binding = crate::secrets::Binding::server(name);
        let candidate: [u8; 32] = rand::random();
        let stored = self.0.store.server_secret(name, &sealer.seal(binding, &hex::encode(candidate))).await?;
        if crate::secrets::sealed_key_id(&stored).as_deref() == Some(sealer.key_id().as_str()) {
            return Ok(false);
        }
        let value = sealer
            .open(binding, &stored)
            .map_err(|e| ApiError::Internal(format!("the URL-signing key does not open: {e}")))?;
        Ok(self.0.store.replace_server_secret(name, &stored, &sealer.seal(binding, &value)).await?)
    }

    /// The rate limits.
    pub fn limits(&self) -> &crate::ratelimit::Limits {
        &self.0.limits
    }

    /// The authorization index.
    pub fn index(&self) -> &Arc<Index> {
        &self.0.index
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.0.store.backend()
    }

    /// Records pending key uses and closes the database.
    pub async fn close(&self) {
        self.0.flusher.abort();
        self.0.touches.flush(&*self.0.store).await;
        self.0.store.close().await;
    }

    /// A read transaction for the object a permit was granted on.
    pub async fn read(&self, _permit: &Permit) -> ApiResult<Box<dyn Tx>> {
        Ok(self.0.store.read().await?)
    }

    /// The system's read for what the data writer's meter found (cost-alert
    /// crossings still to audit); only `crate::usage` uses it.
    pub(crate) async fn meter_read(&self) -> ApiResult<Box<dyn Tx>> {
        self.read(&Permit::system()).await
    }

    /// The system's write that audits a cost-alert crossing the data writer's meter
    /// recorded (the crossing is the system's doing, not a caller's); only
    /// `crate::usage` uses it.
    pub(crate) async fn meter_write(&self) -> ApiResult<Write> {
        self.write(&Permit::system()).await
    }

    /// The permit that delivers a cost alert (the system's doing: the crossing was
    /// audited by the system); only `crate::usage` uses it.
    pub(crate) fn meter_permit(&self) -> Permit {
        Permit::system()
    }

    /// A read transaction for a list, whose rows the scope filters.
    pub async fn read_scope(&self, _scope: &ListScope) -> ApiResult<Box<dyn Tx>> {
        Ok(self.0.store.read().await?)
    }

    /// A write transaction for the action a permit was granted for. The index is
    /// brought to the newest revision first and the permit checked again against it,
    /// so a grant revoked on another replica a moment ago no longer counts.
    pub async fn write(&self, permit: &Permit) -> ApiResult<Write> {
        // A permit to read never opens a write transaction (a handler bug if tried).
        if permit.permission == Some(Permission::Read) {
            return Err(ApiError::Internal(format!(
                "a read permit cannot open a write transaction: {:?}",
                permit.target
            )));
        }
        let tx = self.0.store.write().await?;
        // INVARIANT: we hold the database's write lock, so after catching up no other
        // writer can change the state this transaction is validated against.
        self.0.index.catch_up().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        caller::recheck(self, permit)?;
        Ok(Write::new(self.clone(), tx, permit.actor))
    }

    /// Loads an ACL for a caller who holds `permission` on the object it is on; an ACL
    /// the caller cannot see is "not found".
    pub async fn acl_for(
        &self,
        caller: &Caller,
        id: castellan_core::AclId,
        permission: Permission,
    ) -> ApiResult<(castellan_store::AclRecord, Permit)> {
        let missing = || ApiError::not_found("acl", id);
        let mut tx = self.0.store.read().await?;
        let acl = tx.get_acl(id).await?.ok_or_else(missing)?;
        drop(tx);
        let obj = ObjectRef::new(acl.object_type, acl.object_id);
        match caller.require(permission, obj).await {
            Ok(p) => Ok((acl, p)),
            Err(ApiError::NotFound(_)) => Err(missing()),
            Err(e) => Err(e),
        }
    }

    /// Loads an administration object for a caller who holds `permission` on what
    /// it is set on (its org, project or object); one the caller cannot see, or of
    /// another kind, is "not found".
    pub async fn admin_for(
        &self,
        caller: &Caller,
        kind: castellan_store::AdminKind,
        id: uuid::Uuid,
        permission: Permission,
    ) -> ApiResult<(castellan_store::AdminRecord, Permit)> {
        let missing = || ApiError::not_found(kind.as_str(), id);
        let mut tx = self.0.store.read().await?;
        let a = tx.get_admin(id).await?.filter(|a| a.kind == kind).ok_or_else(missing)?;
        drop(tx);
        match caller.require(permission, a.guard()).await {
            Ok(p) => Ok((a, p)),
            Err(ApiError::NotFound(_)) => Err(missing()),
            Err(e) => Err(e),
        }
    }

    /// How many live organizations exist (for the first-run hint).
    pub async fn org_count(&self) -> ApiResult<u64> {
        let mut tx = self.0.store.read().await?;
        Ok(tx.count_orgs().await?)
    }

    /// Loads a key and checks the caller may act on it: its own key, or any key of an
    /// org the caller owns. Anything else is "not found".
    pub async fn key_for(&self, caller: &Caller, id: KeyId) -> ApiResult<(KeyRecord, Permit)> {
        let mut tx = self.0.store.read().await?;
        let key = tx.get_key(id).await?.ok_or_else(|| ApiError::not_found("key", id))?;
        drop(tx);
        let permit = caller.key_permit(&key)?;
        Ok((key, permit))
    }
}
