//! Several hosts in `DATABASE_URL` (README.md "When the database goes away", docs/reliability.md
//! F16): libpq's multi-host syntax, `postgres://a:5432,b:5432/textback?target_session_attrs=read-write`,
//! which is what `pg_autoctl show uri` prints. sqlx connects to one host only, so this module
//! walks the hosts itself: it connects the pool to the first one that takes writes, watches
//! that one, and after a failover points the pool at the new primary. Connections opened before
//! the move are closed when next taken (the scheduler's claims and the `LISTEN` connections
//! take theirs from the pool, so they move too), and every new connection checks that its
//! server takes writes before it is used.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgConnection, PgPool};

/// A `DATABASE_URL` split into one URL per host, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// One single-host URL per host (everything else as given, `target_session_attrs` left out).
    pub hosts: Vec<Host>,
    /// `target_session_attrs=read-write` (or `primary`): only a server that takes writes will do.
    pub writable_only: bool,
}

/// One host of a [`Target`]. Its `Debug` shows `host:port` only (the URL holds the password).
#[derive(Clone, PartialEq, Eq)]
pub struct Host {
    /// `postgres://user:pw@host:port/db?…`, for sqlx.
    pub url: String,
    /// `host:port`, for messages and logs.
    pub shown: String,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("shown", &self.shown).finish()
    }
}

impl Target {
    /// Whether a plain pool will do: one host, any server.
    pub fn is_simple(&self) -> bool {
        self.hosts.len() == 1 && !self.writable_only
    }
}

/// Splits `url` by its hosts: `scheme://[userinfo@]host[:port][,host[:port]…][/db][?params]`,
/// a host being a name, an IPv4 address or `[an IPv6 address]`. Pure.
pub fn parse(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "is not a URL (postgres://host/database)".to_owned())?;
    if scheme != "postgres" && scheme != "postgresql" {
        return Err("must start with postgres://".to_owned());
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostlist) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut writable_only = None;
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "target_session_attrs" {
            writable_only = match value {
                "read-write" | "primary" => Some(true),
                "any" => Some(false),
                other => {
                    return Err(format!(
                        "has target_session_attrs={other}: textback writes, so it takes read-write, primary or any"
                    ));
                }
            };
        } else {
            kept.push(pair);
        }
    }
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    // A password with an unencoded `/`, `?` or `#` cuts the host list short: say so without
    // echoing any of it (it may be part of the password).
    let encode_hint = if tail.contains('@') {
        " (if the password holds / ? # or @, percent-encode them: / is %2F)"
    } else {
        ""
    };
    let mut hosts = Vec::new();
    if hostlist.is_empty() {
        // `postgres:///textback`: libpq's default host (the local socket), one server.
        hosts.push(Host {
            url: format!("{scheme}://{userinfo}{path}{query}"),
            shown: "the default host".to_owned(),
        });
    }
    for one in hostlist.split(',').filter(|_| !hostlist.is_empty()) {
        let (host, port) = split_host_port(one).map_err(|e| format!("{e}{encode_hint}"))?;
        let shown = format!("{host}:{}", port.unwrap_or(5432));
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        hosts.push(Host {
            url: format!("{scheme}://{userinfo}{host}{port}{path}{query}"),
            shown,
        });
    }
    // textback writes: with several hosts it always wants the one that takes writes (`any`
    // would leave it on whichever answered first, a standby perhaps, spooling for ever).
    let writable_only = hosts.len() > 1 || writable_only == Some(true);
    Ok(Target {
        hosts,
        writable_only,
    })
}

fn split_host_port(one: &str) -> Result<(&str, Option<u16>), String> {
    let bad_port = |_: &str| "has a host whose port is not a number from 1 to 65535".to_owned();
    if one.is_empty() {
        return Err("has an empty host in its list (postgres://a:5432,b:5432/database)".to_owned());
    }
    if one.starts_with('[') {
        let close = one
            .find(']')
            .ok_or_else(|| "has an IPv6 host without its closing ]".to_owned())?;
        let host = &one[..=close];
        return match &one[close + 1..] {
            "" => Ok((host, None)),
            p => match p.strip_prefix(':').map(str::parse::<u16>) {
                Some(Ok(port)) if port > 0 => Ok((host, Some(port))),
                _ => Err(bad_port(p)),
            },
        };
    }
    match one.rsplit_once(':') {
        Some(("", _)) => Err("has a port without a host".to_owned()),
        Some((host, p)) => p
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .map(|port| (host, Some(port)))
            .ok_or_else(|| bad_port(p)),
        None => Ok((one, None)),
    }
}

/// How often the pool's host is asked whether it still takes writes.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// How long one host gets to answer a connection or the check.
const PER_HOST: Duration = Duration::from_secs(2);

/// Connections opened up to this long after a move are treated as from before it: one whose
/// connect began on the old host's options may finish just after the move.
const MOVE_GRACE: Duration = Duration::from_secs(2);

/// How many times a pool in this process moved to another host. The `LISTEN` loops compare it
/// to the count when they listened, and listen again on the new primary.
static SWITCHES: AtomicU64 = AtomicU64::new(0);

/// How many times a pool in this process moved to another host (see [`SWITCHES`]).
pub fn switches() -> u64 {
    SWITCHES.load(Ordering::SeqCst)
}

/// A host of the pool, with the options it is reached with.
struct Candidate {
    shown: String,
    options: PgConnectOptions,
}

/// What the pool's hooks and the watcher share.
struct Shared {
    hosts: Vec<Candidate>,
    writable_only: bool,
    /// The index of the host the pool connects to.
    current: AtomicUsize,
    /// When the pool last moved: connections older than this are closed when next taken.
    moved_at: Mutex<Option<Instant>>,
    /// Wakes the watcher early (a new connection found a standby).
    wake: tokio::sync::Notify,
}

impl Shared {
    /// Whether a connection `age` old was opened after the last move and its grace (or there
    /// was no move).
    fn is_current(&self, age: Duration) -> bool {
        match self.moved_at.lock().map(|m| *m) {
            Ok(Some(at)) => age < at.elapsed().saturating_sub(MOVE_GRACE),
            Ok(None) => true,
            // A poisoned lock: treat the connection as old, a new one costs little.
            Err(_) => false,
        }
    }
}

/// Whether the server of `conn` takes writes, as libpq decides for `read-write`.
async fn takes_writes(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let read_only: String = sqlx::query_scalar("show transaction_read_only")
        .fetch_one(conn)
        .await?;
    Ok(read_only == "off")
}

/// The error a new connection to a standby ends in. sqlx 0.9 tries `after_connect` failures
/// again until the acquire's deadline (by then on the new primary, whose options it reads on
/// each attempt); a caller that runs out of time sees `PoolTimedOut`, which
/// [`crate::db::is_unavailable`] counts as the database away.
fn standby_error() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "a host of DATABASE_URL that does not take writes (a standby)",
    ))
}

/// Why a host was passed over, for a person.
enum Passed {
    Failed(sqlx::Error),
    ReadOnly,
    Slow,
}

/// The first host, in order, that answers (and takes writes, when that is asked), with a
/// connection to it; or why each one was passed over.
async fn find(
    hosts: &[Candidate],
    writable_only: bool,
) -> Result<(usize, PgConnection), Vec<Passed>> {
    let mut passed = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let attempt = async {
            let mut conn = host.options.connect().await.map_err(Passed::Failed)?;
            if writable_only && !takes_writes(&mut conn).await.map_err(Passed::Failed)? {
                let _ = conn.close().await;
                return Err(Passed::ReadOnly);
            }
            Ok(conn)
        };
        match tokio::time::timeout(PER_HOST, attempt).await {
            Ok(Ok(conn)) => return Ok((i, conn)),
            Ok(Err(why)) => passed.push(why),
            Err(_) => passed.push(Passed::Slow),
        }
    }
    Err(passed)
}

/// The single-host URL of the first host of `target` that answers (and takes writes, when
/// asked), trying for up to `wait`; or a sentence per host saying why not (`advice` words a
/// connection error for a host's URL).
pub async fn first_answering(
    target: &Target,
    options: impl Fn(&str) -> Result<PgConnectOptions, sqlx::Error>,
    wait: Duration,
    advice: impl Fn(&sqlx::Error, &str) -> String,
) -> Result<(usize, String), String> {
    let hosts = candidates(target, &options).map_err(|e| e.to_string())?;
    let started = Instant::now();
    loop {
        match find(&hosts, target.writable_only).await {
            Ok((i, conn)) => {
                let _ = conn.close().await;
                return Ok((i, target.hosts[i].url.clone()));
            }
            Err(passed) if started.elapsed() >= wait => {
                let why: Vec<String> = passed
                    .iter()
                    .zip(&target.hosts)
                    .map(|(p, h)| match p {
                        Passed::Failed(e) => advice(e, &h.url),
                        Passed::ReadOnly => format!(
                            "{} answers but does not take writes (a standby, or read-only)",
                            h.shown
                        ),
                        Passed::Slow => format!("{} did not answer within 2 s", h.shown),
                    })
                    .collect();
                let what = if target.writable_only {
                    "takes writes"
                } else {
                    "answers"
                };
                return Err(format!(
                    "no host of DATABASE_URL {what}: {}",
                    why.join("; ")
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn candidates(
    target: &Target,
    options: &impl Fn(&str) -> Result<PgConnectOptions, sqlx::Error>,
) -> Result<Vec<Candidate>, sqlx::Error> {
    target
        .hosts
        .iter()
        .map(|h| {
            Ok(Candidate {
                shown: h.shown.clone(),
                options: options(&h.url)?,
            })
        })
        .collect()
}

/// A pool on the first host of `target` that takes writes (found by [`first_answering`]
/// first), which follows the primary from then on: a task asks its host every 500 ms whether
/// it still takes writes and, when it does not or cannot be reached, walks the hosts in order
/// and moves the pool to the first that does.
pub fn following_pool(
    target: &Target,
    start_at: usize,
    options: impl Fn(&str) -> Result<PgConnectOptions, sqlx::Error>,
    pool_options: PgPoolOptions,
) -> Result<PgPool, sqlx::Error> {
    let hosts = candidates(target, &options)?;
    let first = hosts
        .get(start_at)
        .map(|c| c.options.clone())
        .ok_or_else(|| sqlx::Error::Configuration("DATABASE_URL names no host".into()))?;
    let shared = Arc::new(Shared {
        hosts,
        writable_only: target.writable_only,
        current: AtomicUsize::new(start_at),
        moved_at: Mutex::new(None),
        wake: tokio::sync::Notify::new(),
    });
    let on_connect = shared.clone();
    let on_acquire = shared.clone();
    let pool = pool_options
        .after_connect(move |conn, _| {
            let shared = on_connect.clone();
            Box::pin(async move {
                if shared.writable_only && !takes_writes(conn).await? {
                    shared.wake.notify_one();
                    return Err(standby_error());
                }
                Ok(())
            })
        })
        // Our own check before a connection is handed out, instead of sqlx's ping (which runs
        // first and has no time limit: an old primary gone without a reset would hold the
        // request until the acquire's deadline): a connection from before a move is closed
        // without a word to it; the others are pinged, for 2 s at most.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let current = on_acquire.is_current(meta.age);
            Box::pin(async move {
                if !current {
                    return Ok(false);
                }
                Ok(matches!(
                    tokio::time::timeout(PER_HOST, conn.ping()).await,
                    Ok(Ok(()))
                ))
            })
        })
        .connect_lazy_with(first);
    tokio::spawn(watch(pool.clone(), shared));
    Ok(pool)
}

/// The watcher of [`following_pool`]: ends when the pool is closed.
async fn watch(pool: PgPool, shared: Arc<Shared>) {
    let mut probe: Option<PgConnection> = None;
    let mut unreachable_since: Option<Instant> = None;
    let closed = pool.close_event();
    tokio::pin!(closed);
    while !pool.is_closed() {
        tokio::select! {
            () = &mut closed => break,
            () = tokio::time::sleep(WATCH_EVERY) => {}
            () = shared.wake.notified() => {}
        }
        if let Some(conn) = probe.as_mut() {
            let fine = tokio::time::timeout(PER_HOST, async {
                if shared.writable_only {
                    takes_writes(conn).await
                } else {
                    conn.ping().await.map(|()| true)
                }
            })
            .await;
            if matches!(fine, Ok(Ok(true))) {
                continue;
            }
            probe = None;
        }
        let current = shared.current.load(Ordering::SeqCst);
        match find(&shared.hosts, shared.writable_only).await {
            Ok((found, conn)) => {
                probe = Some(conn);
                unreachable_since = None;
                if found != current {
                    // The options first, then the time: a connection stamped after the time
                    // (and its grace) was opened with the new options.
                    pool.set_connect_options(shared.hosts[found].options.clone());
                    shared.current.store(found, Ordering::SeqCst);
                    if let Ok(mut at) = shared.moved_at.lock() {
                        *at = Some(Instant::now());
                    }
                    SWITCHES.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(
                        from = %shared.hosts[current].shown,
                        to = %shared.hosts[found].shown,
                        "the database's primary moved; following it"
                    );
                }
            }
            Err(_) => {
                // Said once per outage, not every half second.
                if unreachable_since.is_none() {
                    tracing::warn!(
                        hosts = shared.hosts.len(),
                        "no host of DATABASE_URL takes writes; looking again every 0.5 s"
                    );
                    unreachable_since = Some(Instant::now());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(t: &Target) -> Vec<&str> {
        t.hosts.iter().map(|h| h.url.as_str()).collect()
    }

    #[test]
    fn a_multi_host_url_splits_into_one_url_per_host() {
        let t = parse(
            "postgres://app:s%40cret@10.0.0.1:5432,db2.internal:6432/textback?target_session_attrs=read-write&sslmode=prefer",
        )
        .unwrap();
        assert!(t.writable_only);
        assert_eq!(
            urls(&t),
            [
                "postgres://app:s%40cret@10.0.0.1:5432/textback?sslmode=prefer",
                "postgres://app:s%40cret@db2.internal:6432/textback?sslmode=prefer",
            ]
        );
        assert_eq!(t.hosts[1].shown, "db2.internal:6432");
        assert!(!t.is_simple());
    }

    #[test]
    fn hosts_without_a_port_ipv6_and_the_session_attributes() {
        let cases: &[(&str, &[&str], bool)] = &[
            (
                "postgres://localhost/textback",
                &["postgres://localhost/textback"],
                false,
            ),
            (
                "postgresql://a,b:5433/t",
                &["postgresql://a/t", "postgresql://b:5433/t"],
                true,
            ),
            (
                "postgres://u@[::1]:5432,[fd00::2]/t?target_session_attrs=primary",
                &["postgres://u@[::1]:5432/t", "postgres://u@[fd00::2]/t"],
                true,
            ),
            // Several hosts always want the one that takes writes, `any` or not.
            (
                "postgres://h1,h2?target_session_attrs=any",
                &["postgres://h1", "postgres://h2"],
                true,
            ),
            // The default host (a local socket), as before.
            ("postgres:///textback", &["postgres:///textback"], false),
            (
                "postgres:///textback?target_session_attrs=read-write",
                &["postgres:///textback"],
                true,
            ),
            // A password with an @ (the last one ends the user part).
            (
                "postgres://u:p@ss@h1:1,h2:2/t",
                &["postgres://u:p@ss@h1:1/t", "postgres://u:p@ss@h2:2/t"],
                true,
            ),
        ];
        for (url, want, writable) in cases {
            let t = parse(url).unwrap();
            assert_eq!(&urls(&t), want, "{url}");
            assert_eq!(t.writable_only, *writable, "{url}");
        }
        assert!(parse("postgres://localhost/textback").unwrap().is_simple());
        assert!(
            !parse("postgres://localhost/t?target_session_attrs=read-write")
                .unwrap()
                .is_simple()
        );
    }

    #[test]
    fn a_bad_url_says_what_is_wrong() {
        let cases = [
            ("localhost/textback", "not a URL"),
            ("mysql://h/t", "postgres://"),
            ("postgres://h1,,h2/t", "empty host"),
            ("postgres://h1:54x2/t", "not a number"),
            ("postgres://h1:99999/t", "not a number"),
            ("postgres://h1:0/t", "not a number"),
            ("postgres://[::1/t", "closing ]"),
            ("postgres://:5432/t", "without a host"),
            (
                "postgres://h1,h2/t?target_session_attrs=read-only",
                "read-write, primary or any",
            ),
            (
                "postgres://h1/t?target_session_attrs=standby",
                "read-write, primary or any",
            ),
        ];
        for (url, says) in cases {
            let e = parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
        // A password with an unencoded `/` is never echoed, and the way out is said.
        let e = parse("postgres://app:s3cr/et@db/t").unwrap_err();
        assert!(!e.contains("s3cr") && !e.contains("et@"), "{e}");
        assert!(e.contains("percent-encode"), "{e}");
    }

    #[test]
    fn connections_from_before_a_move_are_not_current() {
        let shared = Shared {
            hosts: Vec::new(),
            writable_only: true,
            current: AtomicUsize::new(0),
            moved_at: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
        };
        assert!(shared.is_current(Duration::from_secs(3600)));
        *shared.moved_at.lock().unwrap() = Some(Instant::now() - Duration::from_secs(10));
        assert!(shared.is_current(Duration::from_secs(1)));
        // Opened within the grace after the move, or before it: not current.
        assert!(!shared.is_current(Duration::from_secs(9)));
        assert!(!shared.is_current(Duration::from_secs(11)));
        *shared.moved_at.lock().unwrap() = Some(Instant::now());
        assert!(!shared.is_current(Duration::ZERO));
    }
}
