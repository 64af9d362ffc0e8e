//! What the shared SQL (`castellan-store/sql/`) is compiled against here.

/// The database.
pub(crate) type Db = sqlx::Sqlite;
/// One row.
pub(crate) type DbRow = sqlx::sqlite::SqliteRow;
/// The transaction the shared repositories are implemented on.
pub(crate) type SqlTx = crate::tx::SqliteTx;
