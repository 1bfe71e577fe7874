//! A `follow_up` job: one step of the sequence (docs/architecture.md step 7). It re-checks its stop
//! conditions (a reply, an answered call, an agent's takeover; an opt-out or review hold is the
//! gate's), keeps the sequence's order (a step waits for a deferred earlier one), and then
//! passes the whole gate like every other text (docs/compliance.md R7: quiet hours defer a step,
//! they never drop it).

use chrono::{DateTime, Duration, Utc};

use super::{Outcome, send, text_back};
use crate::context::AppState;
use crate::domain::gate;
use crate::domain::language;
use crate::domain::sms_text;
use crate::store::jobs::JobState;
use crate::store::{self, jobs, lookups, messages};

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let now = state.clock.now();
    let p: jobs::payload::FollowUp = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let (mut conn, contact, recipient) = match send::start(state, job).await? {
        send::Start::Go { conn, contact, to } => (conn, contact, to),
        send::Start::Done(outcome) => return Ok(outcome),
    };
    let contact_id = contact.contact_id;
    let call = match send::the_call(&mut conn, job).await? {
        Ok(call) => call,
        Err(outcome) => return Ok(outcome),
    };
    // Stop conditions (R12): a person has the lead now.
    if let Some(reason) =
        send::superseded(&mut conn, brokerage, contact_id, p.text_back_accepted_at).await?
    {
        return Ok(Outcome::Cancelled(reason.into()));
    }
    if messages::agent_wrote_since(&mut conn, brokerage, contact_id, p.text_back_accepted_at)
        .await?
    {
        return Ok(Outcome::Cancelled("agent_takeover".into()));
    }
    // A person took the conversation over or closed it (R12): also when that happened while
    // the text-back was in flight and this step was armed after.
    if let Some(reason) =
        store::conversations::automation_stopped(&mut conn, brokerage, contact_id).await?
    {
        return Ok(Outcome::Cancelled(reason.into()));
    }
    // The carrier filtered the text-back (30007) while this step was already claimed, so the
    // callback's cancellation of scheduled steps missed it (docs/reliability.md §3); asked
    // again under the contact's lock before the send (`send::gate_and_send`).
    if messages::outbound(&mut conn, brokerage, p.text_back_message_id)
        .await?
        .is_some_and(|m| m.error_code == Some(30007))
    {
        return Ok(Outcome::Cancelled("filtered".into()));
    }
    // The sequence keeps its order: an earlier step still waiting (deferred by quiet hours or
    // the cap) goes first.
    if let Some(earlier) = jobs::earlier_steps_pending(
        &mut conn,
        brokerage,
        contact_id,
        p.text_back_message_id,
        p.position,
    )
    .await?
    {
        let until = earlier.max(now) + Duration::minutes(1);
        let mut tx = state.pool.begin().await?;
        jobs::reschedule(
            &mut tx,
            job.job_id,
            job.attempt,
            JobState::Running,
            until,
            "sequence_order",
            None,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        return Ok(Outcome::Persisted { label: "deferred" });
    }

    let rules = store::gate::brokerage_rules(&mut conn, brokerage).await?;
    // In the contact's language (README.md "Spanish").
    let (language, templates) = language::pick(
        contact.language_or(rules.default_language()),
        &p.templates[..],
        p.templates_es.as_deref(),
    );
    let variant = text_back::stable_variant(&contact.phone, templates.len());
    let Some(source) = templates.get(variant) else {
        return Ok(Outcome::Dead("the follow-up step has no template".into()));
    };
    let cached_name = lookups::fresh(
        &mut conn,
        brokerage,
        &contact.phone,
        DateTime::<Utc>::UNIX_EPOCH,
    )
    .await?
    .and_then(|l| l.caller_name);
    drop(conn);
    let name = contact.name.as_deref().or(cached_name.as_deref());
    let body = text_back::render(source, &rules.name, &call, name)?;
    let body = sms_text::identify_in(&body, &rules.name, true, language);
    let out = send::Outgoing {
        media_urls: &[],
        kind: gate::Kind::FollowUp,
        contact_id,
        to: &recipient,
        number_id: call.number_id,
        from: &call.number_e164,
        body: &body,
        template_variant: i32::try_from(variant).ok(),
        keyword: None,
        call_id: Some(call.call_id),
        call_ended_at: None,
        missed_at: None,
        superseded_since: Some(p.text_back_accepted_at),
        by_text: None,
    };
    send::gate_and_send(state, job, &out, &rules).await
}
