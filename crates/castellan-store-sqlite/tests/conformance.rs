//! The shared conformance suite on a real SQLite file.

use castellan_store::Store;
use castellan_store_sqlite::SqliteStore;
use std::sync::Arc;

async fn fresh() -> Option<Arc<dyn Store>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("castellan.sqlite");
    // Keep the directory for the life of the test process: the store holds the file.
    std::mem::forget(dir);
    Some(Arc::new(SqliteStore::open(&path).await.expect("open sqlite")))
}

castellan_store::conformance_suite!(fresh);
