//! The scheduler itself, with no-op jobs (docs/architecture.md "The scheduler"): several workers on one
//! database never work a job twice, a job whose worker died is re-claimed after its lease, a
//! future job is woken by its timer, and every transition lands in `job_transition`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use textback::clock::{ManualClock, SharedClock, SystemClock};
use textback::config::Config;
use textback::context::AppState;
use textback::scheduler::{Scheduler, Timing};
use textback::store::{BrokerageId, jobs};

use crate::helpers::{DEMO, TOKEN, TestDb, apply_setup, test_start};

/// An app state on its own pool, as another server process would have one.
fn state(db_url: &str, pool: sqlx::PgPool, clock: SharedClock, timing: Timing) -> AppState {
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", db_url.to_owned()),
        ("TWILIO_AUTH_TOKEN", TOKEN.to_owned()),
        ("TEXTBACK_SPOOL_DIR", crate::helpers::spool_dir()),
    ]);
    let config = Config::from_lookup(move |k| vars.get(k).cloned()).expect("config");
    textback::build_with(config, pool, clock, timing)
        .expect("build")
        .state
}

async fn count(pool: &sqlx::PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn three_workers_on_one_database_never_run_a_job_twice() {
    let db = TestDb::new().await;
    let brokerage = BrokerageId(apply_setup(&db.pool, DEMO).await.brokerage_id);
    let clock: SharedClock = Arc::new(SystemClock);
    // Small claims, so the three workers interleave many times over the backlog.
    // The production lease: on a loaded machine a 3 s lease could expire between a claim and
    // its finish, and a legitimate re-claim would look like a double run.
    let timing = Timing {
        batch: 25,
        concurrency: 50,
        poll_interval: StdDuration::from_millis(200),
        lease: StdDuration::from_secs(60),
        ..Timing::fast()
    };
    let n: i64 = 3000;
    let now = clock.now();
    let due: Vec<_> = (0..n)
        .map(|i| now - Duration::minutes(1) + Duration::microseconds(i))
        .collect();
    let mut conn = db.pool.acquire().await.expect("conn");
    jobs::enqueue_noops(&mut conn, brokerage, &due, now)
        .await
        .expect("enqueue");
    drop(conn);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut states = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let s = state(&db.url, db.another_pool().await, clock.clone(), timing);
        workers.push(tokio::spawn(Scheduler::new(s.clone()).run(stop_rx.clone())));
        states.push(s);
    }
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(120);
    while count(&db.pool, "select count(*) from job where state = 'done'").await < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workers did not finish the backlog"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    for w in workers {
        w.await.expect("a worker stops cleanly");
    }

    let handled: Vec<u64> = states
        .iter()
        .map(|s| s.metrics.handled.load(Ordering::Relaxed))
        .collect();
    assert_eq!(
        handled.iter().sum::<u64>(),
        u64::try_from(n).expect("n"),
        "every job ran exactly once across the workers: {handled:?}"
    );
    assert_eq!(
        count(
            &db.pool,
            "select count(*) from (select job_id from job_transition where to_state = 'running'
              group by job_id having count(*) <> 1) twice"
        )
        .await,
        0,
        "each job was claimed once"
    );
    assert_eq!(
        count(
            &db.pool,
            "select count(*) from job where attempt <> 1 or lease_until is not null or reason <> 'noop'"
        )
        .await,
        0
    );
    // Every job's history: scheduled → running → done, in that order.
    assert_eq!(
        count(
            &db.pool,
            "select count(*) from (
               select job_id, array_agg(to_state order by job_transition_id) as path
                 from job_transition group by job_id) h
              where path <> array['scheduled', 'running', 'done']"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_job_whose_worker_died_is_reclaimed_after_its_lease_and_not_before() {
    let db = TestDb::new().await;
    let brokerage = BrokerageId(apply_setup(&db.pool, DEMO).await.brokerage_id);
    let clock = ManualClock::new(test_start());
    let now = test_start();
    let mut conn = db.pool.acquire().await.expect("conn");
    jobs::enqueue_noops(&mut conn, brokerage, &[now - Duration::seconds(1)], now)
        .await
        .expect("enqueue");
    drop(conn);
    // A worker claims it (lease of 3 s in the fast timing) and dies without finishing.
    let mut conn = db.pool.acquire().await.expect("conn");
    let claimed = jobs::claim(&mut conn, now, Duration::seconds(3), 10, None)
        .await
        .expect("claim");
    drop(conn);
    assert_eq!(claimed.len(), 1);

    let scheduler = Scheduler::new(state(
        &db.url,
        db.pool.clone(),
        clock.clone(),
        Timing::fast(),
    ));
    // Within the lease nobody else may take it.
    clock.advance(Duration::seconds(2));
    assert_eq!(scheduler.drain().await.expect("drain"), 0);
    // Past the lease it is re-claimed, with the next attempt, and finished.
    clock.advance(Duration::seconds(2));
    assert_eq!(scheduler.drain().await.expect("drain"), 1);
    let (state, attempt): (String, i32) =
        sqlx::query_as("select state, attempt from job where kind = 'noop'")
            .fetch_one(&db.pool)
            .await
            .expect("job");
    assert_eq!((state.as_str(), attempt), ("done", 2));
    assert_eq!(
        count(
            &db.pool,
            "select count(*) from job_transition where to_state = 'running'"
        )
        .await,
        2,
        "both claims are in the job's history"
    );
}

#[tokio::test]
async fn a_future_job_is_woken_by_its_timer_without_waiting_for_the_poll() {
    let db = TestDb::new().await;
    let brokerage = BrokerageId(apply_setup(&db.pool, DEMO).await.brokerage_id);
    let clock: SharedClock = Arc::new(SystemClock);
    // The poll would look again only after an hour: only the timer set to the job's
    // run_at can start it within the test.
    let timing = Timing {
        poll_interval: StdDuration::from_secs(3600),
        ..Timing::fast()
    };
    let s = state(&db.url, db.another_pool().await, clock.clone(), timing);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(Scheduler::new(s).run(stop_rx));
    // Let the worker start listening and go to sleep on an empty table.
    tokio::time::sleep(StdDuration::from_millis(300)).await;

    let run_at = Utc::now() + Duration::milliseconds(1500);
    let mut conn = db.pool.acquire().await.expect("conn");
    let job_id = jobs::enqueue_noops(&mut conn, brokerage, &[run_at], Utc::now())
        .await
        .expect("enqueue")[0];
    drop(conn);

    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    let started = loop {
        let at: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
            "select at from job_transition where job_id = $1 and to_state = 'running'",
        )
        .bind(job_id)
        .fetch_optional(&db.pool)
        .await
        .expect("transition");
        if let Some(at) = at {
            break at;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the future job never started"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };
    assert!(
        started >= run_at,
        "started {started} before its run_at {run_at}"
    );
    let _ = stop_tx.send(true);
    worker.await.expect("the worker stops");
}

#[tokio::test]
async fn a_claim_never_takes_more_than_its_limit_and_expired_leases_go_first() {
    let db = TestDb::new().await;
    let brokerage = BrokerageId(apply_setup(&db.pool, DEMO).await.brokerage_id);
    let now = test_start();
    let mut conn = db.pool.acquire().await.expect("conn");
    // Two jobs claimed by a worker that then died.
    jobs::enqueue_noops(
        &mut conn,
        brokerage,
        &[now - Duration::seconds(30), now - Duration::seconds(29)],
        now - Duration::seconds(30),
    )
    .await
    .expect("enqueue");
    let first = jobs::claim(
        &mut conn,
        now - Duration::seconds(20),
        Duration::seconds(3),
        10,
        None,
    )
    .await
    .expect("claim");
    assert_eq!(first.len(), 2);
    // Five more due now.
    let due: Vec<_> = (0..5).map(|i| now - Duration::seconds(i)).collect();
    jobs::enqueue_noops(&mut conn, brokerage, &due, now)
        .await
        .expect("enqueue");

    let claimed = jobs::claim(&mut conn, now, Duration::seconds(3), 3, None)
        .await
        .expect("claim");
    assert_eq!(
        claimed.len(),
        3,
        "the limit covers expired and due jobs together"
    );
    let reclaimed = claimed
        .iter()
        .filter(|j| j.prev_state == textback::store::jobs::JobState::Running)
        .count();
    assert_eq!(reclaimed, 2, "the dead worker's jobs come first");
    let rest = jobs::claim(&mut conn, now, Duration::seconds(3), 10, None)
        .await
        .expect("claim");
    assert_eq!(rest.len(), 4, "the other due jobs are still there");
}
