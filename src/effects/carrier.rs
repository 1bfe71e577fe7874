//! The carrier's answers: a code's effect (docs/reliability.md §3), status callbacks, and what a
//! sent text arms next (the follow-up sequence) unless the sequence has been stopped.

use crate::store::jobs::{JobKind, JobPayload, Place, payload};
use crate::store::{CallId, ContactId, MessageId};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::alerts::{Deliver, open_callback_task, raise_alert};

use crate::domain::carrier::CodeEffect;
use crate::domain::sequence;
use crate::store::{
    self, BrokerageId, alerts, brokerages, contacts, conversations, jobs, leads, suppressions,
    tasks,
};

/// Who a carrier code's effect lands on.
pub struct Target<'a> {
    /// The text went to one of the brokerage's own people (an alert), not to a lead: a
    /// problem with it is recorded for the admins but never texted (no alert about an alert).
    pub is_staff: bool,
    pub contact_id: Option<ContactId>,
    pub phone: &'a str,
    pub number_id: i64,
    pub message_id: Option<MessageId>,
    pub call_id: Option<CallId>,
}

/// The effect of a carrier code (docs/reliability.md §3), beyond the send's own outcome.
pub async fn apply_code_effect(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    effect: CodeEffect,
    code: &str,
    target: &Target<'_>,
    now: DateTime<Utc>,
) -> store::Result<()> {
    match effect {
        CodeEffect::OptedOut => {
            if let Some(contact_id) = target.contact_id {
                contacts::lock(conn, brokerage, contact_id).await?;
            }
            let how = format!("ErrorCode {code}");
            let evidence = suppressions::Evidence {
                source: "carrier",
                who: "carrier",
                how: Some(&how),
                evidence: None,
                raw_text: None,
                reason: Some("the carrier reports the number opted out"),
            };
            suppressions::suppress(conn, brokerage, target.phone, &evidence, now).await?;
            if let Some(contact_id) = target.contact_id {
                jobs::cancel_scheduled(
                    conn,
                    brokerage,
                    contact_id,
                    jobs::ON_OPT_OUT,
                    "opted_out",
                    now,
                )
                .await?;
            }
        }
        CodeEffect::InvalidNumber => {
            if let Some(contact_id) = target.contact_id {
                contacts::mark_invalid(conn, brokerage, contact_id, now).await?;
            }
        }
        CodeEffect::CannotReceive | CodeEffect::Unreachable => {
            if let Some(contact_id) = target.contact_id {
                contacts::lock(conn, brokerage, contact_id).await?;
                open_callback_task(
                    conn,
                    brokerage,
                    &tasks::NewTask {
                        contact_id,
                        number_id: target.number_id,
                        call_id: target.call_id,
                        message_id: target.message_id,
                        reason: "cannot_receive",
                        detail: Some(code),
                        now,
                    },
                )
                .await?;
                let stop = if effect == CodeEffect::CannotReceive {
                    // Until an inbound text proves otherwise, no automated text goes to it
                    // and the next miss becomes a callback task.
                    contacts::mark_cannot_text(conn, brokerage, contact_id, code, now).await?;
                    Some("cannot_text")
                } else {
                    // 30003 may pass (a phone switched off): one more step may go, but not a
                    // third text after two unreachable ones in a row.
                    let previous = match target.message_id {
                        Some(m) => {
                            store::messages::previous_error_code(conn, brokerage, contact_id, m)
                                .await?
                        }
                        None => None,
                    };
                    (previous == Some(30003)).then_some("unreachable")
                };
                if let Some(reason) = stop {
                    jobs::cancel_scheduled(
                        conn,
                        brokerage,
                        contact_id,
                        &[JobKind::FollowUp],
                        reason,
                        now,
                    )
                    .await?;
                }
            }
        }
        CodeEffect::AdminAlert | CodeEffect::Filtered => {
            let reason = if effect == CodeEffect::Filtered {
                "carrier_filtered"
            } else {
                "carrier_configuration"
            };
            if effect == CodeEffect::Filtered
                && let Some(contact_id) = target.contact_id
            {
                // A second text to a number whose first was filtered hurts the sender's
                // reputation: the contact's sequence ends here.
                contacts::lock(conn, brokerage, contact_id).await?;
                jobs::cancel_scheduled(
                    conn,
                    brokerage,
                    contact_id,
                    &[JobKind::FollowUp],
                    "filtered",
                    now,
                )
                .await?;
            }
            raise_alert(
                conn,
                brokerage,
                &alerts::NewAlert {
                    audience: "admins",
                    reason,
                    detail: Some(code),
                    contact_id: target.contact_id,
                    message_id: target.message_id,
                    call_id: target.call_id,
                    now,
                },
                if target.is_staff {
                    Deliver::No
                } else {
                    Deliver::Yes {
                        number_id: Some(target.number_id),
                    }
                },
            )
            .await?;
        }
        CodeEffect::FlagForReview => {
            if let Some(message_id) = target.message_id {
                store::messages::flag_for_review(
                    conn,
                    brokerage,
                    message_id,
                    "carrier_unknown_failure",
                )
                .await?;
            }
        }
        CodeEffect::Nothing => {}
    }
    Ok(())
}

/// A message status callback for one of our outbound messages, once per (message, status,
/// code): the status moves forward only, and a numeric `ErrorCode` has its effect
/// (docs/reliability.md §3). A garbage code is kept raw and moves nothing. Returns false for a
/// duplicate.
pub async fn on_message_status(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message: &store::messages::OutboundRow,
    status: &str,
    error_code_raw: Option<&str>,
    received_at: DateTime<Utc>,
) -> store::Result<bool> {
    use crate::store::messages;
    let new = messages::insert_status_event_if_new(
        conn,
        brokerage,
        message.message_id,
        status,
        error_code_raw,
        received_at,
    )
    .await?;
    if !new {
        return Ok(false);
    }
    let code = match error_code_raw.map(|raw| raw.trim().parse::<i32>()) {
        Some(Err(_)) => {
            tracing::warn!(%status, "status callback with a non-numeric ErrorCode: kept raw, state unchanged");
            return Ok(true);
        }
        Some(Ok(code)) => Some(code),
        None => None,
    };
    if !messages::advance_carrier_status(conn, brokerage, message.message_id, status, code).await? {
        tracing::info!(%status, "status callback ranks below the current status (or is unknown): state unchanged");
    }
    if let Some(code) = code
        && let Ok(code_u32) = u32::try_from(code)
    {
        let effect = crate::domain::carrier::async_effect(code_u32);
        let target = Target {
            is_staff: message.kind.as_deref() == Some("agent_alert"),
            contact_id: message.contact_id,
            phone: &message.to_raw,
            number_id: message.number_id,
            message_id: Some(message.message_id),
            call_id: None,
        };
        apply_code_effect(
            conn,
            brokerage,
            effect,
            &code.to_string(),
            &target,
            received_at,
        )
        .await?;
        tracing::info!(code, effect = ?effect, "carrier error code on a sent text");
    }
    Ok(true)
}

/// A send was just linked to `sid`: the status callbacks that beat it are applied now.
pub async fn adopt_orphan_statuses(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
    sid: &str,
) -> store::Result<()> {
    use crate::store::messages;
    let orphans = messages::take_orphan_statuses(conn, brokerage, sid).await?;
    if orphans.is_empty() {
        return Ok(());
    }
    let Some(message) = messages::find_outbound_by_sid(conn, brokerage, sid).await? else {
        return Ok(());
    };
    debug_assert_eq!(message.message_id, message_id);
    for (status, raw, received_at) in orphans {
        on_message_status(
            conn,
            brokerage,
            &message,
            &status,
            raw.as_deref(),
            received_at,
        )
        .await?;
    }
    Ok(())
}

/// A send was recorded as accepted (by the send's own record or by reconciliation): a
/// text-back arms the follow-up sequence (docs/architecture.md step 3), each step copied with its
/// templates and jittered (docs/compliance.md R15).
///
/// The steps are armed under the contact's lock, like every other writer of the contact's
/// jobs (docs/reliability.md §4). What stopped the sequence while the text-back was in flight
/// (after its pre-send transaction, before this record: an opt-out, a review hold, a reply, an
/// answered call, an agent's message) found no steps to cancel, so they are cancelled here at
/// once, with that reason (docs/compliance.md R2, R3, R12).
pub async fn after_sent(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    job_id: i64,
    message_id: MessageId,
    now: DateTime<Utc>,
) -> store::Result<()> {
    let Some((kind, Some(contact_id), call_id)) = jobs::identity(conn, job_id).await? else {
        return Ok(());
    };
    if kind == JobKind::AgentReply {
        // The first human reply, once it is on its way (a reply the gate or the carrier
        // refused is not one): the leads of the conversation that replied count it.
        leads::human_replied(conn, brokerage, contact_id, now).await?;
        return Ok(());
    }
    if kind != JobKind::TextBack {
        return Ok(());
    }
    leads::texted(conn, brokerage, job_id, message_id, now).await?;
    contacts::lock(conn, brokerage, contact_id).await?;
    let stopped = sequence_stopped(conn, brokerage, contact_id, message_id, now).await?;
    for step in brokerages::follow_up_steps(conn, brokerage).await? {
        let after = u64::try_from(step.after_secs).unwrap_or(0);
        let run_at = sequence::step_due(now, after, rand::random::<f64>());
        payload::FollowUp {
            position: step.position.into(),
            templates: step.templates.0,
            templates_es: step.templates_es.map(|t| t.0),
            text_back_message_id: message_id,
            text_back_accepted_at: now,
        }
        .enqueue(
            conn,
            brokerage,
            Place::for_contact(contact_id, run_at, now).with_call(call_id),
        )
        .await?;
    }
    if let Some(reason) = stopped {
        let cancelled = jobs::cancel_scheduled(
            conn,
            brokerage,
            contact_id,
            &[JobKind::FollowUp],
            reason,
            now,
        )
        .await?;
        tracing::info!(
            reason,
            cancelled,
            "the sequence stopped while the text-back was in flight"
        );
    }
    Ok(())
}

/// Why the follow-up sequence of the text-back `message_id` must not run, from what happened
/// since that text's pre-send transaction (the caller holds the contact's lock).
async fn sequence_stopped(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    message_id: MessageId,
    now: DateTime<Utc>,
) -> store::Result<Option<&'static str>> {
    let facts = store::gate::contact_facts(conn, brokerage, contact_id, now).await?;
    if facts.is_suppressed {
        return Ok(Some("opted_out"));
    }
    if facts.cannot_receive {
        // A status callback that beat this record said the number cannot take texts.
        return Ok(Some("cannot_text"));
    }
    if facts.review_hold {
        // A review hold comes with the inbound text that caused it (R3).
        return Ok(Some("inbound_text"));
    }
    if let Some(reason) = conversations::automation_stopped(conn, brokerage, contact_id).await? {
        return Ok(Some(reason));
    }
    let Some(text_back) = store::messages::outbound(conn, brokerage, message_id).await? else {
        return Ok(None);
    };
    if text_back.error_code == Some(30007) {
        return Ok(Some("filtered"));
    }
    let since = text_back.occurred_at;
    let (answered, wrote) = contacts::activity_since(conn, brokerage, contact_id, since).await?;
    Ok(if answered {
        Some("answered_call")
    } else if wrote {
        Some("inbound_text")
    } else if store::messages::agent_wrote_since(conn, brokerage, contact_id, since).await? {
        Some("agent_takeover")
    } else {
        None
    })
}
