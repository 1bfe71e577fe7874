//! The `escalation` job: a lead's reply that no person answered within `[inbox]
//! escalate_after` moves to the next available agent by the number's routing, else a manager
//! (docs/routing.md), and the office's managers are alerted. The first human reply (or
//! an answered call, an opt-out, a close) cancels the job; if it runs anyway (a reply that
//! raced it), the wait is found answered and nothing happens.

use super::{Outcome, send};
use crate::context::AppState;
use crate::effects;
use crate::store::jobs::JobState;
use crate::store::{alerts, contacts, conversations, jobs};

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let p: jobs::payload::Escalation = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    // Ordered with the reply, call or text that would answer the lead (docs/reliability.md §4).
    if let Some(contact_id) = job.contact_id {
        contacts::lock(&mut tx, brokerage, contact_id).await?;
    }
    if !jobs::lock_if_held(&mut tx, job.job_id, job.attempt).await? {
        return Ok(Outcome::Persisted {
            label: "lost_lease",
        });
    }
    let Some(wait) = conversations::escalate(&mut tx, brokerage, p.reply_wait_id, now).await?
    else {
        send::finish(&mut tx, job, JobState::Done, Some("answered"), None, now).await?;
        tx.commit().await?;
        return Ok(Outcome::Persisted { label: "done" });
    };
    effects::routing::reassign_on_escalation(&mut tx, brokerage, &wait, now).await?;
    effects::raise_alert(
        &mut tx,
        brokerage,
        &alerts::NewAlert {
            audience: "managers",
            reason: "escalation",
            detail: None,
            contact_id: Some(wait.contact_id),
            message_id: None,
            call_id: None,
            now,
        },
        effects::Deliver::Yes {
            number_id: Some(wait.number_id),
        },
    )
    .await?;
    send::finish(&mut tx, job, JobState::Done, Some("escalated"), None, now).await?;
    tx.commit().await?;
    tracing::info!(
        conversation_id = wait.conversation_id,
        "a lead's reply waited too long: escalated to the managers"
    );
    Ok(Outcome::Persisted { label: "done" })
}
