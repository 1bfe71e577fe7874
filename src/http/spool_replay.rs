//! The spool's replay (README.md "When the database goes away"): once the database answers, the
//! spooled webhooks are applied in the order they arrived, each through its handler with the
//! form its guard verified and the time it arrived, then the spool is emptied. A webhook the
//! database refuses again stops the replay until the next try; one its handler refuses for its
//! content (it would have been refused live) is counted and passed, like a corrupt record.
//! The same task keeps the numbers' snapshot that answers calls while the database is away.

use std::collections::HashSet;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use tower::ServiceExt as _;

use super::AppState;
use super::error::DbUnavailable;
use super::twilio_guard::VerifiedForm;
use crate::spool::{Entry, Record};

/// How often the task looks.
const EVERY: Duration = Duration::from_millis(500);
/// How often the numbers' snapshot is read again.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(10);
/// Replays of a webhook its handler answers with a server error before it is passed (about
/// a minute of passes).
const TRIES: u32 = 120;

/// Runs until the server stops.
pub async fn run(state: AppState) {
    let mut stopping = state.stopping.subscribe();
    let mut last_snapshot: Option<tokio::time::Instant> = None;
    let mut ahead = HashSet::new();
    loop {
        if *stopping.borrow() {
            return;
        }
        let due = last_snapshot.is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY);
        if due {
            if refresh_numbers(&state).await {
                last_snapshot = Some(tokio::time::Instant::now());
            }
            // A failed write clears once the directory takes one again.
            let spool = state.spool.clone();
            let _ = tokio::task::spawn_blocking(move || spool.check_writable()).await;
        }
        if state.spool.has_pending() {
            match replay(&state, &mut ahead).await {
                Ok(true) => tracing::info!("the spool is applied and empty: sending resumes"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "the spool could not be replayed now"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stopping.changed() => {}
        }
    }
}

async fn refresh_numbers(state: &AppState) -> bool {
    let read = async {
        let mut conn = state.pool.acquire().await?;
        crate::store::numbers::snapshot(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(3), read).await {
        Ok(Ok(snapshot)) => {
            // Kept beside the spool too: a process started while the database is away still
            // rings the agents.
            let path = state.config.spool_dir.join("numbers.json");
            if let Ok(json) = serde_json::to_vec(&snapshot) {
                let _ = tokio::task::spawn_blocking(move || {
                    let tmp = path.with_extension("json.tmp");
                    std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path))
                })
                .await;
            }
            *state
                .numbers
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot;
            true
        }
        _ => false,
    }
}

/// Whether the database answers now.
async fn reachable(state: &AppState) -> bool {
    let ping = sqlx::query("select 1").execute(&state.pool);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(_))
    )
}

/// Applies what the spool holds, batch by batch, each in the order its webhooks arrived
/// ([`crate::spool::arrival_order`]). `ahead` holds the entries (by where they end) applied
/// beyond the file's mark by an earlier pass that stopped: they are not applied twice.
/// `Ok(true)` when the spool is empty after.
async fn replay(state: &AppState, ahead: &mut HashSet<u64>) -> anyhow::Result<bool> {
    if !reachable(state).await {
        return Ok(false);
    }
    let failures = &state.spool.failures;
    loop {
        let from = state.spool.replayed_to();
        let spool = state.spool.clone();
        let entries = tokio::task::spawn_blocking(move || spool.read_from(from)).await??;
        let mut stopped = false;
        for i in crate::spool::arrival_order(&entries) {
            let entry = &entries[i];
            let Some(e) = entry.end() else { continue };
            if ahead.contains(&e) {
                continue;
            }
            match entry {
                Entry::Record { record, .. } => match apply(state, record).await {
                    Applied::Done(status) if status.is_server_error() => {
                        // A deadlock or a timeout: tried again on the next passes, and
                        // passed (reported) only after [`TRIES`] of them, so one webhook
                        // cannot hold the spool, and the scheduler, for ever.
                        let tries = {
                            let mut failed = failures
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            let n = failed.entry(e).or_insert(0);
                            *n += 1;
                            *n
                        };
                        if tries < TRIES {
                            stopped = true;
                            break;
                        }
                        tracing::error!(path = %record.path, status = status.as_u16(), tries, "a spooled webhook failed every replay; passed");
                        state
                            .spool
                            .replayed_skipped
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Applied::Done(status) if status.is_success() => {
                        state
                            .spool
                            .replayed_applied
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Applied::Done(status) => {
                        // Refused for its content: it would have been refused live.
                        tracing::warn!(path = %record.path, status = status.as_u16(), "a spooled webhook was refused when replayed; passed");
                        state
                            .spool
                            .replayed_skipped
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Applied::Unavailable => {
                        stopped = true;
                        break;
                    }
                },
                Entry::Corrupt { at, why, .. } => {
                    tracing::error!(at, %why, "a spooled webhook cannot be read: reported and skipped, never applied");
                    state
                        .spool
                        .corrupt
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                // Not in the order: a tail being written at this moment is read next time.
                Entry::Truncated { .. } => continue,
            }
            ahead.insert(e);
        }
        // The file is marked up to the first entry not yet applied; what was applied after it
        // stays in `ahead` until the mark passes it.
        let (end, done) = crate::spool::applied_prefix(from, &entries, ahead);
        let spool = state.spool.clone();
        let empty = tokio::task::spawn_blocking(move || spool.applied_through(end, done)).await??;
        ahead.retain(|&e| e > end);
        if empty {
            failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            ahead.clear();
            return Ok(true);
        }
        if stopped || done == 0 {
            return Ok(false);
        }
    }
}

enum Applied {
    Done(axum::http::StatusCode),
    Unavailable,
}

/// One spooled webhook through its handler, as if it arrived now, at the time it arrived.
async fn apply(state: &AppState, record: &Record) -> Applied {
    let mut at = state.clone();
    at.clock = crate::clock::ManualClock::new(record.arrived_at);
    let uri = match &record.query {
        Some(q) => format!("{}?{q}", record.path),
        None => record.path.clone(),
    };
    let mut request = match Request::builder()
        .method(axum::http::Method::POST)
        .uri(uri)
        .body(Body::empty())
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "a spooled webhook's path is not a URI; passed");
            return Applied::Done(axum::http::StatusCode::BAD_REQUEST);
        }
    };
    request
        .extensions_mut()
        .insert(VerifiedForm::replayed(record));
    let router = super::twilio_routes().with_state(at);
    let response = match router.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if response.extensions().get::<DbUnavailable>().is_some() {
        Applied::Unavailable
    } else {
        Applied::Done(response.status())
    }
}
