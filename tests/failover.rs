//! Issue 21 §3 (README.md "When the database goes away", docs/reliability.md F16): a real
//! failover. pg_auto_failover (Debian's `postgresql-15-auto-failover` and `pg-auto-failover-cli`,
//! which `.ci/run` installs) runs a monitor, a primary and a synchronous standby on this
//! machine, on ports and data directories of their own, made here and removed after. Two
//! `textback serve` processes get the formation's multi-host URL, as `pg_autoctl show uri`
//! prints it. Five times, during a burst of missed calls, replies and STOPs, `pg_autoctl
//! perform failover`; then docs/reliability.md's I1–I5 over everything, and the downtime of
//! each failover as the webhooks saw it. Last, the same formation shows what synchronous
//! replication is for: a commit that returned on the primary is on the standby, and without
//! it a committed `sending` row can be gone after a failover.

#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

#[path = "support/invariants.rs"]
#[allow(dead_code)]
mod invariants;

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use textback::clock::OffsetClock;
use textback_fake_twilio::{DialResult, FakeTwilio, FakeTwilioConfig, Player, new_call_sid};

use helpers::*;
use servers::{Server, free_port, wait_all_terminal};

const MAIN_ST: &str = "+15555550100";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const FAILOVERS: usize = 5;
const CALLERS_PER_ROUND: usize = 40;

/// The fault tests' brokerage; replies escalate after the shortest wait (1 minute), so the
/// test sees them end.
fn setup() -> String {
    servers::setup().replace("escalate_after = \"10m\"", "escalate_after = \"1m\"")
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One node of the formation: its data directory, port and `pg_autoctl … --run` process group.
struct Node {
    pgdata: PathBuf,
    port: u16,
    run: Option<Child>,
}

/// A pg_auto_failover formation of its own: a monitor and two data nodes.
struct Formation {
    dir: PathBuf,
    monitor: Node,
    nodes: Vec<Node>,
}

impl Formation {
    /// A command as the user PostgreSQL runs as (`postgres` when the test runs as root),
    /// with pg_autoctl's configuration kept under the formation's directory.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .env(
                "PATH",
                format!("{PG_BIN}:{}", std::env::var("PATH").unwrap_or_default()),
            )
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_DATA_HOME", self.dir.join("data"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a pg_autoctl command to its end; its output, or a failure with what it said.
    fn autoctl(&self, args: &[&str]) -> String {
        let out = self
            .command("pg_autoctl", args)
            .output()
            .expect("pg_autoctl runs (Debian's pg-auto-failover-cli; .ci/run installs it)");
        assert!(
            out.status.success(),
            "pg_autoctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn try_autoctl(&self, args: &[&str]) -> Option<String> {
        let out = self.command("pg_autoctl", args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `pg_autoctl create … --run` for `node`, in a process group of its own, logging beside it.
    fn run(&self, node: &Node, create: &[&str]) -> Child {
        let log = std::fs::File::create(node.pgdata.with_extension("log")).unwrap();
        let port = node.port.to_string();
        let pgdata = node.pgdata.display().to_string();
        let mut args = vec!["create"];
        args.extend_from_slice(create);
        args.extend_from_slice(&[
            "--pgdata",
            &pgdata,
            "--pgport",
            &port,
            "--pgctl",
            "/usr/lib/postgresql/15/bin/pg_ctl",
            "--hostname",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
            "--run",
        ]);
        self.command("pg_autoctl", &args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("pg_autoctl starts")
    }

    /// Each node's (host:port, reported state, assigned state), from the monitor.
    fn states(&self) -> Vec<(u16, String, String)> {
        let pgdata = self.monitor.pgdata.display().to_string();
        let Some(text) = self.try_autoctl(&["show", "state", "--pgdata", &pgdata]) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| {
                let cols: Vec<&str> = line.split('|').map(str::trim).collect();
                let port = cols.get(2)?.rsplit_once(':')?.1.parse().ok()?;
                Some((port, cols.get(5)?.to_string(), cols.get(6)?.to_string()))
            })
            .collect()
    }

    /// Waits until one node is primary and the other secondary, both as assigned; the primary's port.
    async fn wait_settled(&self, within: Duration) -> u16 {
        let deadline = Instant::now() + within;
        loop {
            let states = self.states();
            let settled = |s: &str| states.iter().filter(|(_, r, a)| r == s && a == s).count();
            if states.len() == 2 && settled("primary") == 1 && settled("secondary") == 1 {
                return states.iter().find(|(_, r, _)| r == "primary").unwrap().0;
            }
            assert!(
                Instant::now() < deadline,
                "the formation did not settle: {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn start() -> Formation {
        remove_stale_formations();
        // Under /tmp: pg_autoctl keeps its state at a path that repeats the data directory's,
        // and failed to make it below the build directory.
        let dir = std::env::temp_dir().join(format!(
            "tb-failover-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        for sub in ["config", "data", "run"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let node = |name: &str| Node {
            pgdata: dir.join(name),
            port: free_port(),
            run: None,
        };
        let mut f = Formation {
            monitor: node("monitor"),
            nodes: vec![node("node1"), node("node2")],
            dir,
        };
        f.monitor.run = Some(f.run(&f.monitor, &["monitor"]));
        let monitor_pgdata = f.monitor.pgdata.display().to_string();
        let deadline = Instant::now() + Duration::from_secs(90);
        let monitor_uri = loop {
            if let Some(uri) = f.try_autoctl(&[
                "show",
                "uri",
                "--pgdata",
                &monitor_pgdata,
                "--formation",
                "monitor",
            ]) && uri.starts_with("postgres")
            {
                break uri;
            }
            assert!(Instant::now() < deadline, "the monitor did not start");
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        // The first node becomes the primary, then the second its standby.
        for i in 0..2 {
            let create = [
                "postgres",
                "--monitor",
                monitor_uri.as_str(),
                "--dbname",
                "textback",
            ];
            let child = f.run(&f.nodes[i], &create);
            f.nodes[i].run = Some(child);
            let deadline = Instant::now() + Duration::from_secs(120);
            while f.states().len() < i + 1
                || f.states().iter().any(|(_, r, a)| {
                    r != a || !["single", "primary", "secondary"].contains(&r.as_str())
                })
            {
                assert!(
                    Instant::now() < deadline,
                    "node {} did not join: {:?}",
                    i + 1,
                    f.states()
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        f.wait_settled(Duration::from_secs(120)).await;
        f
    }

    /// The formation's URL for applications: every host, `target_session_attrs=read-write`.
    fn uri(&self) -> String {
        let pgdata = self.monitor.pgdata.display().to_string();
        self.autoctl(&["show", "uri", "--pgdata", &pgdata, "--formation", "default"])
    }

    fn node_at(&self, port: u16) -> &Node {
        self.nodes.iter().find(|n| n.port == port).unwrap()
    }
}

/// Formations of test runs that were killed before they could clean up (a timeout, Ctrl-C):
/// their processes are ended and their directories removed. A directory names its test's pid.
fn remove_stale_formations() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("tb-failover-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // pg_autoctl's and PostgreSQL's command lines name their data directory.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(entry.path())
            .status();
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Kills a process group (a node's pg_autoctl and the PostgreSQL it runs).
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

impl Drop for Formation {
    fn drop(&mut self) {
        for node in self
            .nodes
            .iter_mut()
            .chain(std::iter::once(&mut self.monitor))
        {
            if let Some(child) = node.run.as_mut() {
                kill_group(child);
            }
        }
        // Postmasters that outlived their pg_autoctl (they are in the group, but to be sure).
        for node in self.nodes.iter().chain(std::iter::once(&self.monitor)) {
            let pgdata = node.pgdata.display().to_string();
            let _ = self
                .command(
                    &format!("{PG_BIN}/pg_ctl"),
                    &["stop", "-m", "immediate", "-D", &pgdata],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if std::env::var_os("KEEP_FORMATION").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `textback serve` with `DATABASE_URL` the formation's multi-host URL.
async fn serve(db_url: &str, fake: &FakeTwilio, spool: &Path) -> Server {
    let port = free_port();
    let cmd = servers::serve_command(db_url, port, spool, fake, test_start());
    servers::start(cmd, port, Duration::from_secs(60)).await
}

/// A counter of the server's `/metrics`.
async fn metric(base: &str, name: &str) -> u64 {
    servers::metric(base, name)
        .await
        .unwrap_or_else(|| panic!("{base} did not answer /metrics"))
}

/// Webhooks the server at `base` spooled, all endpoints (`textback_webhooks_total{…,
/// outcome="spooled"}`).
async fn spooled_total(base: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("/metrics")
        .text()
        .await
        .expect("its text");
    text.lines()
        .filter(|l| l.starts_with("textback_webhooks_total{") && l.contains("outcome=\"spooled\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

/// One webhook as it went: when it was posted and answered, and whether it was spooled.
#[derive(Clone)]
struct Sent {
    path: &'static str,
    params: Vec<(String, String)>,
    status: u16,
    posted: Instant,
    answered: Instant,
    spooled: bool,
}

async fn post(
    player: &Player,
    log: &Mutex<Vec<Sent>>,
    path: &'static str,
    params: Vec<(String, String)>,
) {
    let posted = Instant::now();
    let r = player.post_signed(path, &params).await.expect("an answer");
    let sent = Sent {
        path,
        params,
        status: r.status,
        posted,
        answered: Instant::now(),
        spooled: r.headers.contains_key("x-textback-spooled"),
    };
    assert!(r.status < 500, "{path} answered {}: {}", r.status, r.body);
    log.lock().unwrap().push(sent);
}

fn lead(round: usize, i: usize) -> String {
    format!("+1617556{round}{i:03}")
}

/// A caller's story: STOP first (every 4th), a missed call, a reply after it (every 6th, from 1).
async fn caller(player: Player, log: Arc<Mutex<Vec<Sent>>>, round: usize, i: usize) {
    let from = lead(round, i);
    let sms = |body: &str| {
        player.inbound_sms_params(
            &textback_fake_twilio::new_message_sid(),
            &from,
            MAIN_ST,
            body,
            0,
            None,
        )
    };
    if i.is_multiple_of(4) {
        post(&player, &log, "/twilio/sms", sms("STOP")).await;
    }
    let sid = new_call_sid();
    post(
        &player,
        &log,
        "/twilio/voice",
        player.incoming_call_params(&sid, &from, MAIN_ST),
    )
    .await;
    post(
        &player,
        &log,
        "/twilio/voice/dial",
        player.dial_result_params(&sid, &from, MAIN_ST, &DialResult::no_answer()),
    )
    .await;
    if i % 6 == 1 {
        post(&player, &log, "/twilio/sms", sms("Is it still available?")).await;
    }
}

/// Waits until neither server's spool holds anything.
async fn wait_spools_empty(servers: &[Server], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut left = 0;
        for s in servers {
            left += metric(&s.base(), "textback_spool_records").await;
        }
        if left == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{left} webhooks still spooled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_failovers_during_bursts_lose_nothing_and_send_nothing_twice() {
    let formation = Formation::start().await;
    // As printed, with the role the nodes were made by (printed without: libpq's default is
    // the user running the client, which pg_autoctl expects to be `postgres`).
    let url = formation
        .uri()
        .replacen("postgres://", "postgres://postgres@", 1);
    assert!(
        url.contains(',') && url.contains("target_session_attrs=read-write"),
        "{url}"
    );
    // The test's own pool follows the primary too (the same code as the servers').
    let pool = textback::db::prepare(&url).await.expect("the formation");
    apply_setup(&pool, &setup()).await;
    let fake = FakeTwilio::start(FakeTwilioConfig::with_fixture_credentials(Arc::new(
        OffsetClock::starting_at(test_start()),
    )))
    .await
    .expect("fake");
    let spools = formation.dir.join("spools");
    let servers = vec![
        serve(&url, &fake, &spools.join("a")).await,
        serve(&url, &fake, &spools.join("b")).await,
    ];
    let players: Vec<Player> = servers.iter().map(|s| fake.player(&s.base())).collect();
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();

    let mut downtimes = Vec::new();
    let mut met = 0;
    let mut primary = formation.wait_settled(Duration::from_secs(30)).await;
    for round in 0..FAILOVERS {
        let mut moves_before = Vec::new();
        for s in &servers {
            moves_before.push(metric(&s.base(), "textback_db_primary_moves_total").await);
        }
        let round_start = Instant::now();
        let before = log.lock().unwrap().len();
        // The burst: a caller every 200 ms, each on one server (its webhooks in order).
        let mut callers = Vec::new();
        let mut failover = None;
        for i in 0..CALLERS_PER_ROUND {
            tokio::time::sleep_until((round_start + Duration::from_millis(200 * i as u64)).into())
                .await;
            if i == 12 {
                // 2.4 s into the burst, the failover, while callers keep coming.
                let pgdata = formation.monitor.pgdata.display().to_string();
                let mut cmd = formation.command(
                    "pg_autoctl",
                    &["perform", "failover", "--pgdata", &pgdata, "--wait", "60"],
                );
                failover = Some(tokio::task::spawn_blocking(move || cmd.output()));
            }
            callers.push(tokio::spawn(caller(
                players[i % 2].clone(),
                log.clone(),
                round,
                i,
            )));
        }
        for c in callers {
            c.await.expect("a caller");
        }
        let done = failover.expect("the failover").await.unwrap().unwrap();
        assert!(
            done.status.success(),
            "pg_autoctl perform failover: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        let new_primary = formation.wait_settled(Duration::from_secs(60)).await;
        assert_ne!(new_primary, primary, "round {round}: the primary moved");
        primary = new_primary;
        wait_spools_empty(&servers, Duration::from_secs(120)).await;
        let spools_empty = Instant::now();
        // Each server followed this failover by itself.
        for (s, before) in servers.iter().zip(&moves_before) {
            let now = metric(&s.base(), "textback_db_primary_moves_total").await;
            assert!(
                now > *before,
                "round {round}: {} did not follow the primary",
                s.base()
            );
        }
        // Downtime as the webhooks saw it: from the first one that could not be applied at
        // once (spooled, or held over a second waiting for the database) to the first one
        // applied on the new primary (answered live after it; when every later one joined
        // the spool, the spool's emptying, found within 100 ms).
        let sent = log.lock().unwrap()[before..].to_vec();
        let down = sent
            .iter()
            .filter(|s| s.spooled || s.answered - s.posted > Duration::from_secs(1))
            .map(|s| s.posted)
            .min();
        if let Some(down) = down {
            let up = sent
                .iter()
                .filter(|s| !s.spooled && s.posted >= down)
                .map(|s| s.answered)
                .min()
                .unwrap_or(spools_empty);
            downtimes.push((up - down).as_secs_f64());
            met += 1;
        } else {
            // No webhook met the failover: it cost them nothing.
            downtimes.push(0.0);
        }
    }
    // The failovers met the webhooks (else this test would prove little about them).
    assert!(met > 0, "no failover delayed or spooled a webhook");

    // Everything applied, every text decided; then the invariants.
    wait_all_terminal(&pool, Duration::from_secs(180)).await;
    let sent = log.lock().unwrap().clone();
    let spooled = sent.iter().filter(|s| s.spooled).count();
    // Every webhook a server spooled was applied: ours, and the fake carrier's status
    // callbacks that met a failover too (not in our log).
    let (mut replayed, mut spooled_there) = (0, 0);
    for s in &servers {
        replayed += metric(
            &s.base(),
            "textback_spool_replayed_total{outcome=\"applied\"}",
        )
        .await;
        spooled_there += spooled_total(&s.base()).await;
    }
    assert_eq!(replayed, spooled_there, "every spooled webhook was applied");
    assert!(
        spooled as u64 <= spooled_there,
        "{spooled} answered spooled, {spooled_there} counted"
    );
    let hooks: Vec<(&'static str, invariants::Params, Option<u16>)> = sent
        .iter()
        .map(|s| (s.path, s.params.clone(), Some(s.status)))
        .collect();
    let bad = invariants::check(&pool, &fake, &hooks, &[]).await;
    assert!(bad.is_empty(), "reliability.md I1–I5:\n{}", bad.join("\n"));
    let calls: i64 = sqlx::query_scalar("select count(*) from call")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        calls as usize,
        FAILOVERS * CALLERS_PER_ROUND,
        "a row per call"
    );
    let texts = fake.messages();
    for round in 0..FAILOVERS {
        for i in 0..CALLERS_PER_ROUND {
            let to = lead(round, i);
            let mine: Vec<_> = texts.iter().filter(|m| m.to == to).collect();
            if i.is_multiple_of(4) {
                // No text-back; at most the STOP's confirmation (it names START), which
                // Twilio sends itself for a Messaging Service.
                assert!(
                    mine.len() <= 1 && mine.iter().all(|m| m.body.contains("START")),
                    "{to} said STOP before calling: {mine:?}"
                );
            } else if i % 6 == 1 {
                assert!(mine.len() <= 1, "{to}: {mine:?}");
            } else {
                assert_eq!(mine.len(), 1, "one text-back to {to}: {mine:?}");
            }
        }
    }
    let mut sorted = downtimes.clone();
    sorted.sort_by(f64::total_cmp);
    let total_twice = texts.len()
        - texts
            .iter()
            .map(|m| (&m.to, &m.body))
            .collect::<std::collections::HashSet<_>>()
            .len();
    println!(
        "failover: {FAILOVERS} failovers, {} webhooks ({spooled} spooled, {replayed} replayed), downtime p50 {:.2} s, max {:.2} s ({:?}), texts twice: {total_twice}",
        sent.len(),
        percentile(&sorted, 0.5),
        sorted[sorted.len() - 1],
        downtimes
    );
    assert_eq!(total_twice, 0);

    synchronous_replication_is_what_keeps_a_sending_row(&formation, primary).await;
}

/// The standby's WAL receiver, stopped (SIGSTOP) or let go (SIGCONT).
async fn wal_receiver(standby: &PgPool) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pid: Option<i32> = sqlx::query_scalar("select pid from pg_stat_wal_receiver")
            .fetch_optional(standby)
            .await
            .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        assert!(Instant::now() < deadline, "no WAL receiver on the standby");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(pid: i32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

async fn rows_with(pool: &PgPool, id: i32) -> i64 {
    sqlx::query_scalar("select count(*) from sync_probe where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// docs/reliability.md F16: with the standby's WAL receiver stopped, a commit on the primary
/// does not return while the standby lacks it (synchronous replication, pg_auto_failover's
/// default); without it the commit returns, and after the primary is lost and the standby
/// promoted, the committed row is gone: a `sending` record lost that way is a text sent twice.
async fn synchronous_replication_is_what_keeps_a_sending_row(f: &Formation, primary_port: u16) {
    let standby_port = f
        .nodes
        .iter()
        .find(|n| n.port != primary_port)
        .unwrap()
        .port;
    let at = |port: u16| format!("postgres://postgres@127.0.0.1:{port}/textback");
    let primary = textback::db::pool(&at(primary_port)).await.unwrap();
    let standby = textback::db::pool(&at(standby_port)).await.unwrap();
    sqlx::query("create table sync_probe (id int primary key, send_state text not null)")
        .execute(&primary)
        .await
        .unwrap();
    let standby_names: String = sqlx::query_scalar("show synchronous_standby_names")
        .fetch_one(&primary)
        .await
        .unwrap();
    assert!(standby_names.starts_with("ANY 1"), "{standby_names}");

    // 1. Synchronous: the commit waits for the standby.
    let receiver = wal_receiver(&standby).await;
    signal(receiver, "-STOP");
    let insert = |id: i32| {
        let primary = primary.clone();
        tokio::spawn(async move {
            sqlx::query("insert into sync_probe values ($1, 'sending')")
                .bind(id)
                .execute(&primary)
                .await
                .map(|_| ())
        })
    };
    let mut waiting = insert(1);
    let early = tokio::time::timeout(Duration::from_secs(3), &mut waiting).await;
    assert!(
        early.is_err(),
        "with synchronous replication the commit waits for the standby"
    );
    assert_eq!(rows_with(&standby, 1).await, 0);
    signal(receiver, "-CONT");
    waiting.await.unwrap().unwrap();
    assert_eq!(
        rows_with(&standby, 1).await,
        1,
        "what the primary committed is on the standby"
    );

    // 2. Asynchronous: the standby out of the quorum.
    let standby_pgdata = f.node_at(standby_port).pgdata.display().to_string();
    f.autoctl(&[
        "set",
        "node",
        "replication-quorum",
        "--pgdata",
        &standby_pgdata,
        "false",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names: String = sqlx::query_scalar("show synchronous_standby_names")
            .fetch_one(&primary)
            .await
            .unwrap();
        if names.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still synchronous: {names}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let receiver = wal_receiver(&standby).await;
    signal(receiver, "-STOP");
    tokio::time::timeout(Duration::from_secs(30), insert(2))
        .await
        .expect("without synchronous replication the commit returns at once")
        .unwrap()
        .unwrap();
    assert_eq!(rows_with(&primary, 2).await, 1, "committed on the primary");
    assert_eq!(rows_with(&standby, 2).await, 0, "not on the standby");
    // The primary is lost; the standby, promoted, never sees the row. (The receiver is killed,
    // not let go: what the old primary had already put in its socket would still arrive.)
    primary.close().await;
    // Its pg_autoctl first, or it would start it again; then its PostgreSQL, surely. The
    // standby's pg_autoctl goes too, so that nothing but this test acts on the standby.
    if let Some(run) = f.node_at(primary_port).run.as_ref() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", run.id())])
            .status();
    }
    let old_pgdata = f.node_at(primary_port).pgdata.display().to_string();
    let _ = f
        .command(
            &format!("{PG_BIN}/pg_ctl"),
            &["stop", "-m", "immediate", "-D", &old_pgdata],
        )
        .output();
    let _ = Command::new("pkill")
        .args(["-KILL", "-f", &format!("pg_autoctl.*{standby_pgdata}")])
        .status();
    signal(receiver, "-KILL");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = f
            .command(
                &format!("{PG_BIN}/pg_ctl"),
                &["promote", "-D", &standby_pgdata],
            )
            .output();
        let promoted = sqlx::query_scalar::<_, bool>("select not pg_is_in_recovery()")
            .fetch_one(&standby)
            .await
            .unwrap_or(false);
        if promoted {
            break;
        }
        assert!(Instant::now() < deadline, "the standby was not promoted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        rows_with(&standby, 2).await,
        0,
        "without synchronous replication a committed row is gone after the failover"
    );
    assert_eq!(rows_with(&standby, 1).await, 1);
    println!(
        "synchronous replication: a commit waited for the stopped standby; without it, a committed row was lost in the failover"
    );
}
