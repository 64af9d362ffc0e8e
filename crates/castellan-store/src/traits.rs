//! The storage traits. A backend implements [`Store`] and a transaction type that
//! implements [`Tx`] (every repository trait plus commit).

use crate::audit::{AuditRecord, NewAuditRecord};
use crate::error::StoreResult;
use crate::model::*;
use crate::page::Window;
use async_trait::async_trait;
use castellan_core::{KeyId, OrgId, ProjectId, UserId};

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
    /// Committed changes with a revision greater than `after`, oldest first.
    async fn changes_since(&self, after: Revision, limit: usize) -> StoreResult<Vec<ChangeRecord>>;
    /// The newest committed revision.
    async fn current_revision(&self) -> StoreResult<Revision>;
    /// Closes connections.
    async fn close(&self);
}

/// One transaction: all repositories, plus revision allocation and commit.
#[async_trait]
pub trait Tx: OrgRepo + UserRepo + ProjectRepo + KeyRepo + AuditRepo + Send {
    /// This transaction's revision, allocated on first call. Revisions are assigned
    /// in commit order: no transaction with a smaller revision commits after one with
    /// a larger revision becomes visible.
    async fn revision(&mut self) -> StoreResult<Revision>;
    /// Appends this transaction's entry to the change feed (at its revision).
    async fn record_change(
        &mut self,
        created: Micros,
        payload: &serde_json::Value,
    ) -> StoreResult<Revision>;
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
}

/// Users and service accounts.
#[async_trait]
pub trait UserRepo {
    /// Inserts a user. `Conflict` if a live user has the same email.
    async fn insert_user(&mut self, u: &UserRecord) -> StoreResult<()>;
    /// A live user by id.
    async fn get_user(&mut self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// A live user by (lowercased) email.
    async fn find_user_by_email(&mut self, email: &str) -> StoreResult<Option<UserRecord>>;
    /// Replaces a user's fields.
    async fn update_user(&mut self, u: &UserRecord) -> StoreResult<()>;
    /// One raw window of live users matching `f`.
    async fn list_users(&mut self, f: &UserFilter, w: &Window) -> StoreResult<Vec<UserRecord>>;
}

/// Projects.
#[async_trait]
pub trait ProjectRepo {
    /// Inserts a project. `Conflict` if the org has a live project of that name.
    async fn insert_project(&mut self, p: &ProjectRecord) -> StoreResult<()>;
    /// A live project by id.
    async fn get_project(&mut self, id: ProjectId) -> StoreResult<Option<ProjectRecord>>;
    /// A live project by exact name within an org.
    async fn find_project_by_name(
        &mut self,
        org: OrgId,
        name: &str,
    ) -> StoreResult<Option<ProjectRecord>>;
    /// Replaces a project's fields. `Conflict` on a name clash, `NotFound` if gone.
    async fn update_project(&mut self, p: &ProjectRecord) -> StoreResult<()>;
    /// Soft-deletes a project. `NotFound` if gone.
    async fn delete_project(&mut self, id: ProjectId, at: Micros) -> StoreResult<()>;
    /// One raw window of live projects matching `f`.
    async fn list_projects(
        &mut self,
        f: &ProjectFilter,
        w: &Window,
    ) -> StoreResult<Vec<ProjectRecord>>;
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
}

/// The audit log.
#[async_trait]
pub trait AuditRepo {
    /// Seals `rec` onto its org's chain at this transaction's revision.
    async fn append_audit(&mut self, rec: NewAuditRecord) -> StoreResult<AuditRecord>;
    /// An org's records with `seq > after_seq`, ascending, at most `limit`.
    async fn audit_chain(
        &mut self,
        org: OrgId,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// An org's chain head `(seq, hash)`, if it has records.
    async fn audit_head(&mut self, org: OrgId) -> StoreResult<Option<(u64, String)>>;
}

impl crate::page::Paged for OrgRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey {
            created: self.created,
            id: self.id.0,
        }
    }
}
impl crate::page::Paged for UserRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey {
            created: self.created,
            id: self.id.0,
        }
    }
}
impl crate::page::Paged for ProjectRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey {
            created: self.created,
            id: self.id.0,
        }
    }
}
impl crate::page::Paged for KeyRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey {
            created: self.created,
            id: self.id.0,
        }
    }
}
