//! The `textback serve` processes of the fault and failover tests (docs/testing.md): started
//! with the test's database, carrier and clock, waited for, killed; the brokerage they serve;
//! the waits that end a scenario.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use textback_fake_twilio::FakeTwilio;

use crate::helpers::{ACCOUNT_SID, DEMO, TOKEN};

/// A `textback serve` child process and its port.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no cleanup, no flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to end on its own (a crash point aborts it).
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("its address")
        .port()
}

/// `textback serve` (the `test-hooks` build) on `port` with its database at `db_url`, its spool
/// in `spool`, the fake carrier `fake`, short timing, and its clock reading `clock` now.
pub fn serve_command(
    db_url: &str,
    port: u16,
    spool: &Path,
    fake: &FakeTwilio,
    clock: chrono::DateTime<chrono::Utc>,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_textback"));
    cmd.arg("serve")
        .env("DATABASE_URL", db_url)
        .env("TEXTBACK_BIND", format!("127.0.0.1:{port}"))
        .env("TEXTBACK_SPOOL_DIR", spool)
        .env("TEXTBACK_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_API_BASE", fake.base_url())
        .env("TWILIO_LOOKUP_BASE", fake.base_url())
        .env("TEXTBACK_TEST_TIMING", "fast")
        .env("TEXTBACK_TEST_CLOCK", clock.to_rfc3339())
        .env(
            "RUST_LOG",
            std::env::var("TEST_LOG").map(|_| "info").unwrap_or("error"),
        )
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    cmd
}

/// Starts `cmd` and waits until its `/readyz` answers 200, for up to `within`.
pub async fn start(mut cmd: Command, port: u16, within: Duration) -> Server {
    let child = cmd.spawn().expect("the server starts");
    let server = Server { child, port };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    while !http
        .get(format!("{}/readyz", server.base()))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

/// A value of the server's `/metrics` (the line starting with `name `), `None` when the server
/// does not answer.
pub async fn metric(base: &str, name: &str) -> Option<u64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not in /metrics"));
    value.trim().parse().ok()
}

/// The demo brokerage with no hold (texts go at once), its follow-up a day later, and room
/// for many recipients a day (tests that send many texts set the limits they need).
pub fn setup_with_follow_ups() -> String {
    DEMO.replace("delay_secs = 20", "delay_secs = 0").replace(
        "[compliance]\n",
        "[compliance]\ndaily_unique_recipients = 1000\ncap_24h = 3\n",
    )
}

/// `setup_with_follow_ups` without follow-ups: most scenarios are about one text per caller.
pub fn setup() -> String {
    let demo = setup_with_follow_ups();
    match demo.find("[[follow_ups]]") {
        Some(start) => {
            let end = demo[start..].find("\n\n").map_or(demo.len(), |e| start + e);
            format!("{}{}", &demo[..start], &demo[end..])
        }
        None => demo,
    }
}

/// Waits until every job is terminal (docs/reliability.md I2) and stays so for a second (a
/// send that timed out while the database was away may still queue its reconciliation just
/// after the last job ended), or fails after `within`.
pub async fn wait_all_terminal(pool: &PgPool, within: Duration) {
    let deadline = Instant::now() + within;
    let mut quiet_since: Option<(Instant, i64)> = None;
    loop {
        let (pending, jobs): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where state in ('scheduled', 'running', 'reconciling')), count(*) from job",
        )
        .fetch_one(pool)
        .await
        .expect("jobs");
        if pending == 0 {
            match quiet_since {
                Some((since, n)) if n == jobs && since.elapsed() >= Duration::from_secs(1) => {
                    return;
                }
                Some((_, n)) if n == jobs => {}
                _ => quiet_since = Some((Instant::now(), jobs)),
            }
            assert!(Instant::now() < deadline, "jobs kept appearing");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        quiet_since = None;
        let states: Vec<(String, String)> = sqlx::query_as(
            "select kind, state from job where state in ('scheduled', 'running', 'reconciling')",
        )
        .fetch_all(pool)
        .await
        .expect("pending jobs");
        assert!(Instant::now() < deadline, "jobs still pending: {states:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
