//! Storage errors.

/// What a storage operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (or is deleted).
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule was violated (name taken, email taken, …).
    #[error("{0}")]
    Conflict(String),
    /// A stored audit chain or other invariant does not hold.
    #[error("integrity: {0}")]
    Integrity(String),
    /// The database failed. The text is for logs, never for clients.
    #[error("database error: {0}")]
    Backend(String),
}

/// Result alias for storage operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The outcome of an UPDATE of one live row: touching none means it is gone (or never
/// was), reported as `NotFound(what())`.
pub fn expect_touched(rows_affected: u64, what: impl FnOnce() -> String) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound(what()))
    } else {
        Ok(())
    }
}
