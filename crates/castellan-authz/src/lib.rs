//! Castellan's authorization engine (DESIGN §2, and the engine parts of §3).
//!
//! Pure and synchronous. A [`Snapshot`] is an immutable index of the whole access
//! configuration (object tree, groups, roles, ACL rows) with the group and role closures
//! precomputed, so a [`Snapshot::check`] costs a few hash lookups whatever the number of
//! rows. [`Snapshot::apply`] derives a new snapshot from a batch of [`Mutation`]s, copying
//! only what the batch touches; an [`Engine`] publishes snapshots by an atomic pointer swap.
//! [`reference::Reference`] is the naive evaluator the index is tested against.

pub mod bench_data;
mod bucket;
mod engine;
mod error;
mod idset;
mod mutate;
mod nodes;
mod pmap;
mod ptable;
mod pvec;
pub mod reference;
mod reverse;
pub mod seed;
mod snapshot;
mod types;

pub use castellan_core::model::{ObjectRef, ObjectType, Permission};
pub use engine::Engine;
pub use error::AuthzError;
pub use snapshot::Snapshot;
pub use types::{AclRow, Decision, Grant, GrantPath, Mutation, NearMiss, NearMissReason, Page, Stats, Subject};
