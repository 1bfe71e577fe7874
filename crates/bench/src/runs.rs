//! `textback-bench queue`: the scheduler measured the way `../shared/bench/peer-queue.sh`
//! measures the peers (graphile-worker, procrastinate), printing `RESULT system=ours …` lines
//! with the same keys, so all of them line up in one table from one run.
//!
//! * burn-down: N no-op jobs enqueued in bulk (not timed), then one worker started; jobs/s
//!   from its start until the last job is finished;
//! * enqueue → start: one job at a time after an idle pause, woken by `NOTIFY`;
//! * lateness: jobs due 1–3 s in the future; actual start − `run_at`.
//!
//! Environment: `DATABASE_URL` (the bench runs on a fresh `NAME_bench_queue` beside it),
//! `PEERQ_JOBS` (20000),
//! `PEERQ_SCHED_JOBS` (200), `PEERQ_LAT_SAMPLES` (300), `PEERQ_LAT_GAP_MS` (20),
//! `PEERQ_ANALYZE` (1: ANALYZE after the bulk enqueue, as autoanalyze would),
//! `PEERQ_CHECKPOINT` (1: CHECKPOINT before the burn-down, as the script does before each
//! pgbench run; needs a superuser, and is skipped silently otherwise).

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::Context as _;
use chrono::{Duration, Utc};
use sqlx::PgPool;

use textback::clock::{Clock, SystemClock};
use textback::config::Config;
use textback::scheduler::{Scheduler, Timing};
use textback::store::{BrokerageId, jobs};

const BENCH_SETUP: &str = r#"
[brokerage]
slug = "bench"
name = "Bench"
time_zone = "America/New_York"
[text_back]
template = "Bench {brokerage}. Reply STOP to opt out."
"#;

pub(crate) fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The worker settings the burn-down uses: deep claims and many slots, since a no-op job
/// holds nothing (the production worker takes 100 jobs a claim and runs 32 at once).
/// `BENCH_BATCH`, `BENCH_CONCURRENCY` and `BENCH_CLAIMERS` override them.
pub fn bench_timing() -> Timing {
    let n = |name: &str, default: u64| usize::try_from(env_num(name, default)).unwrap_or(1);
    Timing {
        concurrency: n("BENCH_CONCURRENCY", 4000),
        batch: n("BENCH_BATCH", 1000),
        claimers: n("BENCH_CLAIMERS", 2),
        poll_interval: StdDuration::from_millis(1000),
        ..Timing::production()
    }
}

pub async fn queue() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let n = env_num("PEERQ_JOBS", 20_000);
    let sched = env_num("PEERQ_SCHED_JOBS", 200);
    let samples = env_num("PEERQ_LAT_SAMPLES", 300);
    let gap_ms = env_num("PEERQ_LAT_GAP_MS", 20);
    let analyze = env_num("PEERQ_ANALYZE", 1) == 1;

    // Its own database beside DATABASE_URL's: the bench writes a brokerage and 20,000 jobs.
    let (_, db_url, pool) =
        textback::demo::fresh_database(&config.database_url, "bench_queue").await?;
    let file =
        textback::setup::parse(BENCH_SETUP).map_err(|p| anyhow::anyhow!("bench setup: {p:?}"))?;
    let applied = textback::store::setup::apply(&pool, &file)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let brokerage = BrokerageId(applied.brokerage_id);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut vars = std::collections::HashMap::new();
    vars.insert("DATABASE_URL", db_url);
    vars.insert("TWILIO_AUTH_TOKEN", "bench".to_owned());
    let bench_config = Config::from_lookup(move |k| vars.get(k).cloned())?;
    let app = textback::build_with(bench_config, pool.clone(), clock.clone(), bench_timing())?;

    // Bulk enqueue (not part of the burn-down).
    let enqueue_started = Instant::now();
    let now = clock.now();
    let mut left = n;
    let mut i = 0u64;
    while left > 0 {
        let chunk = left.min(5000);
        let due: Vec<_> = (0..chunk)
            .map(|k| {
                now - Duration::hours(1) + Duration::microseconds(i64::try_from(i + k).unwrap_or(0))
            })
            .collect();
        let mut conn = pool.acquire().await?;
        jobs::enqueue_noops(&mut conn, brokerage, &due, now).await?;
        left -= chunk;
        i += chunk;
    }
    let enqueue_bulk_per_s = n as f64 / enqueue_started.elapsed().as_secs_f64();
    if analyze {
        sqlx::query("analyze job").execute(&pool).await?;
    }
    if env_num("PEERQ_CHECKPOINT", 1) == 1 {
        sqlx::query("checkpoint").execute(&pool).await.ok();
    }

    // Burn-down.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let worker = tokio::spawn(Scheduler::new(app.state.clone()).run(stop_rx));
    // Two end points: the last handler returned (how peer-queue.sh times the peers), and the
    // last outcome written (the counter moves after the finishing update commits).
    let metrics = app.state.metrics.clone();
    let deadline = Instant::now() + StdDuration::from_secs(600);
    let mut handled_at = None;
    while metrics.job_count("noop", "done") < n {
        anyhow::ensure!(Instant::now() < deadline, "the burn-down did not finish");
        if handled_at.is_none() && metrics.handled.load(std::sync::atomic::Ordering::Relaxed) >= n {
            handled_at = Some(started.elapsed());
        }
        tokio::time::sleep(StdDuration::from_micros(500)).await;
    }
    let written = started.elapsed();
    let burn = handled_at.unwrap_or(written);
    let work_jobs_per_s = n as f64 / burn.as_secs_f64();
    let written_jobs_per_s = n as f64 / written.as_secs_f64();

    // Optionally a deep table of jobs due tomorrow (BENCH_FUTURE_JOBS): the claim must still
    // find the due ones at once (docs/benchmarks.md: claim latency with 1M scheduled future jobs).
    let future = env_num("BENCH_FUTURE_JOBS", 0);
    if future > 0 {
        let tomorrow = clock.now() + Duration::days(1);
        let mut left = future;
        let mut i = 0u64;
        while left > 0 {
            let chunk = left.min(5000);
            let due: Vec<_> = (0..chunk)
                .map(|k| tomorrow + Duration::microseconds(i64::try_from(i + k).unwrap_or(0)))
                .collect();
            let mut conn = pool.acquire().await?;
            jobs::enqueue_noops(&mut conn, brokerage, &due, clock.now()).await?;
            left -= chunk;
            i += chunk;
        }
        if analyze {
            sqlx::query("analyze job").execute(&pool).await?;
        }
    }

    // Enqueue → start, one job at a time, each after an idle pause.
    let mut latencies = Vec::new();
    for _ in 0..samples {
        tokio::time::sleep(StdDuration::from_millis(gap_ms)).await;
        let enqueued = clock.now();
        let mut conn = pool.acquire().await?;
        let ids = jobs::enqueue_noops(&mut conn, brokerage, &[enqueued], enqueued).await?;
        let id = *ids.first().context("the job was not enqueued")?;
        drop(conn);
        let start = wait_started(&pool, id, StdDuration::from_secs(10)).await?;
        latencies.push((start - enqueued).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }

    // Lateness of future jobs.
    let base = clock.now() + Duration::seconds(1);
    let due: Vec<_> = (0..sched)
        .map(|k| base + Duration::milliseconds(i64::try_from(k * 2000 / sched.max(1)).unwrap_or(0)))
        .collect();
    let mut conn = pool.acquire().await?;
    jobs::enqueue_noops(&mut conn, brokerage, &due, clock.now()).await?;
    drop(conn);
    let deadline = Instant::now() + StdDuration::from_secs(60);
    while metrics.job_count("noop", "done") < n + samples + sched {
        anyhow::ensure!(Instant::now() < deadline, "the future jobs did not all run");
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let lateness: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from (t.at - j.run_at))::float8 * 1000
           from job j join job_transition t on t.job_id = j.job_id and t.to_state = 'running'
          where j.kind = 'noop' and j.run_at >= $1",
    )
    .bind(base)
    .fetch_all(&pool)
    .await
    .context("lateness")?;
    anyhow::ensure!(
        lateness.len() as u64 == sched,
        "expected {sched} future jobs, found {}",
        lateness.len()
    );

    let _ = stop_tx.send(true);
    let _ = worker.await;

    let (l50, l99, lmax) = percentiles(latencies);
    let (s50, s99, smax) = percentiles(lateness);
    println!(
        "RESULT system=ours config=batch{}-c{}-claimers{} jobs={n} work_jobs_per_s={:.0} burn_ms={:.0} written_jobs_per_s={:.0} written_ms={:.0} enqueue_bulk_per_s={:.0} \
         notify_start_p50_ms={l50:.2} notify_start_p99_ms={l99:.2} notify_start_max_ms={lmax:.2} lat_gap_ms={gap_ms} \
         sched_late_p50_ms={s50:.0} sched_late_p99_ms={s99:.0} sched_late_max_ms={smax:.0} future_jobs={future} analyzed={}",
        bench_timing().batch,
        bench_timing().concurrency,
        bench_timing().claimers,
        work_jobs_per_s,
        burn.as_secs_f64() * 1000.0,
        written_jobs_per_s,
        written.as_secs_f64() * 1000.0,
        enqueue_bulk_per_s,
        u8::from(analyze)
    );
    Ok(())
}

async fn wait_started(
    pool: &PgPool,
    job_id: i64,
    within: StdDuration,
) -> anyhow::Result<chrono::DateTime<Utc>> {
    let deadline = Instant::now() + within;
    // Polled by primary key; the log is read once the job has left `scheduled` (its lookup by
    // job goes through a BRIN index, too coarse to poll every millisecond).
    loop {
        let state: Option<String> = sqlx::query_scalar("select state from job where job_id = $1")
            .bind(job_id)
            .fetch_optional(pool)
            .await?;
        if state.is_some_and(|s| s != "scheduled") {
            return sqlx::query_scalar(
                "select at from job_transition where job_id = $1 and to_state = 'running' order by at limit 1",
            )
            .bind(job_id)
            .fetch_one(pool)
            .await
            .with_context(|| format!("job {job_id} left scheduled without a recorded start"));
        }
        anyhow::ensure!(Instant::now() < deadline, "job {job_id} never started");
        tokio::time::sleep(StdDuration::from_millis(1)).await;
    }
}

pub(crate) fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        v[((v.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(v.len() - 1)]
    };
    (at(0.50), at(0.99), at(1.0))
}

/// The pipeline bench's brokerage: one number, the text-back at once (`delay_secs = 0`).
pub(crate) const PIPELINE_SETUP: &str = r#"
[brokerage]
slug = "pipeline"
name = "Pipeline Realty"
time_zone = "America/New_York"

[[offices]]
slug = "main"
name = "Main"

[[agents]]
email = "sam@pipeline.example"
name = "Sam Rivera"
phone = "+15555550101"
office = "main"
role = "agent"

[[numbers]]
number = "+15555550100"
office = "main"
ring = ["sam@pipeline.example"]

[text_back]
delay_secs = 0
template = "Hi {first_name|there}, this is {agent_first_name} at {brokerage}. Sorry we missed your call. Reply STOP to opt out."

[compliance]
# Every bench caller is new: the most a number may text in a day (compliance.md R15).
daily_unique_recipients = 1000
"#;
pub(crate) const PIPELINE_NUMBER: &str = "+15555550100";

/// One missed call of the pipeline bench, as the caller's side saw it.
pub(crate) struct Played {
    pub from: String,
    /// The clock just before the dial webhook was posted.
    dial_posted: chrono::DateTime<Utc>,
    /// How long the dial webhook took to answer.
    dial_answer_ms: f64,
}

/// Plays `calls` missed calls, caller `first + i` to `numbers[i % len]`, started at `rate` per
/// second (open loop: each on schedule whether or not the earlier ones are done). Callers are
/// distinct `+1617…` numbers, so each call is a new lead.
pub(crate) async fn play(
    player: &textback_fake_twilio::Player,
    clock: &textback::clock::SharedClock,
    numbers: &'static [&'static str],
    first: u64,
    calls: u64,
    rate: f64,
) -> anyhow::Result<Vec<Played>> {
    use textback_fake_twilio::{DialResult, new_call_sid};
    let started = tokio::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..calls {
        let player = player.clone();
        let clock = clock.clone();
        let to = numbers[usize::try_from(first + i).unwrap_or(0) % numbers.len()];
        let at = started + StdDuration::from_secs_f64(i as f64 / rate.max(0.001));
        set.spawn(async move {
            tokio::time::sleep_until(at).await;
            let from = format!("+1617{:07}", 2_000_000 + first + i);
            let sid = new_call_sid();
            player.incoming_call(&sid, &from, to).await?;
            let dial_posted = clock.now();
            let t = Instant::now();
            let answer = player
                .dial_result(&sid, &from, to, DialResult::no_answer())
                .await?;
            let dial_answer_ms = t.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(
                answer.status == 200,
                "dial webhook answered {}",
                answer.status
            );
            Ok::<_, anyhow::Error>(Played {
                from,
                dial_posted,
                dial_answer_ms,
            })
        });
    }
    let mut played = Vec::new();
    while let Some(joined) = set.join_next().await {
        played.push(joined.context("a caller task")??);
    }
    Ok(played)
}

/// Waits until the carrier has `texts` messages in all.
pub(crate) async fn wait_texts(
    fake: &textback_fake_twilio::FakeTwilio,
    texts: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + StdDuration::from_secs(300);
    while fake.messages().len() < texts {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {texts} texts reached the carrier",
            fake.messages().len()
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    Ok(())
}

/// What the carrier saw of `played`: per call, dial webhook → Messages create and dial → Lookup
/// (ms), the dial webhook's answer time (ms), and the last create's time.
pub(crate) struct Seen {
    pub overhead: Vec<f64>,
    to_lookup: Vec<f64>,
    dial_answer: Vec<f64>,
    last_create: Option<chrono::DateTime<Utc>>,
}

pub(crate) fn seen(
    fake: &textback_fake_twilio::FakeTwilio,
    played: &[Played],
) -> anyhow::Result<Seen> {
    let mut created = std::collections::HashMap::new();
    let mut looked_up = std::collections::HashMap::new();
    for r in fake.requests() {
        if r.method == "POST" && r.path.ends_with("/Messages.json") {
            if let Some((_, to)) = r.params.iter().find(|(k, _)| k == "To") {
                created.entry(to.clone()).or_insert(r.at);
            }
        } else if let Some(number) = r.path.strip_prefix("/v2/PhoneNumbers/") {
            // The path as received: the number's `+` may be percent-encoded.
            let number = number.replace("%2B", "+");
            looked_up.entry(number).or_insert(r.at);
        }
    }
    let ms = |d: Duration| d.num_microseconds().unwrap_or(0) as f64 / 1000.0;
    let mut out = Seen {
        overhead: Vec::new(),
        to_lookup: Vec::new(),
        dial_answer: Vec::new(),
        last_create: None,
    };
    for p in played {
        let create = created
            .get(&p.from)
            .with_context(|| format!("no text was created for call {}", p.from))?;
        out.overhead.push(ms(*create - p.dial_posted));
        out.last_create = out.last_create.max(Some(*create));
        if let Some(lookup) = looked_up.get(&p.from) {
            out.to_lookup.push(ms(*lookup - p.dial_posted));
        }
        out.dial_answer.push(p.dial_answer_ms);
    }
    Ok(out)
}

/// The real server and scheduler on loopback with the fake carrier in-process, on a fresh
/// database `NAME_suffix` beside `database_url`'s with `setup` applied, the demo's clock at
/// 10:00 on a weekday in the brokerage's zone (the gate's hours never decide the figures).
pub(crate) struct Running {
    pub clock: textback::clock::SharedClock,
    pub fake: textback_fake_twilio::FakeTwilio,
    pub player: textback_fake_twilio::Player,
    pub config: Config,
    /// The server's base URL.
    pub public: String,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub(crate) async fn start(
        database_url: &str,
        suffix: &str,
        setup: &str,
    ) -> anyhow::Result<Running> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let textback::demo::Stage {
            clock,
            fake,
            public,
            config,
            app,
            ..
        } = textback::demo::stage(
            database_url,
            suffix,
            setup,
            textback::demo::harbor_zone(),
            &listener,
        )
        .await?;
        Ok(Running::serve(listener, app, clock, fake, &public, config))
    }

    fn serve(
        listener: tokio::net::TcpListener,
        app: textback::App,
        clock: textback::clock::SharedClock,
        fake: textback_fake_twilio::FakeTwilio,
        public: &str,
        config: Config,
    ) -> Running {
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(textback::run(listener, app, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));
        let player = fake.player(public);
        Running {
            clock,
            fake,
            player,
            config,
            public: public.to_owned(),
            stop,
            server,
        }
    }

    /// A second instance on the same database, carrier and clock: its own listener, pool
    /// (of the same size), scheduler and webhooks, as a second server process would have.
    async fn another(&self) -> anyhow::Result<Running> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let public = format!("http://{addr}");
        let mut config = self.config.clone();
        config.bind = addr;
        config.public_url =
            textback::config::PublicUrl::parse(&public).map_err(|e| anyhow::anyhow!("{e}"))?;
        let pool = textback::db::pool(&config.database_url).await?;
        let app = textback::build(config.clone(), pool, self.clock.clone())?;
        Ok(Running::serve(
            listener,
            app,
            self.clock.clone(),
            self.fake.clone(),
            &public,
            config,
        ))
    }

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

/// `textback-bench pipeline`: the real server and scheduler on loopback, the fake carrier
/// in-process, `BENCH_CALLS` missed calls from distinct callers started at `BENCH_RATE` per
/// second (open loop). Measured per call: the dial webhook's answer time, and the overhead
/// from posting the dial webhook to the carrier receiving the Messages create request (with
/// `delay_secs = 0` there is no hold to subtract), with the Lookup request in between.
pub async fn pipeline() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let calls = env_num("BENCH_CALLS", 1000);
    let rate = env_num("BENCH_RATE", 20).max(1);
    anyhow::ensure!(
        (1..=1000).contains(&calls),
        "BENCH_CALLS must be 1..=1000 (one sending number's daily recipients, compliance.md R15)"
    );

    let run = Running::start(&config.database_url, "bench_pipeline", PIPELINE_SETUP).await?;
    let played = play(
        &run.player,
        &run.clock,
        &[PIPELINE_NUMBER],
        0,
        calls,
        rate as f64,
    )
    .await?;
    wait_texts(&run.fake, usize::try_from(calls).unwrap_or(usize::MAX)).await?;
    let seen = seen(&run.fake, &played)?;
    run.stop().await;

    let (o50, o99, omax) = percentiles(seen.overhead);
    let (l50, l99, _) = percentiles(seen.to_lookup);
    let (d50, d99, _) = percentiles(seen.dial_answer);
    println!(
        "RESULT system=ours bench=pipeline calls={calls} rate_per_s={rate} \
         overhead_p50_ms={o50:.1} overhead_p99_ms={o99:.1} overhead_max_ms={omax:.1} \
         to_lookup_p50_ms={l50:.1} to_lookup_p99_ms={l99:.1} \
         dial_webhook_p50_ms={d50:.1} dial_webhook_p99_ms={d99:.1}"
    );
    Ok(())
}

/// The load bench's brokerage: twenty numbers, so a day's new recipients (docs/compliance.md R15,
/// at most 1,000 per number) do not cap the run.
fn load_setup() -> String {
    let mut s = String::from(
        r#"[brokerage]
slug = "load"
name = "Load Realty"
time_zone = "America/New_York"

[[offices]]
slug = "main"
name = "Main"

[[agents]]
email = "sam@load.example"
name = "Sam Rivera"
phone = "+15555550201"
office = "main"
role = "agent"
"#,
    );
    for n in LOAD_NUMBERS {
        s.push_str(&format!(
            "\n[[numbers]]\nnumber = \"{n}\"\noffice = \"main\"\nring = [\"sam@load.example\"]\n"
        ));
    }
    s.push_str(
        r#"
[text_back]
delay_secs = 0
template = "Hi {first_name|there}, this is {agent_first_name} at {brokerage}. Sorry we missed your call. Reply STOP to opt out."

[compliance]
daily_unique_recipients = 1000
"#,
    );
    s
}

const LOAD_NUMBERS: &[&str] = &[
    "+15555550100",
    "+15555550101",
    "+15555550102",
    "+15555550103",
    "+15555550104",
    "+15555550105",
    "+15555550106",
    "+15555550107",
    "+15555550108",
    "+15555550109",
    "+15555550110",
    "+15555550111",
    "+15555550112",
    "+15555550113",
    "+15555550114",
    "+15555550115",
    "+15555550116",
    "+15555550117",
    "+15555550118",
    "+15555550119",
];

/// This process's resident set (`VmRSS`) or its high-water mark (`VmHWM`), in MiB (Linux
/// `/proc/self/status`).
fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `textback-bench load`: sustained missed calls. First the saturation rate: after a warm-up
/// burst, `BENCH_BURST` (2000) missed calls posted by 64 callers at once (each posts its next
/// call when the last one is answered), texts per second from the first call's webhook to the
/// last Messages create. Then `BENCH_SECS` (10) seconds of open-loop calls at
/// 25 %, 50 % and 100 % of that rate, each with the dial webhook's answer time and the
/// text-back overhead (dial webhook → Messages create, no hold), p50/p99; and the process's
/// resident memory idle and its high-water mark (the server, the scheduler, the in-process fake
/// carrier and the load generator share the process). Last, the burst again with its callers
/// split between two instances on the database, and once more on one, for the ratio. Every
/// caller is new, so the run stays within the 20 numbers' 20,000 new recipients a day
/// (docs/compliance.md R15).
pub async fn load() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let burst = env_num("BENCH_BURST", 2000).max(1);
    let secs = env_num("BENCH_SECS", 10).max(1);
    let run = Running::start(&config.database_url, "bench_load", &load_setup()).await?;
    let Running {
        clock,
        fake,
        player,
        ..
    } = &run;
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    let idle = rss_mib("VmRSS:");
    // Before each phase the tables' statistics are brought up to date, as autovacuum keeps
    // them on a server in steady state. Without it the planner keeps the plans it made for
    // empty tables while they grow by thousands of rows a minute (faster than autovacuum's
    // minute), and a contact's latest message is looked up by walking the brokerage's day.
    let stats = textback::db::pool(&run.config.database_url).await?;
    let analyze = || async { sqlx::query("analyze").execute(&stats).await.map(|_| ()) };
    // Every caller is new and gets one text: the next caller's number is also how many texts
    // the carrier has had.
    let mut next = 0u64;
    let alone = std::slice::from_ref(player);
    // A first burst, not reported, so the saturation burst runs on tables of some size with
    // statistics that know it.
    burst_phase(alone, clock, fake, &mut next, burst).await?;
    analyze().await?;

    // Saturation: a burst from 64 callers at once, each posting its next call as soon as the
    // last one is answered.
    let (saturation, line) = burst_phase(alone, clock, fake, &mut next, burst).await?;
    println!("RESULT system=ours bench=load phase=saturation {line}");

    let recipients = LOAD_NUMBERS.len() as f64 * 1000.0;
    let planned = 4.0 * burst as f64 + saturation * 1.75 * secs as f64;
    anyhow::ensure!(
        planned <= recipients,
        "{planned:.0} new callers would pass the numbers' {recipients:.0} new recipients a day \
         (compliance.md R15): lower BENCH_SECS or BENCH_BURST"
    );
    for share in [25u64, 50, 100] {
        analyze().await?;
        let rate = saturation * share as f64 / 100.0;
        let calls = ((rate * secs as f64) as u64).max(1);
        let played = play(player, clock, LOAD_NUMBERS, next, calls, rate).await?;
        next += calls;
        wait_texts(fake, usize::try_from(next).unwrap_or(usize::MAX)).await?;
        let s = seen(fake, &played)?;
        let (d50, d99, _) = percentiles(s.dial_answer);
        let (o50, o99, omax) = percentiles(s.overhead);
        println!(
            "RESULT system=ours bench=load phase={share}pct rate_per_s={rate:.0} calls={calls} \
             dial_webhook_p50_ms={d50:.1} dial_webhook_p99_ms={d99:.1} \
             overhead_p50_ms={o50:.1} overhead_p99_ms={o99:.1} overhead_max_ms={omax:.1}"
        );
    }
    let peak = rss_mib("VmHWM:");
    println!(
        "RESULT system=ours bench=load phase=memory rss_idle_mib={idle:.0} rss_peak_mib={peak:.0}"
    );

    // Two instances on one database (docs/architecture.md "The scheduler": several server processes may share it): the
    // same burst, its callers split between the two, then once more on one instance alone
    // for the ratio in the same conditions (the tables are as full for both).
    analyze().await?;
    let second = run.another().await?;
    let both = [player.clone(), second.player.clone()];
    let (two, line) = burst_phase(&both, clock, fake, &mut next, burst).await?;
    second.stop().await;
    analyze().await?;
    let (one, _) = burst_phase(alone, clock, fake, &mut next, burst).await?;
    println!(
        "RESULT system=ours bench=load phase=two_instances {line} one_instance_texts_per_s={one:.0} \
         ratio_to_one={:.2} texts_twice={}",
        two / one.max(0.001),
        texts_twice(fake)
    );
    run.stop().await;
    Ok(())
}

/// Texts beyond one per number (each bench caller is new: one text each).
fn texts_twice(fake: &textback_fake_twilio::FakeTwilio) -> usize {
    let messages = fake.messages();
    let numbers: std::collections::HashSet<&str> = messages.iter().map(|m| m.to.as_str()).collect();
    messages.len() - numbers.len()
}

/// A burst of `calls` missed calls (callers `*next..`, then `*next` moves past them) posted
/// by 64 callers at once, spread over `players` (one per instance), each posting its next
/// call as soon as the last one is answered; waits until the carrier has a text for every
/// caller so far. Returns texts per second (first webhook to last Messages create) and the
/// phase's `RESULT` fields.
async fn burst_phase(
    players: &[textback_fake_twilio::Player],
    clock: &textback::clock::SharedClock,
    fake: &textback_fake_twilio::FakeTwilio,
    next: &mut u64,
    calls: u64,
) -> anyhow::Result<(f64, String)> {
    let first = *next;
    *next += calls;
    let started = clock.now();
    let mut played = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    for c in 0..64u64 {
        let player = players[usize::try_from(c).unwrap_or(0) % players.len()].clone();
        let clock = clock.clone();
        set.spawn(async move {
            let mut mine = Vec::new();
            let mut k = c;
            while k < calls {
                mine.extend(play(&player, &clock, LOAD_NUMBERS, first + k, 1, 1.0).await?);
                k += 64;
            }
            Ok::<_, anyhow::Error>(mine)
        });
    }
    while let Some(joined) = set.join_next().await {
        played.extend(joined.context("a caller task")??);
    }
    wait_texts(fake, usize::try_from(*next).unwrap_or(usize::MAX)).await?;
    let seen = seen(fake, &played)?;
    let took = seen.last_create.map_or(0.0, |t| {
        (t - started).num_microseconds().unwrap_or(0) as f64 / 1e6
    });
    let rate = calls as f64 / took.max(0.001);
    let (d50, d99, _) = percentiles(seen.dial_answer);
    let (o50, o99, _) = percentiles(seen.overhead);
    Ok((
        rate,
        format!(
            "calls={calls} texts_per_s={rate:.0} dial_webhook_p50_ms={d50:.1} \
             dial_webhook_p99_ms={d99:.1} overhead_p50_ms={o50:.1} overhead_p99_ms={o99:.1}"
        ),
    ))
}

/// A page of `textback-bench dashboard`: what is asked, and its answer times.
struct PageTiming {
    what: &'static str,
    path: String,
    ms: Vec<f64>,
}

/// `textback-bench dashboard`: the people's pages with a year of history in the database.
/// A fresh database `NAME_bench_dashboard` beside `DATABASE_URL`'s gets the demo brokerage and
/// `BENCH_CALLS` (1,000,000) calls spread over the last 365 days (`store::seed`), then the real
/// server answers the dashboard (each period, a number, an agent, a manager's office, the CSV)
/// and the inbox (the list, a filter, a thread) `BENCH_ROUNDS` (20) times each, over loopback
/// with a logged-in session. Prints p50, p99 and max per page as `RESULT` lines.
pub async fn dashboard() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let calls = i64::try_from(env_num("BENCH_CALLS", 1_000_000)).unwrap_or(1_000_000);
    let rounds = env_num("BENCH_ROUNDS", 20).max(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let stage = textback::demo::stage(
        &config.database_url,
        "bench_dashboard",
        textback::demo::DEMO_SETUP,
        textback::demo::harbor_zone(),
        &listener,
    )
    .await?;
    let pool = stage.pool.clone();
    let brokerage = stage.brokerage;
    let ids = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .map_err(anyhow::Error::from)
        }
    };
    let main = ids("select number_id from number where e164 = '+15555550100'").await?;
    let elm = ids("select number_id from number where e164 = '+15555550110'").await?;
    let sam = ids("select agent_id from agent where email = 'sam@harbor.example'").await?;
    let jo = ids("select agent_id from agent where email = 'jo@harbor.example'").await?;
    let seeded = Instant::now();
    let counts = textback::store::seed::history(
        &pool,
        &textback::store::seed::Seed {
            brokerage,
            numbers: [main, elm],
            agents: [sam, jo],
            calls,
            contacts: (calls / 4).max(1),
            now: stage.clock.now(),
        },
    )
    .await?;
    eprintln!(
        "seeded in {:.0} s: {}",
        seeded.elapsed().as_secs_f64(),
        counts
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let password = "bench password 2026";
    let hash = textback::http::auth::hash_password(password)?;
    for email in ["riley@harbor.example", "morgan@harbor.example"] {
        let mut conn = pool.acquire().await?;
        let agent = textback::store::users::agent_by_email(&mut conn, brokerage, email)
            .await?
            .context("a demo agent")?;
        textback::store::users::set_login(
            &mut conn,
            brokerage,
            agent.agent_id,
            email,
            &hash,
            stage.clock.now(),
        )
        .await?;
    }
    let public = stage.public.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(textback::serve(listener, stage.app, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let admin = log_in(&public, "riley@harbor.example", password).await?;
    let manager = log_in(&public, "morgan@harbor.example", password).await?;
    let recent = ids(
        "select conversation_id from conversation where merged_into is null order by last_activity_at desc limit 1",
    )
    .await?;
    let mut pages = vec![
        (
            "dashboard today",
            "/dashboard?period=today".to_owned(),
            &admin,
        ),
        (
            "dashboard 7 days",
            "/dashboard?period=7d".to_owned(),
            &admin,
        ),
        (
            "dashboard 30 days",
            "/dashboard?period=30d".to_owned(),
            &admin,
        ),
        (
            "dashboard 30 days, one number",
            format!("/dashboard?period=30d&number={main}"),
            &admin,
        ),
        (
            "dashboard 30 days, one agent",
            format!("/dashboard?period=30d&agent={sam}"),
            &admin,
        ),
        (
            "dashboard 30 days, a manager's office",
            "/dashboard?period=30d".to_owned(),
            &manager,
        ),
        (
            "export 30 days (CSV)",
            "/dashboard/export.csv?period=30d".to_owned(),
            &admin,
        ),
        ("inbox list", "/inbox".to_owned(), &admin),
        (
            "inbox list, waiting",
            "/inbox?filter=waiting".to_owned(),
            &admin,
        ),
        ("inbox list, a manager's", "/inbox".to_owned(), &manager),
        ("conversation", format!("/inbox/c/{recent}"), &admin),
    ]
    .into_iter()
    .map(|(what, path, who)| {
        (
            PageTiming {
                what,
                path,
                ms: Vec::new(),
            },
            who,
        )
    })
    .collect::<Vec<_>>();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // One warm-up each, then the rounds interleaved, so a passing hiccup of the shared machine
    // spreads over every page.
    for round in 0..=rounds {
        for (page, cookie) in &mut pages {
            let t = Instant::now();
            let r = http
                .get(format!("{public}{}", page.path))
                .header("cookie", cookie.as_str())
                .send()
                .await?;
            let status = r.status();
            let _ = r.bytes().await?;
            anyhow::ensure!(status == 200, "{} answered {status}", page.path);
            if round > 0 {
                page.ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    for (page, _) in pages {
        let (p50, p99, max) = percentiles(page.ms);
        println!(
            "RESULT system=ours bench=dashboard calls={calls} page=\"{}\" p50_ms={p50:.1} p99_ms={p99:.1} max_ms={max:.1}",
            page.what
        );
    }
    Ok(())
}

/// Logs in through the real form; the session cookie (`name=value`).
async fn log_in(public: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let form = http.get(format!("{public}/login")).send().await?;
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tb_login="))
        .and_then(|v| v.split(';').next())
        .context("the login cookie")?
        .to_owned();
    let body = form.text().await?;
    let at = body.find("name=\"csrf\" value=\"").context("the token")? + 19;
    let token = body
        .get(at..)
        .and_then(|rest| rest.split('"').next())
        .context("the token")?
        .to_owned();
    let r = http
        .post(format!("{public}/login"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", token.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 303, "login answered {}", r.status());
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tb_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("the session cookie")
}

/// `textback-bench callback`: a person clicks "Call back" (`POST /inbox/c/{id}/callback`) on
/// BENCH_CALLBACKS (200) conversations of the demo brokerage, one after another; the time to
/// the page's answer and to the carrier's Calls create request (the `call_back` job woken by
/// the queue's notification), p50/p99. In-process with the fake carrier, on a fresh database
/// NAME_bench_callback beside DATABASE_URL's.
pub async fn callback() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let n = env_num("BENCH_CALLBACKS", 200).clamp(1, 1000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let stage = textback::demo::stage(
        &config.database_url,
        "bench_callback",
        textback::demo::DEMO_SETUP,
        textback::demo::harbor_zone(),
        &listener,
    )
    .await?;
    let password = "bench password 2026";
    let email = "sam@harbor.example";
    {
        let mut conn = stage.pool.acquire().await?;
        let agent = textback::store::users::agent_by_email(&mut conn, stage.brokerage, email)
            .await?
            .context("a demo agent")?;
        let hash = textback::http::auth::hash_password(password)?;
        textback::store::users::set_login(
            &mut conn,
            stage.brokerage,
            agent.agent_id,
            email,
            &hash,
            stage.clock.now(),
        )
        .await?;
    }
    let pool = stage.pool.clone();
    let public = stage.public.clone();
    let run = Running::serve(
        listener,
        stage.app,
        stage.clock,
        stage.fake,
        &public,
        stage.config,
    );
    // One missed call per caller on the 123 Main St line: a conversation each.
    for i in 0..n {
        let caller = format!("+1617555{:04}", 2000 + i);
        let sid = textback_fake_twilio::new_call_sid();
        run.player
            .incoming_call(&sid, &caller, "+15555550100")
            .await?;
        run.player
            .dial_result(
                &sid,
                &caller,
                "+15555550100",
                textback_fake_twilio::DialResult::no_answer(),
            )
            .await?;
    }
    let ids: Vec<i64> = sqlx::query_scalar("select conversation_id from conversation order by 1")
        .fetch_all(&pool)
        .await?;
    let cookie = log_in(&public, email, password).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = http
        .get(format!(
            "{public}/inbox/c/{}",
            ids.first().context("conversations")?
        ))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    let at = page.find("name=\"csrf\" value=\"").context("the token")? + 19;
    let csrf = page
        .get(at..)
        .and_then(|rest| rest.split('"').next())
        .context("the token")?
        .to_owned();

    let (mut answered, mut created) = (Vec::new(), Vec::new());
    for id in &ids {
        let before = run.fake.calls().len();
        let started = Instant::now();
        let r = http
            .post(format!("{public}/inbox/c/{id}/callback"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await?;
        anyhow::ensure!(
            r.status().as_u16() == 303,
            "callback answered {}",
            r.status()
        );
        answered.push(started.elapsed().as_secs_f64() * 1000.0);
        let deadline = started + StdDuration::from_secs(10);
        while run.fake.calls().len() == before {
            anyhow::ensure!(
                Instant::now() < deadline,
                "no call create for conversation {id}"
            );
            tokio::time::sleep(StdDuration::from_micros(500)).await;
        }
        created.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    run.stop().await;
    let (a50, a99, _) = percentiles(answered);
    let (c50, c99, cmax) = percentiles(created);
    println!(
        "RESULT system=ours bench=callback callbacks={} click_answer_p50_ms={a50:.1} \
         click_answer_p99_ms={a99:.1} click_to_create_p50_ms={c50:.1} \
         click_to_create_p99_ms={c99:.1} click_to_create_max_ms={cmax:.1}",
        ids.len()
    );
    Ok(())
}
