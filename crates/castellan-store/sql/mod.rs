//! Shared SQL: written once, compiled into both backends. Each backend declares
//! this folder as one module (`#[path = "../../castellan-store/sql/mod.rs"] mod sql;`)
//! and supplies, in its own `backend.rs`, the `Db`, `DbRow` and `SqlTx` the code here
//! is compiled against; its `tx.rs` keeps how a transaction begins, locks, records a
//! change and commits, and its `data.rs` the data-plane write path. Parameters are
//! `$N` (both drivers bind them by number); JSON is bound and read as
//! `sqlx::types::Json`; rows are read through `sqlx::FromRow` structs.
//!
//! A new repository is one more file here, listed below, and its `impl` for
//! `SqlTx`; neither backend changes.

pub(crate) mod access;
pub(crate) mod admin;
pub(crate) mod btql;
pub(crate) mod identities;
pub(crate) mod jobs;
pub(crate) mod objects;
pub(crate) mod repos;
pub(crate) mod rows;
pub(crate) mod sessions;
pub(crate) mod store;
pub(crate) mod usage;
