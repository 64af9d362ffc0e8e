//! Castellan's storage layer: the records, the traits every backend implements, the
//! errors they return, and one conformance suite that every backend must pass.
//!
//! A backend owns its SQL and its migrations; nothing here knows which database is
//! underneath. All writes happen inside a [`Tx`]; a write, its audit record and its
//! change-feed entry commit together or not at all.

pub mod admin;
pub mod audit;
pub mod conformance;
mod conformance_data;
pub mod data;
pub mod data_repo;
pub mod error;
pub mod model;
pub mod page;
pub mod traits;
pub mod usage;

pub use admin::*;
pub use data::*;
pub use data_repo::*;
pub use error::{expect_touched, StoreError, StoreResult};
pub use model::*;
pub use page::{fill_page, Cursor, PageFiller, PageKey, PageRequest, Paged, Window};
pub use traits::*;
pub use usage::*;
