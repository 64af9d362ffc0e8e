//! The application's state, in parts: the access layer (authentication,
//! authorization, transactions) and the data plane (the write queue), each reachable
//! on its own by handlers (`State<AppState>`, `State<DataPlane>`, axum's `FromRef`),
//! so a new server-wide service is a sibling part, not a field of the gatekeeper.

use crate::access::AppState;
use crate::dataplane::DataPlane;
use axum::extract::FromRef;

/// Everything the router serves with.
#[derive(Clone)]
pub struct App {
    /// Authentication, authorization, transactions, configuration.
    pub access: AppState,
    /// The data plane's write queue.
    pub data: DataPlane,
}

impl App {
    /// Assembles the parts over a built access layer (starts the data writer).
    pub fn new(access: AppState) -> App {
        let data = DataPlane::start(&access);
        App { access, data }
    }
}

impl FromRef<App> for AppState {
    fn from_ref(app: &App) -> AppState {
        app.access.clone()
    }
}

impl FromRef<App> for DataPlane {
    fn from_ref(app: &App) -> DataPlane {
        app.data.clone()
    }
}
