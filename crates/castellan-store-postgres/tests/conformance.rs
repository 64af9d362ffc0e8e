//! The shared conformance suite on a real PostgreSQL server.
//!
//! The server comes from `CASTELLAN_TEST_POSTGRES_URL` (`.ci/run` starts the local
//! cluster and sets it). Each story gets a schema of its own, so stories never see
//! each other's rows. They are `#[ignore]`d, so a plain `cargo test` lists them as
//! not run; run on purpose without a server they fail, never pass untested.

use castellan_store::Store;
use castellan_store_postgres::PgStore;
use std::sync::Arc;

async fn fresh() -> Option<Arc<dyn Store>> {
    let url = std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("needs PostgreSQL: set CASTELLAN_TEST_POSTGRES_URL, or run scripts/test, which sets it up")
    });
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    Some(Arc::new(PgStore::connect(&url, Some(&schema)).await.expect("connect to postgres")))
}

// Ignored in a plain `cargo test` (listed as not run); `scripts/test` starts
// PostgreSQL and runs these with `--include-ignored`.
castellan_store::conformance_suite!(fresh, #[ignore = "needs PostgreSQL: scripts/test runs it"]);
