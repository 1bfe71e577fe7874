//! Connecting to PostgreSQL: create the database when it is missing, then migrate.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::MigrateDatabase as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{PgPool, Postgres};

use crate::failover;

/// The embedded migrations (`migrations/`), run at start and by `textback migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Whether `e` says the database cannot be reached or cannot take writes now (a connection
/// refused or cut, the pool waiting in vain, a server shutting down or starting, a standby
/// after a failover), rather than that a statement was wrong.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01–57P03: admin shutdown, crash shutdown, cannot
            // connect now; 25006: read-only transaction (a standby); 53300: too many connections.
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "25006" | "53300"
                )
        }),
        _ => false,
    }
}

/// Connections per server process. Webhooks hold one for a few milliseconds; the scheduler
/// takes a few more. Several instances share the database, so keep it modest.
const MAX_CONNECTIONS: u32 = 16;

/// Creates the database named in `url` if it does not exist yet.
pub async fn create_if_missing(url: &str) -> anyhow::Result<()> {
    let shown = redact_url_password(url);
    let primary = primary_url(url).await?;
    let url = primary.as_str();
    let exists = Postgres::database_exists(url)
        .await
        .map_err(|e| anyhow::anyhow!("{}", advice(&e, url)))?;
    if !exists {
        match Postgres::create_database(url).await {
            Ok(()) => tracing::info!(database = %shown, "created the database"),
            // Two processes starting at once: the other one created it first.
            Err(e) if is_duplicate_database(&e) => {}
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot create the database of DATABASE_URL {shown}: {}",
                    advice(&e, url)
                ));
            }
        }
    }
    Ok(())
}

/// What went wrong reaching the server of `url`, and what to do, in one sentence for a person
/// (the URL shown with its password hidden). A dead port, a wrong role and a missing right
/// each get their own words: "PostgreSQL must be running" is not the answer to a typo in the
/// user name.
pub fn advice(e: &sqlx::Error, url: &str) -> String {
    let shown = redact_url_password(url);
    // With several hosts, the first one's (the error is worded for one host).
    let first = failover::parse(url)
        .ok()
        .and_then(|t| t.hosts.into_iter().next())
        .map(|h| h.url);
    let parsed = url::Url::parse(first.as_deref().unwrap_or(url)).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned());
    let port = parsed.as_ref().and_then(url::Url::port).unwrap_or(5432);
    let user = parsed
        .as_ref()
        .map(|u| u.username().to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "(the default user)".to_owned());
    let database = parsed
        .as_ref()
        .map(|u| u.path().trim_start_matches('/').to_owned())
        .unwrap_or_default();
    if let Some(db) = e.as_database_error() {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        let message = db.message();
        return match code.as_str() {
            "28P01" | "28000" => format!(
                "PostgreSQL at {host}:{port} refused the login of role `{user}` ({message}). Check the user and password in DATABASE_URL ({shown}), or create the role: createuser --createdb {user}"
            ),
            "42501" => format!(
                "role `{user}` may not do this at {host}:{port} ({message}). Create the database `{database}` yourself (createdb -O {user} {database}) or give the role CREATEDB, then try again"
            ),
            "3D000" => format!(
                "the database `{database}` does not exist at {host}:{port} ({message}); check DATABASE_URL ({shown})"
            ),
            "53300" => format!(
                "PostgreSQL at {host}:{port} has no free connection ({message}); raise max_connections or stop other clients"
            ),
            _ => format!(
                "PostgreSQL at {host}:{port} answered with an error: {message} (SQLSTATE {code}); DATABASE_URL is {shown}"
            ),
        };
    }
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "nothing answers at {host}:{port} (DATABASE_URL {shown}): is PostgreSQL running there? Start it (on Debian: pg_ctlcluster VERSION main start), or set DATABASE_URL to your server"
        ),
        sqlx::Error::Io(io) => format!(
            "cannot reach {host}:{port} ({io}); check the host and port of DATABASE_URL ({shown})"
        ),
        sqlx::Error::Tls(tls) => format!(
            "the TLS handshake with {host}:{port} failed ({tls}); set sslmode in DATABASE_URL to what the server offers (e.g. ?sslmode=disable for a server without TLS)"
        ),
        sqlx::Error::PoolTimedOut => format!(
            "PostgreSQL at {host}:{port} did not answer within 5 s; check that it runs and that DATABASE_URL ({shown}) points at it"
        ),
        other => {
            format!("cannot use PostgreSQL at {host}:{port} ({other}); DATABASE_URL is {shown}")
        }
    }
}

fn is_duplicate_database(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42P04")
}

/// A pool for `url`. Acquiring waits at most a few seconds, so a database outage shows up as
/// quick errors (and `/readyz` 503) rather than piled-up requests. A `url` with several hosts
/// (or `target_session_attrs=read-write`) gets a pool that follows the primary
/// ([`crate::failover`]).
pub async fn pool(url: &str) -> anyhow::Result<PgPool> {
    let shown = redact_url_password(url);
    let target = failover::parse(url).map_err(|e| anyhow::anyhow!("DATABASE_URL {shown} {e}"))?;
    if target.is_simple() {
        let options = options_for(url)
            .with_context(|| format!("DATABASE_URL {shown} is not a valid PostgreSQL URL"))?;
        return connect(options)
            .await
            .map_err(|e| anyhow::anyhow!("{}", advice(&e, url)));
    }
    let (first, _) = failover::first_answering(&target, options_for, START_WAIT, advice)
        .await
        .map_err(|e| anyhow::anyhow!("{e} (DATABASE_URL {shown})"))?;
    failover::following_pool(&target, first, options_for, pool_options())
        .map_err(|e| anyhow::anyhow!("{}", advice(&e, url)))
}

/// A pool for `url` with the sqlx error as it is (the caller words it, see [`advice`]). With
/// several hosts, a pool on the one that takes writes now, which does not follow a failover
/// (the demo's and the benchmarks' administration).
pub async fn pool_raw(url: &str) -> Result<PgPool, sqlx::Error> {
    let url = primary_url(url)
        .await
        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?;
    connect(options_for(&url)?).await
}

/// `url` itself when it names one host; otherwise the single-host URL of the first of its
/// hosts that takes writes now (for what needs one server: creating the database, the demo's
/// database beside it).
pub async fn primary_url(url: &str) -> anyhow::Result<String> {
    let shown = redact_url_password(url);
    let target = failover::parse(url).map_err(|e| anyhow::anyhow!("DATABASE_URL {shown} {e}"))?;
    if target.is_simple() {
        return Ok(url.to_owned());
    }
    // Through the maintenance database: the URL's own may not exist yet (create_if_missing).
    let maintenance = |url: &str| options_for(url).map(|o| o.database("postgres"));
    failover::first_answering(&target, maintenance, START_WAIT, advice)
        .await
        .map(|(_, url)| url)
        .map_err(|e| anyhow::anyhow!("{e} (DATABASE_URL {shown})"))
}

/// The options for a single-host `url`: no JIT, and no TLS on this machine.
fn options_for(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    // No JIT: every query here is short, and compiling one (PostgreSQL's default above a cost
    // of 100,000) took longer than running it: measured on the dashboard's funnel with a year
    // of history, 70 functions compiled for a query that runs in tens of milliseconds.
    let options = options.options([("jit", "off")]);
    Ok(
        if plain_on_loopback(url, std::env::var_os("PGSSLMODE").is_some()) {
            options.ssl_mode(PgSslMode::Disable)
        } else {
            options
        },
    )
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_WAIT)
}

async fn connect(options: PgConnectOptions) -> Result<PgPool, sqlx::Error> {
    // Direct attempts first, for up to START_WAIT (a database starting beside us gets that
    // long): the last one's error says why (a refused port, a refused role), which is what a
    // person needs to read; a pool would only say that it timed out.
    use sqlx::ConnectOptions as _;
    let started = std::time::Instant::now();
    loop {
        match tokio::time::timeout(START_WAIT, options.connect()).await {
            Ok(Ok(conn)) => {
                use sqlx::Connection as _;
                let _ = conn.close().await;
                break;
            }
            Ok(Err(e)) if started.elapsed() >= START_WAIT => return Err(e),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    Ok(pool_options().connect_lazy_with(options))
}

/// How long the server waits for its database at start.
const START_WAIT: Duration = Duration::from_secs(5);

/// How long a request or a job waits for a connection of the pool. A webhook waits as long as
/// it usefully can: Twilio gives up on it after 15 s, and right after an outage the jobs that
/// waited retry at once and hold the pool for a few seconds (a fault test on a loaded machine
/// saw a dial result answered 500 just after the database came back, with a 5 s wait).
const ACQUIRE_WAIT: Duration = Duration::from_secs(10);

/// Whether to reach the server without TLS: when it is on this machine (a loopback address or
/// `localhost`) and neither the URL (`sslmode`) nor `PGSSLMODE` chose a mode. TLS over loopback
/// protects nothing, and with sqlx 0.9.0 (which does not set `TCP_NODELAY`) its handshake waits
/// on two delayed ACKs: about 90 ms per new connection against 2 ms without it (measured here),
/// paid by whichever request or claim makes the pool open one. An explicit mode is kept as
/// given, `require` or `verify-full` for a remote server included.
fn plain_on_loopback(url: &str, env_sslmode: bool) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let mode_given = parsed
        .query_pairs()
        .any(|(k, _)| k == "sslmode" || k == "ssl-mode");
    // (In a `postgres:` URL an address is an opaque host: parsed here.)
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    loopback && !mode_given && !env_sslmode
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

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for messages and logs
/// (several hosts too: `postgres://user:***@a:5432,b:5432/db`).
pub fn redact_url_password(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    // The last `@` of the whole rest, not of the authority: a password with an unencoded `/`
    // or `?` would otherwise be shown. (An `@` further on only hides a little more.)
    match rest.rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => raw.to_owned(),
        },
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{plain_on_loopback, redact_url_password};

    #[test]
    fn the_password_is_hidden_with_one_host_or_several() {
        let cases = [
            (
                "postgres://app:secret@db:5432/textback",
                "postgres://app:***@db:5432/textback",
            ),
            (
                "postgres://app:s%40c@a:5432,b:5433/textback?target_session_attrs=read-write",
                "postgres://app:***@a:5432,b:5433/textback?target_session_attrs=read-write",
            ),
            ("postgres://app:p@ss@a,b/t", "postgres://app:***@a,b/t"),
            ("postgres://app:pa/ss?x@db/t", "postgres://app:***@db/t"),
            ("postgres://app@a,b/t", "postgres://app@a,b/t"),
            ("postgres://localhost/t", "postgres://localhost/t"),
            ("not a url", "not a url"),
        ];
        for (raw, shown) in cases {
            assert_eq!(redact_url_password(raw), shown, "{raw}");
        }
    }

    #[test]
    fn tls_is_skipped_only_for_this_machine_and_only_when_no_mode_was_chosen() {
        let cases = [
            ("postgres://postgres@localhost:5432/textback", false, true),
            ("postgres://postgres@LOCALHOST/textback", false, true),
            ("postgres://u:p@127.0.0.1/textback", false, true),
            ("postgres://u:p@127.0.0.2:5433/textback", false, true),
            ("postgres://u:p@[::1]:5432/textback", false, true),
            // a mode in the URL or the environment is kept
            (
                "postgres://u@localhost/textback?sslmode=require",
                false,
                false,
            ),
            (
                "postgres://u@127.0.0.1/textback?ssl-mode=prefer",
                false,
                false,
            ),
            ("postgres://u@localhost/textback", true, false),
            // another machine keeps sqlx's default (prefer)
            ("postgres://u:p@db.internal:5432/textback", false, false),
            ("postgres://u:p@10.0.0.5/textback", false, false),
            (
                "postgres://u:p@localhost.example.com/textback",
                false,
                false,
            ),
            ("not a url", false, false),
        ];
        for (url, env, plain) in cases {
            assert_eq!(
                plain_on_loopback(url, env),
                plain,
                "{url} (PGSSLMODE set: {env})"
            );
        }
    }
}
