//! What the shared SQL (`castellan-store/sql/`) is compiled against here.

/// The database.
pub(crate) type Db = sqlx::Postgres;
/// One row.
pub(crate) type DbRow = sqlx::postgres::PgRow;
/// The transaction the shared repositories are implemented on.
pub(crate) type SqlTx = crate::tx::PgTx;
