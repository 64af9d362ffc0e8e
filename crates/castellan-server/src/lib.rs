//! Castellan's server: the Braintrust-compatible REST API over the storage traits,
//! with every endpoint authorized through [`access`].

pub mod access;
pub mod automation;
pub mod change;
pub mod config;
pub mod console;
pub mod dataplane;
pub mod dto;
pub mod error;
pub mod extract;
pub mod keys;
pub mod load;
pub mod oidc;
pub mod openapi;
pub mod outbound;
pub mod passwords;
pub mod ratelimit;
pub mod rotation;
pub mod routes;
pub mod scoring;
pub mod secrets;
pub mod seed;
pub mod serve;
pub mod sso;
pub mod state;
pub mod usage;
pub mod webhook;

pub use access::AppState;
pub use config::Config;
pub use routes::app;
