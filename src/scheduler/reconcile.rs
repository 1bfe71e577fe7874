//! The `reconcile` job (docs/reliability.md §2 step 5): settles a send whose outcome is unknown by
//! the carrier's own message list, never by sending again.
//!
//! * one candidate (same `To`, `From` and body, created from 60 s before the send started to
//!   60 s after its request timed out, its sid not linked to another row) ⇒ sent, linked to
//!   that sid;
//! * none with the same body, but a message of that window under another body (a trial
//!   account's prefix, a redaction, a rewrite) that none of our other rows to that recipient
//!   holds ⇒ `needs_review`: never taken for absence;
//! * no candidate in two listings at least `reconcile_gap` apart, the later one at least
//!   `reconcile_min_age` after the send started ⇒ certainly not sent: the text's job goes back
//!   to `scheduled` and its next attempt runs the gate again;
//! * two candidates, or a list that cannot be read before the retry budget ends ⇒
//!   `needs_review`: a person is told; nothing is resent.

use chrono::{DateTime, Utc};

use super::{Outcome, after, chrono, jitter};
use crate::context::AppState;
use crate::domain::backoff;
use crate::store::jobs::JobState;
use crate::store::{alerts, jobs, messages};
use crate::twilio::client::ApiMessage;

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let t = state.timing;
    let p: jobs::payload::Reconcile = match super::send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let (message_id, text_job_id, mut absent) = (p.message_id, p.text_job_id.0, p.absent);

    let mut conn = state.pool.acquire().await?;
    let Some(message) = messages::outbound(&mut conn, brokerage, message_id).await? else {
        return Ok(Outcome::Dead("the message is gone".into()));
    };
    let Some((text_state, text_attempt, text_due_at)) =
        jobs::state_of(&mut conn, text_job_id).await?
    else {
        return Ok(Outcome::Dead("the text's job is gone".into()));
    };
    drop(conn);
    if !matches!(message.send_state.as_deref(), Some("sending" | "unknown")) {
        if text_state == JobState::Reconciling {
            follow_settled(state, &message, text_job_id, text_attempt, text_due_at).await?;
        }
        return Ok(Outcome::Done("already_settled".into()));
    }

    let started = message.occurred_at;
    let listing = match state.credentials(brokerage).await? {
        Ok(creds) => {
            state
                .twilio
                .list_messages(&creds, &message.to_raw, &message.from_raw)
                .await
        }
        Err(why) => Err(crate::twilio::client::ReadError::NoAccount(why)),
    };
    let now = state.clock.now();
    let budget_end = after(text_due_at, t.retry_budget);

    let list = match listing {
        Ok(list) => list,
        Err(e) => {
            if now >= budget_end {
                return review(
                    state,
                    job,
                    &message,
                    text_job_id,
                    "carrier_list_unreadable",
                    now,
                )
                .await;
            }
            let retry = u32::try_from(job.attempt).unwrap_or(u32::MAX);
            let next = after(
                now,
                backoff::delay(retry, t.backoff_base, t.backoff_cap, None, jitter()),
            );
            let mut conn = state.pool.acquire().await?;
            jobs::reschedule(
                &mut conn,
                job.job_id,
                job.attempt,
                JobState::Running,
                next,
                "list_failed",
                Some(&e.to_string()),
                None,
                now,
            )
            .await?;
            tracing::warn!(error = %e, "the carrier's message list could not be read; looking again later");
            return Ok(Outcome::Persisted { label: "retry" });
        }
    };

    // Ours from this window: outbound, from our number to the recipient (the listing's own
    // filter), created between 60 s before the send began (clocks differ) and 60 s after its
    // request could last have reached the carrier, not linked to another row. A later text
    // (the next follow-up, a reply) is not this send's.
    let latest = started + chrono(state.timing.send.total) + chrono::Duration::seconds(60);
    let mut window: Vec<&ApiMessage> = list
        .iter()
        .filter(|m| {
            m.direction
                .as_deref()
                .is_none_or(|d| d.starts_with("outbound"))
        })
        .filter(|m| {
            m.created_at()
                .is_some_and(|c| c >= started - chrono::Duration::seconds(60) && c <= latest)
        })
        .collect();
    if !window.is_empty() {
        let sids: Vec<String> = window.iter().map(|m| m.sid.clone()).collect();
        let mut conn = state.pool.acquire().await?;
        let linked = messages::linked_sids(&mut conn, &sids).await?;
        window
            .retain(|m| !linked.contains(&m.sid) || message.sid.as_deref() == Some(m.sid.as_str()));
    }
    // The carrier may keep a message under another body than the one sent (a trial account's
    // prefix, Message Redaction, a Messaging Service's rewrite): such a message is not proof
    // that ours is absent. Only the same body settles it as found; another body leaves it to a
    // person (docs/reliability.md §2).
    let (candidates, mut other_bodies): (Vec<&ApiMessage>, Vec<&ApiMessage>) = window
        .into_iter()
        .partition(|m| m.body.as_deref() == Some(message.body.as_str()));
    if !other_bodies.is_empty() {
        // A body one of our other rows to this recipient holds is that row's text (two alerts
        // to one agent a second apart, the other's answer not written yet): explained, not a
        // rewrite of ours.
        let mut conn = state.pool.acquire().await?;
        let ours = messages::other_bodies_between(
            &mut conn,
            brokerage,
            &message.to_raw,
            &message.from_raw,
            message_id,
            started - chrono::Duration::minutes(10),
        )
        .await?;
        other_bodies.retain(|m| m.body.as_ref().is_none_or(|b| !ours.contains(b)));
    }
    if candidates.is_empty() && !other_bodies.is_empty() {
        return review(
            state,
            job,
            &message,
            text_job_id,
            "carrier_body_differs",
            now,
        )
        .await;
    }

    match candidates.as_slice() {
        [found] => {
            let mut tx = state.pool.begin().await?;
            // The contact's lock first (docs/reliability.md §4), as the send's own record takes it.
            if let Some(contact_id) = message.contact_id {
                crate::store::contacts::lock(&mut tx, brokerage, contact_id).await?;
            }
            messages::link_found(
                &mut tx,
                brokerage,
                message_id,
                &found.sid,
                found.status.as_deref(),
            )
            .await?;
            crate::effects::adopt_orphan_statuses(&mut tx, brokerage, message_id, &found.sid)
                .await?;
            jobs::transition(
                &mut tx,
                text_job_id,
                None,
                JobState::Reconciling,
                JobState::Sent,
                Some("reconciled"),
                None,
                now,
            )
            .await?;
            crate::effects::after_sent(&mut tx, brokerage, text_job_id, message_id, now).await?;
            tx.commit().await?;
            state.metrics.text("text_back", "accepted");
            tracing::info!("reconciled: the carrier has the text");
            Ok(Outcome::Done("found".into()))
        }
        [] => {
            absent.push(now);
            let old_enough = now - started >= chrono(t.reconcile_min_age);
            let earlier = absent.iter().any(|a| now - *a >= chrono(t.reconcile_gap));
            if old_enough && earlier {
                let mut tx = state.pool.begin().await?;
                messages::settle(
                    &mut tx,
                    brokerage,
                    message_id,
                    &["sending", "unknown"],
                    "failed_certain",
                    None,
                    None,
                )
                .await?;
                state.metrics.text("text_back", "failed_certain");
                requeue_or_expire(
                    &mut tx,
                    (text_job_id, text_attempt),
                    now >= budget_end,
                    "absent_twice",
                    Some("absent from the carrier's list"),
                    now,
                )
                .await?;
                tx.commit().await?;
                tracing::info!(
                    "reconciled: the carrier never had the text; it goes through the normal path again"
                );
                return Ok(Outcome::Done("absent_twice".into()));
            }
            let next = after(now, t.reconcile_gap).max(after(started, t.reconcile_min_age));
            let mut conn = state.pool.acquire().await?;
            let payload = serde_json::to_value(jobs::payload::Reconcile {
                message_id: p.message_id,
                text_job_id: p.text_job_id,
                absent,
            })?;
            jobs::reschedule(
                &mut conn,
                job.job_id,
                job.attempt,
                JobState::Running,
                next,
                "absent_once",
                None,
                Some(&payload),
                now,
            )
            .await?;
            Ok(Outcome::Persisted { label: "retry" })
        }
        _ => {
            review(
                state,
                job,
                &message,
                text_job_id,
                "carrier_list_ambiguous",
                now,
            )
            .await
        }
    }
}

/// The message was settled by another path while its job waited in `reconciling`: the
/// attempt that made the request outlived its lease and recorded the carrier's answer after a
/// re-claim had handed the job to this reconcile (found by the F12 kill variant on a loaded
/// machine). The job follows its message: `sent`, `needs_review`, `dead` for a rejection (its
/// effects were applied by that record), and for a text certainly not made, the normal path
/// again within the retry budget.
async fn follow_settled(
    state: &AppState,
    message: &messages::Outbound,
    text_job_id: i64,
    text_attempt: i32,
    text_due_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let settled = message.send_state.as_deref().unwrap_or_default();
    let (to, reason) = match settled {
        "sent" => (JobState::Sent, "reconciled"),
        "needs_review" => (JobState::NeedsReview, "reconciled"),
        "rejected" => (JobState::Dead, "carrier_rejected"),
        _ => {
            let expired = now >= after(text_due_at, state.timing.retry_budget);
            requeue_or_expire(
                &mut tx,
                (text_job_id, text_attempt),
                expired,
                "not_sent",
                None,
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        }
    };
    jobs::transition(
        &mut tx,
        text_job_id,
        None,
        JobState::Reconciling,
        to,
        Some(reason),
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        settled,
        "the text's job follows its message, settled by its earlier attempt"
    );
    Ok(())
}

/// A text certainly not made: its job goes through the normal path again (a new attempt, the
/// gate run again, a new outbound row), or, past the retry budget, ends `dead(stale)`.
async fn requeue_or_expire(
    tx: &mut sqlx::PgConnection,
    (text_job_id, text_attempt): (i64, i32),
    expired: bool,
    reason: &str,
    last_error: Option<&str>,
    now: DateTime<Utc>,
) -> crate::store::Result<()> {
    if expired {
        jobs::transition(
            tx,
            text_job_id,
            None,
            JobState::Reconciling,
            JobState::Dead,
            Some("stale"),
            last_error,
            now,
        )
        .await?;
    } else {
        jobs::reschedule(
            tx,
            text_job_id,
            text_attempt,
            JobState::Reconciling,
            now,
            reason,
            None,
            None,
            now,
        )
        .await?;
    }
    Ok(())
}

/// The list cannot settle it: a person must look ("this text may not have gone out").
async fn review(
    state: &AppState,
    job: &jobs::Claimed,
    message: &messages::Outbound,
    text_job_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let mut tx = state.pool.begin().await?;
    messages::settle(
        &mut tx,
        brokerage,
        message.message_id,
        &["sending", "unknown"],
        "needs_review",
        None,
        Some(reason),
    )
    .await?;
    jobs::transition(
        &mut tx,
        text_job_id,
        None,
        JobState::Reconciling,
        JobState::NeedsReview,
        Some(reason),
        None,
        now,
    )
    .await?;
    crate::effects::raise_alert(
        &mut tx,
        brokerage,
        &alerts::NewAlert {
            audience: "admins",
            reason: "text_needs_review",
            detail: Some(reason),
            contact_id: message.contact_id,
            message_id: Some(message.message_id),
            call_id: None,
            now,
        },
        crate::effects::Deliver::Yes {
            number_id: Some(message.number_id),
        },
    )
    .await?;
    tx.commit().await?;
    state.metrics.job("text_back", "needs_review");
    tracing::warn!(%reason, "a text's fate could not be settled; a person must review it");
    Ok(Outcome::Done(reason.to_owned()))
}
