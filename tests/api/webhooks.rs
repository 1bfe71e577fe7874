//! Signed outbound webhooks (README.md "Webhooks", docs/webhooks.md): events reach a real
//! receiving process that verifies every request with the official Standard Webhooks library
//! (PyPI `standardwebhooks`); a subscriber down for an hour gets every event once, in order, when
//! it is back; a day of failures pauses the subscription and alerts the admins; hostile answers
//! (a redirect, 10 MB, a stall) are recorded and never hold up a text; private addresses are
//! refused.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const LEAD: &str = "+16175550123";
const LEAD_2: &str = "+16175550188";
const MAIN_ST: &str = "+15555550100";
const RILEY: &str = "+15555550104";

/// The Python of the virtualenv `.ci/run` makes (schemathesis and standardwebhooks).
fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/python");
    assert!(
        p.exists(),
        "{} is missing: python3 -m venv target/schemathesis && target/schemathesis/bin/pip install standardwebhooks==1.3.0 (.ci/run does)",
        p.display()
    );
    p
}

/// A receiving process; killed when dropped.
pub struct Receiver {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// Starts tests/support/webhook_receiver.py on `port` (0: a free one), appending to `log`.
    pub fn start(port: u16, log: &Path) -> Receiver {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/webhook_receiver.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(port.to_string())
            .arg(SECRET)
            .arg(log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the receiver starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the receiver prints its port");
        let port = first.trim().parse().expect("a port");
        Receiver {
            child,
            port,
            log: log.to_owned(),
        }
    }

    /// What it received: one JSON object per request.
    pub fn received(&self) -> Vec<Value> {
        received(&self.log)
    }
}

fn received(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn temp_log(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/webhooks");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(format!("{name}-{}.jsonl", new_sid("x")));
    let _ = std::fs::remove_file(&path);
    path
}

/// The demo's setup with one subscription to `url`.
fn setup_with(url: &str, events: &str, allow_private: bool) -> String {
    format!(
        "{DEMO}\n[[webhooks]]\nname = \"crm\"\nurl = \"{url}\"\nevents = {events}\nsecret_env = \"HARBOR_WEBHOOK_SECRET\"\nallow_private_addresses = {allow_private}\n"
    )
}

async fn app_with(url: &str, events: &str) -> TestApp {
    spawn_app_with(AppOptions {
        setup: Some(setup_with(url, events, true)),
        env: vec![("HARBOR_WEBHOOK_SECRET", SECRET.to_owned())],
        ..AppOptions::default()
    })
    .await
}

/// Moves the clock to each next due job or delivery and runs them, until nothing is due
/// before `end`.
pub async fn run_until(app: &TestApp, end: DateTime<Utc>) {
    for _ in 0..10_000 {
        app.drain().await;
        // Everything due now has run (a delivery behind an earlier one of its conversation
        // waits for it): the next time is strictly later.
        let next: Option<DateTime<Utc>> = sqlx::query_scalar(
            "select min(at) from (select min(run_at) as at from job where state = 'scheduled' and run_at > $1
                                  union all select min(run_at) from webhook_delivery where state = 'pending' and run_at > $1) t",
        )
        .bind(now(app))
        .fetch_one(&app.db.pool)
        .await
        .expect("next");
        match next {
            Some(at) if at <= end => app.clock.set(at),
            _ => {
                app.clock
                    .set(end.max(textback::clock::Clock::now(app.clock.as_ref())));
                return;
            }
        }
    }
    panic!("never quiet");
}

pub fn now(app: &TestApp) -> DateTime<Utc> {
    textback::clock::Clock::now(app.clock.as_ref())
}

/// (event id, type, conversation) of every event, in the order they happened.
async fn events(app: &TestApp) -> Vec<(String, String, Option<i64>)> {
    sqlx::query_as("select public_id, type, conversation_id from outbound_event order by event_id")
        .fetch_all(&app.db.pool)
        .await
        .expect("events")
}

/// The happy path: a missed call, its text-back, a reply and a STOP reach the subscriber,
/// each verified by the official library, in the order they happened; what it did not ask
/// for is not sent.
#[tokio::test]
async fn events_reach_a_subscriber_signed_as_standard_webhooks_say() {
    let log = temp_log("happy");
    let receiver = Receiver::start(0, &log);
    let url = format!("http://127.0.0.1:{}/hooks", receiver.port);
    let app = app_with(
        &url,
        "[\"call.missed\", \"text.sent\", \"reply.received\", \"opt_out\", \"conversation.assigned\"]",
    )
    .await;
    app.missed_call(LEAD, MAIN_ST).await;
    run_until(&app, now(&app) + Duration::minutes(2)).await;
    app.text_in(LEAD, MAIN_ST, "Yes, is it still available?")
        .await;
    app.text_in(LEAD, MAIN_ST, "STOP").await;
    run_until(&app, now(&app) + Duration::minutes(2)).await;

    let got = receiver.received();
    assert!(
        got.iter().all(|r| r["ok"] == true),
        "every signature verifies: {got:?}"
    );
    let emitted = events(&app).await;
    let types: Vec<&str> = emitted.iter().map(|e| e.1.as_str()).collect();
    assert!(types.contains(&"call.missed"), "{types:?}");
    assert!(types.contains(&"text.sent"), "{types:?}");
    assert!(types.contains(&"reply.received"), "{types:?}");
    assert!(types.contains(&"opt_out"), "{types:?}");
    assert!(
        !types.contains(&"text.delivered"),
        "not subscribed: not even recorded"
    );
    // Each event once, in the order it happened.
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r["id"].as_str().expect("an id"))
        .collect();
    let expected: Vec<&str> = emitted.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, expected);
    let missed = got
        .iter()
        .find(|r| r["type"] == "call.missed")
        .expect("missed");
    assert_eq!(missed["data"]["phone"], LEAD);
    assert_eq!(missed["data"]["number"], MAIN_ST);
    let conversation = missed["data"]["conversation_id"]
        .as_i64()
        .expect("a conversation");
    assert_eq!(
        missed["data"]["conversation_url"],
        format!("{}/inbox/c/{conversation}", app.public_url)
    );
    let reply = got
        .iter()
        .find(|r| r["type"] == "reply.received")
        .expect("reply");
    assert_eq!(reply["data"]["body"], "Yes, is it still available?");
    let states: Vec<(String, i32)> =
        sqlx::query_as("select state, attempts from webhook_delivery order by delivery_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("deliveries");
    assert!(
        states.iter().all(|(s, a)| s == "delivered" && *a == 1),
        "{states:?}"
    );
    let metrics = app.state.metrics.render();
    assert!(
        metrics.contains("textback_deliveries_total{kind=\"webhook\",outcome=\"delivered\"}"),
        "{metrics}"
    );
}

/// Issue 19's "subscriber down for an hour then back": every event delivered once, in order
/// per conversation, verified by the official library; nothing lost meanwhile; the text-back
/// went out on time regardless.
#[tokio::test]
async fn a_subscriber_down_for_an_hour_gets_every_event_once_in_order_when_back() {
    let log = temp_log("down");
    // Learn a free port, then take the receiver down: connections are refused.
    let port = {
        let r = Receiver::start(0, &log);
        r.port
    };
    let url = format!("http://127.0.0.1:{port}/hooks");
    let app = app_with(&url, "[\"*\"]").await;
    let start = now(&app);
    app.missed_call(LEAD, MAIN_ST).await;
    app.missed_call(LEAD_2, MAIN_ST).await;
    run_until(&app, start + Duration::minutes(1)).await;
    assert_eq!(
        app.fake
            .messages()
            .iter()
            .filter(|m| m.to == LEAD || m.to == LEAD_2)
            .count(),
        2,
        "the text-backs went out while the subscriber was down"
    );
    app.text_in(LEAD, MAIN_ST, "Hi, yes please call me").await;
    app.text_in(LEAD_2, MAIN_ST, "What's the price?").await;
    // An hour of failed attempts.
    run_until(&app, start + Duration::hours(1)).await;
    assert!(received(&log).is_empty());
    let (failing, state): (Option<DateTime<Utc>>, String) =
        sqlx::query_as("select failing_since, state from webhook_subscription")
            .fetch_one(&app.db.pool)
            .await
            .expect("subscription");
    assert!(failing.is_some());
    assert_eq!(state, "active", "an hour is not a day: not paused");
    let tried: i32 = sqlx::query_scalar("select max(attempts) from webhook_delivery")
        .fetch_one(&app.db.pool)
        .await
        .expect("attempts");
    assert!(tried >= 3, "tried again on the schedule: {tried}");

    // Back on the same port.
    let receiver = Receiver::start(port, &log);
    run_until(&app, start + Duration::hours(4)).await;
    let got = receiver.received();
    assert!(got.iter().all(|r| r["ok"] == true), "{got:?}");
    let emitted = events(&app).await;
    let mut ids: Vec<&str> = got.iter().map(|r| r["id"].as_str().expect("id")).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no event twice");
    assert_eq!(n, emitted.len(), "every event: {got:?}");
    // Per conversation, in the order the events happened.
    for conversation in emitted
        .iter()
        .filter_map(|e| e.2)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let want: Vec<&str> = emitted
            .iter()
            .filter(|e| e.2 == Some(conversation))
            .map(|e| e.0.as_str())
            .collect();
        let seen: Vec<&str> = got
            .iter()
            .filter(|r| r["conversation_id"].as_i64() == Some(conversation))
            .map(|r| r["id"].as_str().expect("id"))
            .collect();
        assert_eq!(seen, want, "conversation {conversation}");
    }
    let failing: Option<DateTime<Utc>> =
        sqlx::query_scalar("select failing_since from webhook_subscription")
            .fetch_one(&app.db.pool)
            .await
            .expect("subscription");
    assert_eq!(failing, None, "a success ends the failing streak");
}

/// A day of failures pauses the subscription (events kept, held) and texts the admins; the
/// Connections page shows it, and Resume sends the held events in order.
#[tokio::test]
async fn a_day_of_failures_pauses_and_resume_sends_what_was_held() {
    let log = temp_log("paused");
    let port = {
        let r = Receiver::start(0, &log);
        r.port
    };
    let url = format!("http://127.0.0.1:{port}/hooks");
    let app = app_with(&url, "[\"call.missed\", \"reply.received\"]").await;
    let start = now(&app);
    app.missed_call(LEAD, MAIN_ST).await;
    run_until(&app, start + Duration::hours(25)).await;
    app.text_in(LEAD, MAIN_ST, "Hello?").await;
    run_until(&app, start + Duration::hours(30)).await;
    let state: String = sqlx::query_scalar("select state from webhook_subscription")
        .fetch_one(&app.db.pool)
        .await
        .expect("subscription");
    assert_eq!(state, "paused");
    let held: Vec<String> =
        sqlx::query_scalar("select state from webhook_delivery order by delivery_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("deliveries");
    assert_eq!(held, vec!["held", "held"], "kept, not failed");
    let alerts = app.alerts_to(RILEY);
    assert!(
        alerts
            .iter()
            .any(|a| a.contains("webhook crm failed for a day and is paused")),
        "the admin is texted: {alerts:?}"
    );

    add_login(&app.db.pool, "harbor", "riley@harbor.example", PASSWORD).await;
    let mut riley = app.log_in("riley@harbor.example", PASSWORD).await;
    let page = riley.get("/connections").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-state=\"paused\""), "{}", page.body);
    let id: i64 = sqlx::query_scalar("select subscription_id from webhook_subscription")
        .fetch_one(&app.db.pool)
        .await
        .expect("id");
    let receiver = Receiver::start(port, &log);
    let r = riley
        .post(&format!("/connections/subscriptions/{id}/resume"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    run_until(&app, now(&app) + Duration::minutes(1)).await;
    let got = receiver.received();
    let types: Vec<&str> = got
        .iter()
        .map(|r| r["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, vec!["call.missed", "reply.received"]);
    assert!(got.iter().all(|r| r["ok"] == true));

    // Send again: the same event, the same webhook-id, once more.
    let delivery: i64 = sqlx::query_scalar("select min(delivery_id) from webhook_delivery")
        .fetch_one(&app.db.pool)
        .await
        .expect("delivery");
    let r = riley
        .post(
            &format!("/connections/deliveries/{delivery}/send-again"),
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    run_until(&app, now(&app) + Duration::minutes(1)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[2]["id"], got[0]["id"],
        "the receiver can deduplicate on webhook-id"
    );

    // Agents and managers do not see the page.
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    let mut sam = app.log_in("sam@harbor.example", PASSWORD).await;
    assert_eq!(sam.get("/connections").await.status, 403);
    let r = sam
        .post(
            &format!("/connections/deliveries/{delivery}/send-again"),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
}

/// A receiver that answers as told: `redirect`, `huge` (500 and 10 MB), `stall` (reads the
/// request, answers nothing for a minute). Counts the requests it got.
async fn hostile(mode: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = sock.read(&mut buf).await;
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match mode {
                    "redirect" => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    }
                    "huge" => {
                        let n = 10 * 1024 * 1024;
                        let head = format!(
                            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: {n}\r\n\r\n"
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let chunk = vec![b'x'; 64 * 1024];
                        for _ in 0..(n / chunk.len()) {
                            if sock.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                    _ => tokio::time::sleep(StdDuration::from_secs(60)).await,
                }
            });
        }
    });
    (port, count)
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_a_huge_answer_is_cut_short() {
    for mode in ["redirect", "huge"] {
        let (port, count) = hostile(mode).await;
        let app = app_with(
            &format!("http://127.0.0.1:{port}/hooks"),
            "[\"call.missed\"]",
        )
        .await;
        app.missed_call(LEAD, MAIN_ST).await;
        app.drain().await;
        let (state, status, answer, error): (String, Option<i32>, Option<String>, Option<String>) =
            sqlx::query_as(
                "select state, last_status, last_answer, last_error from webhook_delivery",
            )
            .fetch_one(&app.db.pool)
            .await
            .expect("delivery");
        assert_eq!(state, "pending", "{mode}: failed, tried again later");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1, "{mode}");
        match mode {
            "redirect" => {
                assert_eq!(status, Some(302));
                assert!(
                    error
                        .as_deref()
                        .is_some_and(|e| e.contains("redirect (302) not followed")),
                    "{error:?}"
                );
            }
            _ => {
                assert_eq!(status, Some(500));
                let answer = answer.expect("an excerpt");
                assert!(
                    answer.chars().count() <= 201,
                    "kept short: {}",
                    answer.len()
                );
            }
        }
    }
}

/// A subscriber that stalls holds deliveries' slots, never a text's: with every delivery
/// stalled in flight, a missed call's text-back still goes out.
#[tokio::test]
async fn a_stalled_subscriber_never_holds_up_a_text() {
    let (port, count) = hostile("stall").await;
    let mut app = app_with(&format!("http://127.0.0.1:{port}/hooks"), "[\"*\"]").await;
    // Deliveries wait long for the stalled answers (the test's lane would otherwise free
    // its slots after the fast timing's 2 s).
    app.state.timing.webhook_timeout = StdDuration::from_secs(45);
    app.state.outbound = textback::effects::webhooks::Outbound::new(StdDuration::from_secs(45));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(textback::scheduler::Scheduler::new(app.state.clone()).run(stop_rx));
    // Twenty events: more than the lane's sixteen slots.
    for i in 0..20 {
        app.text_in(&format!("+1617555{:04}", 1000 + i), MAIN_ST, "hi")
            .await;
    }
    let mut waited = 0;
    while count.load(std::sync::atomic::Ordering::SeqCst) < 16 && waited < 600 {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        16,
        "every delivery slot is stalled"
    );
    app.missed_call(LEAD, MAIN_ST).await;
    app.clock.set(now(&app) + Duration::seconds(30));
    let mut waited = 0;
    while !app.fake.messages().iter().any(|m| m.to == LEAD) && waited < 600 {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        waited += 1;
    }
    assert!(
        app.fake.messages().iter().any(|m| m.to == LEAD),
        "the text-back went out"
    );
    let in_flight: i64 =
        sqlx::query_scalar("select count(*) from webhook_delivery where state = 'delivering'")
            .fetch_one(&app.db.pool)
            .await
            .expect("count");
    assert_eq!(in_flight, 16, "while the deliveries were still stalled");
    let _ = stop_tx.send(true);
    worker.abort();
}

/// A name that resolves to this machine is refused by the deliveries' resolver, whatever the
/// setup file's URL looked like.
#[tokio::test]
async fn private_addresses_are_refused_by_the_resolver() {
    let why = textback::effects::webhooks::public_addrs("localhost")
        .await
        .expect_err("localhost is private");
    assert!(
        why.contains("refused: localhost resolves to a private address"),
        "{why}"
    );
    // A URL naming the machine is refused before any connection.
    let url = reqwest::Url::parse("http://127.0.0.1:9/hooks").expect("url");
    assert!(textback::effects::webhooks::check_literal(&url, false).is_err());
    assert!(textback::effects::webhooks::check_literal(&url, true).is_ok());
    let url = reqwest::Url::parse("https://[::ffff:10.0.0.1]/hooks").expect("url");
    assert!(textback::effects::webhooks::check_literal(&url, false).is_err());
}

/// A subscription without allow_private_addresses cannot reach this machine: the setup file
/// refuses it, and a subscription whose secret is not set records why on each attempt.
#[tokio::test]
async fn a_setup_pointing_at_this_machine_is_refused_and_a_missing_secret_is_recorded() {
    let bad = setup_with("https://127.0.0.1:8443/hooks", "[\"*\"]", false);
    let problems = textback::setup::parse(&bad).expect_err("refused");
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("private network")),
        "{problems:?}"
    );
    let app = spawn_app_with(AppOptions {
        setup: Some(setup_with(
            "http://127.0.0.1:9/hooks",
            "[\"call.missed\"]",
            true,
        )),
        ..AppOptions::default()
    })
    .await;
    app.missed_call(LEAD, MAIN_ST).await;
    app.drain().await;
    let error: Option<String> = sqlx::query_scalar("select last_error from webhook_delivery")
        .fetch_one(&app.db.pool)
        .await
        .expect("delivery");
    assert_eq!(
        error.as_deref(),
        Some("no signing secret: HARBOR_WEBHOOK_SECRET is not set")
    );
}
