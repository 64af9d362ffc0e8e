//! Running the server.

use crate::access::{open_store, system_clock, AppState, OpenError};
use crate::config::Config;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Opening the database or building the index failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Run(std::io::Error),
}

/// A started server.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The state it serves.
    pub state: AppState,
    handle: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    follower: tokio::task::JoinHandle<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Waits for the server to stop (on Ctrl-C or SIGTERM when started by `serve`).
    pub async fn wait(mut self) -> Result<(), ServeError> {
        let res = (&mut self.handle).await;
        self.follower.abort();
        self.state.close().await;
        match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServeError::Run(e)),
            Err(e) => Err(ServeError::Run(std::io::Error::other(e.to_string()))),
        }
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }
}

/// Opens the database, builds the index and starts serving on `config.listen`.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    let store = open_store(&config).await?;
    let state = AppState::new(store, config.clone(), system_clock()).await?;
    start_with_state(state).await
}

/// Starts serving an already-built state.
pub async fn start_with_state(state: AppState) -> Result<Running, ServeError> {
    let config = state.config().clone();
    let listener =
        TcpListener::bind(config.listen).await.map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(ServeError::Run)?;
    let follower = tokio::spawn(state.index().clone().follow(config.poll_interval));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = crate::routes::app(state.clone());
    let handle = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = rx => {},
                    _ = shutdown_signal() => {},
                }
            })
            .await
    });
    Ok(Running { addr, state, handle, follower, shutdown: Some(tx) })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    // Give in-flight requests a moment; axum waits for them after this returns.
    tokio::time::sleep(Duration::from_millis(10)).await;
}
