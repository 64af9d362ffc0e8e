//! The data plane's records: the objects that live inside a project (experiments,
//! datasets, prompts, functions, playgrounds), their event log, and uploaded blobs.
//!
//! Events are stored as an append-only history: every write of a row is a new
//! version at its transaction id ([`XactId`]), so a fetch can be served "as of" any
//! past transaction and a paginated fetch sees one consistent snapshot.

use castellan_core::{ObjectType, OrgId, ProjectId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use crate::model::Micros;

/// A transaction id of the event log: strictly increasing across all data writes,
/// and always 19 decimal digits, so a string maximum (which the SDK takes) agrees
/// with the numeric one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct XactId(pub i64);

impl XactId {
    /// The counter's starting value: `0x0DE1 << 48`, the top bits Braintrust's SDK
    /// assumes when it turns a 16-hex "pretty" version back into a transaction id, so
    /// both spellings name the same version.
    pub const BASE: i64 = 0x0DE1 << 48;
    /// The largest value that still has 19 digits and fits an `i64`.
    pub const MAX: i64 = i64::MAX;

    /// Parses the 19-digit decimal form, or the SDK's 16-hex-digit "pretty" form.
    pub fn parse(s: &str) -> Option<XactId> {
        let s = s.trim();
        if s.len() == 19 && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse::<i64>().ok().filter(|v| *v >= Self::BASE).map(XactId);
        }
        if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            // Inverse of the SDK's `prettify_xact` (multiplication by a coprime mod 2^64).
            const COPRIME_INVERSE: u64 = 1_522_336_535_492_693_385;
            let v = u64::from_str_radix(s, 16).ok()?.wrapping_mul(COPRIME_INVERSE) | (Self::BASE as u64);
            return i64::try_from(v).ok().map(XactId);
        }
        None
    }
}

impl fmt::Display for XactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:019}", self.0)
    }
}

/// What kind of object inside a project a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// An experiment.
    Experiment,
    /// A dataset.
    Dataset,
    /// A prompt: a function whose `function_data.type` is `prompt`.
    Prompt,
    /// Any other function (scorer, tool, task, …).
    Function,
    /// A playground.
    PromptSession,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 5] = [
        ObjectKind::Experiment,
        ObjectKind::Dataset,
        ObjectKind::Prompt,
        ObjectKind::Function,
        ObjectKind::PromptSession,
    ];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Experiment => "experiment",
            ObjectKind::Dataset => "dataset",
            ObjectKind::Prompt => "prompt",
            ObjectKind::Function => "function",
            ObjectKind::PromptSession => "prompt_session",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The authorization object type (functions are covered by `prompt`).
    pub const fn object_type(self) -> ObjectType {
        match self {
            ObjectKind::Experiment => ObjectType::Experiment,
            ObjectKind::Dataset => ObjectType::Dataset,
            ObjectKind::Prompt | ObjectKind::Function => ObjectType::Prompt,
            ObjectKind::PromptSession => ObjectType::PromptSession,
        }
    }

    /// Whether names are unique per project for this kind (prompts and functions are
    /// unique by slug instead).
    pub const fn unique_name(self) -> bool {
        matches!(self, ObjectKind::Experiment | ObjectKind::Dataset | ObjectKind::PromptSession)
    }
}

/// An object inside a project. The columns every kind shares are fields; the rest of
/// a kind's fields (an experiment's `base_exp_id`, a prompt's `prompt_data`, …) are
/// kept in `data` as a JSON object, which the server maps to the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: ObjectKind,
    /// The project it lives in.
    pub project_id: ProjectId,
    /// The project's organization.
    pub org_id: OrgId,
    /// Name; unique among the project's live objects of the kind when
    /// [`ObjectKind::unique_name`].
    pub name: String,
    /// Prompts and functions: unique among the project's live prompts and functions.
    pub slug: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Creator.
    pub user_id: Option<UserId>,
    /// Versioned kinds (prompts, functions): the transaction of the current version.
    pub xact_id: Option<XactId>,
    /// Kind-specific fields, a JSON object.
    pub data: serde_json::Value,
    /// Creation time.
    pub created: Micros,
}

/// Filters for listing objects. Every set field must match.
#[derive(Debug, Clone, Default)]
pub struct ObjectFilter {
    /// Only these kinds. Empty means none.
    pub kinds: Vec<ObjectKind>,
    /// Only objects of these orgs. Empty means none.
    pub orgs: Vec<OrgId>,
    /// Only objects of these projects (empty: any project of the orgs).
    pub projects: Vec<ProjectId>,
    /// Exact ids.
    pub ids: Vec<Uuid>,
    /// Exact name.
    pub name: Option<String>,
    /// Exact slug.
    pub slug: Option<String>,
}

impl crate::page::Paged for ObjectRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id }
    }
}

/// Whose event log a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An experiment's spans (object id: the experiment).
    Experiment,
    /// A dataset's records (object id: the dataset).
    Dataset,
    /// A project's logs (object id: the project).
    ProjectLogs,
    /// A playground's logs (object id: the prompt session).
    PromptSession,
}

impl EventKind {
    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Experiment => "experiment",
            EventKind::Dataset => "dataset",
            EventKind::ProjectLogs => "project_logs",
            EventKind::PromptSession => "prompt_session",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<EventKind> {
        [EventKind::Experiment, EventKind::Dataset, EventKind::ProjectLogs, EventKind::PromptSession]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The authorization object type whose permissions govern the log.
    pub const fn object_type(self) -> ObjectType {
        match self {
            EventKind::Experiment => ObjectType::Experiment,
            EventKind::Dataset => ObjectType::Dataset,
            EventKind::ProjectLogs => ObjectType::ProjectLog,
            EventKind::PromptSession => ObjectType::PromptSession,
        }
    }
}

/// One event log: a kind and the id of its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventObject {
    /// Which kind of log.
    pub kind: EventKind,
    /// The experiment, dataset, project or prompt session id.
    pub id: Uuid,
}

/// One version of a row to append to an event log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWrite {
    /// The log.
    pub object: EventObject,
    /// The log's project.
    pub project_id: ProjectId,
    /// The row's id (any string).
    pub row_id: String,
    /// The trace the row belongs to (its own id for rows without spans).
    pub root_span_id: Option<String>,
    /// The span's id (its row id for rows written without one; none for a
    /// tombstone), so readers can sample spans without reading their contents.
    pub span_id: Option<String>,
    /// A root span (or a row without spans).
    pub is_root: bool,
    /// A tombstone: the row was deleted.
    pub deleted: bool,
    /// A comment on another row (stored, never fetched as an event).
    pub is_comment: bool,
    /// The row's full, merged contents as JSON text.
    pub data: String,
}

/// What a span's row version is, without its contents (online scoring reads these
/// for every new version, tombstones and comments left out, and the contents only
/// of the few it samples).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHead {
    /// The row's id.
    pub row_id: String,
    /// The transaction that wrote this version.
    pub xact_id: XactId,
    /// A root span (or a row without spans).
    pub is_root: bool,
    /// The span's id; `None` for versions written before it was stored apart.
    pub span_id: Option<String>,
}

/// A batch of a log's row versions read after a position (online scoring reads
/// these for every new version, and the contents only of the few it samples).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadBatch {
    /// How many versions the batch holds (those left out included).
    pub read: usize,
    /// The position (transaction id, row id) of its last version.
    pub last: Option<(XactId, String)>,
    /// Its spans (not tombstones, comments or versions of skipped transactions),
    /// oldest first.
    pub heads: Vec<EventHead>,
}

/// A window of a log's row versions, as a retention sweep reads it (without the
/// write lock) before it deletes any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionWindow {
    /// How many versions the window holds.
    pub read: usize,
    /// The position (transaction id, row id) of its last version.
    pub last: Option<(XactId, String)>,
    /// The positions of its versions created before the cutoff, in order.
    pub old: Vec<(XactId, String)>,
}

/// An online-scoring scorer to call again (its last call failed in a way a later
/// one may not), as `online_score_retries` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreRetry {
    /// The rule.
    pub rule_id: Uuid,
    /// The scored row.
    pub row_id: String,
    /// The scorer, as the rule names it (`global:<name>`, `function:<id>@<version>`).
    pub scorer: String,
    /// The rule's project.
    pub project_id: Uuid,
    /// Rounds of calls that failed so far.
    pub rounds: i64,
    /// When to call again.
    pub next_at: Micros,
    /// Why the last round failed.
    pub last_error: String,
    /// When it was first queued.
    pub created: Micros,
}

/// A version of a row with its contents as stored, unparsed (for readers that look
/// at a few fields of most rows and at the rest of few).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// The row's id.
    pub row_id: String,
    /// The transaction that wrote this version.
    pub xact_id: XactId,
    /// A tombstone.
    pub deleted: bool,
    /// The row's contents, JSON text.
    pub data: String,
}

/// The newest version of a row, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The row's id.
    pub row_id: String,
    /// The transaction that wrote this version.
    pub xact_id: XactId,
    /// The log's project.
    pub project_id: ProjectId,
    /// A tombstone.
    pub deleted: bool,
    /// The row's contents.
    pub data: serde_json::Value,
}

/// A page of an event log: the newest version of each row at `version`, without
/// tombstones and comments, ordered by `(xact_id, row_id)` descending.
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    /// The log.
    pub object: EventObject,
    /// Read the log as of this transaction (inclusive).
    pub version: XactId,
    /// Start strictly after this `(xact_id, row_id)` position.
    pub after: Option<(XactId, String)>,
    /// At most this many rows.
    pub limit: usize,
}

/// A BTQL search of one log: the newest version of each live row at `version` that
/// passes `filter`, in `sort` order and then `(xact_id, row_id)` descending.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSearch {
    /// The log.
    pub object: EventObject,
    /// Read the log as of this transaction (inclusive).
    pub version: XactId,
    /// Which rows: only what [`crate::EventRepo::pushable`] accepts, with the log's
    /// constant fields already bound (`castellan_btql::fields::bind_constants`).
    pub filter: Option<castellan_btql::Expr>,
    /// The order (each key pushable too).
    pub sort: Vec<castellan_btql::SortKey>,
    /// Start strictly after this position (of a row this same search returned).
    pub after: Option<SearchPosition>,
    /// At most this many rows.
    pub limit: usize,
}

/// A row's value of one sort key, as the database ordered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortValue {
    /// A transaction id (`_xact_id`, `_pagination_key`).
    Xact(i64),
    /// Any other value: its type's rank (null 0, false 1, true 2, number 3, string 4,
    /// array or object 5), its number and its string.
    Typed(i64, f64, String),
}

/// Where a search stopped: the last row's sort values and its position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPosition {
    /// One per sort key.
    pub keys: Vec<SortValue>,
    /// The row's transaction id.
    pub xact_id: XactId,
    /// The row's id.
    pub row_id: String,
}

/// A row a search found, with its sort values (for the next page's position).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundEvent {
    /// The row.
    pub event: StoredEvent,
    /// Its value of each sort key.
    pub keys: Vec<SortValue>,
}

impl FoundEvent {
    /// The position just after this row.
    pub fn position(&self) -> SearchPosition {
        SearchPosition { keys: self.keys.clone(), xact_id: self.event.xact_id, row_id: self.event.row_id.clone() }
    }
}

/// What a blob is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobPurpose {
    /// An attachment referenced from event rows.
    Attachment,
    /// A `/logs3` payload too large to post directly.
    Logs3Overflow,
}

/// Where an org's attachment `key` is stored: keys are the client's names, unique
/// within an organization; another org's keys can neither clash with nor be probed.
pub fn attachment_blob_key(org: castellan_core::OrgId, key: &str) -> String {
    format!("{}:{key}", org.0.simple())
}

impl BlobPurpose {
    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            BlobPurpose::Attachment => "attachment",
            BlobPurpose::Logs3Overflow => "logs3_overflow",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<BlobPurpose> {
        match s {
            "attachment" => Some(BlobPurpose::Attachment),
            "logs3_overflow" => Some(BlobPurpose::Logs3Overflow),
            _ => None,
        }
    }
}

/// An uploaded (or announced) blob, without its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobRecord {
    /// The client's key (unique).
    pub key: String,
    /// What it is for.
    pub purpose: BlobPurpose,
    /// The organization it was uploaded in.
    pub org_id: OrgId,
    /// Who announced it.
    pub user_id: UserId,
    /// File name.
    pub filename: Option<String>,
    /// MIME type.
    pub content_type: Option<String>,
    /// The client-reported upload status, a JSON object (`{"upload_status": …}`).
    pub status: serde_json::Value,
    /// Size of the stored bytes, once uploaded.
    pub size_bytes: Option<i64>,
    /// When it was announced.
    pub created: Micros,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_print_with_19_digits_and_parse_back() {
        let x = XactId(XactId::BASE + 42);
        assert_eq!(x.to_string(), "1000080592252960810");
        assert_eq!(XactId::parse(&x.to_string()), Some(x));
        assert_eq!(XactId::parse("42"), None);
        assert_eq!(XactId::parse("0000000000000000042"), None);
        assert_eq!(XactId::parse("not a version"), None);
    }

    #[test]
    fn the_sdks_pretty_versions_map_back_to_transaction_ids() {
        // prettify_xact(x) = hex((x * 205891132094649) mod 2^64), zero-padded to 16.
        let x = XactId(XactId::BASE + 7);
        let pretty = format!("{:016x}", (x.0 as u64).wrapping_mul(205_891_132_094_649));
        assert_eq!(XactId::parse(&pretty), Some(x));
    }
}
