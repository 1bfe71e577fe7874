//! textback: turns a brokerage's unanswered calls into text conversations.
//!
//! The server: configuration, the web layer, the scheduler and the effects of events, over the
//! workspace's crates (README.md "How it is built"). Wiring: config → pool → router + workers.
//! `main` and the tests both call [`build`], so the tests run exactly what production runs.

pub mod config;
pub mod connect;
pub mod connections;
pub mod context;
#[cfg(feature = "demo")]
pub mod demo;
pub mod effects;
pub mod http;
pub mod live;
pub mod metrics;
pub mod scheduler;
pub mod spool;
pub mod telemetry;

// The crates below the server, under the names the server's modules use.
pub use textback_core::{clock, domain, setup};
pub use textback_store as store;
pub use textback_store::db;
pub use textback_twilio as twilio;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::context::AppState;

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
    let spool = spool::Spool::open(&config.spool_dir).map_err(|e| config::ConfigError {
        variable: "TEXTBACK_SPOOL_DIR",
        reason: format!(
            "`{}` cannot be opened for the spool: {e}",
            config.spool_dir.display()
        ),
    })?;
    let state = AppState::new(pool, config, token, clock, timing, spool);
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
    // The rate limiters of the lead API and the forms keep a state per key or address: forget
    // those with nothing left to count, once a minute, so the maps do not grow for ever.
    let limiters = {
        let state = app.state.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                state.api_limiter.retain_recent();
                state.form_limiter.retain_recent();
            }
        })
    };
    let result = serve(listener, app, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    let _ = scheduler.await;
    limiters.abort();
    result
}

/// How long in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's headers; also how long an idle keep-alive
/// connection stays open. Without it, a client that sends half a request line holds its
/// connection for ever, and a few tens of thousands of them would block every webhook
/// (docs/security.md "Connections"). Bodies have their own deadline (the webhook guard's 10 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (at most [`SHUTDOWN_GRACE`]).
///
/// Our own accept loop (hyper's HTTP/1 connection builder) rather than `axum::serve`, for two
/// limits it cannot set: a header read timeout, and a cap on the connections one client
/// address may hold ([`config::Config::max_connections_per_client`]; a trusted proxy, which
/// carries everyone's connections, is not capped).
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    // Store and forward: the spool's replay, and the numbers' snapshot it keeps (README.md
    // "When the database goes away").
    tokio::spawn(http::spool_replay::run(app.state.clone()));
    // The language detector's models load once (a second or so): now, off the async threads,
    // rather than inside the first inbound text's transaction.
    tokio::task::spawn_blocking(crate::domain::language::warm);
    let stopping = app.state.stopping.clone();
    let limits = Arc::new(connections::PerClient::new(
        app.state.config.max_connections_per_client,
        app.state.config.trusted_proxies.clone(),
    ));
    let router = app.router;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Some(HEADER_READ_TIMEOUT));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // E.g. too many open files: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let slot = match limits.take(peer.ip()) {
            Ok(slot) => slot,
            Err(refused) => {
                // A flood would otherwise write a line per connection: the 1st, 2nd, 4th,
                // 8th … refusal is logged, with the running total.
                if refused.is_power_of_two() {
                    tracing::warn!(
                        peer = %peer.ip(),
                        refused_so_far = refused,
                        "connection refused: this client holds too many already"
                    );
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // The peer address is the client for login throttling (docs/security.md §2).
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(request.map(axum::body::Body::new))
            },
        );
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutdown: no new connections; finishing in-flight requests");
    // Live-update streams end, so they do not hold the shutdown up.
    stopping.send_replace(true);
    tokio::select! {
        () = graceful.shutdown() => Ok(()),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
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
