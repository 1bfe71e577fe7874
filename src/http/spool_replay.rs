//! The spool's replay (README.md "When the database goes away"): once the database answers, the
//! spooled webhooks are applied in the order they arrived, each through its handler with the
//! form its guard verified and the time it arrived, then the spool is emptied. A webhook the
//! database refuses again stops the replay until the next try; one its handler refuses for its
//! content (it would have been refused live) is counted and passed, like a corrupt record.
//! The same task keeps the numbers' snapshot that answers calls while the database is away.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use tower::ServiceExt as _;

use super::AppState;
use super::error::DbUnavailable;
use super::twilio_guard::VerifiedForm;
use crate::spool::{Entry, Record, Spool};

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
    apply_spool(&state.spool, ahead, |record| apply(state, record)).await
}

/// [`replay`]'s passes over the file, `apply_one` applying one webhook: apart from the
/// database, so that the order, the marks and the retries are tested on their own.
async fn apply_spool<F, Fut>(
    spool: &Arc<Spool>,
    ahead: &mut HashSet<u64>,
    mut apply_one: F,
) -> anyhow::Result<bool>
where
    F: FnMut(Record) -> Fut,
    Fut: Future<Output = Applied>,
{
    let failures = &spool.failures;
    loop {
        let from = spool.replayed_to();
        let reader = spool.clone();
        let entries = tokio::task::spawn_blocking(move || reader.read_from(from)).await??;
        let mut stopped = false;
        for i in crate::spool::arrival_order(&entries) {
            let entry = &entries[i];
            let Some(e) = entry.end() else { continue };
            if ahead.contains(&e) {
                continue;
            }
            match entry {
                Entry::Record { record, .. } => match apply_one(record.clone()).await {
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
                        spool
                            .replayed_skipped
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Applied::Done(status) if status.is_success() => {
                        spool
                            .replayed_applied
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Applied::Done(status) => {
                        // Refused for its content: it would have been refused live.
                        tracing::warn!(path = %record.path, status = status.as_u16(), "a spooled webhook was refused when replayed; passed");
                        spool
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
                    spool
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
        let marker = spool.clone();
        let empty =
            tokio::task::spawn_blocking(move || marker.applied_through(end, done)).await??;
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
async fn apply(state: &AppState, record: Record) -> Applied {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::tests::{arrived as record, dir};
    use axum::http::StatusCode;
    use std::sync::Mutex;

    fn sid(record: &Record) -> String {
        record.pairs[0].1.clone()
    }

    /// A spool holding `records`, in that order, in a directory of its own.
    fn spool(name: &str, records: &[Record]) -> Arc<Spool> {
        let spool = Spool::open(&dir(&format!("replay-{name}"))).expect("a spool");
        for r in records {
            spool.append(r).expect("written");
        }
        Arc::new(spool)
    }

    /// One pass; `outcome` answers each try by the webhook's SID; the SIDs tried are added to
    /// `tried`.
    async fn pass(
        spool: &Arc<Spool>,
        ahead: &mut HashSet<u64>,
        tried: &Mutex<Vec<String>>,
        outcome: impl Fn(&str) -> Applied,
    ) -> bool {
        apply_spool(spool, ahead, |r| {
            let s = sid(&r);
            let answer = outcome(&s);
            tried.lock().expect("the list").push(s);
            async move { answer }
        })
        .await
        .expect("a pass")
    }

    const OK: Applied = Applied::Done(StatusCode::OK);

    #[tokio::test]
    async fn a_pass_stopped_midway_applies_nothing_twice_and_keeps_the_arrival_order() {
        // They arrived B, C, A (A waited out the database longest); the database goes away
        // at C, after B was applied. Written A, B, C: B is beyond the file's mark (A, first
        // in the file, is not applied) and remembered; written B, A, C: B is marked.
        let arrived = |s: &str| match s {
            "B" => 100,
            "C" => 200,
            _ => 300,
        };
        let table = [
            ("ahead", ["A", "B", "C"], 3, 1),
            ("marked", ["B", "A", "C"], 2, 0),
        ];
        for (name, written, pending, remembered) in table {
            let spool = spool(name, &written.map(|s| record(s, arrived(s))));
            let tried = Mutex::new(Vec::new());
            let mut ahead = HashSet::new();
            let empty = pass(&spool, &mut ahead, &tried, |s| {
                if s == "C" { Applied::Unavailable } else { OK }
            })
            .await;
            assert!(!empty, "{name}");
            assert_eq!(spool.pending(), pending, "{name}");
            assert_eq!(spool.replayed_to() > 0, pending < 3, "{name}");
            assert_eq!(ahead.len(), remembered, "{name}");
            // Back: C, then A; B is not applied again.
            assert!(pass(&spool, &mut ahead, &tried, |_| OK).await, "{name}");
            assert_eq!(
                *tried.lock().expect("the list"),
                ["B", "C", "C", "A"],
                "{name}"
            );
            let applied = spool
                .replayed_applied
                .load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(applied, 3, "{name}");
            assert!(!spool.has_pending() && ahead.is_empty(), "{name}");
            assert_eq!(std::fs::metadata(spool.path()).expect("the file").len(), 0);
        }
    }

    #[tokio::test]
    async fn a_webhook_that_keeps_failing_holds_the_spool_for_a_while_then_is_passed() {
        let spool = spool("failing", &[record("A", 100), record("B", 200)]);
        let tried = Mutex::new(Vec::new());
        let mut ahead = HashSet::new();
        let failing = |s: &str| {
            if s == "A" {
                Applied::Done(StatusCode::INTERNAL_SERVER_ERROR)
            } else {
                OK
            }
        };
        for n in 1..TRIES {
            assert!(!pass(&spool, &mut ahead, &tried, failing).await, "pass {n}");
            assert_eq!(spool.pending(), 2, "B waits behind A (pass {n})");
        }
        assert!(pass(&spool, &mut ahead, &tried, failing).await);
        let tried = tried.lock().expect("the list");
        assert_eq!(tried.iter().filter(|s| *s == "A").count(), TRIES as usize);
        assert_eq!(tried.last().map(String::as_str), Some("B"));
        let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(count(&spool.replayed_skipped), 1);
        assert_eq!(count(&spool.replayed_applied), 1);
        assert!(spool.failures.lock().expect("the failures").is_empty());
    }

    #[tokio::test]
    async fn a_webhook_refused_for_its_content_is_passed_at_once() {
        let spool = spool("refused", &[record("A", 100), record("B", 200)]);
        let tried = Mutex::new(Vec::new());
        let mut ahead = HashSet::new();
        let empty = pass(&spool, &mut ahead, &tried, |s| {
            if s == "A" {
                Applied::Done(StatusCode::BAD_REQUEST)
            } else {
                OK
            }
        })
        .await;
        assert!(empty);
        assert_eq!(*tried.lock().expect("the list"), ["A", "B"]);
        assert_eq!(
            spool
                .replayed_skipped
                .load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    }
}
