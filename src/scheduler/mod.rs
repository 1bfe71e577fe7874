//! The scheduler (docs/architecture.md "The scheduler"): jobs in PostgreSQL, claimed with `FOR UPDATE SKIP
//! LOCKED` in batches, woken by `LISTEN/NOTIFY` and by a timer set to the next `run_at`, held
//! under a lease and re-claimed when a worker dies.
//!
//! Jobs are processed at least once; what a job does outside the database (a text) is made
//! at-most-once by the send protocol of docs/reliability.md §2 (see `text_back`), not by the queue.
//!
//! The worker is fed continuously: it claims only as many jobs as it has free slots, so a slow
//! carrier answer (up to the send timeout) never holds back other due text-backs. Jobs whose
//! outcome needs no other write (done, cancelled, skipped, dead) are finished in batches by
//! one task; jobs that write effects (a sent text and its record) finish in their own
//! transaction.

mod agent_alert;
mod call_back;
mod claim_timeout;
mod deliveries;
mod escalation;
mod follow_up;
mod lead_text;
mod media_fetch;
mod reconcile;
pub mod replies;
mod send;
mod text_back;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::PgListener;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::context::AppState;
use crate::store::jobs::{self, Claimed, JobKind, JobState};

pub use crate::context::Timing;

fn chrono(d: StdDuration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

/// How a job ended, as its handler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler wrote the job's new state itself, with its effects, in one transaction
    /// (`label` is for the metric: `sent`, `retry`, `reconciling`, …).
    Persisted {
        label: &'static str,
    },
    /// Finished in a batch: `done(reason)`.
    Done(String),
    Cancelled(String),
    Skipped(String),
    Dead(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Persisted { label } => label,
            Outcome::Done(_) => "done",
            Outcome::Cancelled(_) => "cancelled",
            Outcome::Skipped(_) => "skipped",
            Outcome::Dead(_) => "dead",
        }
    }
}

pub use crate::context::crash_point;

/// A `LISTEN` connection, with the count of primary moves when it was opened: after a
/// failover it is opened again on the new primary (crates/store/src/failover.rs), even if the
/// old one still answers.
struct Listening {
    listener: PgListener,
    moves: u64,
}

/// Listens on `channel` (`NOTIFY` from the enqueuing transaction), or `None` when it cannot:
/// the caller polls until it can.
async fn listen_on(pool: &sqlx::PgPool, channel: &str) -> Option<Listening> {
    let moves = crate::store::failover::switches();
    let listened = async {
        let mut l = PgListener::connect_with(pool).await?;
        l.listen(channel).await?;
        Ok::<_, sqlx::Error>(l)
    };
    match listened.await {
        Ok(listener) => Some(Listening { listener, moves }),
        Err(e) => {
            tracing::warn!(error = %e, channel, "cannot listen for notifications; polling instead");
            None
        }
    }
}

/// Waits for the first of: shutdown, `wait`, a notification on the listener. A broken
/// listener, or one opened before the primary moved, is dropped and opened again (meanwhile
/// the caller's poll covers it).
async fn wait_for_work(
    pool: &sqlx::PgPool,
    shutdown: &mut watch::Receiver<bool>,
    wait: StdDuration,
    listener: &mut Option<Listening>,
    channel: &str,
) {
    tokio::select! {
        _ = shutdown.changed() => {},
        () = tokio::time::sleep(wait) => {},
        notified = async {
            match listener.as_mut() {
                Some(l) => l.listener.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        } => {
            if let Err(e) = notified {
                tracing::warn!(error = %e, channel, "notifications interrupted; polling until they are back");
                *listener = None;
            }
        }
    }
    if listener
        .as_ref()
        .is_some_and(|l| l.moves != crate::store::failover::switches())
    {
        *listener = None;
    }
    if listener.is_none() {
        *listener = listen_on(pool, channel).await;
    }
}

#[derive(Clone)]
pub struct Scheduler {
    state: AppState,
}

/// A finished job on its way to the batch finisher.
struct Finished {
    job_id: i64,
    attempt: i32,
    kind: JobKind,
    outcome: Outcome,
    /// The worker slot the job held: freed once the outcome is written, so a worker never
    /// claims faster than it records (and never issues a stream of tiny claims).
    #[allow(dead_code)] // held, not read: dropping it frees the slot
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Scheduler {
    pub fn new(state: AppState) -> Scheduler {
        Scheduler { state }
    }

    fn timing(&self) -> &Timing {
        &self.state.timing
    }

    /// Claims and runs every job due now (by the server's clock), waiting for them, until none
    /// is left. Returns how many ran. For tests and the demo's tidy end; the server uses
    /// [`Scheduler::run`].
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        for _ in 0..10_000 {
            if self.state.spool.has_pending() {
                return Ok(total);
            }
            let now = self.state.clock.now();
            let mut conn = self.state.pool.acquire().await?;
            let claimed = jobs::claim(
                &mut conn,
                now,
                chrono(self.timing().lease),
                self.timing().batch as i64,
                None,
            )
            .await?;
            drop(conn);
            if claimed.is_empty() {
                // Deliveries queue no jobs but an admin alert (a paused subscription).
                let delivered = deliveries::drain(&self.state).await?;
                if delivered == 0 {
                    return Ok(total);
                }
                total += delivered;
                continue;
            }
            total += claimed.len();
            let runs = claimed.into_iter().map(|job| async move {
                let outcome = self.run_one(&job).await;
                Finished {
                    job_id: job.job_id,
                    attempt: job.attempt,
                    kind: job.kind,
                    outcome,
                    slot: None,
                }
            });
            let finished = futures_util::future::join_all(runs).await;
            self.finish(finished).await;
        }
        anyhow::bail!("the queue did not drain after 10,000 rounds")
    }

    /// The worker loop, until `shutdown` says stop; then it lets running jobs finish (at most
    /// the lease).
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let timing = *self.timing();
        let permits = Arc::new(Semaphore::new(timing.concurrency));
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Finished>();
        self.warm_up().await;
        let finisher = tokio::spawn(self.clone().finisher(done_rx));
        let deliveries = tokio::spawn(deliveries::run(self.state.clone(), shutdown.clone()));
        // Several claim loops share the slots: while one waits for its commit, another
        // claims; SKIP LOCKED keeps them off each other's rows.
        let loops: Vec<_> = (0..timing.claimers.max(1))
            .map(|_| {
                tokio::spawn(self.clone().claim_loop(
                    permits.clone(),
                    done_tx.clone(),
                    shutdown.clone(),
                ))
            })
            .collect();
        for l in loops {
            let _ = l.await;
        }
        // Let running jobs finish (a send in flight must be recorded), then the finisher.
        let all = u32::try_from(timing.concurrency).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(timing.lease, permits.acquire_many(all)).await;
        drop(done_tx);
        let _ = finisher.await;
        let _ = deliveries.await;
        tracing::info!("scheduler stopped");
    }

    /// Opens the connections the claim loops and the finisher's writers will use, at once, and
    /// prepares their statements: connecting (a TLS handshake, a new backend) under a backlog
    /// took about 90 ms per connection on a busy 2-core machine, which the first claims paid.
    /// Best effort: a database that is down now is met again by the claim loop's retries.
    async fn warm_up(&self) {
        let n = 2 * self.timing().claimers.max(1);
        let conns = futures_util::future::join_all((0..n).map(|_| self.state.pool.acquire())).await;
        for conn in conns {
            let Ok(mut conn) = conn else { continue };
            if let Err(e) = jobs::prepare_worker(&mut conn).await {
                tracing::debug!(error = %e, "could not prepare the worker's statements");
            }
        }
    }

    async fn claim_loop(
        self,
        permits: Arc<Semaphore>,
        done_tx: mpsc::UnboundedSender<Finished>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let timing = *self.timing();
        // Subscribe before the first look at the table, so a job enqueued in between is
        // not missed (the crates.io worker's rule); the poll covers a lost connection.
        let mut listener = listen_on(&self.state.pool, "textback_jobs").await;
        // Where the next claim's scan may start: the end of this loop's last full claim.
        let mut from: Option<DateTime<Utc>> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Slots are reserved before claiming, so several loops never claim more jobs
            // than there are slots to run them (a claimed job left waiting would sit out its
            // lease).
            let free = permits.available_permits().min(timing.batch);
            // With a backlog (the last claim was full), wait for a quarter batch of free slots
            // rather than claim a few jobs at a time: every claim walks the index from its start.
            if from.is_some() && free < (timing.batch / 4).max(1) {
                tokio::select! {
                    _ = shutdown.changed() => {},
                    () = tokio::time::sleep(StdDuration::from_millis(2)) => {},
                }
                continue;
            }
            let mut claimed_full = false;
            let reserved = match u32::try_from(free) {
                Ok(n) if n > 0 => permits.clone().try_acquire_many_owned(n).ok(),
                _ => None,
            };
            if let Some(mut reserved) = reserved {
                match self.claim(free, from).await {
                    Ok(claimed) => {
                        claimed_full = claimed.len() == free;
                        // After a short claim the next one starts from the beginning.
                        from = if claimed_full {
                            claimed
                                .iter()
                                .filter(|j| j.prev_state == JobState::Scheduled)
                                .map(|j| j.run_at)
                                .max()
                        } else {
                            None
                        };
                        if !claimed.is_empty() {
                            crash_point("after_claim");
                        }
                        for job in claimed {
                            let Some(permit) = reserved.split(1) else {
                                break;
                            };
                            let this = self.clone();
                            let done = done_tx.clone();
                            tokio::spawn(async move {
                                let outcome = this.run_one(&job).await;
                                // A handler that wrote its own outcome (a send and its record)
                                // frees its slot now; only the rest wait for a batch write.
                                if let Outcome::Persisted { label } = outcome {
                                    this.state.metrics.job(job.kind.as_str(), label);
                                    drop(permit);
                                    return;
                                }
                                let _ = done.send(Finished {
                                    job_id: job.job_id,
                                    attempt: job.attempt,
                                    kind: job.kind,
                                    outcome,
                                    slot: Some(permit),
                                });
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "could not claim jobs; retrying after the poll interval"
                        );
                    }
                }
                // Unused reservations go back here.
                drop(reserved);
            }
            if claimed_full {
                continue; // more may be due right now
            }
            let wait = if free == 0 {
                // Every slot is busy: look again as soon as one frees up.
                StdDuration::from_millis(5)
            } else {
                self.until_next_wake().await
            };
            wait_for_work(
                &self.state.pool,
                &mut shutdown,
                wait,
                &mut listener,
                "textback_jobs",
            )
            .await;
        }
    }

    async fn claim(
        &self,
        limit: usize,
        from: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Vec<Claimed>> {
        // Nothing is sent while webhooks wait in the spool: a STOP among them must be in force
        // first (README.md "When the database goes away").
        if self.state.spool.has_pending() {
            return Ok(Vec::new());
        }
        let now = self.state.clock.now();
        let started = std::time::Instant::now();
        let mut conn = self.state.pool.acquire().await?;
        let acquire_ms = started.elapsed().as_secs_f64() * 1000.0;
        let claimed = jobs::claim(
            &mut conn,
            now,
            chrono(self.timing().lease),
            i64::try_from(limit).unwrap_or(i64::MAX),
            from,
        )
        .await?;
        tracing::debug!(
            limit,
            claimed = claimed.len(),
            acquire_ms,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "claim"
        );
        Ok(claimed)
    }

    /// Until the next job is due or a lease expires, at most the poll interval.
    async fn until_next_wake(&self) -> StdDuration {
        let poll = self.timing().poll_interval;
        let Ok(mut conn) = self.state.pool.acquire().await else {
            return poll;
        };
        match jobs::next_wake(&mut conn).await {
            Ok(Some(at)) => (at - self.state.clock.now())
                .to_std()
                .unwrap_or(StdDuration::ZERO)
                .min(poll),
            _ => poll,
        }
    }

    #[tracing::instrument(skip_all, fields(job_id = job.job_id, kind = %job.kind, attempt = job.attempt))]
    async fn run_one(&self, job: &Claimed) -> Outcome {
        if job.prev_state == JobState::Running {
            tracing::warn!(
                "re-claimed after its lease expired (the earlier worker stopped or stalled)"
            );
        }
        // Each handler's future is boxed: inline, the largest of them (a send with its HTTP
        // request) made every job's task 17 KB, which `tokio::spawn` copied several times per job
        // (measured: a quarter of the worker's CPU time in a burn-down went to `memmove`).
        let result = match job.kind {
            JobKind::TextBack => Box::pin(text_back::run(&self.state, job)).await,
            JobKind::Reconcile => Box::pin(reconcile::run(&self.state, job)).await,
            JobKind::FollowUp => Box::pin(follow_up::run(&self.state, job)).await,
            JobKind::KeywordReply => Box::pin(replies::keyword_reply(&self.state, job)).await,
            JobKind::AgentReply => Box::pin(replies::agent_reply(&self.state, job)).await,
            JobKind::AgentAlert => Box::pin(agent_alert::run(&self.state, job)).await,
            JobKind::Escalation => Box::pin(escalation::run(&self.state, job)).await,
            JobKind::CallBack => Box::pin(call_back::run(&self.state, job)).await,
            JobKind::ClaimTimeout => Box::pin(claim_timeout::run(&self.state, job)).await,
            JobKind::LeadText => Box::pin(lead_text::run(&self.state, job)).await,
            JobKind::MediaFetch => Box::pin(media_fetch::run(&self.state, job)).await,
            JobKind::Noop => Ok(Outcome::Done("noop".into())),
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => Box::pin(self.after_error(job, &e)).await,
        };
        self.state
            .metrics
            .handled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        outcome
    }

    /// An unexpected error (the database went away mid-job): the job goes back to `scheduled`
    /// with a backoff and its error, or ends `dead` once it has failed too often. A send in
    /// flight is protected by its outbound row: the next attempt reconciles it.
    async fn after_error(&self, job: &Claimed, e: &anyhow::Error) -> Outcome {
        const MAX_ATTEMPTS: i32 = 20;
        let error = format!("{e:#}");
        tracing::error!(error = %error, "job failed");
        if job.attempt >= MAX_ATTEMPTS {
            return Outcome::Dead(format!("failed {MAX_ATTEMPTS} times; last error: {error}"));
        }
        let now = self.state.clock.now();
        let t = self.timing();
        let retry = u32::try_from(job.attempt).unwrap_or(1);
        let wait = crate::domain::backoff::delay(
            retry,
            t.backoff_base,
            t.backoff_cap,
            None,
            rand::random::<f64>(),
        );
        let Ok(mut conn) = self.state.pool.acquire().await else {
            // Left `running`: the lease expires and another claim retries it.
            return Outcome::Persisted { label: "error" };
        };
        let _ = jobs::reschedule(
            &mut conn,
            job.job_id,
            job.attempt,
            JobState::Running,
            now + chrono(wait),
            "error",
            Some(&error),
            None,
            now,
        )
        .await;
        Outcome::Persisted { label: "error" }
    }

    /// Terminal outcomes that need no other write, one statement per (state, reason).
    async fn finish(&self, finished: Vec<Finished>) {
        let now = self.state.clock.now();
        let mut groups: HashMap<(JobState, String, i32), Vec<i64>> = HashMap::new();
        for f in &finished {
            let (state, reason) = match &f.outcome {
                Outcome::Persisted { .. } => continue,
                Outcome::Done(r) => (JobState::Done, r.clone()),
                Outcome::Cancelled(r) => (JobState::Cancelled, r.clone()),
                Outcome::Skipped(r) => (JobState::Skipped, r.clone()),
                Outcome::Dead(r) => (JobState::Dead, r.clone()),
            };
            groups
                .entry((state, reason, f.attempt))
                .or_default()
                .push(f.job_id);
        }
        if !groups.is_empty() {
            let Ok(mut conn) = self.state.pool.acquire().await else {
                tracing::warn!(
                    "cannot finish jobs now; their leases will expire and they run again"
                );
                return;
            };
            for ((state, reason, attempt), ids) in groups {
                let (reason, last_error) = if state == JobState::Dead {
                    (None, Some(reason.as_str()))
                } else {
                    (Some(reason.as_str()), None)
                };
                let finish = jobs::Finish {
                    state,
                    reason,
                    last_error,
                };
                let started = std::time::Instant::now();
                if let Err(e) = jobs::finish_batch(&mut conn, &ids, attempt, &finish, now).await {
                    tracing::warn!(error = %e, "cannot finish jobs now; their leases will expire and they run again");
                    return;
                }
                tracing::debug!(
                    jobs = ids.len(),
                    state = state.as_str(),
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "finished a batch"
                );
            }
        }
        // Counted once the outcome is written.
        for f in &finished {
            self.state.metrics.job(f.kind.as_str(), f.outcome.label());
        }
    }

    async fn finisher(self, mut rx: mpsc::UnboundedReceiver<Finished>) {
        // A few batch writes at once, so commits overlap.
        let writers = Arc::new(Semaphore::new(self.timing().claimers.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            // A writer first: while both are busy, finished jobs gather in the channel and
            // go out in the next batch.
            let Ok(permit) = writers.clone().acquire_owned().await else {
                break;
            };
            let Some(first) = rx.recv().await else {
                break;
            };
            let mut batch = vec![first];
            // Jobs claimed together finish together: give the rest of them a moment to
            // arrive rather than write a batch of one (measured: a burn-down wrote about a
            // third of its batches with a single job).
            let mut waited = false;
            while batch.len() < 1000 {
                match rx.try_recv() {
                    Ok(f) => batch.push(f),
                    Err(_) if !waited => {
                        waited = true;
                        tokio::time::sleep(StdDuration::from_millis(1)).await;
                    }
                    Err(_) => break,
                }
            }
            let this = self.clone();
            tasks.spawn(async move {
                this.finish(batch).await;
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// A random number in `[0, 1)` for the backoff's jitter.
pub(crate) fn jitter() -> f64 {
    rand::random::<f64>()
}

/// `now` plus a std duration, saturating.
pub(crate) fn after(now: DateTime<Utc>, d: StdDuration) -> DateTime<Utc> {
    now + chrono(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every job is a task of its own; its future must stay small, or `tokio::spawn` spends
    /// the worker's time copying it (see `run_one`). Built on a pool that never connects.
    #[tokio::test]
    async fn a_job_task_stays_small() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        let config = crate::config::Config::from_lookup(|k| match k {
            "DATABASE_URL" => Some("postgres://nobody@127.0.0.1:1/none".to_owned()),
            "TWILIO_AUTH_TOKEN" => Some("test".to_owned()),
            _ => None,
        })
        .unwrap();
        let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
        let app = crate::build_with(config, pool, clock, Timing::fast()).unwrap();
        let scheduler = Scheduler::new(app.state);
        let job = Claimed {
            job_id: 1,
            brokerage_id: crate::store::BrokerageId(1),
            kind: JobKind::TextBack,
            attempt: 1,
            contact_id: None,
            call_id: None,
            payload: serde_json::Value::Null,
            run_at: Utc::now(),
            due_at: Utc::now(),
            prev_state: JobState::Scheduled,
        };
        let run = scheduler.run_one(&job);
        let size = std::mem::size_of_val(&run);
        assert!(size <= 512, "a job's future is {size} bytes");
    }
}
