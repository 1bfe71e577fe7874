//! textback: turns a brokerage's unanswered calls into text conversations.
//!
//! Wiring: config → pool → router (+ workers, with the pipeline issue). `main` and the tests
//! both call [`build`], so the tests run exactly what production runs.

pub mod bench;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod fake_twilio;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod scheduler;
pub mod setup;
pub mod store;
pub mod telemetry;
pub mod twilio;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::AppState;

/// The assembled server: its router and shared state.
pub struct App {
    pub router: Router,
    pub state: AppState,
}

/// Builds the app on an already prepared (created and migrated) pool, with the production
/// timing. Fails when the config has no `TWILIO_AUTH_TOKEN`: without it not one webhook could
/// be validated.
pub fn build(config: Config, pool: PgPool, clock: SharedClock) -> Result<App, config::ConfigError> {
    build_with(config, pool, clock, scheduler::Timing::production())
}

/// [`build`] with other timing knobs (tests, the demo).
pub fn build_with(
    config: Config,
    pool: PgPool,
    clock: SharedClock,
    timing: scheduler::Timing,
) -> Result<App, config::ConfigError> {
    let token = config.require_auth_token()?.clone();
    let state = AppState::new(pool, config, token, clock, timing);
    Ok(App {
        router: http::router(state.clone()),
        state,
    })
}

/// The server and the scheduler together, until `shutdown` resolves: what `textback serve`
/// runs. The scheduler stops taking jobs at the signal and lets running ones finish.
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(scheduler::Scheduler::new(app.state.clone()).run(stop_rx));
    let result = serve(listener, app, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    let _ = scheduler.await;
    result
}

/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = app.state.stopping.clone();
    // The peer address is the client for login throttling (security.md §2).
    let service = app
        .router
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        // Live-update streams end, so they do not hold the shutdown up.
        stopping.send_replace(true);
        let _ = stop_tx.send(true);
    });
    let mut stop_rx_deadline = stop_rx.clone();
    tokio::select! {
        result = server => result,
        () = async move {
            let _ = stop_rx_deadline.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("requests still running {}s after the shutdown signal; stopping anyway", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
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
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
