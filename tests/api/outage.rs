//! Issue 21 §4 (README.md "When the database goes away"): the database unreachable for 60 s
//! while calls, replies and STOPs arrive at 10 a second. No webhook is answered 5xx, a call
//! still rings the number's agents, nothing is lost after the replay, every webhook is recorded
//! once, and no text goes to a number whose STOP arrived during the outage.

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;

use crate::db_proxy::DbProxy;
use crate::helpers::*;

const MAIN_ST: &str = "+15555550100";
const SAM: &str = "+15555550101";
const AVA: &str = "+15555550102";

fn lead(i: usize) -> String {
    format!("+1617555{:04}", 2000 + i)
}

/// One webhook of the burst: its path and signed pairs.
struct Hook {
    path: &'static str,
    params: Vec<(String, String)>,
}

fn sms(from: &str, body: &str) -> Hook {
    let sid = new_sid("SM");
    let p = with(fixture("sms-inbound-reply.txt"), "MessageSid", &sid);
    let p = with(with(p, "SmsSid", &sid), "SmsMessageSid", &sid);
    let p = with(with(p, "From", from), "To", MAIN_ST);
    Hook {
        path: "/twilio/sms",
        params: without(with(p, "Body", body), "OptOutType"),
    }
}

#[tokio::test]
async fn a_minute_without_the_database_loses_nothing_and_texts_no_one_who_said_stop() {
    const CALLERS: usize = 250;
    let db = TestDb::new().await;
    let (proxy, through) = DbProxy::in_front_of(&db.url).await;
    let pool = textback::db::pool(through.as_str())
        .await
        .expect("a pool through the proxy");
    let app = spawn_app_on(
        db,
        pool,
        AppOptions {
            env: vec![("DATABASE_URL", through.to_string())],
            ..AppOptions::default()
        },
    )
    .await;
    // Before the outage: one caller missed, their text-back held 20 s; the numbers are read.
    let before = lead(999);
    app.missed_call(&before, MAIN_ST).await;
    let deadline = Instant::now() + StdDuration::from_secs(15);
    while app
        .state
        .numbers
        .read()
        .map(|n| n.by_e164.is_empty())
        .unwrap_or(true)
    {
        assert!(
            Instant::now() < deadline,
            "the numbers' snapshot was never read"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }

    proxy.down();
    // The burst: each caller's call and its missed dial result; every 4th then texts STOP,
    // every 6th a reply; the caller from before texts STOP too. 10 a second for about 60 s.
    let mut hooks = Vec::new();
    let mut stopped = vec![before.clone()];
    hooks.push(sms(&before, "STOP"));
    for i in 0..CALLERS {
        let from = lead(i);
        let sid = new_sid("CA");
        hooks.push(Hook {
            path: "/twilio/voice",
            params: TestApp::incoming_params(&sid, &from, MAIN_ST),
        });
        hooks.push(Hook {
            path: "/twilio/voice/dial",
            params: TestApp::dial_params(&sid, &from, MAIN_ST, "no-answer", "false"),
        });
        if i % 4 == 0 {
            hooks.push(sms(&from, "STOP"));
            stopped.push(from.clone());
        } else if i % 6 == 1 {
            hooks.push(sms(&from, "Is it still available?"));
        }
    }
    let total = hooks.len();
    assert!((600..=620).contains(&total), "{total}");
    let started = Instant::now();
    let mut answers = Vec::new();
    for (n, hook) in hooks.into_iter().enumerate() {
        // Paced at 10 a second, each sent without waiting for the one before.
        let due = started + StdDuration::from_millis(100 * n as u64);
        tokio::time::sleep_until(due.into()).await;
        let signature = app.sign(hook.path, &hook.params);
        let request = app
            .http
            .post(format!("{}{}", app.base_url, hook.path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(textback::twilio::form::encode(&hook.params));
        answers.push(tokio::spawn(async move {
            (
                hook.path,
                read(request.send().await.expect("request")).await,
            )
        }));
    }
    let mut rang = 0;
    for a in answers {
        let (path, r) = a.await.expect("the request task");
        assert!(r.status < 500, "{path} answered {}: {}", r.status, r.body);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        if path == "/twilio/voice" {
            // The call still rings the number's agents, from the numbers as last read.
            assert!(r.body.contains(SAM) && r.body.contains(AVA), "{}", r.body);
            rang += 1;
        }
        if path == "/twilio/voice/dial" {
            // A missed call hears the number's missed message, as when the database is there.
            assert!(
                r.body.contains("Sorry we missed you") && r.body.contains("<Hangup"),
                "{}",
                r.body
            );
        }
    }
    assert_eq!(rang, CALLERS);
    let spooled = app.state.spool.pending();
    assert_eq!(spooled as usize, total, "every webhook is in the spool");
    // Nothing is sent while the spool holds anything.
    assert_eq!(app.drain().await, 0);
    // The database stays away a whole minute.
    tokio::time::sleep_until((started + StdDuration::from_secs(60)).into()).await;

    proxy.up().await;
    let deadline = Instant::now() + StdDuration::from_secs(120);
    while app.state.spool.has_pending() {
        assert!(
            Instant::now() < deadline,
            "the spool was not applied: {} left",
            app.state.spool.pending()
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    let replayed = app
        .state
        .spool
        .replayed_applied
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(replayed as usize, total, "every spooled webhook applied");

    // Each webhook recorded once: every call with its missed result, every text.
    let calls: (i64, i64) =
        sqlx::query_as("select count(*), count(*) filter (where outcome = 'missed') from call")
            .fetch_one(&app.db.pool)
            .await
            .expect("calls");
    assert_eq!(calls, (CALLERS as i64 + 1, CALLERS as i64 + 1));
    let texts: i64 = sqlx::query_scalar("select count(*) from message where direction = 'inbound'")
        .fetch_one(&app.db.pool)
        .await
        .expect("texts");
    let expected_texts = 1 + (0..CALLERS).filter(|i| i % 4 == 0 || i % 6 == 1).count();
    assert_eq!(texts as usize, expected_texts);
    let suppressed: i64 =
        sqlx::query_scalar("select count(*) from suppression where lifted_at is null")
            .fetch_one(&app.db.pool)
            .await
            .expect("suppressions");
    assert_eq!(suppressed as usize, stopped.len());

    // Now the texts go: none to a number that said STOP, one to every other missed caller
    // who did not write first.
    app.run_until_quiet(Duration::minutes(10)).await;
    let sent = app.fake.messages();
    for s in &stopped {
        assert!(
            !sent.iter().any(|m| &m.to == s),
            "a text went to {s}, whose STOP came during the outage"
        );
    }
    for i in (0..CALLERS).filter(|i| i % 4 != 0 && i % 6 != 1) {
        let to = lead(i);
        assert_eq!(
            sent.iter().filter(|m| m.to == to).count(),
            1,
            "the text-back to {to}"
        );
    }
}

/// README.md "When the database goes away": the spool is applied in the order its webhooks
/// arrived, not the order they were written. A lead who had opted out texts START, then STOP
/// again; the STOP is written first (here: the START arrives earlier by the clock but joins the
/// spool after). Applied as written, the START would lift the later STOP.
#[tokio::test]
async fn a_spool_is_applied_in_the_order_its_webhooks_arrived() {
    let db = TestDb::new().await;
    let (proxy, through) = DbProxy::in_front_of(&db.url).await;
    let pool = textback::db::pool(through.as_str())
        .await
        .expect("a pool through the proxy");
    let app = spawn_app_on(
        db,
        pool,
        AppOptions {
            env: vec![("DATABASE_URL", through.to_string())],
            ..AppOptions::default()
        },
    )
    .await;
    let who = lead(0);
    let t0 = textback::clock::Clock::now(app.clock.as_ref());
    app.text_in(&who, MAIN_ST, "STOP").await;
    proxy.down();
    app.clock.set(t0 + Duration::minutes(2));
    let stop = app.text_in(&who, MAIN_ST, "STOP").await;
    app.clock.set(t0 + Duration::minutes(1));
    let start = app.text_in(&who, MAIN_ST, "START").await;
    assert_eq!(app.state.spool.pending(), 2, "both texts wait in the spool");
    app.clock.set(t0 + Duration::minutes(3));

    proxy.up().await;
    let deadline = Instant::now() + StdDuration::from_secs(60);
    while app.state.spool.has_pending() {
        assert!(Instant::now() < deadline, "the spool was not applied");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let ledger: Vec<(String, Option<String>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select event, evidence, at from consent_event where phone = $1 order by consent_event_id",
    )
    .bind(&who)
    .fetch_all(&app.db.pool)
    .await
    .expect("the ledger");
    let ledger: Vec<(&str, Option<&str>, chrono::DateTime<chrono::Utc>)> = ledger
        .iter()
        .map(|(e, s, at)| (e.as_str(), s.as_deref(), *at))
        .collect();
    assert_eq!(
        &ledger[1..],
        [
            ("opt_in", Some(start.as_str()), t0 + Duration::minutes(1)),
            ("opt_out", Some(stop.as_str()), t0 + Duration::minutes(2)),
        ],
        "{ledger:?}"
    );
    let suppressed: bool =
        sqlx::query_scalar("select lifted_at is null from suppression where phone = $1")
            .bind(&who)
            .fetch_one(&app.db.pool)
            .await
            .expect("the suppression");
    assert!(suppressed, "the lead's last word was STOP");
    // The START's confirmation is refused by the gate: they are suppressed again.
    app.run_until_quiet(Duration::minutes(10)).await;
    let sent: Vec<String> = app
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == who)
        .map(|m| m.body)
        .collect();
    assert!(!sent.iter().any(|b| b.contains("resubscribed")), "{sent:?}");
}

/// README.md "When the database goes away": with several hosts in `DATABASE_URL`, the pool
/// skips a host that does not answer, refuses one that does not take writes (and says why when
/// none will do), and moves to the next host when its own goes away, its old connections
/// closed. (tests/failover.rs follows a real failover.)
#[tokio::test]
async fn several_hosts_the_first_that_takes_writes_and_a_move_when_it_goes() {
    let db = TestDb::new().await;
    // Two ways to the same server: `a` and `b`, each a proxy that can be taken down.
    let (a, through_a) = DbProxy::in_front_of(&db.url).await;
    let (b, through_b) = DbProxy::in_front_of(&db.url).await;
    let host = |u: &url::Url| format!("127.0.0.1:{}", u.port().expect("a port"));
    let url = format!(
        "postgres://postgres@{},{}/{}?target_session_attrs=read-write",
        host(&through_a),
        host(&through_b),
        db.name
    );
    // The first host refuses connections: the pool starts on the second.
    a.down();
    let pool = textback::db::pool(&url).await.expect("the second host");
    let moves = textback::store::failover::switches();
    let read_only: String = sqlx::query_scalar("show transaction_read_only")
        .fetch_one(&pool)
        .await
        .expect("a query");
    assert_eq!(read_only, "off");
    // Both up, then the second away: the pool moves to the first, and a connection opened
    // before the move is never handed out again (a query on it would fail: `b` cut it).
    a.up().await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.acquire().await.expect("a connection through b"));
    }
    drop(held);
    b.down();
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    while textback::store::failover::switches() == moves {
        assert!(
            std::time::Instant::now() < deadline,
            "the pool did not move to the first host"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    for _ in 0..5 {
        let one: i32 = sqlx::query_scalar("select 1")
            .fetch_one(&pool)
            .await
            .expect("queries go through the first host");
        assert_eq!(one, 1);
    }
    pool.close().await;

    // A server that does not take writes is passed over like a standby, and the error says so
    // for each host. (The setting is made and undone on one session, which keeps its own.)
    b.up().await;
    let mut admin = db.pool.acquire().await.expect("a session");
    sessions_read_only(&mut admin, &db.name, true).await;
    let err = textback::db::pool(&url)
        .await
        .expect_err("no host takes writes")
        .to_string();
    sessions_read_only(&mut admin, &db.name, false).await;
    assert!(
        err.contains("no host of DATABASE_URL takes writes"),
        "{err}"
    );
    assert_eq!(err.matches("does not take writes").count(), 2, "{err}");
}

/// New sessions of database `name` start read-only (`on`) or as usual.
async fn sessions_read_only(session: &mut sqlx::PgConnection, name: &str, on: bool) {
    let change = if on {
        "set default_transaction_read_only = on"
    } else {
        "reset default_transaction_read_only"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database {name} {change}"
    )))
    .execute(session)
    .await
    .expect("alter database");
}
