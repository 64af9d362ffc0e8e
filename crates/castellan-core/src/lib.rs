//! Castellan's shared vocabulary: the object types and permissions of the
//! authorization model, ids, and validated values ("parse, don't validate").
//!
//! This crate does no I/O and has no async code, so every other crate, including
//! the pure authorization engine, can depend on it.

pub mod ids;
pub mod model;
pub mod values;

pub use ids::*;
pub use model::{ObjectRef, ObjectType, Permission};
pub use values::{Email, Name, ValueError};
