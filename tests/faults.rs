//! Fault tests with real processes (docs/reliability.md §6–§7): the server binary, built with
//! `--features test-hooks` (crash points, short timing knobs), runs as child processes that
//! are killed with SIGKILL and restarted; the fake carrier runs here. Each test waits with
//! generous deadlines and ends with the invariants: one accepted create per text, every job
//! terminal.
//!
//! Run with `cargo test --features test-hooks` (the README's test command does).

#![cfg(feature = "test-hooks")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

#[path = "api/db_proxy.rs"]
mod db_proxy;

#[path = "support/invariants.rs"]
#[allow(dead_code)]
mod invariants;

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use textback::clock::OffsetClock;
use textback_fake_twilio::{
    CallPlan, CallbackPlan, DialResult, FakeTwilio, FakeTwilioConfig, Fault, KeptBody, Player,
    Scope, TRIAL_PREFIX, new_call_sid, new_message_sid,
};

use helpers::*;

/// Fault tests kill processes and lean on short leases: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MAIN_ST: &str = "+15555550100";

use servers::{Server, setup, setup_with_follow_ups};

struct World {
    db: TestDb,
    fake: FakeTwilio,
    /// When the world was made: the test clock runs on from `test_start()` from here.
    made: Instant,
}

async fn world() -> World {
    world_with(&setup()).await
}

/// A world whose brokerage is set up by `toml`.
async fn world_with(toml: &str) -> World {
    let db = TestDb::new().await;
    apply_setup(&db.pool, toml).await;
    let fake = FakeTwilio::start(FakeTwilioConfig::with_fixture_credentials(Arc::new(
        OffsetClock::starting_at(test_start()),
    )))
    .await
    .expect("fake");
    World {
        db,
        fake,
        made: Instant::now(),
    }
}

impl World {
    /// Starts `textback serve` on `port` (0: a free one), with `crash` as its crash point and
    /// the test clock running on from `test_start()`.
    async fn server(&self, port: u16, crash: Option<&str>) -> Server {
        let now = test_start()
            + chrono::Duration::from_std(self.made.elapsed()).unwrap_or(chrono::Duration::zero());
        self.server_at(port, crash, now).await
    }

    /// Starts `textback serve` whose clock reads `clock` now (`TEXTBACK_TEST_CLOCK`).
    async fn server_at(
        &self,
        port: u16,
        crash: Option<&str>,
        clock: chrono::DateTime<chrono::Utc>,
    ) -> Server {
        self.server_on(port, crash, clock, &self.db.url).await
    }

    /// Starts `textback serve` with its database at `db_url` (a proxy in front of the test's).
    async fn server_on(
        &self,
        port: u16,
        crash: Option<&str>,
        clock: chrono::DateTime<chrono::Utc>,
        db_url: &str,
    ) -> Server {
        let port = if port == 0 {
            servers::free_port()
        } else {
            port
        };
        // One spool per instance's port, kept across its restarts.
        let spool = format!(
            "{}/faults-{}-spool-{port}",
            env!("CARGO_TARGET_TMPDIR"),
            self.db.name
        );
        let mut cmd = servers::serve_command(
            db_url,
            port,
            std::path::Path::new(&spool),
            &self.fake,
            clock,
        );
        match crash {
            Some(point) => cmd.env("TEXTBACK_TEST_CRASH", point),
            None => cmd.env_remove("TEXTBACK_TEST_CRASH"),
        };
        servers::start(cmd, port, Duration::from_secs(30)).await
    }

    fn player(&self, server: &Server) -> Player {
        self.fake.player(&server.base())
    }

    /// The Messages create requests the carrier received, in order of arrival.
    fn create_requests(&self) -> Vec<textback_fake_twilio::RecordedRequest> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/Messages.json"))
            .collect()
    }

    fn creates(&self) -> usize {
        self.create_requests().len()
    }

    /// Waits until the carrier holds `n` creates (`Fault::Hold`).
    async fn wait_held(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.fake.held_count() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} sends reached the carrier",
                self.fake.held_count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Locks `phone`'s contact row in a transaction of the test's own until it is dropped or
    /// rolled back (docs/reliability.md §6: what orders the STOP, the send and its record).
    async fn hold_contact(&self, phone: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut holder = self.db.pool.begin().await.unwrap();
        sqlx::query("select contact_id from contact where phone = $1 for update")
            .bind(phone)
            .fetch_one(&mut *holder)
            .await
            .unwrap();
        holder
    }

    fn accepted_to(&self, to: &str) -> usize {
        self.fake.messages().iter().filter(|m| m.to == to).count()
    }

    /// Waits until every job is terminal and stays so for a second (`servers::wait_all_terminal`).
    async fn wait_all_terminal(&self, within: Duration) {
        servers::wait_all_terminal(&self.db.pool, within).await;
    }

    /// docs/reliability.md I1–I5 over everything the scenario did (the randomized runs' checker).
    async fn assert_invariants(&self) {
        let bad = invariants::check(&self.db.pool, &self.fake, &[], &[]).await;
        assert!(bad.is_empty(), "reliability.md I1–I5:\n{}", bad.join("\n"));
    }

    /// docs/reliability.md I1 and I2 for one text-back: exactly one accepted create to `to`, the
    /// job `sent`, no outbound row left unsettled.
    async fn assert_one_text(&self, to: &str) {
        assert_eq!(self.accepted_to(to), 1, "exactly one text to {to}");
        let (state,): (String,) = sqlx::query_as(
            "select j.state from job j join contact c using (brokerage_id, contact_id) where c.phone = $1 and j.kind = 'text_back'",
        )
        .bind(to)
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        assert_eq!(state, "sent");
        let unsettled: i64 = sqlx::query_scalar(
            "select count(*) from message where send_state in ('sending', 'unknown')",
        )
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        assert_eq!(unsettled, 0);
        let linked: i64 = sqlx::query_scalar(
            "select count(*) from message where send_state = 'sent' and to_raw = $1",
        )
        .bind(to)
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        assert_eq!(
            linked, 1,
            "the accepted create is linked to exactly one outbound row"
        );
    }
}

async fn miss(player: &Player, from: &str) {
    let sid = new_call_sid();
    assert_eq!(
        player
            .incoming_call(&sid, from, MAIN_ST)
            .await
            .expect("voice")
            .status,
        200
    );
    assert_eq!(
        player
            .dial_result(&sid, from, MAIN_ST, DialResult::no_answer())
            .await
            .expect("dial")
            .status,
        200
    );
}

/// A missed call to a server that is about to crash at a point of its text-back: the job is
/// committed with the dial result, and a worker woken by it may claim the job and abort the
/// process before the dial's answer is written. Real Twilio would see a failed `action`
/// request then; what matters here is that the miss was recorded (its text-back job exists).
async fn miss_racing_a_crash(w: &World, player: &Player, from: &str) {
    let sid = new_call_sid();
    let voice = player
        .incoming_call(&sid, from, MAIN_ST)
        .await
        .expect("voice");
    assert_eq!(voice.status, 200);
    match player
        .dial_result(&sid, from, MAIN_ST, DialResult::no_answer())
        .await
    {
        Ok(r) => assert_eq!(r.status, 200),
        Err(e) => eprintln!("the dial's answer was lost with the process ({e}); checking the job"),
    }
    assert_eq!(
        jobs_of(w, "text_back").await.len(),
        1,
        "the missed call's text-back was recorded"
    );
}

/// docs/reliability.md F7: the process dies after claiming the job, before any request left. After
/// the lease the job is re-claimed; with no outbound row from the earlier attempt, it sends,
/// once.
#[tokio::test]
async fn killed_between_claim_and_send_the_text_goes_once_after_restart() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    let mut server = w.server(0, Some("after_claim")).await;
    let lead = "+16175550131";
    miss_racing_a_crash(&w, &w.player(&server), lead).await;
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(!status.success(), "the crash point aborted the process");
    assert_eq!(w.creates(), 0);

    let _restarted = w.server(server.port, None).await;
    w.wait_all_terminal(Duration::from_secs(30)).await;
    w.assert_invariants().await;
    w.assert_one_text(lead).await;
    let attempts: i32 = sqlx::query_scalar("select attempt from job where kind = 'text_back'")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "claimed, lost with the process, re-claimed");
}

/// F7 variant: the process dies after the pre-send record, before the request: the re-claim
/// finds the `sending` row, reconciles instead of sending, finds it absent twice and retries
/// through the normal path: one create.
#[tokio::test]
async fn killed_after_the_presend_record_the_text_is_reconciled_then_sent_once() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    let mut server = w.server(0, Some("after_presend")).await;
    let lead = "+16175550132";
    miss_racing_a_crash(&w, &w.player(&server), lead).await;
    server.wait_exit(Duration::from_secs(20)).await;
    let sending: i64 =
        sqlx::query_scalar("select count(*) from message where send_state = 'sending'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(sending, 1, "the pre-send record was committed");
    assert_eq!(w.creates(), 0);

    let _restarted = w.server(server.port, None).await;
    w.wait_all_terminal(Duration::from_secs(40)).await;
    w.assert_invariants().await;
    w.assert_one_text(lead).await;
    let states: Vec<String> =
        sqlx::query_scalar("select send_state from message order by message_id")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(states, vec!["failed_certain", "sent"]);
}

/// docs/reliability.md F8: the request reached the carrier, which keeps its answer; the process is
/// killed before it can record anything. After the restart the `sending` row is reconciled by
/// the carrier's list: found, so sent, and no second create.
#[tokio::test]
async fn killed_between_send_and_record_the_text_is_reconciled_not_resent() {
    let _serial = SERIAL.lock().await;
    for recorded in [true, false] {
        let w = world().await;
        w.fake.inject(Fault::Hold { recorded }, Scope::Next(1));
        let mut server = w.server(0, None).await;
        let lead = if recorded {
            "+16175550133"
        } else {
            "+16175550134"
        };
        miss(&w.player(&server), lead).await;
        w.wait_held(1).await;
        server.kill9();
        w.fake.release_held();

        let _restarted = w.server(server.port, None).await;
        w.wait_all_terminal(Duration::from_secs(40)).await;
        w.assert_invariants().await;
        w.assert_one_text(lead).await;
        let expected_creates = if recorded { 1 } else { 2 };
        assert_eq!(
            w.creates(),
            expected_creates,
            "recorded={recorded}: no blind resend"
        );
    }
}

/// docs/reliability.md F12: two server processes on one database and one carrier, 200 missed calls
/// from 200 callers, the webhooks spread over both: exactly 200 texts, none twice.
#[tokio::test]
async fn two_servers_send_200_texts_for_200_missed_calls() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    let a = w.server(0, None).await;
    let b = w.server(0, None).await;
    let players = [w.player(&a), w.player(&b)];
    let leads: Vec<String> = (0..200)
        .map(|i| format!("+1617555{:04}", 6000 + i))
        .collect();
    let calls = leads.iter().enumerate().map(|(i, lead)| {
        let player = &players[i % 2];
        async move { miss(player, lead).await }
    });
    // 8 callers at a time, like a busy morning.
    futures_util::stream::iter(calls)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;

    w.wait_all_terminal(Duration::from_secs(90)).await;
    w.assert_invariants().await;
    assert_eq!(w.fake.messages().len(), 200);
    assert_eq!(w.creates(), 200, "no create was attempted twice");
    for lead in &leads {
        assert_eq!(w.accepted_to(lead), 1, "{lead}");
    }
    let sent: i64 =
        sqlx::query_scalar("select count(*) from job where kind = 'text_back' and state = 'sent'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(sent, 200);
    // Both processes sent texts (each counts its own), and together exactly 200.
    let mut per_server = Vec::new();
    for server in [&a, &b] {
        let metrics = reqwest::get(format!("{}/metrics", server.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let accepted: u64 = metrics
            .lines()
            .find(|l| l.starts_with(r#"textback_texts_total{kind="text_back",status="accepted"}"#))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        per_server.push(accepted);
    }
    assert_eq!(per_server.iter().sum::<u64>(), 200, "{per_server:?}");
    assert!(
        per_server.iter().all(|n| *n > 0),
        "both servers worked: {per_server:?}"
    );
}

use futures_util::StreamExt as _;

/// docs/reliability.md F13, docs/compliance.md R7: a missed call at 21:30 in Boston. The text-back is
/// held for the window with its reason; the server is killed; restarted at 23:00 it sends
/// nothing; restarted at 08:00:05 it sends once, after 08:00 and never before.
#[tokio::test]
async fn a_quiet_hours_deferral_survives_restarts_and_sends_once_at_the_window() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    // Thursday 2026-06-11 21:30 EDT.
    let mut server = w.server_at(0, None, at("2026-06-12T01:30:00Z")).await;
    let lead = "+16175550141";
    miss(&w.player(&server), lead).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let until = loop {
        let row: Option<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "select d.reason, d.until from gate_decision d where d.kind = 'text_back' and d.decision = 'defer'",
        )
        .fetch_optional(&w.db.pool)
        .await
        .unwrap();
        if let Some((reason, until)) = row {
            assert_eq!(reason, "quiet_hours");
            break until;
        }
        assert!(Instant::now() < deadline, "the text-back was not deferred");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(until, at("2026-06-12T12:00:00Z"), "08:00 EDT");
    let (zones, windows): (Vec<String>, Vec<String>) =
        sqlx::query_as("select zones, windows from gate_decision where decision = 'defer'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(zones, vec!["America/New_York".to_owned()]);
    assert_eq!(windows.len(), 1);
    server.kill9();

    // 23:00: still held, nothing sent.
    let mut late = w
        .server_at(server.port, None, at("2026-06-12T03:00:00Z"))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.creates(), 0);
    let (state, run_at): (String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("select state, run_at from job where kind = 'text_back'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), run_at), ("scheduled", until));
    late.kill9();

    // 08:00:05: sent once.
    let _morning = w
        .server_at(server.port, None, at("2026-06-12T12:00:05Z"))
        .await;
    w.wait_all_terminal(Duration::from_secs(30)).await;
    w.assert_invariants().await;
    w.assert_one_text(lead).await;
    let sent_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "select occurred_at from message where direction = 'outbound' and send_state = 'sent'",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert!(sent_at >= until, "sent at {sent_at}, before the window");
}

/// docs/reliability.md F1: the database goes away while sends are in flight at the carrier, (a)
/// behind a proxy that refuses and cuts every connection for 5 s, (b) by
/// `pg_terminate_backend` of every server connection. `/readyz` says 503 during the outage
/// and 200 after; the process stays up; every job ends; every caller gets one text, including
/// those whose missed calls came in right after the database returned (when the jobs'
/// `LISTEN` connection may not be back yet: the poll finds them).
#[tokio::test]
async fn a_database_outage_mid_dispatch_loses_nothing_and_sends_nothing_twice() {
    let _serial = SERIAL.lock().await;
    for terminate in [false, true] {
        let w = world().await;
        let (proxy, mut through) = db_proxy::DbProxy::in_front_of(&w.db.url).await;
        // The server's connections carry a name, so only they are terminated.
        through
            .query_pairs_mut()
            .append_pair("application_name", "textback-under-test");
        let now = test_start()
            + chrono::Duration::from_std(w.made.elapsed()).unwrap_or(chrono::Duration::zero());
        let mut server = w.server_on(0, None, now, through.as_str()).await;
        let player = w.player(&server);
        let http = reqwest::Client::new();
        let ready = |base: String| {
            let http = http.clone();
            async move {
                http.get(format!("{base}/readyz"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        };

        let before: Vec<String> = (0..20).map(|i| format!("+1617555{:04}", 300 + i)).collect();
        w.fake.inject(
            Fault::Hold { recorded: true },
            Scope::Next(before.len() as u32),
        );
        for lead in &before {
            miss(&player, lead).await;
        }
        // Every send has reached the carrier (the client's 1 s timeout may already have
        // given up on the first ones on a slow machine: they are then being reconciled).
        let deadline = Instant::now() + Duration::from_secs(30);
        while w.creates() < before.len() {
            assert!(
                Instant::now() < deadline,
                "only {} of {} sends reached the carrier",
                w.creates(),
                before.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        if terminate {
            let killed: i64 = sqlx::query_scalar(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = current_database() and application_name = 'textback-under-test') t",
            )
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
            assert!(killed > 0, "the server's connections were terminated");
            // The carrier answers while the server's connections are gone.
            w.fake.release_held();
        } else {
            proxy.down();
            let deadline = Instant::now() + Duration::from_secs(15);
            while ready(server.base()).await != 503 {
                assert!(Instant::now() < deadline, "/readyz never said 503");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            w.fake.release_held();
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert!(
                server.child.try_wait().unwrap().is_none(),
                "the server died"
            );
            proxy.up().await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready(server.base()).await != 200 {
            assert!(Instant::now() < deadline, "/readyz never came back to 200");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let after: Vec<String> = (0..5).map(|i| format!("+1617555{:04}", 400 + i)).collect();
        for lead in &after {
            miss(&player, lead).await;
        }
        w.wait_all_terminal(Duration::from_secs(90)).await;
        w.assert_invariants().await;
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "the server stayed up"
        );
        for lead in before.iter().chain(&after) {
            w.assert_one_text(lead).await;
        }
        assert_eq!(
            w.creates(),
            before.len() + after.len(),
            "terminate={terminate}: one create per caller"
        );
        server.kill9();
    }
}

/// docs/reliability.md F12's variant: one of two servers is SIGKILLed halfway through 200 missed
/// calls; the survivor takes the rest of the calls and, after their leases, the dead one's
/// jobs: exactly 200 texts, none created twice.
#[tokio::test]
async fn when_one_of_two_servers_dies_halfway_the_survivor_finishes_its_jobs() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    let a = w.server(0, None).await;
    let mut b = w.server(0, None).await;
    let leads: Vec<String> = (0..200)
        .map(|i| format!("+1617555{:04}", 7000 + i))
        .collect();
    let players = [w.player(&a), w.player(&b)];
    // The sends are slow at the carrier (recorded there, answered after 0.8 s, inside the
    // test timing's 1 s client timeout), so B dies with requests in flight.
    w.fake.inject(
        Fault::Delay {
            ms: 800,
            recorded: true,
        },
        Scope::Always,
    );
    let first = leads[..100].iter().enumerate().map(|(i, lead)| {
        let player = &players[i % 2];
        async move { miss(player, lead).await }
    });
    futures_util::stream::iter(first)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.kill9();
    w.fake.clear_faults();
    let survivor = w.player(&a);
    let rest = leads[100..]
        .iter()
        .map(|lead| async { miss(&survivor, lead).await });
    futures_util::stream::iter(rest)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;

    w.wait_all_terminal(Duration::from_secs(90)).await;
    w.assert_invariants().await;
    for lead in &leads {
        w.assert_one_text(lead).await;
    }
    assert_eq!(w.fake.messages().len(), 200);
    assert_eq!(w.creates(), 200, "no create was attempted twice");
    // B's claimed jobs were taken over after their leases (a second attempt: no other fault
    // here makes one).
    let reclaimed: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'text_back' and attempt > 1 and state = 'sent'",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert!(
        reclaimed > 0,
        "the survivor finished the dead server's jobs"
    );
}

/// Waits until the fake carrier has posted no status callback for half a second.
async fn callbacks_settled(w: &World) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = w.fake.callbacks().len();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = w.fake.callbacks().len();
        if now == seen {
            return;
        }
        seen = now;
        assert!(Instant::now() < deadline, "callbacks kept coming");
    }
}

/// docs/reliability.md F9 and F10 against the real binary: the same signed voice and dial webhooks
/// twice in a row and the dial ten times at once, the same "Stop." twice, the carrier's status
/// callbacks duplicated and in reverse order (`delivered` before `sent`), and a callback for a
/// message nobody sent: one call row, one text-back, one opt-out and one confirmation; every
/// text ends `delivered`; replaying everything afterwards changes no table.
#[tokio::test]
async fn duplicated_and_reordered_webhooks_store_and_send_once() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    w.fake.set_callback_plan(CallbackPlan {
        duplicate: true,
        reverse: true,
        ..CallbackPlan::default()
    });
    let server = w.server(0, None).await;
    let player = w.player(&server);
    let lead = "+16175550151";
    let sid = new_call_sid();
    let voice = player.incoming_call_params(&sid, lead, MAIN_ST);
    let dial = player.dial_result_params(&sid, lead, MAIN_ST, &DialResult::no_answer());
    let mut hooks: Vec<(&'static str, invariants::Params, Option<u16>)> = Vec::new();
    for (path, params) in [
        ("/twilio/voice", &voice),
        ("/twilio/voice", &voice),
        ("/twilio/voice/dial", &dial),
        ("/twilio/voice/dial", &dial),
    ] {
        let status = player.post_signed(path, params).await.unwrap().status;
        assert_eq!(status, 200, "{path}");
        hooks.push((path, params.clone(), Some(status)));
    }
    let at_once = (0..10).map(|_| player.post_signed("/twilio/voice/dial", &dial));
    for answer in futures_util::future::join_all(at_once).await {
        let status = answer.unwrap().status;
        assert_eq!(status, 200);
        hooks.push(("/twilio/voice/dial", dial.clone(), Some(status)));
    }
    w.wait_all_terminal(Duration::from_secs(30)).await;
    w.assert_one_text(lead).await;

    let stop = player.inbound_sms_params(&new_message_sid(), lead, MAIN_ST, "Stop.", 0, None);
    for _ in 0..2 {
        let status = player
            .post_signed("/twilio/sms", &stop)
            .await
            .unwrap()
            .status;
        assert_eq!(status, 200);
        hooks.push(("/twilio/sms", stop.clone(), Some(status)));
    }
    let unknown =
        player.message_status_params(&new_message_sid(), MAIN_ST, lead, "delivered", None);
    assert_eq!(
        player
            .post_signed("/twilio/sms/status", &unknown)
            .await
            .unwrap()
            .status,
        200,
        "a callback for a message we never sent is acknowledged"
    );
    w.wait_all_terminal(Duration::from_secs(30)).await;
    callbacks_settled(&w).await;

    let count = |sql: &'static str| {
        let pool = w.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(lead)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("select count(*) from call where from_raw = $1").await,
        1
    );
    assert_eq!(
        count(
            "select count(*) from job j join contact c using (brokerage_id, contact_id)
              where c.phone = $1 and j.kind = 'text_back'"
        )
        .await,
        1
    );
    assert_eq!(
        count("select count(*) from consent_event where phone = $1 and event = 'opt_out'").await,
        1
    );
    // The text-back and one confirmation, both delivered.
    let texts: Vec<String> = w
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == lead)
        .map(|m| m.status)
        .collect();
    assert_eq!(texts, ["delivered", "delivered"]);
    let ours: Vec<String> = sqlx::query_scalar(
        "select coalesce(carrier_status, '') from message where direction = 'outbound' and to_raw = $1",
    )
    .bind(lead)
    .fetch_all(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(ours, ["delivered", "delivered"]);

    // Everything again: nothing changes.
    let before = snapshot(&w.db.pool).await;
    for (path, params, _) in &hooks {
        assert_eq!(player.post_signed(path, params).await.unwrap().status, 200);
    }
    assert_eq!(
        player
            .post_signed("/twilio/sms/status", &unknown)
            .await
            .unwrap()
            .status,
        200
    );
    w.wait_all_terminal(Duration::from_secs(30)).await;
    assert_eq!(
        snapshot(&w.db.pool).await,
        before,
        "replays changed a table"
    );
    let bad = invariants::check(&w.db.pool, &w.fake, &hooks, &[]).await;
    assert!(bad.is_empty(), "reliability.md I1–I5:\n{}", bad.join("\n"));
}

/// docs/reliability.md F2–F5 against the real binary, one fresh world each: the carrier answering
/// 503 for the next 5 creates without making the text (F2), 500 after making it and 500
/// without (F3), 429 with `Retry-After: 2` (F4), and answering after 1.5 s, past the client's
/// 1 s timeout, having made it (F5). Each caller gets one text; a text the carrier made is
/// never requested again; a 429's `Retry-After` is honoured.
#[tokio::test]
async fn carrier_failures_against_the_real_binary_give_one_text_each() {
    let _serial = SERIAL.lock().await;
    let status = |http: u16, recorded: bool, retry_after: Option<u64>| Fault::Status {
        http,
        code: None,
        recorded,
        retry_after,
    };
    // (scenario, fault, for how many creates, creates expected in all)
    let cases = [
        ("F2 503 x5", status(503, false, None), 5, 6),
        ("F3 500 recorded", status(500, true, None), 1, 1),
        ("F3 500 not recorded", status(500, false, None), 1, 2),
        ("F4 429 Retry-After 2", status(429, false, Some(2)), 1, 2),
        ("F4 429 without Retry-After", status(429, false, None), 1, 2),
        (
            "F5 timeout, recorded",
            Fault::Delay {
                ms: 1500,
                recorded: true,
            },
            1,
            1,
        ),
    ];
    for (scenario, fault, times, creates) in cases {
        let w = world().await;
        w.fake.inject(fault, Scope::Next(times));
        let server = w.server(0, None).await;
        let lead = "+16175550161";
        miss(&w.player(&server), lead).await;
        w.wait_all_terminal(Duration::from_secs(60)).await;
        w.assert_invariants().await;
        w.assert_one_text(lead).await;
        let at: Vec<chrono::DateTime<chrono::Utc>> =
            w.create_requests().into_iter().map(|r| r.at).collect();
        assert_eq!(at.len(), creates, "{scenario}: creates");
        if scenario.contains("Retry-After 2") {
            assert!(
                at[1] - at[0] >= chrono::Duration::seconds(2),
                "{scenario}: the retry came {:?} after the 429",
                at[1] - at[0]
            );
        }
    }
}

/// Backends of the test's database waiting for a lock, and what they run.
async fn lock_waiters(w: &World) -> Vec<String> {
    sqlx::query_scalar(
        "select query from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' order by query_start",
    )
    .fetch_all(&w.db.pool)
    .await
    .unwrap()
}

async fn wait_for_lock_waiters(w: &World, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = lock_waiters(w).await;
        if waiting.len() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} transactions waiting for a lock; waiting: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The states (and reasons) of the jobs of `kind`, in order of creation.
async fn jobs_of(w: &World, kind: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as("select state, reason from job where kind = $1 order by job_id")
        .bind(kind)
        .fetch_all(&w.db.pool)
        .await
        .unwrap()
}

/// docs/reliability.md F11 against the real binary: STOP races the text-back. The test holds the
/// caller's contact row; the STOP webhook and the server's due text-back queue up behind it in
/// one order or the other; then the test lets go. STOP first: the text-back is
/// `skipped(opted_out)` and nothing is created. Text-back first (its create held at the
/// carrier until the STOP has committed): exactly one text, then the suppression, and the
/// follow-up the send arms is cancelled.
#[tokio::test]
async fn a_stop_racing_the_text_back_gives_no_text_or_exactly_one() {
    let _serial = SERIAL.lock().await;
    for stop_first in [true, false] {
        // A 3 s hold: time to take the contact's lock before the text-back is due.
        let w =
            world_with(&setup_with_follow_ups().replace("delay_secs = 0", "delay_secs = 3")).await;
        let server = w.server(0, None).await;
        let player = w.player(&server);
        let lead = if stop_first {
            "+16175550171"
        } else {
            "+16175550172"
        };
        if !stop_first {
            w.fake
                .inject(Fault::Hold { recorded: true }, Scope::Next(1));
        }
        miss(&player, lead).await;
        let holder = w.hold_contact(lead).await;
        let stop = player.inbound_sms_params(&new_message_sid(), lead, MAIN_ST, "STOP", 0, None);
        let post_stop = || {
            let player = w.player(&server);
            let stop = stop.clone();
            tokio::spawn(async move {
                player
                    .post_signed("/twilio/sms", &stop)
                    .await
                    .unwrap()
                    .status
            })
        };
        let stop_answer = if stop_first {
            let answer = post_stop();
            wait_for_lock_waiters(&w, 1).await;
            // The text-back comes due and its pre-send transaction queues behind the STOP.
            wait_for_lock_waiters(&w, 2).await;
            answer
        } else {
            wait_for_lock_waiters(&w, 1).await;
            let answer = post_stop();
            wait_for_lock_waiters(&w, 2).await;
            answer
        };
        let waiting = lock_waiters(&w).await;
        assert!(
            waiting.iter().all(|q| q.contains("for update")),
            "both wait for the contact's row lock: {waiting:?}"
        );
        holder.rollback().await.unwrap();
        assert_eq!(stop_answer.await.unwrap(), 200);
        if !stop_first {
            w.wait_held(1).await;
            w.fake.release_held();
        }
        w.wait_all_terminal(Duration::from_secs(30)).await;
        w.assert_invariants().await;

        let suppressed: Option<String> =
            sqlx::query_scalar("select source from suppression where phone = $1")
                .bind(lead)
                .fetch_optional(&w.db.pool)
                .await
                .unwrap();
        assert_eq!(suppressed.as_deref(), Some("carrier_keyword"));
        let to_lead: Vec<String> = w
            .fake
            .messages()
            .into_iter()
            .filter(|m| m.to == lead)
            .map(|m| m.body)
            .collect();
        if stop_first {
            assert!(to_lead.is_empty(), "no text after the STOP: {to_lead:?}");
            assert_eq!(
                jobs_of(&w, "text_back").await,
                [("skipped".to_owned(), Some("opted_out".to_owned()))]
            );
            assert!(jobs_of(&w, "follow_up").await.is_empty());
        } else {
            assert_eq!(to_lead.len(), 1, "exactly one text: {to_lead:?}");
            assert!(to_lead[0].contains("Sorry we missed your call"));
            assert_eq!(jobs_of(&w, "text_back").await[0].0, "sent");
            assert_eq!(
                jobs_of(&w, "follow_up").await,
                [("cancelled".to_owned(), Some("opted_out".to_owned()))],
                "the sequence stops at the opt-out"
            );
        }
    }
}

/// docs/reliability.md F14, docs/compliance.md R1 against the real binary: a caller of the Downtown
/// office's Main St number gets the text-back (its follow-up armed), then texts STOP to that
/// number; later they call the Waterfront office's Elm St line and nobody answers. Jo, a
/// Waterfront agent, sees the missed call in the inbox and replies: refused, with the reason
/// on the page; nothing is created; Downtown's follow-up is cancelled.
#[tokio::test]
async fn a_stop_to_one_office_refuses_a_reply_from_another() {
    const ELM_ST: &str = "+15555550110";
    let _serial = SERIAL.lock().await;
    let w = world_with(&setup_with_follow_ups()).await;
    let server = w.server(0, None).await;
    let player = w.player(&server);
    let lead = "+16175550173";
    miss(&player, lead).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while jobs_of(&w, "text_back").await != [("sent".to_owned(), None)] {
        assert!(Instant::now() < deadline, "the text-back was not sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(w.accepted_to(lead), 1, "the text-back from Main St");
    assert_eq!(
        jobs_of(&w, "follow_up").await,
        [("scheduled".to_owned(), None)]
    );

    let stop = player.inbound_sms_params(&new_message_sid(), lead, MAIN_ST, "STOP", 0, None);
    assert_eq!(
        player
            .post_signed("/twilio/sms", &stop)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        jobs_of(&w, "follow_up").await,
        [("cancelled".to_owned(), Some("opted_out".to_owned()))],
        "Downtown's follow-up is cancelled"
    );

    let sid = new_call_sid();
    player.incoming_call(&sid, lead, ELM_ST).await.unwrap();
    player
        .dial_result(&sid, lead, ELM_ST, DialResult::no_answer())
        .await
        .unwrap();
    w.wait_all_terminal(Duration::from_secs(30)).await;

    add_login(&w.db.pool, "harbor", "jo@harbor.example", PASSWORD).await;
    let mut jo = log_in_at(&server.base(), "jo@harbor.example", PASSWORD).await;
    let id: i64 = sqlx::query_scalar(
        "select v.conversation_id from conversation v join contact c using (brokerage_id, contact_id)
          where c.phone = $1",
    )
    .bind(lead)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    let page = jo.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(page.status, 200, "Jo sees the Elm St call");
    let texts_before = w.creates();
    let refused = jo
        .post(
            &format!("/inbox/c/{id}/reply"),
            &[("body", "Hi, Jo from the waterfront office here")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("opted out"),
        "the reason is shown: {}",
        refused.body
    );
    w.wait_all_terminal(Duration::from_secs(30)).await;
    w.assert_invariants().await;
    assert_eq!(w.creates(), texts_before, "no create for the refused reply");
    assert_eq!(w.accepted_to(lead), 1, "the Main St text-back only");
    assert!(jobs_of(&w, "agent_reply").await.is_empty());
    let text_backs = jobs_of(&w, "text_back").await;
    // The Elm St miss fell inside the Main St call's episode (docs/architecture.md step 2: a day after its
    // text-back): recorded, no second text-back.
    assert_eq!(text_backs, [("sent".to_owned(), None)]);
    let calls: i64 = sqlx::query_scalar("select count(*) from call where from_raw = $1")
        .bind(lead)
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(calls, 2);
}

/// docs/reliability.md F6 against the real binary: the carrier refuses connections. Back within
/// the retry budget (10 s with the test timing): the text goes once. Down past it: the job
/// ends `dead` with the connection error as its reason, and nothing is sent when the carrier
/// returns.
#[tokio::test]
async fn an_unreachable_carrier_gives_one_text_when_back_or_a_dead_job_with_the_reason() {
    let _serial = SERIAL.lock().await;
    for back_in_time in [true, false] {
        let w = world().await;
        let server = w.server(0, None).await;
        let lead = if back_in_time {
            "+16175550181"
        } else {
            "+16175550182"
        };
        w.fake.go_down().await;
        miss(&w.player(&server), lead).await;
        let job = || async {
            sqlx::query_as::<_, (String, i32, Option<String>, Option<String>)>(
                "select state, attempt, reason, last_error from job where kind = 'text_back'",
            )
            .fetch_one(&w.db.pool)
            .await
            .unwrap()
        };
        if back_in_time {
            let deadline = Instant::now() + Duration::from_secs(20);
            while job().await.1 < 2 {
                assert!(Instant::now() < deadline, "no retry: {:?}", job().await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let (state, _, _, error) = job().await;
            assert!(
                matches!(state.as_str(), "scheduled" | "running"),
                "a refused connection is retried: {state}"
            );
            assert!(error.is_some(), "the failure is kept");
            w.fake.go_up().await.unwrap();
            w.wait_all_terminal(Duration::from_secs(30)).await;
            w.assert_invariants().await;
            w.assert_one_text(lead).await;
            assert_eq!(w.creates(), 1);
        } else {
            w.wait_all_terminal(Duration::from_secs(60)).await;
            w.fake.go_up().await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            w.assert_invariants().await;
            let (state, _, reason, error) = job().await;
            assert_eq!(state, "dead");
            let said = format!("{reason:?} {error:?}");
            assert!(
                said.contains("connect") || said.contains("refused"),
                "the reason names the connection: {said}"
            );
            assert_eq!(w.creates(), 0);
            assert!(w.fake.messages().is_empty());
        }
    }
}

/// The lead's creates at the carrier, in order of arrival, with when they came.
fn creates_to(w: &World, to: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
    w.create_requests()
        .into_iter()
        .filter(|r| r.params.iter().any(|(k, v)| k == "To" && v == to))
        .map(|r| r.at)
        .collect()
}

/// docs/reliability.md F3's list variants against the real binary: the carrier answers 500 after
/// making the text, and then its message list fails every time (past the retry budget) or
/// shows every text twice: the text-back ends `needs_review` with the reason, a person is
/// alerted, and the text is never requested a second time.
#[tokio::test]
async fn a_list_that_cannot_settle_a_send_leaves_it_for_review_never_resent() {
    let _serial = SERIAL.lock().await;
    for (fault, reason) in [
        (Fault::ListFail, "carrier_list_unreadable"),
        (Fault::ListDup, "carrier_list_ambiguous"),
    ] {
        let w = world().await;
        w.fake.inject(
            Fault::Status {
                http: 500,
                code: None,
                recorded: true,
                retry_after: None,
            },
            Scope::Next(1),
        );
        w.fake.inject(fault, Scope::Always);
        let server = w.server(0, None).await;
        let lead = "+16175550183";
        miss(&w.player(&server), lead).await;
        w.wait_all_terminal(Duration::from_secs(60)).await;
        w.assert_invariants().await;
        assert_eq!(creates_to(&w, lead).len(), 1, "{reason}: one create");
        let (state, why): (String, Option<String>) =
            sqlx::query_as("select state, reason from job where kind = 'text_back'")
                .fetch_one(&w.db.pool)
                .await
                .unwrap();
        assert_eq!(
            (state.as_str(), why.as_deref()),
            ("needs_review", Some(reason))
        );
        let alerts: i64 =
            sqlx::query_scalar("select count(*) from alert where reason = 'text_needs_review'")
                .fetch_one(&w.db.pool)
                .await
                .unwrap();
        assert_eq!(alerts, 1, "{reason}: a person is told");
    }
}

/// Issue 15 §2 against the real binary: the carrier answers 500 after making the text and
/// keeps it under another body (a trial account's prefix), and its list lags the create by a
/// second: the text-back ends `needs_review` (`carrier_body_differs`), never a second create.
#[tokio::test]
async fn a_text_kept_under_another_body_is_left_for_review_never_resent() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    w.fake
        .keep_bodies(KeptBody::Prefixed(TRIAL_PREFIX.to_owned()));
    w.fake.set_list_lag(chrono::Duration::seconds(1));
    w.fake.inject(
        Fault::Status {
            http: 500,
            code: None,
            recorded: true,
            retry_after: None,
        },
        Scope::Next(1),
    );
    let server = w.server(0, None).await;
    let lead = "+16175550184";
    miss(&w.player(&server), lead).await;
    w.wait_all_terminal(Duration::from_secs(60)).await;
    w.assert_invariants().await;
    assert_eq!(creates_to(&w, lead).len(), 1, "one create");
    let (state, why): (String, Option<String>) =
        sqlx::query_as("select state, reason from job where kind = 'text_back'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), why.as_deref()),
        ("needs_review", Some("carrier_body_differs"))
    );
}

/// docs/reliability.md F2's variant against the real binary, docs/compliance.md R7/R14: the carrier
/// answers 503 while the Boston evening window closes (the gate stops at 19:58). The retry
/// after the close is deferred to 08:00, not sent late; restarted at 08:00:05, the text goes
/// once, and no create ever reached the carrier between 19:58 and 08:00.
#[tokio::test]
async fn a_carrier_outage_across_the_window_close_defers_to_the_morning() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    w.fake.inject(
        Fault::Status {
            http: 503,
            code: None,
            recorded: false,
            retry_after: None,
        },
        Scope::For(Duration::from_secs(60)),
    );
    // Friday 2026-06-12 19:57:55 EDT: a few seconds of 503s before the close, within the
    // retry budget (10 s with the test timing), which would otherwise end the job `dead`.
    let mut evening = w.server_at(0, None, at("2026-06-12T23:57:55Z")).await;
    let lead = "+16175550184";
    miss(&w.player(&evening), lead).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let until = loop {
        let row: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "select until from gate_decision where kind = 'text_back' and decision = 'defer' and reason = 'quiet_hours'",
        )
        .fetch_optional(&w.db.pool)
        .await
        .unwrap();
        if let Some(until) = row {
            break until;
        }
        assert!(Instant::now() < deadline, "the text-back was not deferred");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(until, at("2026-06-13T12:00:00Z"), "Saturday 08:00 EDT");
    assert!(
        !creates_to(&w, lead).is_empty(),
        "the outage was met before the close"
    );
    assert!(w.fake.messages().is_empty());
    evening.kill9();
    w.fake.clear_faults();

    let _morning = w
        .server_at(evening.port, None, at("2026-06-13T12:00:05Z"))
        .await;
    w.wait_all_terminal(Duration::from_secs(30)).await;
    w.assert_invariants().await;
    w.assert_one_text(lead).await;
    // Each attempt's pre-send record, on the servers' clock (the fake's runs on its own).
    let attempts: Vec<(chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(
        "select occurred_at, send_state from message where direction = 'outbound' and to_raw = $1 order by message_id",
    )
    .bind(lead)
    .fetch_all(&w.db.pool)
    .await
    .unwrap();
    let (sent_at, state) = attempts.last().unwrap();
    assert_eq!(state, "sent");
    assert!(
        *sent_at >= until,
        "the text went at {sent_at}, before the window"
    );
    assert!(
        attempts
            .iter()
            .all(|(t, _)| *t < at("2026-06-12T23:58:00Z") || *t >= until),
        "an attempt while the window was closed: {attempts:?}"
    );
    assert!(attempts.len() >= 2, "503s first: {attempts:?}");
}

/// Found by the F12 kill variant on a loaded CI machine: a worker slow enough to outlive its
/// lease. Its create is held at the carrier; the test holds the caller's row, so the record of
/// the carrier's answer waits; the lease runs out and the job is re-claimed, sees the unsettled
/// send and waits for a reconcile (whose listings fail); then the first attempt's record lands
/// (the text was made) while the reconcile still looks. The job must follow its message to
/// `sent`, not wait in `reconciling` for ever; one text.
#[tokio::test]
async fn a_worker_that_outlives_its_lease_leaves_no_job_behind() {
    let _serial = SERIAL.lock().await;
    let w = world().await;
    w.fake
        .inject(Fault::Hold { recorded: true }, Scope::Next(1));
    w.fake.inject(Fault::ListFail, Scope::Always);
    let server = w.server(0, None).await;
    let lead = "+16175550185";
    miss(&w.player(&server), lead).await;
    w.wait_held(1).await;
    let holder = w.hold_contact(lead).await;
    // Answered within the client's 1 s timeout: the record waits for the row.
    w.fake.release_held();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (state, attempt): (String, i32) =
            sqlx::query_as("select state, attempt from job where kind = 'text_back'")
                .fetch_one(&w.db.pool)
                .await
                .unwrap();
        if state == "reconciling" && attempt == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job was not re-claimed: {state} {attempt}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    holder.rollback().await.unwrap();
    w.wait_all_terminal(Duration::from_secs(30)).await;
    w.fake.clear_faults();
    w.assert_invariants().await;
    w.assert_one_text(lead).await;
    assert_eq!(w.creates(), 1);
}

/// The demo setup with `callback = "auto"` on the 123 Main St line (docs/calls.md).
fn setup_auto_callback() -> String {
    setup().replace(
        "missed_message = \"Sorry we missed you. We will text you in a moment.\"",
        "missed_message = \"Sorry we missed you. We will text you in a moment.\"\ncallback = \"auto\"",
    )
}

fn call_creates(w: &World) -> usize {
    w.fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/Calls.json"))
        .count()
}

/// The callbacks' (outcome, detail), waiting until every one has ended.
async fn callbacks_ended(w: &World, within: Duration) -> Vec<(String, Option<String>)> {
    let deadline = Instant::now() + within;
    loop {
        let rows: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("select state, outcome, detail from callback order by callback_id")
                .fetch_all(&w.db.pool)
                .await
                .unwrap();
        if !rows.is_empty() && rows.iter().all(|(s, _, _)| s == "ended") {
            return rows
                .into_iter()
                .map(|(_, o, d)| (o.unwrap_or_default(), d))
                .collect();
        }
        assert!(Instant::now() < deadline, "callbacks still live: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// docs/calls.md "At most once": a call create whose answer never comes in time (the client gives
/// up after its timeout; the carrier created the call, whose webhooks do not come either) is
/// found in the carrier's list of calls and adopted, never created again.
#[tokio::test]
async fn a_call_create_that_timed_out_is_found_in_the_list_and_placed_once() {
    let _serial = SERIAL.lock().await;
    let w = world_with(&setup_auto_callback()).await;
    w.fake.inject_call_fault(
        Fault::Delay {
            ms: 3000,
            recorded: true,
        },
        Scope::Next(1),
    );
    let server = w.server(0, None).await;
    miss(&w.player(&server), "+16175550161").await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let adopted = loop {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("select state, agent_call_sid from callback")
                .fetch_optional(&w.db.pool)
                .await
                .unwrap();
        if let Some((state, Some(sid))) = row {
            break (state, sid);
        }
        assert!(
            Instant::now() < deadline,
            "the call was never adopted: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let calls = w.fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(adopted, ("ringing".to_owned(), calls[0].sid.clone()));
    assert_eq!(call_creates(&w), 1, "never created twice");
}

/// The server killed between the agent's 1 and the bridge: the agent hears the carrier's error
/// and the lead is never dialled. Restarted, the `call_back` job settles the callback from the
/// carrier's record of the call (`not_bridged`), nothing is called twice, and the text-back,
/// which the bridge did not cancel, goes once.
#[tokio::test]
async fn killed_between_the_agents_1_and_the_bridge_the_callback_ends_not_bridged() {
    let _serial = SERIAL.lock().await;
    let w = world_with(&setup_auto_callback()).await;
    w.fake.set_default_call_plan(Some(CallPlan::connects(20)));
    let lead = "+16175550162";
    let mut server = w.server(0, Some("after_callback_press")).await;
    miss(&w.player(&server), lead).await;
    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert!(!status.success(), "the crash point was reached");
    assert!(w.fake.dialed().is_empty(), "the lead was never dialled");
    // Ten minutes on: past the ring timeout, when the job looks at the call again.
    let later = test_start()
        + chrono::Duration::from_std(w.made.elapsed()).unwrap()
        + chrono::Duration::minutes(10);
    let _restarted = w.server_at(server.port, None, later).await;
    let ended = callbacks_ended(&w, Duration::from_secs(40)).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].0, "not_bridged", "{ended:?}");
    assert!(
        ended[0]
            .1
            .as_deref()
            .is_some_and(|d| d.contains("carrier's record")),
        "{ended:?}"
    );
    assert_eq!(call_creates(&w), 1, "never created twice");
    w.wait_all_terminal(Duration::from_secs(40)).await;
    w.assert_one_text(lead).await;
    w.assert_invariants().await;
}
