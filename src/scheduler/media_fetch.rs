//! The `media_fetch` job (README.md "Pictures"): fetches an inbound text's media item from
//! Twilio with the account's credentials, checks its bytes (`domain::media::check`), and keeps
//! it or records why not. A fetch that fails is retried with backoff, [`MAX_ATTEMPTS`] times in
//! all (about an hour), then the item ends `failed` with the error. The text itself was stored
//! with its webhook and never waits for this.

use super::{Outcome, after, jitter, send};
use crate::context::AppState;
use crate::domain::backoff;
use crate::domain::media::{self, Refused};
use crate::store::jobs::JobState;
use crate::store::{self, jobs, media as rows};
use crate::twilio::client::ReadError;

/// Tries of a fetch before the item counts as failed.
pub const MAX_ATTEMPTS: i32 = 8;

/// The waits between tries: 30 s doubling up to 30 min (about an hour in all), whatever the
/// texts' own backoff.
const BACKOFF_BASE: std::time::Duration = std::time::Duration::from_secs(30);
const BACKOFF_CAP: std::time::Duration = std::time::Duration::from_secs(30 * 60);

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let p: jobs::payload::MediaFetch = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let mut conn = state.pool.acquire().await?;
    // Tried too often already, whatever stopped the earlier tries (the database, say): the
    // item ends `failed` rather than "on its way" for ever.
    if job.attempt > MAX_ATTEMPTS {
        rows::mark(
            &mut conn,
            brokerage,
            p.media_id,
            "failed",
            "gave up after repeated errors",
        )
        .await?;
        return Ok(Outcome::Dead(
            "media fetch: gave up after repeated errors".into(),
        ));
    }
    let Some(item) = rows::to_fetch(&mut conn, brokerage, p.media_id).await? else {
        return Ok(Outcome::Dead("the media item is gone".into()));
    };
    if item.state != "pending" {
        return Ok(Outcome::Done(format!("already {}", item.state)));
    }
    let (Some(message_sid), Some(media_sid)) = (item.message_sid, item.media_sid) else {
        rows::mark(&mut conn, brokerage, p.media_id, "refused", "not_twilio").await?;
        return Ok(Outcome::Done("refused".into()));
    };
    drop(conn);
    let now = state.clock.now();
    let creds = match state.credentials(brokerage).await? {
        Ok(creds) => creds,
        Err(why) => return retry_or_fail(state, job, p.media_id, &why.to_string()).await,
    };
    let fetched = state
        .twilio
        .media(&creds, &message_sid, &media_sid, media::MAX_BYTES)
        .await;
    let mut conn = state.pool.acquire().await?;
    match fetched {
        Ok((bytes, _)) => match media::check(&bytes) {
            Ok(checked) => {
                rows::mark_stored(
                    &mut conn,
                    brokerage,
                    p.media_id,
                    &rows::Stored {
                        bytes: &bytes,
                        content_type: checked.kind.mime(),
                        width: checked.width,
                        height: checked.height,
                    },
                    now,
                )
                .await?;
                tracing::info!(
                    media_id = p.media_id,
                    bytes = bytes.len(),
                    content_type = checked.kind.mime(),
                    "media stored"
                );
                Ok(Outcome::Done("stored".into()))
            }
            Err(refused) => refuse(&mut conn, brokerage, p.media_id, &refused).await,
        },
        // Larger than the cap: refused without reading the rest.
        Err(ReadError::TooLarge { .. }) => {
            refuse(
                &mut conn,
                brokerage,
                p.media_id,
                &Refused::TooLarge {
                    bytes: media::MAX_BYTES + 1,
                },
            )
            .await
        }
        Err(e) => {
            drop(conn);
            retry_or_fail(state, job, p.media_id, &e.to_string()).await
        }
    }
}

async fn refuse(
    conn: &mut sqlx::PgConnection,
    brokerage: store::BrokerageId,
    media_id: i64,
    refused: &Refused,
) -> anyhow::Result<Outcome> {
    let code = refused.code();
    rows::mark(conn, brokerage, media_id, "refused", &code).await?;
    tracing::info!(media_id, reason = %code, "media refused");
    Ok(Outcome::Done(format!("refused:{code}")))
}

/// Tries again later, or, after [`MAX_ATTEMPTS`], ends the item `failed` with `error`.
async fn retry_or_fail(
    state: &AppState,
    job: &jobs::Claimed,
    media_id: i64,
    error: &str,
) -> anyhow::Result<Outcome> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    if job.attempt >= MAX_ATTEMPTS {
        rows::mark(&mut tx, job.brokerage_id, media_id, "failed", error).await?;
        tx.commit().await?;
        tracing::warn!(
            media_id,
            attempt = job.attempt,
            error,
            "media could not be fetched; given up"
        );
        return Ok(Outcome::Dead(format!("fetch failed: {error}")));
    }
    let wait = backoff::delay(
        u32::try_from(job.attempt).unwrap_or(1),
        BACKOFF_BASE,
        BACKOFF_CAP,
        None,
        jitter(),
    );
    jobs::reschedule(
        &mut tx,
        job.job_id,
        job.attempt,
        JobState::Running,
        after(now, wait),
        "retry",
        Some(error),
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        media_id,
        attempt = job.attempt,
        error,
        "media fetch failed; will retry"
    );
    Ok(Outcome::Persisted { label: "retry" })
}
