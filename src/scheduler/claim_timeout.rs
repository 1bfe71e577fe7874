//! The `claim_timeout` job (docs/routing.md): a first-to-claim offer nobody claimed within the
//! number's `claim_timeout` ends, and the lead falls back to a round robin among the agents
//! available now, then the office's managers. A claim that committed first wins: the job then
//! finds the offer ended and does nothing.

use super::{Outcome, send};
use crate::context::AppState;
use crate::effects;
use crate::store::jobs::{self, JobState};

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let p: jobs::payload::ClaimTimeout = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let Some(contact_id) = job.contact_id else {
        return Ok(Outcome::Dead("a claim timeout without its contact".into()));
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    // The contact's lock first, as a claim takes it (docs/reliability.md §4).
    crate::store::contacts::lock(&mut tx, brokerage, contact_id).await?;
    if !jobs::lock_if_held(&mut tx, job.job_id, job.attempt).await? {
        return Ok(Outcome::Persisted {
            label: "lost_lease",
        });
    }
    let fell_back =
        effects::routing::claim_timed_out(&mut tx, brokerage, p.claim_offer_id, contact_id, now)
            .await?;
    let reason = if fell_back { "fell_back" } else { "claimed" };
    send::finish(&mut tx, job, JobState::Done, Some(reason), None, now).await?;
    tx.commit().await?;
    tracing::info!(reason, "first-to-claim offer's deadline");
    Ok(Outcome::Persisted { label: "done" })
}
