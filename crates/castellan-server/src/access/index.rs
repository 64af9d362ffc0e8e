//! The replica's in-memory authorization index and the follower that keeps it at
//! the database's newest revision.

use crate::change::{self, Change};
use castellan_authz::{Engine, Snapshot};
use castellan_core::OrgId;
use castellan_store::{AccessState, CommitSignal, KeyAuth, ProjectRecord, Revision, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use uuid::Uuid;

/// The index plus what it needs to follow the change feed.
pub struct Index {
    engine: Engine,
    store: Arc<dyn Store>,
    /// Serializes catch-ups so changes are applied once and in order.
    apply: Mutex<()>,
    applied: watch::Sender<Revision>,
    /// Memberships and authenticated credentials, kept at the same revision as the
    /// engine's snapshot by the same change feed.
    identities: RwLock<Identities>,
}

/// The most credentials kept in memory; past it the cache starts over.
const KEY_CACHE_MAX: usize = 100_000;

/// Who belongs to which organization, and the credentials that have authenticated
/// on this replica. A key enters the cache only from a database read made after the
/// newest revocation this replica had applied (see [`Index::cache_key`]), and every
/// revocation, member removal and org deletion evicts, so the cache never admits a
/// credential the replica knows to be revoked.
#[derive(Default)]
struct Identities {
    members: HashMap<Uuid, Vec<OrgId>>,
    /// Suspended memberships (org, user): their credentials are refused.
    suspended: std::collections::HashSet<(Uuid, Uuid)>,
    keys: HashMap<String, Arc<KeyAuth>>,
    key_hashes: HashMap<Uuid, String>,
    /// Bumped by every change that can invalidate a cached credential.
    epoch: u64,
    /// Project records read on this replica (the most requested row), dropped by
    /// every change to them.
    projects: HashMap<Uuid, Arc<ProjectRecord>>,
    /// Bumped by every change that can invalidate a cached project.
    project_epoch: u64,
}

impl Identities {
    fn from_state(s: &AccessState) -> Identities {
        let mut out = Identities::default();
        for (org, user) in &s.members {
            out.members.entry(user.0).or_default().push(*org);
        }
        out
    }

    fn evict(&mut self, keep: impl Fn(&KeyAuth) -> bool) {
        let before = self.keys.len();
        self.keys.retain(|_, a| keep(a));
        if self.keys.len() != before {
            let live: std::collections::HashSet<&String> = self.keys.keys().collect();
            self.key_hashes.retain(|_, h| live.contains(h));
        }
    }

    fn apply(&mut self, c: &Change) {
        match c {
            Change::AddMember { org, user } => {
                let orgs = self.members.entry(*user).or_default();
                if !orgs.contains(&OrgId(*org)) {
                    orgs.push(OrgId(*org));
                }
            }
            Change::SuspendMember { org, user } => {
                self.suspended.insert((*org, *user));
                self.epoch += 1;
                self.evict(|a| !(a.user.id.0 == *user && a.key.org_id.is_some_and(|o| o.0 == *org)));
            }
            Change::ResumeMember { org, user } => {
                self.suspended.remove(&(*org, *user));
            }
            Change::RemoveMember { org, user } => {
                self.suspended.remove(&(*org, *user));
                if let Some(orgs) = self.members.get_mut(user) {
                    orgs.retain(|o| o.0 != *org);
                }
                self.epoch += 1;
                self.evict(|a| !(a.user.id.0 == *user && a.key.org_id.is_some_and(|o| o.0 == *org)));
            }
            Change::RemoveOrg { org } => {
                self.suspended.retain(|(o, _)| o != org);
                for orgs in self.members.values_mut() {
                    orgs.retain(|o| o.0 != *org);
                }
                self.project_epoch += 1;
                self.projects.retain(|_, p| p.org_id.0 != *org);
                self.epoch += 1;
                self.evict(|a| a.key.org_id.is_none_or(|o| o.0 != *org));
            }
            Change::RevokeKey { key } => {
                self.epoch += 1;
                if let Some(h) = self.key_hashes.remove(key) {
                    self.keys.remove(&h);
                }
            }
            Change::UpdateProject { project } => {
                self.project_epoch += 1;
                self.projects.remove(project);
            }
            Change::RemoveObject { object } if object.object_type == castellan_core::ObjectType::Project => {
                self.project_epoch += 1;
                self.projects.remove(&object.object_id);
            }
            _ => {}
        }
    }
}

/// Why the index could not be built or advanced.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored state is not a valid model (or a change did not apply).
    #[error("authorization state: {0}")]
    Model(String),
}

async fn build(store: &dyn Store) -> Result<(Snapshot, Identities), IndexError> {
    let mut tx = store.read().await?;
    let state = tx.load_access_state().await?;
    let mut identities = Identities::from_state(&state);
    identities.suspended = suspensions(&mut *tx, &state.orgs).await?;
    drop(tx);
    let muts = change::mutations_from_state(&state);
    let snap = match Snapshot::build(muts.iter().cloned()) {
        Ok(s) => s,
        Err(e) => {
            // A stored state the model refuses must not keep the server from starting.
            // Cold-build mutations only add, so leaving out the ones that do not apply
            // can only deny more, never grant more; each is logged.
            tracing::error!(error = %e, "the stored authorization state does not build cleanly; skipping what does not apply");
            let mut snap = Snapshot::empty();
            for m in muts {
                match snap.apply(std::slice::from_ref(&m)) {
                    Ok(s) => snap = s,
                    Err(e) => tracing::error!(error = %e, mutation = ?m, "skipped while building the index"),
                }
            }
            snap
        }
    };
    Ok((snap.with_revision(state.revision), identities))
}

/// The suspended memberships (org, user) of `orgs`: the SCIM users whose record says
/// `active: false`, read in the transaction the index is built from.
pub(crate) async fn suspensions(
    tx: &mut dyn castellan_store::Tx,
    orgs: &[OrgId],
) -> Result<std::collections::HashSet<(Uuid, Uuid)>, StoreError> {
    let mut out = std::collections::HashSet::new();
    if orgs.is_empty() {
        return Ok(out);
    }
    let f = castellan_store::AdminFilter {
        kind: castellan_store::AdminKind::ScimUser,
        orgs: orgs.to_vec(),
        scope_type: None,
        scope_id: None,
        ids: vec![],
        name: None,
    };
    let mut from = None;
    loop {
        let w = castellan_store::Window { from, direction: castellan_store::page::Direction::Older, limit: 1000 };
        let page = tx.list_admin(&f, &w).await?;
        for a in &page {
            if a.data.get("active").and_then(serde_json::Value::as_bool) == Some(false) {
                if let Ok(u) = Uuid::parse_str(&a.name) {
                    out.insert((a.org_id.0, u));
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == 1000 => from = Some(castellan_store::Paged::page_key(last)),
            _ => return Ok(out),
        }
    }
}

impl Index {
    /// Builds the index from the database (a cold start).
    pub async fn load(store: Arc<dyn Store>) -> Result<Index, IndexError> {
        let (snap, identities) = build(&*store).await?;
        let (applied, _) = watch::channel(snap.revision());
        Ok(Index {
            engine: Engine::new(snap),
            store,
            apply: Mutex::new(()),
            applied,
            identities: RwLock::new(identities),
        })
    }

    fn ids(&self) -> std::sync::RwLockReadGuard<'_, Identities> {
        self.identities.read().unwrap_or_else(|p| p.into_inner())
    }

    fn ids_mut(&self) -> std::sync::RwLockWriteGuard<'_, Identities> {
        self.identities.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The live organizations a user belongs to, oldest first.
    pub fn member_orgs(&self, user: Uuid) -> Vec<OrgId> {
        self.ids().members.get(&user).cloned().unwrap_or_default()
    }

    /// Whether `user`'s membership of `org` is suspended (by SCIM `active: false`).
    pub fn is_suspended(&self, org: OrgId, user: Uuid) -> bool {
        self.ids().suspended.contains(&(org.0, user))
    }

    /// Whether `user` is suspended in any organization.
    pub fn suspended_anywhere(&self, user: Uuid) -> bool {
        self.ids().suspended.iter().any(|(_, u)| *u == user)
    }

    /// The cached credential with this hash, if it has authenticated here before and
    /// has not been revoked since.
    pub fn cached_key(&self, hash: &str) -> Option<Arc<KeyAuth>> {
        self.ids().keys.get(hash).cloned()
    }

    /// The revocation epoch: read it before looking a credential up in the database
    /// and hand it to [`Index::cache_key`].
    pub fn key_epoch(&self) -> u64 {
        self.ids().epoch
    }

    /// The cached record of a project, if this replica has read it since it last
    /// changed.
    pub fn cached_project(&self, id: Uuid) -> Option<Arc<ProjectRecord>> {
        self.ids().projects.get(&id).cloned()
    }

    /// The project epoch: read it before reading a project from the database and
    /// hand it to [`Index::cache_project`].
    pub fn project_epoch(&self) -> u64 {
        self.ids().project_epoch
    }

    /// Caches a project read from the database, unless a change to projects was
    /// applied since `epoch` was read.
    pub fn cache_project(&self, p: ProjectRecord, epoch: u64) -> Arc<ProjectRecord> {
        let p = Arc::new(p);
        let mut ids = self.ids_mut();
        if ids.project_epoch == epoch {
            if ids.projects.len() >= KEY_CACHE_MAX {
                ids.projects.clear();
            }
            ids.projects.insert(p.id.0, p.clone());
        }
        p
    }

    /// Caches a credential read from the database, unless a revocation was applied
    /// since `epoch` was read (the read may predate it).
    pub fn cache_key(&self, hash: &str, auth: KeyAuth, epoch: u64) -> Arc<KeyAuth> {
        let auth = Arc::new(auth);
        let mut ids = self.ids_mut();
        if ids.epoch == epoch {
            if ids.keys.len() >= KEY_CACHE_MAX {
                ids.keys.clear();
                ids.key_hashes.clear();
            }
            ids.key_hashes.insert(auth.key.id.0, hash.to_owned());
            ids.keys.insert(hash.to_owned(), auth.clone());
        }
        auth
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.engine.snapshot()
    }

    /// The newest revision applied.
    pub fn revision(&self) -> Revision {
        *self.applied.borrow()
    }

    /// Applies every committed change newer than the index, in order.
    pub async fn catch_up(&self) -> Result<Revision, IndexError> {
        let _guard = self.apply.lock().await;
        loop {
            let from = self.engine.snapshot().revision();
            let batch = self.store.changes_since(from, 500).await?;
            if batch.is_empty() {
                return Ok(from);
            }
            let base = self.engine.snapshot();
            let mut next: Option<Snapshot> = None;
            let mut identity_changes: Vec<Change> = Vec::new();
            let mut rebuilt: Option<Identities> = None;
            for c in &batch {
                let changes =
                    change::decode(&c.payload).map_err(|e| IndexError::Model(format!("change {}: {e}", c.revision)))?;
                let muts: Vec<_> = changes.iter().filter_map(Change::to_mutation).collect();
                identity_changes.extend(changes);
                let src = next.as_ref().unwrap_or(&base);
                match src.apply(&muts) {
                    Ok(s) => next = Some(s.with_revision(c.revision)),
                    Err(e) => {
                        // The writer validated this change against the same history, so
                        // this means the index and the database disagree: rebuild from
                        // the database (at its newest revision) and carry on from there.
                        tracing::error!(revision = c.revision, error = %e, "change did not apply; rebuilding the index");
                        let (snap, ids) = build(&*self.store).await?;
                        next = Some(snap);
                        rebuilt = Some(ids);
                        break;
                    }
                }
            }
            let Some(snap) = next else { return Ok(from) };
            let rev = snap.revision();
            // Revocations take effect before the snapshot that carries them is seen.
            {
                let mut ids = self.ids_mut();
                match rebuilt {
                    Some(fresh) => {
                        let (epoch, project_epoch) = (ids.epoch + 1, ids.project_epoch + 1);
                        *ids = fresh;
                        ids.epoch = epoch;
                        ids.project_epoch = project_epoch;
                    }
                    None => identity_changes.iter().for_each(|c| ids.apply(c)),
                }
            }
            self.engine.publish(snap);
            self.applied.send_replace(rev);
        }
    }

    /// Waits until the index has applied `rev`, polling the feed, for at most `timeout`.
    pub async fn wait_for(&self, rev: Revision, timeout: Duration) -> Result<bool, IndexError> {
        if self.revision() >= rev {
            return Ok(true);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.catch_up().await? >= rev {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let mut rx = self.applied.subscribe();
            let nap = (deadline - now).min(Duration::from_millis(50));
            let _ = tokio::time::timeout(nap, rx.changed()).await;
        }
    }

    /// Every way this replica's index (and its memberships) differs from one rebuilt
    /// from the database at the same revision: the objects, the parents, every
    /// principal's eight permissions on every object, group closures, the counts,
    /// and every user's organizations. Empty when they agree. For tests: call it when
    /// no write is in flight.
    pub async fn differences_from_database(&self) -> Result<Vec<String>, IndexError> {
        let _guard = self.apply.lock().await;
        let mut tx = self.store.read().await?;
        let state = tx.load_access_state().await?;
        let stored_suspensions = suspensions(&mut *tx, &state.orgs).await?;
        drop(tx);
        let live = self.engine.snapshot();
        let mut out = Vec::new();
        if state.revision != live.revision() {
            out.push(format!("index at revision {}, database at {}", live.revision(), state.revision));
            return Ok(out);
        }
        let fresh = Snapshot::build(change::mutations_from_state(&state))
            .map_err(|e| IndexError::Model(format!("the database does not build: {e}")))?;
        let (a, b) = (live.stats(), fresh.stats());
        if a != b {
            out.push(format!("counts differ: live {a:?}, rebuilt {b:?}"));
        }
        use castellan_core::{ObjectRef, ObjectType, Permission};
        let mut objects: Vec<ObjectRef> = Vec::new();
        for o in &state.orgs {
            objects.push(ObjectRef::new(ObjectType::Organization, o.0));
            for t in ObjectType::ORG_NOUNS {
                objects.push(ObjectRef::new(t, o.0));
            }
        }
        objects.extend(state.ai_secrets.iter().map(|(id, _)| ObjectRef::new(ObjectType::AiSecret, *id)));
        for (g, _) in &state.project_groups {
            objects.push(ObjectRef::new(ObjectType::ProjectGroup, *g));
            objects.push(ObjectRef::new(ObjectType::ProjectGroupProjects, *g));
        }
        for (p, _) in &state.projects {
            objects.push(ObjectRef::new(ObjectType::Project, p.0));
            objects.push(ObjectRef::new(ObjectType::ProjectLog, p.0));
        }
        objects.extend(state.project_objects.iter().map(|(t, id, _)| ObjectRef::new(*t, *id)));
        objects.extend(state.groups.iter().map(|(g, _)| ObjectRef::new(ObjectType::Group, g.0)));
        objects.extend(state.roles.iter().map(|(r, _)| ObjectRef::new(ObjectType::Role, r.0)));
        let mut users: Vec<Uuid> = state.members.iter().map(|(_, u)| u.0).collect();
        users.extend(state.group_users.iter().map(|(_, u)| u.0));
        users.extend(state.acls.iter().filter_map(|a| a.user_id.map(|u| u.0)));
        users.sort_unstable();
        users.dedup();
        let clock = super::system_clock()();
        for o in &objects {
            if live.contains(*o) != fresh.contains(*o) || live.parent(*o) != fresh.parent(*o) {
                out.push(format!("{o:?}: live parent {:?}, rebuilt {:?}", live.parent(*o), fresh.parent(*o)));
            }
            for u in &users {
                for p in Permission::ALL {
                    let (l, f) = (live.check(*u, p, *o, clock), fresh.check(*u, p, *o, clock));
                    if l != f {
                        out.push(format!("user {u}, {p} on {o:?}: live {l}, rebuilt {f}"));
                    }
                }
            }
        }
        for u in &users {
            if live.groups_of(*u) != fresh.groups_of(*u) {
                out.push(format!("user {u}: live groups {:?}, rebuilt {:?}", live.groups_of(*u), fresh.groups_of(*u)));
            }
        }
        let want = Identities::from_state(&state).members;
        let ids = self.ids();
        if ids.suspended != stored_suspensions {
            out.push(format!("suspended members: live {:?}, database {stored_suspensions:?}", ids.suspended));
        }
        for (u, orgs) in &want {
            let mut have = ids.members.get(u).cloned().unwrap_or_default();
            let mut want = orgs.clone();
            have.sort();
            want.sort();
            if have != want {
                out.push(format!("user {u}: live orgs {have:?}, database {want:?}"));
            }
        }
        for (u, orgs) in &ids.members {
            if !orgs.is_empty() && !want.contains_key(u) {
                out.push(format!("user {u}: live orgs {orgs:?}, database none"));
            }
        }
        Ok(out)
    }

    /// Follows the feed forever (run as a background task): at once whenever the
    /// database announces a commit (PostgreSQL's `LISTEN/NOTIFY`), and every
    /// `interval` in any case, in case an announcement was lost.
    pub async fn follow(self: Arc<Self>, interval: Duration) {
        let wake: Option<Arc<CommitSignal>> = self.store.commit_notifications();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            match &wake {
                Some(n) => {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = n.notify.notified() => {}
                    }
                }
                None => {
                    tick.tick().await;
                }
            }
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "following the change feed failed; will retry");
            }
        }
    }
}
