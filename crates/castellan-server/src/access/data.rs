//! Data-plane access: permits for event logs (several at once for `/logs3`) and for
//! blobs, and the transactions only they open.

use super::signing::Signer;
use super::{AppState, Caller, Permit};
use crate::error::{ApiError, ApiResult};
use castellan_core::{ObjectRef, ObjectType, OrgId, Permission, ProjectId};
use castellan_store::{DataTx, EventKind, EventObject, Tx};

/// Proof that the caller may write events into each of these logs (`update` on
/// each), with each log's project.
pub struct DataPermit {
    logs: Vec<(EventObject, ProjectId)>,
}

impl DataPermit {
    /// The logs covered, in the order they were asked for.
    pub fn logs(&self) -> &[(EventObject, ProjectId)] {
        &self.logs
    }

    /// The project of a covered log.
    pub fn project_of(&self, log: EventObject) -> Option<ProjectId> {
        self.logs.iter().find(|(l, _)| *l == log).map(|(_, p)| *p)
    }
}

/// Proof that a blob operation may happen: the caller belongs to the blob's org, or
/// the request carries a valid signature for exactly this operation.
#[derive(Debug, Clone)]
pub struct BlobPermit {
    org: Option<OrgId>,
    key: String,
}

impl BlobPermit {
    /// The org the caller was checked against (none for a signed URL).
    pub fn org(&self) -> Option<OrgId> {
        self.org
    }

    /// The key a signed URL was checked for (empty for a membership permit).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub(super) fn signed(key: &str) -> BlobPermit {
        BlobPermit { org: None, key: key.to_owned() }
    }
}

/// The authorization object of a log.
pub fn log_ref(log: EventObject) -> ObjectRef {
    ObjectRef::new(log.kind.object_type(), log.id)
}

impl Caller {
    /// The project a log belongs to, from the index.
    fn project_of(&self, log: EventObject) -> ApiResult<ProjectId> {
        if log.kind == EventKind::ProjectLogs {
            return Ok(ProjectId(log.id));
        }
        match self.state().index().snapshot().parent(log_ref(log)) {
            Some(p) if p.object_type == ObjectType::Project => Ok(ProjectId(p.object_id)),
            _ => Err(ApiError::not_found(log.kind.object_type().as_str(), log.id)),
        }
    }

    /// Authorizes writing events into every log of `logs`, in order: `update` on
    /// each. The first refusal (404 for a log the caller cannot read, 403 for one it
    /// can read but not change) refuses them all.
    pub async fn require_event_writes(&self, logs: &[EventObject]) -> ApiResult<DataPermit> {
        let mut out = Vec::with_capacity(logs.len());
        for log in logs {
            self.require(Permission::Update, log_ref(*log)).await?;
            out.push((*log, self.project_of(*log)?));
        }
        Ok(DataPermit { logs: out })
    }

    /// Authorizes reading a log (`read` on its object); returns its project too.
    pub async fn require_event_read(&self, log: EventObject) -> ApiResult<(Permit, ProjectId)> {
        let permit = self.require(Permission::Read, log_ref(log)).await?;
        Ok((permit, self.project_of(log)?))
    }

    /// Authorizes a blob operation in `org` (the caller must belong to it), or, with
    /// `None`, on the caller's own uploads. What it may then do with a given blob
    /// (it is the uploader, or it can read a log that references it) is the
    /// handler's to check against the blob.
    pub fn blob_permit(&self, org: Option<OrgId>) -> ApiResult<BlobPermit> {
        match org {
            Some(o) if !self.member_of(o) => Err(ApiError::not_found("organization", o)),
            _ => Ok(BlobPermit { org, key: String::new() }),
        }
    }
}

/// The one capability to write events: held only by the data plane's write queue,
/// which writes nothing a [`DataPermit`] did not authorize.
#[derive(Clone)]
pub struct DataWriter(std::sync::Arc<dyn castellan_store::Store>);

impl DataWriter {
    /// A data-plane write transaction.
    pub async fn begin(&self) -> castellan_store::StoreResult<Box<dyn DataTx>> {
        self.0.data_write().await
    }

    /// A data-plane write transaction whose commit does not wait for the disk
    /// ([`castellan_store::Store::data_write_relaxed`]): for background work that is
    /// redone if lost, never for a client's write.
    pub async fn begin_relaxed(&self) -> castellan_store::StoreResult<Box<dyn DataTx>> {
        self.0.data_write_relaxed().await
    }
}

impl AppState {
    /// The data-write capability, for the data plane's queue (started once, at
    /// startup).
    pub(crate) fn data_writer(&self) -> DataWriter {
        DataWriter(self.0.store.clone())
    }

    /// A data-plane write transaction for a blob operation.
    pub async fn blob_write(&self, _permit: &BlobPermit) -> ApiResult<Box<dyn DataTx>> {
        Ok(self.0.store.data_write().await?)
    }

    /// A read transaction for a blob operation.
    pub async fn blob_read(&self, _permit: &BlobPermit) -> ApiResult<Box<dyn Tx>> {
        Ok(self.0.store.read().await?)
    }

    /// The URL signer.
    pub fn signer(&self) -> &Signer {
        &self.0.signer
    }
}
