//! The data write queue. Concurrent event writes are committed together ("group
//! commit"), each still with its own transaction id, so the per-commit cost (the
//! fsync, the write-ahead-log frames, the counter row) is paid once per group rather
//! than once per request. Requests are applied in the order they arrive.

use crate::access::{AppState, DataWriter};
use crate::dataplane::ingest::{apply, Committed, Prepared};
use crate::error::{ApiError, ApiResult};
use crate::usage::Meter;
use tokio::sync::{mpsc, oneshot};

/// At most this many rows are committed together…
const MAX_GROUP_ROWS: usize = 5_000;
/// …from at most this many requests.
const MAX_GROUP_JOBS: usize = 64;

struct Job {
    work: Prepared,
    reply: oneshot::Sender<ApiResult<Committed>>,
}

/// The handle requests submit their writes through.
pub(crate) struct IngestQueue {
    jobs: mpsc::Sender<Job>,
}

impl IngestQueue {
    /// Starts the writer. It ends when the last handle is dropped.
    ///
    /// The writer is polled on a thread of its own: on the shared runtime's workers its
    /// every database round trip would wait behind the request handlers (parsing large
    /// bodies), and the one writer is what all ingest waits for. Its I/O stays on the
    /// server's runtime (the thread enters it with `Handle::block_on`): the database
    /// connections it opens belong to the shared pool, and a connection registered with
    /// a runtime of the writer's own would die with the writer, under whoever uses it
    /// next.
    pub(crate) fn start(store: DataWriter, state: AppState) -> IngestQueue {
        let (jobs, rx) = mpsc::channel(1024);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let spawned = std::thread::Builder::new()
                    .name("castellan-ingest".into())
                    .spawn(move || handle.block_on(run(store, state, rx)));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the data writer thread");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "the data writer needs the server's runtime");
            }
        }
        IngestQueue { jobs }
    }

    /// Writes `work` (with the next transaction id) and waits for its commit.
    pub(crate) async fn submit(&self, work: Prepared) -> ApiResult<Committed> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { work, reply })
            .await
            .map_err(|_| ApiError::Internal("the data write queue has stopped".into()))?;
        answer.await.map_err(|_| ApiError::Internal("the data write queue dropped a write".into()))?
    }
}

async fn run(store: DataWriter, state: AppState, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut rows = first.work.len();
        let mut group = vec![first];
        while rows < MAX_GROUP_ROWS && group.len() < MAX_GROUP_JOBS {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.work.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let outcome = write(&store, &state, group.iter().map(|j| &j.work)).await;
        state.ingest_load().record(started.elapsed(), rows);
        match outcome {
            Ok(ids) => {
                for (job, id) in group.into_iter().zip(ids) {
                    let _ = job.reply.send(id);
                }
            }
            Err(e) if group.len() == 1 => {
                if let Some(job) = group.pop() {
                    let _ = job.reply.send(Err(e));
                }
            }
            // One write spoiled the group: nothing of it was committed. Each write
            // goes again on its own, so only the faulty one fails.
            Err(_) => {
                for job in group {
                    let r = write(&store, &state, std::iter::once(&job.work)).await;
                    let _ = job.reply.send(r.and_then(|ids| {
                        ids.into_iter().next().unwrap_or_else(|| Err(ApiError::Internal("no transaction id".into())))
                    }));
                }
            }
        }
    }
}

/// Writes a group in one transaction, metered together (one usage upsert per
/// organization); each write's outcome (a refused write wrote nothing and does not
/// spoil the others).
async fn write<'a>(
    store: &DataWriter,
    state: &AppState,
    works: impl Iterator<Item = &'a Prepared>,
) -> ApiResult<Vec<ApiResult<Committed>>> {
    let started = std::time::Instant::now();
    let mut tx = store.begin().await?;
    let began = std::time::Instant::now();
    let mut meter = Meter::new(state);
    let mut done = Vec::new();
    for w in works {
        done.push((w, apply(&mut *tx, w, &mut meter).await?));
    }
    let flushed = meter.flush(&mut *tx).await?;
    let written = std::time::Instant::now();
    tx.commit().await?;
    state.ingest_load().record_parts(began - started, written - began, written.elapsed());
    crate::usage::crossed(state, &flushed.crossings).await;
    Ok(done
        .into_iter()
        .map(|(w, r)| {
            r.map(|xact| Committed { xact, warning: w.orgs().find_map(|o| flushed.warning(o)).map(str::to_owned) })
        })
        .collect())
}
