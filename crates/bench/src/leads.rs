//! `textback-bench leads`: leads from a website through the lead API, beside missed calls, in
//! one run on one server (docs/benchmarks.md "Leads from the website"). BENCH_LEADS (500)
//! leads posted at BENCH_RATE (20/s), open loop, spread over 25 keys (each key's rate is 60 a
//! minute after a burst of 30: docs/leads.md), then as many missed calls at the same rate.
//! Measured per lead: the API's answer, and the time from posting it to the carrier receiving
//! the Messages create request; per call, the missed-call pipeline's same overhead.

use std::time::{Duration as StdDuration, Instant};

use anyhow::Context as _;
use chrono::{Duration, Utc};

use textback::config::Config;

use super::runs::{PIPELINE_NUMBER, PIPELINE_SETUP, Running, env_num, percentiles, play, seen};

const KEYS: usize = 25;

/// One lead as the website saw it.
struct Posted {
    phone: String,
    posted: chrono::DateTime<Utc>,
    answer_ms: f64,
}

pub async fn leads() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let leads = env_num("BENCH_LEADS", 500);
    let rate = env_num("BENCH_RATE", 20).max(1);
    anyhow::ensure!(
        (1..=500).contains(&leads),
        "BENCH_LEADS must be 1..=500 (leads and calls share one number's 1,000 daily recipients, compliance.md R15)"
    );
    let run = Running::start(&config.database_url, "bench_leads", PIPELINE_SETUP).await?;
    let url = format!("{}/api/v1/leads", run.public);

    // Keys as `textback api-key create` makes them.
    let pool = textback::db::pool(&run.config.database_url).await?;
    let mut conn = pool.acquire().await?;
    let brokerage = textback::store::brokerages::by_slug(&mut conn, "pipeline")
        .await?
        .context("the bench's brokerage")?;
    let mut keys = Vec::new();
    for i in 0..KEYS {
        let k = textback::context::tokens::new_api_key()?;
        textback::store::web_leads::create_key(
            &mut conn,
            brokerage,
            &format!("bench-{i}"),
            &k.prefix,
            &k.hash,
            run.clock.now(),
        )
        .await?;
        keys.push(k.key);
    }
    drop(conn);

    let http = reqwest::Client::new();
    let started = tokio::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..leads {
        let http = http.clone();
        let url = url.clone();
        let key = keys[usize::try_from(i).unwrap_or(0) % KEYS].clone();
        let clock = run.clock.clone();
        let at = started + StdDuration::from_secs_f64(i as f64 / rate as f64);
        set.spawn(async move {
            tokio::time::sleep_until(at).await;
            let phone = format!("+1617{:07}", 3_000_000 + i);
            let body = serde_json::json!({
                "phone": phone,
                "name": "Bench Lead",
                "source": "bench",
                "message": "Is it still available?",
                "consent": {
                    "text": "I agree to receive texts from Pipeline Realty. Reply STOP to opt out.",
                    "url": "https://pipeline.example/contact",
                    "at": (clock.now() - Duration::seconds(5)).to_rfc3339(),
                    "ip": "203.0.113.7",
                },
            });
            let posted = clock.now();
            let t = Instant::now();
            let r = http.post(&url).bearer_auth(&key).json(&body).send().await?;
            let answer_ms = t.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(
                r.status().as_u16() == 201,
                "the API answered {}",
                r.status()
            );
            Ok::<_, anyhow::Error>(Posted {
                phone,
                posted,
                answer_ms,
            })
        });
    }
    let mut posted = Vec::new();
    while let Some(joined) = set.join_next().await {
        posted.push(joined.context("a lead task")??);
    }
    wait_for(&run.fake, posted.iter().map(|p| p.phone.clone()).collect()).await?;

    // The same number of missed calls, on the same server, right after.
    let played = play(
        &run.player,
        &run.clock,
        &[PIPELINE_NUMBER],
        0,
        leads,
        rate as f64,
    )
    .await?;
    wait_for(&run.fake, played.iter().map(|p| p.from.clone()).collect()).await?;
    let calls = seen(&run.fake, &played)?;

    let mut created = std::collections::HashMap::new();
    for r in run.fake.requests() {
        if r.method == "POST"
            && r.path.ends_with("/Messages.json")
            && let Some((_, to)) = r.params.iter().find(|(k, _)| k == "To")
        {
            created.entry(to.clone()).or_insert(r.at);
        }
    }
    let ms = |d: Duration| d.num_microseconds().unwrap_or(0) as f64 / 1000.0;
    let mut to_text = Vec::new();
    let mut answers = Vec::new();
    for p in &posted {
        let at = created
            .get(&p.phone)
            .with_context(|| format!("no text for lead {}", p.phone))?;
        to_text.push(ms(*at - p.posted));
        answers.push(p.answer_ms);
    }
    run.stop().await;
    pool.close().await;

    let (t50, t99, tmax) = percentiles(to_text);
    let (a50, a99, _) = percentiles(answers);
    let (c50, c99, _) = percentiles(calls.overhead);
    println!(
        "RESULT system=ours bench=leads leads={leads} rate_per_s={rate} \
         lead_to_text_p50_ms={t50:.1} lead_to_text_p99_ms={t99:.1} lead_to_text_max_ms={tmax:.1} \
         api_answer_p50_ms={a50:.1} api_answer_p99_ms={a99:.1} \
         call_to_text_p50_ms={c50:.1} call_to_text_p99_ms={c99:.1} \
         ratio_p50={:.2} ratio_p99={:.2}",
        t50 / c50.max(0.001),
        t99 / c99.max(0.001)
    );
    Ok(())
}

/// Waits until the carrier has a text to each of `phones` (alerts to agents go too, so a count
/// of messages is not enough).
async fn wait_for(
    fake: &textback_fake_twilio::FakeTwilio,
    phones: Vec<String>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + StdDuration::from_secs(300);
    loop {
        let texted: std::collections::HashSet<String> =
            fake.messages().into_iter().map(|m| m.to).collect();
        let missing = phones.iter().filter(|p| !texted.contains(*p)).count();
        if missing == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{missing} of {} texts never reached the carrier",
            phones.len()
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}
