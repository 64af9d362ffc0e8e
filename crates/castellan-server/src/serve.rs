//! Running the server.

use crate::access::{system_clock, AppState, Clock, OpenError, SystemKey};
use crate::config::Config;
use castellan_store::{Store, StoreError};
use castellan_store_postgres::PgStore;
use castellan_store_sqlite::SqliteStore;
use std::net::SocketAddr;
use std::sync::Arc;
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
    let (state, system) = prepare(store, config.clone(), system_clock()).await?;
    // The scheduler (retention sweeps) holds the system's write right from here on.
    crate::automation::spawn(state.clone(), &system);
    start_with_state(state).await
}

/// Opens the configured database (PostgreSQL if a URL is set, else the SQLite file
/// under the data directory) and runs migrations.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, OpenError> {
    match &config.database_url {
        Some(url) => Ok(Arc::new(PgStore::connect(url, None).await?)),
        None => {
            let dir_err = |source| OpenError::DataDir { path: config.data_dir.clone(), source };
            std::fs::create_dir_all(&config.data_dir).map_err(dir_err)?;
            // The data directory holds the database and generated secrets: only the
            // server's own user may enter it or read them.
            restrict(&config.data_dir, 0o700).map_err(dir_err)?;
            let path = config.data_dir.join("castellan.sqlite");
            let store = SqliteStore::open(&path).await?;
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let p = std::path::PathBuf::from(p);
                if p.exists() {
                    restrict(&p, 0o600).map_err(dir_err)?;
                }
            }
            Ok(Arc::new(store))
        }
    }
}

/// Sets a file's or directory's permission bits (Unix; elsewhere a no-op).
fn restrict(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Builds the application state over an open store and seeds what the system owns
/// (the system roles) if this database does not have it yet: the one place a
/// process starts from, whether it serves, bootstraps or runs a test.
///
/// The [`SystemKey`] is the one right to write as the system (first-run
/// bootstrap); whoever starts the process keeps it or drops it.
pub async fn prepare(store: Arc<dyn Store>, config: Config, clock: Clock) -> Result<(AppState, SystemKey), OpenError> {
    let sealer = crate::secrets::Sealer::load(&config)?;
    let (state, system) = AppState::new(store, config, clock, sealer).await?;
    crate::seed::ensure_system_roles(&state, &system)
        .await
        .map_err(|e| OpenError::Store(StoreError::Backend(e.to_string())))?;
    Ok((state, system))
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
