//! Connecting to PostgreSQL: create the database when it is missing, then migrate.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::MigrateDatabase as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::config::redact_url_password;

/// The embedded migrations (`migrations/`), run at start and by `textback migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connections per server process. Webhooks hold one for a few milliseconds; the scheduler
/// (pipeline issue) takes a few more. Several instances share the database, so keep it modest.
const MAX_CONNECTIONS: u32 = 16;

/// Creates the database named in `url` if it does not exist yet.
pub async fn create_if_missing(url: &str) -> anyhow::Result<()> {
    let shown = redact_url_password(url);
    let exists = Postgres::database_exists(url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {shown}"))?;
    if !exists {
        match Postgres::create_database(url).await {
            Ok(()) => tracing::info!(database = %shown, "created the database"),
            // Two processes starting at once: the other one created it first.
            Err(e) if is_duplicate_database(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create the database {shown}")),
        }
    }
    Ok(())
}

fn is_duplicate_database(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42P04")
}

/// A pool for `url`. Acquiring waits at most a few seconds, so a database outage shows up as
/// quick errors (and `/readyz` 503) rather than piled-up requests.
pub async fn pool(url: &str) -> anyhow::Result<PgPool> {
    let shown = redact_url_password(url);
    let options: PgConnectOptions = url
        .parse()
        .with_context(|| format!("DATABASE_URL {shown} is not a valid PostgreSQL URL"))?;
    // No JIT: every query here is short, and compiling one (PostgreSQL's default above a cost
    // of 100,000) took longer than running it: measured on the dashboard's funnel with a year
    // of history, 70 functions compiled for a query that runs in tens of milliseconds.
    let options = options.options([("jit", "off")]);
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))
}

/// Create if missing, connect, migrate: what `serve`, `migrate` and `setup apply` do first.
pub async fn prepare(url: &str) -> anyhow::Result<PgPool> {
    create_if_missing(url).await?;
    let pool = pool(url).await?;
    MIGRATOR
        .run(&pool)
        .await
        .context("cannot apply the database migrations")?;
    Ok(pool)
}
