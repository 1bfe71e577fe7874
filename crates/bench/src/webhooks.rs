//! Webhook latency of the release binary: `textback-bench webhooks`.
//!
//! Starts `textback serve` (the `textback` binary beside this one, or `TEXTBACK_BIN`) on a fresh database with the demo
//! brokerage, then sends signed Twilio requests over loopback and reports latency percentiles:
//!
//! * `/twilio/voice` (incoming call: contact upsert, call insert, ring list, `<Dial>` TwiML);
//! * `/twilio/voice/dial` (the dial result: call lock, classification, update), the endpoint the
//!   missed-call pipeline hangs off;
//!
//! each under a closed loop (C clients back to back) and an open loop at a fixed rate (requests
//! start on schedule whether or not earlier ones finished, so queueing shows up in the figures).
//! Figures are medians and tails from one run on a shared machine: compare runs, not absolutes.
//!
//! Environment: `BENCH_CALLS` (2000), `BENCH_CONCURRENCY` (4), `BENCH_RATE` (200 req/s),
//! `TEXTBACK_TEST_PG` (the PostgreSQL server, default postgres://postgres@localhost:5432).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use textback_twilio::{form, signature};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    base: String,
    db_name: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-qc",
                &format!("drop database if exists \"{}\" with (force)", self.db_name),
            ])
            .status();
    }
}

fn pg() -> String {
    std::env::var("TEXTBACK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@localhost:5432".to_owned())
}

async fn start() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let db_name = format!("tbbench_{}", std::process::id());
    let url = format!("{}/{db_name}", pg());
    let bin = server_binary();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.toml");
    let applied = Command::new(&bin)
        .args(["setup", "apply", demo])
        .env("DATABASE_URL", &url)
        .stdout(Stdio::null())
        .status()
        .expect("setup apply");
    assert!(applied.success(), "setup apply failed");
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(&bin)
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("TEXTBACK_BIND", format!("127.0.0.1:{port}"))
        .env("TEXTBACK_PUBLIC_URL", &base)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        // Nothing the bench schedules may reach the real carrier, whatever the shell exports.
        .env_remove("TWILIO_ACCOUNT_SID")
        .env("TWILIO_API_BASE", "http://127.0.0.1:9")
        .env("TWILIO_LOOKUP_BASE", "http://127.0.0.1:9")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server {
        child,
        base,
        db_name,
    }
}

fn fixture(name: &str) -> Vec<(String, String)> {
    let body = std::fs::read(format!(
        "{}/../../fixtures/twilio/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    form::decode(&body).expect("fixture decodes")
}

fn with(mut p: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    if let Some(kv) = p.iter_mut().find(|(k, _)| k == key) {
        kv.1 = value.to_owned();
    }
    p
}

/// A prepared request: URL, signature and body, so that signing is not timed.
struct Prepared {
    url: String,
    signature: String,
    body: String,
}

fn prepare(base: &str, path: &str, params: &[(String, String)]) -> Prepared {
    let url = format!("{base}{path}");
    Prepared {
        signature: signature::compute(TOKEN.as_bytes(), &url, params),
        body: form::encode(params),
        url,
    }
}

async fn send(http: &reqwest::Client, p: &Prepared) -> Duration {
    let start = Instant::now();
    let r = http
        .post(&p.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", &p.signature)
        .body(p.body.clone())
        .send()
        .await
        .expect("request");
    let status = r.status();
    let _ = r.bytes().await;
    assert!(status.is_success(), "{} answered {status}", p.url);
    start.elapsed()
}

fn call_sid(i: usize, salt: u32) -> String {
    format!("CA{salt:08x}{i:024x}")
}

fn prepared_calls(base: &str, n: usize, salt: u32) -> (Vec<Prepared>, Vec<Prepared>) {
    let voice = fixture("voice-incoming.txt");
    let dial = fixture("voice-dial-action-no-answer.txt");
    let mut incoming = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    for i in 0..n {
        let sid = call_sid(i, salt);
        // Each call from its own caller, as a busy day looks.
        let from = format!("+1617{:07}", 5_550_000 + i % 1_000_000);
        let v = with(
            with(with(voice.clone(), "CallSid", &sid), "From", &from),
            "Caller",
            &from,
        );
        let d = with(
            with(with(dial.clone(), "CallSid", &sid), "From", &from),
            "Caller",
            &from,
        );
        incoming.push(prepare(base, "/twilio/voice", &v));
        results.push(prepare(base, "/twilio/voice/dial", &d));
    }
    (incoming, results)
}

/// C clients, each sending its share back to back.
async fn closed_loop(
    http: &reqwest::Client,
    requests: Arc<Vec<Prepared>>,
    clients: usize,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = c;
            while i < requests.len() {
                out.push(send(&http, &requests[i]).await);
                i += clients;
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    (all, started.elapsed())
}

/// Requests start at a fixed rate whatever the server's pace.
async fn open_loop(
    http: &reqwest::Client,
    requests: Arc<Vec<Prepared>>,
    rate: usize,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tasks = Vec::new();
    for i in 0..requests.len() {
        tokio::time::sleep_until((started + gap * u32::try_from(i).unwrap_or(u32::MAX)).into())
            .await;
        let http = http.clone();
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move { send(&http, &requests[i]).await }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("request"));
    }
    (all, started.elapsed())
}

fn report(name: &str, load: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(lat.len() - 1);
        lat[i].as_secs_f64() * 1000.0
    };
    println!(
        "{name:<20} {load:<18} n={:<5} p50={:>6.2} ms  p90={:>6.2} ms  p99={:>6.2} ms  max={:>7.2} ms  {:>6.0} req/s",
        lat.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        lat.len() as f64 / wall.as_secs_f64()
    );
}

/// The server to measure: `TEXTBACK_BIN`, else the `textback` built beside this binary
/// (`cargo build --release --workspace` puts both in `target/release`).
fn server_binary() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("TEXTBACK_BIN") {
        return bin.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("textback")))
        .filter(|bin| bin.exists())
        .unwrap_or_else(|| "target/release/textback".into())
}

pub async fn run() {
    let n = env_or("BENCH_CALLS", 2000);
    let clients = env_or("BENCH_CONCURRENCY", 4);
    let rate = env_or("BENCH_RATE", 200);
    let server = start().await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    println!("textback webhook latency (release binary, loopback, PostgreSQL on this machine)");

    // Warm up connections, caches and the planner.
    let (warm_in, warm_dial) = prepared_calls(&server.base, 200, 0xFFFF_FFFF);
    closed_loop(&http, Arc::new(warm_in), clients).await;
    closed_loop(&http, Arc::new(warm_dial), clients).await;

    let (incoming, results) = prepared_calls(&server.base, n, 1);
    let (lat, wall) = closed_loop(&http, Arc::new(incoming), clients).await;
    report(
        "/twilio/voice",
        &format!("closed, {clients} clients"),
        lat,
        wall,
    );
    let (lat, wall) = closed_loop(&http, Arc::new(results), clients).await;
    report(
        "/twilio/voice/dial",
        &format!("closed, {clients} clients"),
        lat,
        wall,
    );

    let (incoming, results) = prepared_calls(&server.base, n, 2);
    let (lat, wall) = open_loop(&http, Arc::new(incoming), rate).await;
    report("/twilio/voice", &format!("open, {rate}/s"), lat, wall);
    let (lat, wall) = open_loop(&http, Arc::new(results), rate).await;
    report("/twilio/voice/dial", &format!("open, {rate}/s"), lat, wall);
    drop(server);
}
