//! The server's integration tests, in one test binary (one link instead of nine):
//! a real server on a free port over a real SQLite file or PostgreSQL schema, driven
//! over real HTTP, and the official Braintrust clients (Python and TypeScript) against it.
//!
//! `cargo test -p castellan-server --test api` runs the SQLite half; the PostgreSQL
//! half and the official-client tests are `#[ignore]`d unless `scripts/test` sets
//! them up (it passes `--include-ignored`).

#[macro_use]
mod common;
mod support;

mod access;
mod alerts;
mod app_routes;
mod btql;
mod compaction;
mod compat_api;
mod compat_wheel;
mod config_code;
mod console;
mod dataplane;
mod env_vars;
mod foundation;
mod hardening;
mod identity;
mod invitations;
mod matrix;
mod oidc_provider;
mod online_scoring;
mod openapi;
mod otel;
mod project_groups;
mod project_tags;
mod push;
mod scim;
mod sdk;
mod settings;
mod sso;
mod sso_flow;
mod ts_sdk;
mod usage;
mod wire_model;
