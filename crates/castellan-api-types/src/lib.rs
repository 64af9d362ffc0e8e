//! Castellan's wire types. Field names follow Braintrust's REST API exactly so that
//! the official clients work unmodified; Castellan's extensions are marked as such.

pub mod access;
pub mod admin;
pub mod app;
pub mod common;
pub mod config;
pub mod data;
pub mod events;
pub mod settings;
pub mod usage;

pub use access::*;
pub use admin::*;
pub use app::*;
pub use common::*;
pub use config::*;
pub use data::*;
pub use events::*;
pub use settings::*;
pub use usage::*;
