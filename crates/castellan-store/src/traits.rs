//! The storage traits. A backend implements [`Store`] and a transaction type that
//! implements [`Tx`] (every repository trait plus commit).

use crate::admin::AdminRepo;
use crate::audit::{AuditRecord, NewAuditRecord};
use crate::data_repo::{DataTx, EventRepo, ObjectRepo};
use crate::error::StoreResult;
use crate::model::*;
use crate::page::Window;
use async_trait::async_trait;
use castellan_core::{AclId, GroupId, KeyId, ObjectType, OrgId, ProjectId, RoleId, UserId};
use uuid::Uuid;

/// A database. Cheap to share behind an `Arc`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and `/v1` diagnostics.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations. Idempotent.
    async fn migrate(&self) -> StoreResult<()>;
    /// Starts a write transaction. Dropping it without [`Tx::commit`] rolls it back.
    async fn write(&self) -> StoreResult<Box<dyn Tx>>;
    /// Starts a read-only transaction (a consistent snapshot). Writes through it fail.
    async fn read(&self) -> StoreResult<Box<dyn Tx>>;
    /// Looks a credential up by the hex SHA-256 of its raw secret. Deleted keys and
    /// keys whose user is deleted are not found; expiry is the caller's to check.
    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<KeyAuth>>;
    /// Records that a key was used at `at`.
    async fn touch_key(&self, id: KeyId, at: Micros) -> StoreResult<()>;
    /// Looks a live (unrevoked) session up by the hex SHA-256 of its token; expiry is
    /// the caller's to check.
    async fn authenticate_session(&self, token_hash: &str) -> StoreResult<Option<SessionAuth>>;
    /// Records that a session was used at `at`.
    async fn touch_session(&self, id: Uuid, at: Micros) -> StoreResult<()>;
    /// Committed changes with a revision greater than `after`, oldest first.
    async fn changes_since(&self, after: Revision, limit: usize) -> StoreResult<Vec<ChangeRecord>>;
    /// The newest committed revision.
    async fn current_revision(&self) -> StoreResult<Revision>;
    /// Starts a data-plane write transaction (events, blobs). It does not take the
    /// admin write lock; see [`DataTx`].
    async fn data_write(&self) -> StoreResult<Box<dyn DataTx>>;
    /// Starts a data-plane write transaction whose commit does not wait for the
    /// disk (SQLite `synchronous = NORMAL`, PostgreSQL `synchronous_commit = off`):
    /// it stays atomic, and becomes durable with the next commit that does wait.
    /// For background work that is redone if a crash loses it (online scoring: the
    /// claims go with the scores, and the cursor that moves past them is committed
    /// synchronously after), never for anything acknowledged to a client.
    async fn data_write_relaxed(&self) -> StoreResult<Box<dyn DataTx>>;
    /// The server secret called `name`: the stored one, or `candidate`, stored now,
    /// if there is none yet (so every replica agrees on one value).
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
    /// Takes (or renews) the lease on job `name` for `holder` until `until`, if it is
    /// free, expired at `now`, or already `holder`'s; whether `holder` holds it.
    async fn take_lease(&self, name: &str, holder: &str, now: Micros, until: Micros) -> StoreResult<bool>;
    /// Gives a lease up.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
    /// Stores a run (inserted, or its end recorded).
    async fn record_run(&self, run: &crate::RunRecord) -> StoreResult<()>;
    /// An automation's newest runs.
    async fn list_runs(&self, automation: uuid::Uuid, limit: usize) -> StoreResult<Vec<crate::RunRecord>>;
    /// Every administration object of a kind, of every live org (for the scheduler).
    async fn all_admin(&self, kind: crate::AdminKind) -> StoreResult<Vec<crate::AdminRecord>>;
    /// How many rows (all their versions) of a log were created before `cutoff` (an
    /// RFC 3339 time).
    async fn count_events_before(&self, object: crate::EventObject, cutoff: &str) -> StoreResult<u64>;
    /// Retention: the next `scan` versions of a log after `after` (by transaction id,
    /// then row id), read without the write lock; those created before `cutoff`
    /// among them.
    async fn retention_window(
        &self,
        object: crate::EventObject,
        cutoff: &str,
        after: &(crate::XactId, String),
        scan: usize,
    ) -> StoreResult<crate::RetentionWindow>;
    /// Retention: deletes the versions of a log after `after`, up to and including
    /// `through`, created before `cutoff`, in one short transaction of its own
    /// whose commit need not wait for the disk (a lost delete is redone by the next
    /// sweep; later synchronous commits make it durable); how many.
    async fn delete_events_between(
        &self,
        object: crate::EventObject,
        cutoff: &str,
        after: &(crate::XactId, String),
        through: &(crate::XactId, String),
    ) -> StoreResult<u64>;
    /// Online scoring: how far a project's logs have been read (the position
    /// `(transaction id, row id)` of the last row version), if the worker has
    /// started on them.
    async fn scoring_cursor(&self, project: uuid::Uuid) -> StoreResult<Option<(crate::XactId, String)>>;
    /// Online scoring: moves a project's cursor to `at_row`.
    async fn set_scoring_cursor(
        &self,
        project: uuid::Uuid,
        at_row: &(crate::XactId, String),
        at: Micros,
    ) -> StoreResult<()>;
    /// Online scoring: which of these claim keys are already claimed (their spans
    /// scored).
    async fn claimed_score_keys(&self, keys: &[Vec<u8>]) -> StoreResult<Vec<Vec<u8>>>;
    /// Online scoring: deletes up to `limit` claims made before `before`, in one
    /// short transaction of its own; how many.
    async fn prune_score_claims(&self, before: Micros, limit: usize) -> StoreResult<u64>;
    /// Online scoring: a project's scorers due to be called again at `now`, soonest
    /// first, at most `limit`.
    async fn due_score_retries(
        &self,
        project: uuid::Uuid,
        now: Micros,
        limit: usize,
    ) -> StoreResult<Vec<crate::ScoreRetry>>;
    /// The next `limit` versions of a log's rows after position `after`, oldest
    /// first (by transaction id, then row id): how many there were, the position of
    /// the last, and what those of them that are spans are (not tombstones or
    /// comments, nor written at one of the transactions `skip` names), without
    /// their contents.
    async fn event_heads_since(
        &self,
        object: crate::EventObject,
        after: &(crate::XactId, String),
        limit: usize,
        skip: &[crate::XactId],
    ) -> StoreResult<crate::HeadBatch>;
    /// These versions (transaction id, row id) of a log's rows, with their
    /// contents; those that are gone are left out.
    async fn event_versions(
        &self,
        object: crate::EventObject,
        versions: &[(crate::XactId, String)],
    ) -> StoreResult<Vec<crate::RawEvent>>;
    /// The newest version of each of these rows of a log, with its contents (rows
    /// that do not exist are left out; a deleted row's is its tombstone).
    async fn latest_raw_events(
        &self,
        object: crate::EventObject,
        row_ids: &[String],
    ) -> StoreResult<Vec<crate::RawEvent>>;
    /// How many rows a search would find in all (see [`crate::EventSearch`]; sort,
    /// position and limit do not matter), only those whose newest version was
    /// written after `since` when given.
    async fn count_matching(&self, q: &crate::EventSearch, since: Option<crate::XactId>) -> StoreResult<u64>;
    /// Records that `xact` was the newest transaction id at `at` (once per `at`;
    /// marks older than 40 days before `at` go).
    async fn mark_xact(&self, at: Micros, xact: crate::XactId) -> StoreResult<()>;
    /// The newest mark at or before `at`: every row written after that time has a
    /// greater transaction id.
    async fn xact_before(&self, at: Micros) -> StoreResult<Option<crate::XactId>>;
    /// Stores a delivery (inserted, or its outcome recorded).
    async fn record_delivery(&self, d: &crate::DeliveryRecord) -> StoreResult<()>;
    /// An automation's newest deliveries.
    async fn list_deliveries(&self, automation: uuid::Uuid, limit: usize) -> StoreResult<Vec<crate::DeliveryRecord>>;
    /// After a retention sweep of `object`: drops its references to attachments no
    /// row of it names any more and deletes attachments no log references; how many
    /// attachments were deleted.
    async fn sweep_attachments(&self, object: crate::EventObject, org: castellan_core::OrgId) -> StoreResult<u64>;
    /// Deletes an org's overflow payloads announced before `before` and never
    /// consumed; how many.
    async fn delete_stale_overflow(&self, org: castellan_core::OrgId, before: Micros) -> StoreResult<u64>;
    /// Replaces the server secret `name` if it still is `old`; whether it was.
    async fn replace_server_secret(&self, name: &str, old: &[u8], new: &[u8]) -> StoreResult<bool>;
    /// How many sealed values each master key sealed: the first 9 bytes of each
    /// (format and key id) with their count, over administration objects and server
    /// secrets.
    async fn sealed_prefixes(&self) -> StoreResult<Vec<(Vec<u8>, i64)>>;
    /// Rewrites the storage that holds logs, versions and blobs so that the bytes of
    /// deleted rows leave the database files (SQLite: `VACUUM` and a truncating
    /// checkpoint; PostgreSQL: `VACUUM FULL` of those tables, which locks each while
    /// it is rewritten, then `CHECKPOINT`). What was rewritten, with its size before
    /// and after.
    async fn compact(&self) -> StoreResult<Vec<crate::Compacted>>;
    /// Closes connections.
    async fn close(&self);
    /// Woken whenever any process commits a change-feed entry, where the database can
    /// announce commits (PostgreSQL's `LISTEN/NOTIFY`); `None` where followers poll.
    fn commit_notifications(&self) -> Option<std::sync::Arc<CommitSignal>> {
        None
    }
    /// A cheap stamp (such as the database files' times and lengths) that changes
    /// whenever anything is committed, though it may also change without a commit.
    /// Followers that poll read the revision only when it differs from the stamp they
    /// last caught up at. `None`: no such stamp; read the revision every time.
    fn change_stamp(&self) -> Option<u64> {
        None
    }
}

/// One transaction: all repositories, plus revision allocation and commit.
#[async_trait]
pub trait Tx:
    OrgRepo
    + UserRepo
    + ProjectRepo
    + KeyRepo
    + AccessRepo
    + SessionRepo
    + IdentityRepo
    + AuditRepo
    + ObjectRepo
    + EventRepo
    + AdminRepo
    + crate::usage::UsageRepo
    + Send
{
    /// This transaction's revision, allocated on first call. Revisions are assigned
    /// in commit order: no transaction with a smaller revision commits after one with
    /// a larger revision becomes visible.
    async fn revision(&mut self) -> StoreResult<Revision>;
    /// Appends this transaction's entry to the change feed (at its revision).
    async fn record_change(&mut self, created: Micros, payload: &serde_json::Value) -> StoreResult<Revision>;
    /// Commits.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// Organizations and their members.
#[async_trait]
pub trait OrgRepo {
    /// Inserts an org. `Conflict` if a live org has the same name (case-insensitively).
    async fn insert_org(&mut self, org: &OrgRecord) -> StoreResult<()>;
    /// A live org by id.
    async fn get_org(&mut self, id: OrgId) -> StoreResult<Option<OrgRecord>>;
    /// A live org by name (case-insensitive).
    async fn find_org_by_name(&mut self, name: &str) -> StoreResult<Option<OrgRecord>>;
    /// Replaces an org's fields. `Conflict` on a name clash, `NotFound` if gone.
    async fn update_org(&mut self, org: &OrgRecord) -> StoreResult<()>;
    /// Soft-deletes an org.
    async fn delete_org(&mut self, id: OrgId, at: Micros) -> StoreResult<()>;
    /// One raw window of live orgs matching `f`.
    async fn list_orgs(&mut self, f: &OrgFilter, w: &Window) -> StoreResult<Vec<OrgRecord>>;
    /// Number of live orgs.
    async fn count_orgs(&mut self) -> StoreResult<u64>;
    /// Adds a member; `false` if already one.
    async fn add_member(&mut self, m: &MemberRecord) -> StoreResult<bool>;
    /// Removes a member; `false` if not one.
    async fn remove_member(&mut self, org: OrgId, user: UserId) -> StoreResult<bool>;
    /// The live orgs a user belongs to.
    async fn member_orgs(&mut self, user: UserId) -> StoreResult<Vec<OrgId>>;
    /// An org's members, oldest first.
    async fn list_members(&mut self, org: OrgId) -> StoreResult<Vec<MemberRecord>>;
    /// Stores an invitation with the hash of its token.
    async fn insert_invitation(&mut self, inv: &InvitationRecord, token_hash: &str) -> StoreResult<()>;
    /// The pending (unaccepted) invitation with this token hash.
    async fn find_invitation(&mut self, token_hash: &str) -> StoreResult<Option<InvitationRecord>>;
    /// Marks an invitation accepted; `false` if it already was.
    async fn accept_invitation(&mut self, id: Uuid, at: Micros) -> StoreResult<bool>;
    /// An org's pending invitations, oldest first.
    async fn list_invitations(&mut self, org: OrgId) -> StoreResult<Vec<InvitationRecord>>;
}

/// Users and service accounts.
#[async_trait]
pub trait UserRepo {
    /// Inserts a user. `Conflict` if a live user has the same email.
    async fn insert_user(&mut self, u: &UserRecord) -> StoreResult<()>;
    /// A live user by id.
    async fn get_user(&mut self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// The live users of these ids (unknown or deleted ones are left out), in no
    /// particular order: one query however many.
    async fn get_users(&mut self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>>;
    /// A live user by (lowercased) email.
    async fn find_user_by_email(&mut self, email: &str) -> StoreResult<Option<UserRecord>>;
    /// Replaces a user's fields.
    async fn update_user(&mut self, u: &UserRecord) -> StoreResult<()>;
    /// One raw window of live users matching `f`.
    async fn list_users(&mut self, f: &UserFilter, w: &Window) -> StoreResult<Vec<UserRecord>>;
    /// A user's password hash (PHC string), if it has a password.
    async fn password_hash(&mut self, user: UserId) -> StoreResult<Option<String>>;
    /// Sets or clears a user's password hash.
    async fn set_password_hash(&mut self, user: UserId, hash: Option<&str>) -> StoreResult<()>;
}

/// Console sessions.
#[async_trait]
pub trait SessionRepo {
    /// Stores a session with the hashes of its token and CSRF token.
    async fn insert_session(&mut self, s: &SessionRecord, token_hash: &str, csrf_hash: &str) -> StoreResult<()>;
    /// Revokes one session of `user`; `false` if it was not live.
    async fn revoke_session(&mut self, user: UserId, id: Uuid, at: Micros) -> StoreResult<bool>;
    /// Revokes every live session of a user but `keep`; returns how many.
    async fn revoke_user_sessions(&mut self, user: UserId, keep: Option<Uuid>, at: Micros) -> StoreResult<u64>;
    /// Revokes every live session of a user that a password opened (not single
    /// sign-on, not an owner's break-glass sign-in); returns how many.
    async fn revoke_password_sessions(&mut self, user: UserId, at: Micros) -> StoreResult<u64>;
    /// A user's live sessions, newest first.
    async fn list_sessions(&mut self, user: UserId, now: Micros) -> StoreResult<Vec<SessionRecord>>;
}

/// Identities at OpenID providers, and the group memberships single sign-on made.
#[async_trait]
pub trait IdentityRepo {
    /// The identity `(issuer, subject)`, if linked.
    async fn find_identity(&mut self, issuer: &str, subject: &str) -> StoreResult<Option<IdentityRecord>>;
    /// Whether `user` has an identity at `issuer`.
    async fn has_identity_at(&mut self, user: UserId, issuer: &str) -> StoreResult<bool>;
    /// Whether any identity was linked through SSO configuration `config`.
    async fn config_has_identities(&mut self, config: Uuid) -> StoreResult<bool>;
    /// Links an identity. `Conflict` if `(issuer, subject)` is already linked.
    async fn insert_identity(&mut self, i: &IdentityRecord) -> StoreResult<()>;
    /// Records a sign-in through an identity (time and the email sent).
    async fn set_identity_login(
        &mut self,
        issuer: &str,
        subject: &str,
        email: Option<&str>,
        at: Micros,
    ) -> StoreResult<()>;
    /// The groups single sign-on put `user` in (through any configuration).
    async fn sso_groups_of(&mut self, user: UserId) -> StoreResult<Vec<GroupId>>;
    /// Records that single sign-on (configuration `config`) put `user` in `group`.
    async fn add_sso_group_member(&mut self, group: GroupId, user: UserId, config: Uuid, at: Micros)
        -> StoreResult<()>;
    /// Forgets that single sign-on put `user` in `group`.
    async fn remove_sso_group_member(&mut self, group: GroupId, user: UserId) -> StoreResult<()>;
    /// Stores a command-line sign-in's one-time code (and drops expired ones).
    async fn insert_sso_grant(&mut self, g: &SsoGrant, now: Micros) -> StoreResult<()>;
    /// Takes (deletes and answers) the grant of this code hash, if any: a code is
    /// exchanged at most once. Expiry is the caller's to check.
    async fn take_sso_grant(&mut self, code_hash: &str) -> StoreResult<Option<SsoGrant>>;
}

/// Projects.
#[async_trait]
pub trait ProjectRepo {
    /// Inserts a project. `Conflict` if the org has a live project of that name.
    async fn insert_project(&mut self, p: &ProjectRecord) -> StoreResult<()>;
    /// A live project by id.
    async fn get_project(&mut self, id: ProjectId) -> StoreResult<Option<ProjectRecord>>;
    /// A live project by exact name within an org.
    async fn find_project_by_name(&mut self, org: OrgId, name: &str) -> StoreResult<Option<ProjectRecord>>;
    /// Replaces a project's fields. `Conflict` on a name clash, `NotFound` if gone.
    async fn update_project(&mut self, p: &ProjectRecord) -> StoreResult<()>;
    /// Soft-deletes a project. `NotFound` if gone.
    async fn delete_project(&mut self, id: ProjectId, at: Micros) -> StoreResult<()>;
    /// One raw window of live projects matching `f`.
    async fn list_projects(&mut self, f: &ProjectFilter, w: &Window) -> StoreResult<Vec<ProjectRecord>>;
}

/// API keys and service tokens.
#[async_trait]
pub trait KeyRepo {
    /// Inserts a key with its secret's hash.
    async fn insert_key(&mut self, k: &NewKey) -> StoreResult<()>;
    /// A live key by id.
    async fn get_key(&mut self, id: KeyId) -> StoreResult<Option<KeyRecord>>;
    /// Deletes a key at once; it stops authenticating. `NotFound` if gone.
    async fn delete_key(&mut self, id: KeyId, at: Micros) -> StoreResult<()>;
    /// One raw window of live keys matching `f`.
    async fn list_keys(&mut self, f: &KeyFilter, w: &Window) -> StoreResult<Vec<KeyRecord>>;
    /// Deletes every live key of `user` created in `org`, returning them.
    async fn delete_keys_of(&mut self, org: OrgId, user: UserId, at: Micros) -> StoreResult<Vec<KeyRecord>>;
}

/// Groups, roles and ACLs: the stored form of the authorization model.
#[async_trait]
pub trait AccessRepo {
    /// Inserts a group. `Conflict` if the org has a live group of that name.
    async fn insert_group(&mut self, g: &GroupRecord) -> StoreResult<()>;
    /// A live group by id.
    async fn get_group(&mut self, id: GroupId) -> StoreResult<Option<GroupRecord>>;
    /// A live group by exact name within an org.
    async fn find_group_by_name(&mut self, org: OrgId, name: &str) -> StoreResult<Option<GroupRecord>>;
    /// Replaces a group's name and description. `Conflict` on a name clash.
    async fn update_group(&mut self, g: &GroupRecord) -> StoreResult<()>;
    /// Soft-deletes a group and drops its memberships (both ways). `NotFound` if gone.
    async fn delete_group(&mut self, id: GroupId, at: Micros) -> StoreResult<()>;
    /// One raw window of live groups matching `f`.
    async fn list_groups(&mut self, f: &GroupFilter, w: &Window) -> StoreResult<Vec<GroupRecord>>;
    /// A group's direct user members.
    async fn group_users(&mut self, group: GroupId) -> StoreResult<Vec<UserId>>;
    /// A group's direct member groups.
    async fn group_groups(&mut self, group: GroupId) -> StoreResult<Vec<GroupId>>;
    /// The direct members (users and groups) of every group named, in one query:
    /// `(group, member)` pairs sorted by group, then users before groups, then id.
    async fn group_members(&mut self, groups: &[GroupId]) -> StoreResult<Vec<(GroupId, GroupMember)>>;
    /// Adds a user to a group; `false` if already in it.
    async fn add_group_user(&mut self, group: GroupId, user: UserId) -> StoreResult<bool>;
    /// Removes a user from a group; `false` if not in it.
    async fn remove_group_user(&mut self, group: GroupId, user: UserId) -> StoreResult<bool>;
    /// Makes `member` a member group of `group`; `false` if it already is.
    async fn add_group_group(&mut self, group: GroupId, member: GroupId) -> StoreResult<bool>;
    /// Removes a member group; `false` if it was not one.
    async fn remove_group_group(&mut self, group: GroupId, member: GroupId) -> StoreResult<bool>;
    /// The groups of `org` a user is a direct member of.
    async fn user_groups(&mut self, org: OrgId, user: UserId) -> StoreResult<Vec<GroupId>>;

    /// Inserts a role. `Conflict` if a live role of that name exists in its org (or
    /// among system roles).
    async fn insert_role(&mut self, r: &RoleRecord) -> StoreResult<()>;
    /// A live role by id.
    async fn get_role(&mut self, id: RoleId) -> StoreResult<Option<RoleRecord>>;
    /// A live role by exact name in an org (`None`: a system role).
    async fn find_role_by_name(&mut self, org: Option<OrgId>, name: &str) -> StoreResult<Option<RoleRecord>>;
    /// Replaces a role's name and description. `Conflict` on a name clash.
    async fn update_role(&mut self, r: &RoleRecord) -> StoreResult<()>;
    /// Soft-deletes a role and drops its permissions and inheritance edges (both ways).
    async fn delete_role(&mut self, id: RoleId, at: Micros) -> StoreResult<()>;
    /// One raw window of live roles matching `f`.
    async fn list_roles(&mut self, f: &RoleFilter, w: &Window) -> StoreResult<Vec<RoleRecord>>;
    /// A role's own permissions, sorted.
    async fn role_permissions(&mut self, role: RoleId) -> StoreResult<Vec<RolePermission>>;
    /// Adds a permission to a role; `false` if it already has it.
    async fn add_role_permission(&mut self, role: RoleId, p: RolePermission) -> StoreResult<bool>;
    /// Removes a permission from a role; `false` if it did not have it.
    async fn remove_role_permission(&mut self, role: RoleId, p: RolePermission) -> StoreResult<bool>;
    /// The own permissions and directly inherited roles of every role named, in two
    /// queries however many: `(role, permission)` and `(role, inherited)` pairs, sorted.
    #[allow(clippy::type_complexity)]
    async fn role_contents(
        &mut self,
        roles: &[RoleId],
    ) -> StoreResult<(Vec<(RoleId, RolePermission)>, Vec<(RoleId, RoleId)>)>;
    /// The roles a role directly inherits.
    async fn role_roles(&mut self, role: RoleId) -> StoreResult<Vec<RoleId>>;
    /// Makes `role` inherit `member`; `false` if it already does.
    async fn add_role_role(&mut self, role: RoleId, member: RoleId) -> StoreResult<bool>;
    /// Stops `role` inheriting `member`; `false` if it did not.
    async fn remove_role_role(&mut self, role: RoleId, member: RoleId) -> StoreResult<bool>;

    /// Inserts an ACL. `Conflict` if an ACL with the same contents exists.
    async fn insert_acl(&mut self, a: &AclRecord) -> StoreResult<()>;
    /// An ACL by id.
    async fn get_acl(&mut self, id: AclId) -> StoreResult<Option<AclRecord>>;
    /// The ACL with these contents ([`AclRecord::content_key`]).
    async fn find_acl(&mut self, content_key: &str) -> StoreResult<Option<AclRecord>>;
    /// Deletes an ACL. `NotFound` if gone.
    async fn delete_acl(&mut self, id: AclId) -> StoreResult<()>;
    /// One raw window of ACLs matching `f`.
    async fn list_acls(&mut self, f: &AclFilter, w: &Window) -> StoreResult<Vec<AclRecord>>;
    /// Deletes every ACL on an object and returns them.
    async fn delete_acls_on(&mut self, object_type: ObjectType, object_id: Uuid) -> StoreResult<Vec<AclRecord>>;
    /// Deletes every ACL naming a user (in one org) and returns them.
    async fn delete_acls_of_user(&mut self, org: OrgId, user: UserId) -> StoreResult<Vec<AclRecord>>;
    /// Deletes every ACL on an object inside a project (experiments, datasets, prompts,
    /// playgrounds) and returns them.
    async fn delete_acls_inside(&mut self, project: ProjectId) -> StoreResult<Vec<AclRecord>>;
    /// Deletes every ACL naming a group or granting a role, and returns them.
    async fn delete_acls_referencing(
        &mut self,
        group: Option<GroupId>,
        role: Option<RoleId>,
    ) -> StoreResult<Vec<AclRecord>>;

    /// Everything the authorization index is built from, at this transaction's snapshot.
    async fn load_access_state(&mut self) -> StoreResult<AccessState>;
}

/// The audit log.
#[async_trait]
pub trait AuditRepo {
    /// Seals `rec` onto its org's chain at this transaction's revision.
    async fn append_audit(&mut self, rec: NewAuditRecord) -> StoreResult<AuditRecord>;
    /// An org's records with `seq > after_seq`, ascending, at most `limit`.
    async fn audit_chain(&mut self, org: OrgId, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>>;
    /// An org's records matching `f`, newest first, with `seq < before_seq` when set.
    async fn list_audit(
        &mut self,
        f: &AuditFilter,
        before_seq: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// An org's chain head `(seq, hash)`, if it has records.
    async fn audit_head(&mut self, org: OrgId) -> StoreResult<Option<(u64, String)>>;
}

impl crate::page::Paged for OrgRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id.0 }
    }
}
impl crate::page::Paged for UserRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id.0 }
    }
}
impl crate::page::Paged for ProjectRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id.0 }
    }
}
impl crate::page::Paged for KeyRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id.0 }
    }
}
impl crate::page::Paged for GroupRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id.0 }
    }
}
impl crate::page::Paged for RoleRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id.0 }
    }
}
impl crate::page::Paged for AclRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id.0 }
    }
}

/// Announcements of commits made by any process on the database.
#[derive(Debug, Default)]
pub struct CommitSignal {
    /// Woken at each announcement (a permit is kept if nobody waits).
    pub notify: tokio::sync::Notify,
    /// The newest revision announced so far.
    pub announced: std::sync::atomic::AtomicU64,
}
