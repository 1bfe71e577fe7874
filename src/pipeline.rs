//! What events do to a contact's automation, applied inside the event's own transaction
//! (DESIGN.md "What happens to a call"): a miss schedules or re-arms the text-back, an answered
//! call or an inbound text cancels it, a carrier code has its effect. Each takes the contact's
//! row lock first, so racing events for one contact are ordered (reliability.md §4).

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use crate::domain::carrier::CodeEffect;
use crate::domain::episode::{self, LastTextBack, MissAction};
use crate::store::{self, BrokerageId, alerts, brokerages, contacts, jobs, suppressions, tasks};

/// A missed call from a contact (dial result or the status backup path): one text-back per
/// episode. Returns what was done.
pub async fn on_missed_call(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: i64,
    call_id: i64,
    now: DateTime<Utc>,
) -> store::Result<MissAction> {
    contacts::lock(conn, brokerage, contact_id).await?;
    let settings = brokerages::text_back_settings(conn, brokerage).await?;
    let run_at = now + Duration::seconds(i64::from(settings.text_back_delay_secs));
    let latest = jobs::latest(conn, brokerage, contact_id, jobs::kind::TEXT_BACK).await?;
    let last = latest.as_ref().map_or(LastTextBack::None, |j| {
        LastTextBack::from_state(&j.state, j.finished_at)
    });
    let action = episode::on_miss(last, now);
    match (action, &latest) {
        (MissAction::Rearm, Some(job)) => {
            jobs::rearm(conn, brokerage, job.job_id, run_at, call_id, now).await?;
        }
        (MissAction::RecordOnly, _) => {
            // The text-back is on its way or went out: the agents hear of the repeat call.
            alerts::raise(
                conn,
                brokerage,
                &alerts::NewAlert {
                    audience: "agents",
                    reason: "repeat_missed_call",
                    detail: None,
                    message_id: None,
                    call_id: Some(call_id),
                    now,
                },
            )
            .await?;
        }
        _ => {
            jobs::enqueue(
                conn,
                brokerage,
                &jobs::NewJob {
                    kind: jobs::kind::TEXT_BACK,
                    contact_id: Some(contact_id),
                    call_id: Some(call_id),
                    run_at,
                    payload: serde_json::json!({}),
                    now,
                },
            )
            .await?;
        }
    }
    Ok(action)
}

/// A human reached the contact: pending automation stops, callback tasks are done.
pub async fn on_answered_call(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: i64,
    now: DateTime<Utc>,
) -> store::Result<u64> {
    contacts::lock(conn, brokerage, contact_id).await?;
    tasks::close_for_contact(conn, brokerage, contact_id, "answered_call", now).await?;
    jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        jobs::AUTOMATION,
        "answered_call",
        now,
    )
    .await
}

/// The contact wrote to us: pending automation stops (the conversation is a person's now).
pub async fn on_inbound_text(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: i64,
    now: DateTime<Utc>,
) -> store::Result<u64> {
    contacts::lock(conn, brokerage, contact_id).await?;
    jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        jobs::AUTOMATION,
        "inbound_text",
        now,
    )
    .await
}

/// Who a carrier code's effect lands on.
pub struct Target<'a> {
    pub contact_id: Option<i64>,
    pub phone: &'a str,
    pub number_id: i64,
    pub message_id: Option<i64>,
    pub call_id: Option<i64>,
}

/// The effect of a carrier code (reliability.md §3), beyond the send's own outcome.
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
            suppressions::suppress(conn, brokerage, target.phone, "carrier", Some(code), now)
                .await?;
            if let Some(contact_id) = target.contact_id {
                jobs::cancel_scheduled(
                    conn,
                    brokerage,
                    contact_id,
                    jobs::AUTOMATION,
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
        CodeEffect::CallbackTask => {
            if let Some(contact_id) = target.contact_id {
                tasks::open_callback(
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
            }
        }
        CodeEffect::AdminAlert | CodeEffect::Filtered => {
            let reason = if effect == CodeEffect::Filtered {
                "carrier_filtered"
            } else {
                "carrier_configuration"
            };
            alerts::raise(
                conn,
                brokerage,
                &alerts::NewAlert {
                    audience: "admins",
                    reason,
                    detail: Some(code),
                    message_id: target.message_id,
                    call_id: target.call_id,
                    now,
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
/// (reliability.md §3). A garbage code is kept raw and moves nothing. Returns false for a
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
    message_id: i64,
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
