//! The data plane's storage traits: objects inside projects (in every [`Tx`]), event
//! logs and blobs (read in every [`Tx`], written through a [`DataTx`]).
//!
//! Event writes do not go through [`Store::write`]: they are data, not
//! administration, so they neither take the admin revision lock nor feed the change
//! log. They take their own counter instead ([`DataTx::xact_id`]), which orders data
//! writes among themselves.
//!
//! [`Tx`]: crate::Tx
//! [`Store::write`]: crate::Store::write

use crate::data::*;
use crate::error::StoreResult;
use crate::model::Micros;
use crate::page::Window;
use async_trait::async_trait;
use castellan_core::ProjectId;
use uuid::Uuid;

/// Objects inside projects, and the transaction-id counter for versioned ones.
#[async_trait]
pub trait ObjectRepo {
    /// Inserts an object. `Conflict` if its name (for kinds with unique names) or its
    /// slug is taken among the project's live objects.
    async fn insert_object(&mut self, o: &ObjectRecord) -> StoreResult<()>;
    /// A live object by id.
    async fn get_object(&mut self, id: Uuid) -> StoreResult<Option<ObjectRecord>>;
    /// A live object of `kind` by exact name within a project (the newest, for kinds
    /// whose names are not unique).
    async fn find_object_by_name(
        &mut self,
        project: ProjectId,
        kind: ObjectKind,
        name: &str,
    ) -> StoreResult<Option<ObjectRecord>>;
    /// A live prompt or function by slug within a project.
    async fn find_object_by_slug(&mut self, project: ProjectId, slug: &str) -> StoreResult<Option<ObjectRecord>>;
    /// Replaces an object's fields (not its kind, project or creation). `Conflict` on a
    /// name or slug clash, `NotFound` if gone.
    async fn update_object(&mut self, o: &ObjectRecord) -> StoreResult<()>;
    /// Soft-deletes an object. `NotFound` if gone.
    async fn delete_object(&mut self, id: Uuid, at: Micros) -> StoreResult<()>;
    /// One raw window of live objects matching `f`.
    async fn list_objects(&mut self, f: &ObjectFilter, w: &Window) -> StoreResult<Vec<ObjectRecord>>;
    /// Keeps `o` as the version of its object at `o.xact_id` (for versioned kinds).
    async fn insert_object_version(&mut self, o: &ObjectRecord) -> StoreResult<()>;
    /// The object's newest version at or before `xact` (deleted objects included: a
    /// pinned version outlives later edits, not the object).
    async fn get_object_version(&mut self, id: Uuid, xact: XactId) -> StoreResult<Option<ObjectRecord>>;
    /// Allocates a new transaction id in this transaction (for versioned objects).
    async fn next_xact_id(&mut self) -> StoreResult<XactId>;
}

/// Reading event logs and blobs.
#[async_trait]
pub trait EventRepo {
    /// The newest committed transaction id (the version a fresh fetch reads at).
    async fn current_xact_id(&mut self) -> StoreResult<XactId>;
    /// One page of a log, see [`EventQuery`].
    async fn fetch_events(&mut self, q: &EventQuery) -> StoreResult<Vec<StoredEvent>>;
    /// One page of a BTQL search, see [`EventSearch`].
    async fn search_events(&mut self, q: &EventSearch) -> StoreResult<Vec<FoundEvent>>;
    /// Whether this backend evaluates `e` in SQL (else the caller evaluates it in
    /// memory): SQLite cannot address a JSON key containing `"`.
    fn pushable(&self, e: &castellan_btql::Expr) -> bool;
    /// How many live rows (no tombstones, no comments) a log has now.
    async fn count_events(&mut self, object: EventObject) -> StoreResult<u64>;
    /// A blob's record.
    async fn get_blob(&mut self, key: &str) -> StoreResult<Option<BlobRecord>>;
    /// A blob's bytes, if uploaded.
    async fn get_blob_data(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// The logs whose rows reference attachment `key`.
    async fn attachment_refs(&mut self, key: &str) -> StoreResult<Vec<EventObject>>;
}

/// A data-plane write transaction. Dropping it without [`DataTx::commit`] rolls it back.
///
/// One transaction may carry several writes (the server commits concurrent requests
/// together), each with its own transaction id from [`DataTx::next_xact_id`].
#[async_trait]
pub trait DataTx: Send {
    /// Allocates a new transaction id for one write. Ids are assigned in commit
    /// order: no data write with a smaller id commits after one with a larger id
    /// becomes visible; the ids of one transaction become visible together.
    async fn next_xact_id(&mut self) -> StoreResult<XactId>;
    /// The newest versions (tombstones included) of these rows of one log, this
    /// transaction's own writes included. Data writes that read rows serialize
    /// with each other, so each sees the one committed before it.
    async fn latest_events(&mut self, object: EventObject, row_ids: &[String]) -> StoreResult<Vec<StoredEvent>>;
    /// The transaction id of the newest version of each of these rows of one log
    /// that has one, as [`DataTx::latest_events`] sees them, without reading their
    /// contents (a writer that merged onto versions it read before this
    /// transaction checks they are still the newest).
    async fn latest_xacts(&mut self, object: EventObject, row_ids: &[String]) -> StoreResult<Vec<(String, XactId)>>;
    /// Appends row versions written at `xact` (an id of this transaction). A row
    /// may appear once per id.
    async fn insert_events(&mut self, xact: XactId, rows: &[EventWrite]) -> StoreResult<()>;
    /// Records that rows of `object` reference these attachment keys.
    async fn insert_attachment_refs(&mut self, object: EventObject, keys: &[String]) -> StoreResult<()>;
    /// Announces a blob. `Conflict` if the key exists.
    async fn insert_blob(&mut self, b: &BlobRecord) -> StoreResult<()>;
    /// Stores a blob's bytes. `NotFound` if the key was never announced.
    async fn put_blob_data(&mut self, key: &str, data: &[u8]) -> StoreResult<()>;
    /// Replaces a blob's reported status. `NotFound` if unknown.
    async fn set_blob_status(&mut self, key: &str, status: &serde_json::Value) -> StoreResult<()>;
    /// Deletes a blob. `NotFound` if unknown.
    async fn delete_blob(&mut self, key: &str) -> StoreResult<()>;
    /// The plan an organization was given through the API (its JSON), if any.
    async fn org_plan(&mut self, org: castellan_core::OrgId) -> StoreResult<Option<serde_json::Value>>;
    /// Locks the organization's counters of `month` (`YYYY-MM`) until this
    /// transaction ends (creating them at zero), and answers them: a write that
    /// checks a limit against them cannot race another replica's.
    async fn lock_usage(&mut self, org: castellan_core::OrgId, month: &str) -> StoreResult<crate::UsageCounts>;
    /// Adds `delta` to the organization's counters of `day` (`YYYY-MM-DD`) and of
    /// `month` (`YYYY-MM`), in one statement; answers the month's counters after.
    async fn add_usage(
        &mut self,
        org: castellan_core::OrgId,
        day: &str,
        month: &str,
        delta: &crate::UsageCounts,
    ) -> StoreResult<crate::UsageCounts>;
    /// Records a crossing; `false` if that (org, month, metric, threshold) already was.
    async fn record_crossing(&mut self, c: &crate::UsageCrossing) -> StoreResult<bool>;
    /// Online scoring: claims each key (one per rule and span) for `rule`, unless
    /// already claimed; the keys this call claimed. Committed with the scores it
    /// guards (and the retries it queues), so a span is scored at most once however
    /// often a pass repeats.
    async fn claim_score_keys(&mut self, rule: Uuid, keys: &[Vec<u8>], at: Micros) -> StoreResult<Vec<Vec<u8>>>;
    /// Online scoring: queues a scorer to be called again (or records another failed
    /// round of one queued already).
    async fn put_score_retry(&mut self, r: &crate::ScoreRetry) -> StoreResult<()>;
    /// Online scoring: takes a scorer off the retry queue; whether it was on it (a
    /// retry's score is written only by whoever takes it off).
    async fn take_score_retry(&mut self, rule: Uuid, row_id: &str, scorer: &str) -> StoreResult<bool>;
    /// Commits.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}
