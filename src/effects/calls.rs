//! A call's effects: a miss schedules or re-arms the text-back (one per episode), an answered
//! call or a person's answer cancels what is pending.

use crate::store::jobs::{JobKind, JobPayload, Place, payload};
use crate::store::{CallId, ContactId};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use super::alerts::{Deliver, raise_alert};

use crate::domain::episode::{self, LastTextBack, MissAction};
use crate::store::{
    self, BrokerageId, alerts, brokerages, contacts, conversations, jobs, leads, tasks,
};

/// A missed call from a contact (dial result or the status backup path): one text-back per
/// episode, and the number's callback mode (docs/calls.md). Returns what was done.
pub async fn on_missed_call(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    call_id: CallId,
    number: &store::numbers::NumberInfo,
    now: DateTime<Utc>,
) -> store::Result<MissAction> {
    contacts::lock(conn, brokerage, contact_id).await?;
    let settings = brokerages::text_back_settings(conn, brokerage).await?;
    let run_at = now + Duration::seconds(i64::from(settings.text_back_delay_secs));
    let latest = jobs::latest(conn, brokerage, contact_id, JobKind::TextBack).await?;
    let last = latest.as_ref().map_or(LastTextBack::None, |j| {
        LastTextBack::from_state(j.state.as_str(), j.finished_at)
    });
    let action = episode::on_miss(last, now);
    match (action, &latest) {
        (MissAction::Rearm, Some(job)) => {
            jobs::rearm(conn, brokerage, job.job_id, run_at, call_id, now).await?;
            leads::rearm(conn, brokerage, job.job_id, call_id, now).await?;
        }
        (MissAction::RecordOnly, _) => {
            // The text-back is on its way or went out: the agents hear of the repeat call.
            raise_alert(
                conn,
                brokerage,
                &alerts::NewAlert {
                    audience: "agents",
                    reason: "repeat_missed_call",
                    detail: None,
                    contact_id: Some(contact_id),
                    message_id: None,
                    call_id: Some(call_id),
                    now,
                },
                Deliver::Yes { number_id: None },
            )
            .await?;
        }
        _ => {
            let place = Place::for_contact(contact_id, run_at, now).with_call(Some(call_id));
            let job = payload::TextBack {}.enqueue(conn, brokerage, place).await?;
            leads::open(conn, brokerage, job.0, contact_id, call_id, now).await?;
        }
    }
    super::callbacks::after_miss(conn, brokerage, contact_id, call_id, number, now).await?;
    Ok(action)
}

/// A human reached the contact: pending automation stops, callback tasks are done, a reply
/// that waited is answered (its escalation disarmed).
pub async fn on_answered_call(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> store::Result<u64> {
    contacts::lock(conn, brokerage, contact_id).await?;
    tasks::close_for_contact(conn, brokerage, contact_id, "answered_call", now).await?;
    // Jobs before their leads, in the order a job's end reaches its lead (the trigger).
    let cancelled = jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        jobs::AUTOMATION,
        "answered_call",
        now,
    )
    .await?;
    human_answered(
        conn,
        brokerage,
        contact_id,
        "answered_call",
        "answered_call",
        now,
    )
    .await?;
    leads::answered(conn, brokerage, contact_id, now).await?;
    Ok(cancelled)
}

/// A person answered the contact (`by`: who, or how): the conversation stops waiting and its
/// escalation is disarmed (`reason` on the cancelled job). The contact is locked. Only this
/// contact's escalation jobs are cancelled (another merged contact's rows are not ours to lock
/// here); one of theirs that runs finds the wait answered and does nothing.
pub async fn human_answered(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> store::Result<()> {
    jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        &[JobKind::Escalation],
        reason,
        now,
    )
    .await?;
    if let Some(conv) = conversations::for_contact(conn, brokerage, contact_id).await? {
        conversations::stop_waiting(conn, brokerage, conv.conversation_id, by, now).await?;
    }
    Ok(())
}
