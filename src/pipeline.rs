//! What events do to a contact's automation, applied inside the event's own transaction
//! (DESIGN.md "What happens to a call"): a miss schedules or re-arms the text-back, an answered
//! call or an inbound text cancels it, a carrier code has its effect. Each takes the contact's
//! row lock first, so racing events for one contact are ordered (reliability.md §4).

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use crate::domain::carrier::CodeEffect;
use crate::domain::episode::{self, LastTextBack, MissAction};
use crate::domain::keywords::{Class, Classified};
use crate::domain::sequence;
use crate::store::{
    self, BrokerageId, alerts, brokerages, contacts, conversations, jobs, leads, suppressions,
    tasks,
};

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
            let job = jobs::enqueue(
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
            leads::open(conn, brokerage, job, contact_id, call_id, now).await?;
        }
    }
    Ok(action)
}

/// A human reached the contact: pending automation stops, callback tasks are done, a reply
/// that waited is answered (its escalation disarmed).
pub async fn on_answered_call(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: i64,
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
    contact_id: i64,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> store::Result<()> {
    jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        &[jobs::kind::ESCALATION],
        reason,
        now,
    )
    .await?;
    if let Some(conv) = conversations::for_contact(conn, brokerage, contact_id).await? {
        conversations::stop_waiting(conn, brokerage, conv.conversation_id, by, now).await?;
    }
    Ok(())
}

/// Who an alert is texted to, beyond being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deliver {
    /// Recorded (and shown) only: e.g. a problem sending an alert, which must not text again.
    No,
    /// Texted to the audience: `agents` of the conversation (or of `number_id` when the
    /// contact has none), `managers` of the number's office, `admins` when the reason is a
    /// configuration alert (`domain::alerts::admin_texted`).
    Yes { number_id: Option<i64> },
}

/// Records an alert for people and queues an `agent_alert` job for each person who is to be
/// texted about it (DESIGN.md step 9), in the caller's transaction. The rate limit is applied
/// when each job runs. Returns the alert's id (none when an alert of a once-a-day kind was
/// raised already).
pub async fn raise_alert(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    alert: &alerts::NewAlert<'_>,
    deliver: Deliver,
) -> store::Result<Option<i64>> {
    let Some(alert_id) = alerts::raise(conn, brokerage, alert).await? else {
        return Ok(None);
    };
    let Deliver::Yes { number_id } = deliver else {
        return Ok(Some(alert_id));
    };
    let recipients = match alert.audience {
        "admins" if crate::domain::alerts::admin_texted(alert.reason, alert.detail) => {
            alerts::admins(conn, brokerage).await?
        }
        "agents" => alerts::agents_for(conn, brokerage, alert.contact_id, number_id).await?,
        "managers" => {
            let office = match number_id {
                Some(n) => store::numbers::get(conn, brokerage, n)
                    .await?
                    .map(|n| n.office_id),
                None => None,
            };
            match office {
                Some(office) => alerts::managers(conn, brokerage, office).await?,
                None => alerts::admins(conn, brokerage).await?,
            }
        }
        _ => Vec::new(),
    };
    for agent_id in recipients {
        jobs::enqueue(
            conn,
            brokerage,
            &jobs::NewJob {
                kind: jobs::kind::AGENT_ALERT,
                contact_id: None,
                call_id: None,
                run_at: alert.now,
                payload: serde_json::json!({ "alert_id": alert_id, "agent_id": agent_id }),
                now: alert.now,
            },
        )
        .await?;
    }
    Ok(Some(alert_id))
}

/// Opens a callback task for the number's agents unless the contact has one open, and alerts
/// them (DESIGN.md step 8). Returns the new task's id.
pub async fn open_callback_task(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    task: &tasks::NewTask<'_>,
) -> store::Result<Option<i64>> {
    let Some(task_id) = tasks::open_callback(conn, brokerage, task).await? else {
        return Ok(None);
    };
    let detail = match task.detail {
        Some(d) => format!("{}:{d}", task.reason),
        None => task.reason.to_owned(),
    };
    raise_alert(
        conn,
        brokerage,
        &alerts::NewAlert {
            audience: "agents",
            reason: "callback_task",
            detail: Some(&detail),
            contact_id: Some(task.contact_id),
            message_id: task.message_id,
            call_id: task.call_id,
            now: task.now,
        },
        Deliver::Yes {
            number_id: Some(task.number_id),
        },
    )
    .await?;
    Ok(Some(task_id))
}

/// Who a carrier code's effect lands on.
pub struct Target<'a> {
    /// The text went to one of the brokerage's own people (an alert), not to a lead: a
    /// problem with it is recorded for the admins but never texted (no alert about an alert).
    pub is_staff: bool,
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
                        &[jobs::kind::FOLLOW_UP],
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
                    &[jobs::kind::FOLLOW_UP],
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

/// A send was recorded as accepted (by the send's own record or by reconciliation): a
/// text-back arms the follow-up sequence (DESIGN.md step 3), each step copied with its
/// templates and jittered (compliance.md R15).
///
/// The steps are armed under the contact's lock, like every other writer of the contact's
/// jobs (reliability.md §4). What stopped the sequence while the text-back was in flight
/// (after its pre-send transaction, before this record: an opt-out, a review hold, a reply, an
/// answered call, an agent's message) found no steps to cancel, so they are cancelled here at
/// once, with that reason (compliance.md R2, R3, R12).
pub async fn after_sent(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    job_id: i64,
    message_id: i64,
    now: DateTime<Utc>,
) -> store::Result<()> {
    let Some((kind, Some(contact_id), call_id)) = jobs::identity(conn, job_id).await? else {
        return Ok(());
    };
    if kind == jobs::kind::AGENT_REPLY {
        // The first human reply, once it is on its way (a reply the gate or the carrier
        // refused is not one): the leads of the conversation that replied count it.
        leads::human_replied(conn, brokerage, contact_id, now).await?;
        return Ok(());
    }
    if kind != jobs::kind::TEXT_BACK {
        return Ok(());
    }
    leads::texted(conn, brokerage, job_id, message_id, now).await?;
    contacts::lock(conn, brokerage, contact_id).await?;
    let stopped = sequence_stopped(conn, brokerage, contact_id, message_id, now).await?;
    for step in brokerages::follow_up_steps(conn, brokerage).await? {
        let after = u64::try_from(step.after_secs).unwrap_or(0);
        let run_at = sequence::step_due(now, after, rand::random::<f64>());
        jobs::enqueue(
            conn,
            brokerage,
            &jobs::NewJob {
                kind: jobs::kind::FOLLOW_UP,
                contact_id: Some(contact_id),
                call_id,
                run_at,
                payload: serde_json::json!({
                    "position": step.position,
                    "templates": step.templates.0,
                    "text_back_message_id": message_id,
                    "text_back_accepted_at": now,
                }),
                now,
            },
        )
        .await?;
    }
    if let Some(reason) = stopped {
        let cancelled = jobs::cancel_scheduled(
            conn,
            brokerage,
            contact_id,
            &[jobs::kind::FOLLOW_UP],
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
    contact_id: i64,
    message_id: i64,
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

/// What an inbound text did (compliance.md §4.3 effects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundEffect {
    pub class: Class,
    /// The number went from not suppressed to suppressed (R2), or the reverse (R5).
    pub changed: bool,
    pub cancelled: u64,
}

/// Facts of one inbound text for [`on_inbound_text`].
pub struct Inbound<'a> {
    pub contact_id: i64,
    pub phone: &'a str,
    pub number_id: i64,
    pub message_id: i64,
    pub sid: &'a str,
    pub body: &'a str,
    pub classified: &'a Classified,
    pub carrier_answers_keywords: bool,
}

/// The contact wrote to us, in the transaction that stores the text (the contact is locked):
/// opt-out, opt-in and help keywords first (R2–R6), then a reply stops pending automation and
/// a possible opt-out puts the contact on review hold (R3).
pub async fn on_inbound_text(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    m: &Inbound<'_>,
    now: DateTime<Utc>,
) -> store::Result<InboundEffect> {
    contacts::lock(conn, brokerage, m.contact_id).await?;
    // A text from the number proves it takes texts after all (a carrier's 30006 may have said
    // otherwise; docs/reliability.md §3).
    if contacts::clear_cannot_text(conn, brokerage, m.contact_id).await? {
        tracing::info!("an inbound text cleared the number's cannot-take-texts mark");
    }
    let class = m.classified.class;
    let carrier_answered = m.classified.carrier_answered(m.carrier_answers_keywords);
    let how = if m.classified.by_opt_out_type {
        "OptOutType"
    } else {
        "sms"
    };
    let evidence = suppressions::Evidence {
        source: if carrier_answered {
            "carrier_keyword"
        } else {
            "keyword"
        },
        who: "contact",
        how: Some(how),
        evidence: Some(m.sid),
        raw_text: Some(m.body),
        reason: Some("the contact asked by text"),
    };
    let mut changed = false;
    let (cancel_kinds, cancel_reason, ack): (&[&str], &str, Option<&str>) = match class {
        Class::OptOut => {
            changed = suppressions::suppress(conn, brokerage, m.phone, &evidence, now).await?;
            (jobs::ON_OPT_OUT, "opted_out", Some("opt_out_ack"))
        }
        Class::OptIn => {
            changed = suppressions::lift(conn, brokerage, m.phone, &evidence, now).await?;
            (jobs::AUTOMATION, "inbound_text", Some("opt_in_ack"))
        }
        Class::Help => (jobs::AUTOMATION, "inbound_text", Some("help")),
        Class::Review => {
            let e = suppressions::Evidence {
                source: "review",
                reason: Some("a possible opt-out awaits a person"),
                ..evidence
            };
            suppressions::hold_for_review(
                conn,
                brokerage,
                m.contact_id,
                m.phone,
                m.message_id,
                &e,
                now,
            )
            .await?;
            (jobs::AUTOMATION, "inbound_text", None)
        }
        Class::Reply => (jobs::AUTOMATION, "inbound_text", None),
    };
    let cancelled = jobs::cancel_scheduled(
        conn,
        brokerage,
        m.contact_id,
        cancel_kinds,
        cancel_reason,
        now,
    )
    .await?;
    match class {
        Class::Reply | Class::Review => lead_replied(conn, brokerage, m, now).await?,
        // Nobody needs to answer a lead who opted out.
        Class::OptOut => {
            human_answered(conn, brokerage, m.contact_id, "opted_out", "opted_out", now).await?;
        }
        Class::OptIn | Class::Help => {}
    }
    if let Some(ack) = ack {
        // The gate decides whether it goes (carrier answered, already confirmed, late); the
        // job keeps that decision on record either way.
        jobs::enqueue(
            conn,
            brokerage,
            &jobs::NewJob {
                kind: jobs::kind::KEYWORD_REPLY,
                contact_id: Some(m.contact_id),
                call_id: None,
                run_at: now,
                payload: serde_json::json!({
                    "ack": ack,
                    "number_id": m.number_id,
                    "inbound_message_id": m.message_id,
                    "received_at": now,
                    "carrier_answered": carrier_answered,
                    "already_confirmed": class == Class::OptOut && !changed,
                }),
                now,
            },
        )
        .await?;
    }
    Ok(InboundEffect {
        class,
        changed,
        cancelled,
    })
}

/// A lead's reply (DESIGN.md step 5): the conversation waits for a person, an escalation to
/// the office's managers is armed for `escalate_after` (once per wait), and the assigned agent
/// (or the number's agents) is alerted.
async fn lead_replied(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    m: &Inbound<'_>,
    now: DateTime<Utc>,
) -> store::Result<()> {
    leads::replied(conn, brokerage, m.contact_id, now).await?;
    let Some(conv) = conversations::for_contact(conn, brokerage, m.contact_id).await? else {
        return Ok(());
    };
    if let Some(reply_wait_id) =
        conversations::start_waiting(conn, brokerage, conv.conversation_id, m.message_id, now)
            .await?
    {
        let after = brokerages::escalate_after_secs(conn, brokerage).await?;
        jobs::enqueue(
            conn,
            brokerage,
            &jobs::NewJob {
                kind: jobs::kind::ESCALATION,
                contact_id: Some(m.contact_id),
                call_id: None,
                run_at: now + Duration::seconds(i64::from(after)),
                payload: serde_json::json!({ "reply_wait_id": reply_wait_id }),
                now,
            },
        )
        .await?;
    }
    raise_alert(
        conn,
        brokerage,
        &alerts::NewAlert {
            audience: "agents",
            reason: "lead_reply",
            detail: None,
            contact_id: Some(m.contact_id),
            message_id: Some(m.message_id),
            call_id: None,
            now,
        },
        Deliver::Yes {
            number_id: Some(m.number_id),
        },
    )
    .await?;
    Ok(())
}

/// Why an agent's reply cannot be queued (compliance.md R1, R3, R11), in the words the inbox
/// shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyRefused {
    OptedOut,
    ReviewHold,
    Shortener,
    Empty,
}

impl ReplyRefused {
    pub fn reason(self) -> &'static str {
        match self {
            ReplyRefused::OptedOut => "opted_out",
            ReplyRefused::ReviewHold => "review_hold",
            ReplyRefused::Shortener => "link_shortener",
            ReplyRefused::Empty => "empty",
        }
    }
}

/// An agent's reply from the inbox (DESIGN.md step 6): refused at once when the gate would
/// certainly refuse it (suppressed anywhere in the brokerage, review hold, a public
/// shortener), else queued as an `agent_reply` job that takes over the conversation (R12:
/// pending automation stops) and passes the whole gate when it runs. Returns the job.
pub async fn queue_agent_reply(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: i64,
    number_id: i64,
    agent_email: &str,
    body: &str,
    now: DateTime<Utc>,
) -> store::Result<Result<i64, ReplyRefused>> {
    queue_agent_reply_once(
        conn,
        brokerage,
        contact_id,
        number_id,
        agent_email,
        body,
        None,
        now,
    )
    .await
}

/// [`queue_agent_reply`] for a form carrying a one-time token (`once`): a second submission
/// of the same form (a double click, a reload of the POST) finds the first one's job and
/// queues nothing more.
#[allow(clippy::too_many_arguments)]
pub async fn queue_agent_reply_once(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: i64,
    number_id: i64,
    agent_email: &str,
    body: &str,
    once: Option<&str>,
    now: DateTime<Utc>,
) -> store::Result<Result<i64, ReplyRefused>> {
    let body = body.trim();
    if body.is_empty() {
        return Ok(Err(ReplyRefused::Empty));
    }
    if crate::domain::links::check(body, &[])
        .iter()
        .any(|p| matches!(p, crate::domain::links::LinkProblem::Shortener { .. }))
    {
        return Ok(Err(ReplyRefused::Shortener));
    }
    let Some(contact) = contacts::lock(conn, brokerage, contact_id).await? else {
        return Err(store::Error::NotFound);
    };
    // Under the contact's lock, so two submissions of one form cannot both pass.
    if let Some(once) = once
        && let Some(job) = jobs::agent_reply_with_token(conn, brokerage, contact_id, once).await?
    {
        return Ok(Ok(job));
    }
    let facts = store::gate::contact_facts(conn, brokerage, contact_id, now).await?;
    if facts.is_suppressed {
        return Ok(Err(ReplyRefused::OptedOut));
    }
    if facts.review_hold {
        return Ok(Err(ReplyRefused::ReviewHold));
    }
    jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        jobs::AUTOMATION,
        "agent_takeover",
        now,
    )
    .await?;
    // The first human reply answers a waiting lead and disarms the escalation.
    human_answered(
        conn,
        brokerage,
        contact_id,
        agent_email,
        "human_replied",
        now,
    )
    .await?;
    let job = jobs::enqueue(
        conn,
        brokerage,
        &jobs::NewJob {
            kind: jobs::kind::AGENT_REPLY,
            contact_id: Some(contact.contact_id),
            call_id: None,
            run_at: now,
            payload: serde_json::json!({
                "number_id": number_id,
                "agent": agent_email,
                "body": body,
                "once": once,
            }),
            now,
        },
    )
    .await?;
    Ok(Ok(job))
}

/// The people's decisions in the inbox that the rules need (compliance.md R1, R3, R12), each
/// applied in the caller's transaction under the contacts' locks, so that a send racing it is
/// ordered before or after it (reliability.md §4).
pub mod people {
    use chrono::{DateTime, Utc};
    use sqlx::PgConnection;

    use super::human_answered;
    use crate::store::{self, BrokerageId, contacts, conversations, jobs, suppressions, tasks};

    /// Locks every contact of a conversation, in id order (two actions on two merged
    /// conversations cannot deadlock), before anything of theirs is written. Returns them.
    pub async fn lock_all(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        conversation_id: i64,
    ) -> store::Result<Vec<i64>> {
        let mut ids = conversations::contacts_of(conn, brokerage, conversation_id).await?;
        ids.sort_unstable();
        for id in &ids {
            contacts::lock(conn, brokerage, *id).await?;
        }
        Ok(ids)
    }

    /// R3: a person read the held message: an opt-out (the number is suppressed, everything
    /// pending that would text it is cancelled) or not (the hold is lifted). Returns false
    /// when the contact was not on hold.
    pub async fn decide_review(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        contact_id: i64,
        opt_out: bool,
        who: &str,
        now: DateTime<Utc>,
    ) -> store::Result<bool> {
        contacts::lock(conn, brokerage, contact_id).await?;
        if !suppressions::resolve_review(conn, brokerage, contact_id, opt_out, who, now).await? {
            return Ok(false);
        }
        if opt_out {
            stop_for_opt_out(conn, brokerage, contact_id, "opted_out", now).await?;
        }
        Ok(true)
    }

    /// A number suppressed by a person: everything pending that would text it is cancelled
    /// (R2's list), and nobody needs to answer it any more (`by` on the wait).
    async fn stop_for_opt_out(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        contact_id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> store::Result<()> {
        jobs::cancel_scheduled(
            conn,
            brokerage,
            contact_id,
            jobs::ON_OPT_OUT,
            "opted_out",
            now,
        )
        .await?;
        human_answered(conn, brokerage, contact_id, by, "opted_out", now).await
    }

    /// Cancels the pending text-backs and follow-ups of `contacts` (locked), with `reason`.
    async fn cancel_automation(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        contacts: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> store::Result<u64> {
        let mut cancelled = 0;
        for contact in contacts {
            cancelled +=
                jobs::cancel_scheduled(conn, brokerage, *contact, jobs::AUTOMATION, reason, now)
                    .await?;
        }
        Ok(cancelled)
    }

    /// R1: "do not text": the number is suppressed brokerage-wide (source `agent`, who), and
    /// everything pending that would text it is cancelled. Only the lead lifts it (R5).
    pub async fn do_not_text(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        contact_id: i64,
        who: &str,
        now: DateTime<Utc>,
    ) -> store::Result<bool> {
        let Some(contact) = contacts::lock(conn, brokerage, contact_id).await? else {
            return Err(store::Error::NotFound);
        };
        let evidence = suppressions::Evidence {
            source: "agent",
            who,
            how: Some("inbox"),
            evidence: None,
            raw_text: None,
            reason: Some("an agent marked the number do not text"),
        };
        let changed =
            suppressions::suppress(conn, brokerage, &contact.phone, &evidence, now).await?;
        stop_for_opt_out(conn, brokerage, contact_id, "do_not_text", now).await?;
        Ok(changed)
    }

    /// R12: a person takes the conversation over: automation stops for good.
    pub async fn take_over(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        conversation_id: i64,
        who: &str,
        now: DateTime<Utc>,
    ) -> store::Result<u64> {
        let contacts = lock_all(conn, brokerage, conversation_id).await?;
        let cancelled =
            cancel_automation(conn, brokerage, &contacts, "agent_takeover", now).await?;
        conversations::take_over(conn, brokerage, conversation_id, who, now).await?;
        Ok(cancelled)
    }

    /// Closes a conversation (R12: its automation ends, a waiting reply needs nobody any
    /// more) or reopens it.
    pub async fn set_closed(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        conversation_id: i64,
        closed: bool,
        who: &str,
        now: DateTime<Utc>,
    ) -> store::Result<bool> {
        let contacts = lock_all(conn, brokerage, conversation_id).await?;
        if closed {
            cancel_automation(conn, brokerage, &contacts, "conversation_closed", now).await?;
            if let Some(first) = contacts.first() {
                // Not an answer: the dashboard's reply times leave "closed" out.
                human_answered(
                    conn,
                    brokerage,
                    *first,
                    "closed",
                    "conversation_closed",
                    now,
                )
                .await?;
            }
        }
        conversations::set_closed(conn, brokerage, conversation_id, closed, who, now).await
    }

    /// Deletes a conversation from the inbox: pending automation, replies and escalations are
    /// cancelled, callback tasks closed, the agent-given name erased, the conversation hidden
    /// until the contact gets in touch again. Calls, texts, gate decisions and the consent
    /// ledger are kept (compliance.md R13), so a suppression survives; a pending opt-out
    /// confirmation still goes (R4).
    pub async fn delete(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        conversation_id: i64,
        now: DateTime<Utc>,
    ) -> store::Result<()> {
        for contact in lock_all(conn, brokerage, conversation_id).await? {
            jobs::cancel_scheduled(
                conn,
                brokerage,
                contact,
                &[
                    jobs::kind::TEXT_BACK,
                    jobs::kind::FOLLOW_UP,
                    jobs::kind::AGENT_REPLY,
                    jobs::kind::ESCALATION,
                ],
                "contact_deleted",
                now,
            )
            .await?;
            tasks::close_for_contact(conn, brokerage, contact, "contact_deleted", now).await?;
        }
        conversations::delete(conn, brokerage, conversation_id, now).await
    }

    /// The contacts of two conversations, in id order.
    async fn contacts_of_both(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        a: i64,
        b: i64,
    ) -> store::Result<Vec<i64>> {
        let mut all = conversations::contacts_of(conn, brokerage, a).await?;
        all.extend(conversations::contacts_of(conn, brokerage, b).await?);
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Merges conversation `from` into `into` (the same person on two numbers): one thread
    /// from then on. Each number keeps its own suppression state.
    pub async fn merge(
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        from: i64,
        into: i64,
        now: DateTime<Utc>,
    ) -> store::Result<()> {
        let locked = contacts_of_both(conn, brokerage, from, into).await?;
        for id in &locked {
            contacts::lock(conn, brokerage, *id).await?;
        }
        // Under the locks: both are still live conversations with the contacts locked (another
        // merge or a delete that came first changed them: the person reloads and decides again).
        if !conversations::lock_live(conn, brokerage, &[from, into]).await?
            || contacts_of_both(conn, brokerage, from, into).await? != locked
        {
            return Err(store::Error::NotFound);
        }
        // A reply waiting in `from` waits in `into` now (its escalation stays armed).
        conversations::merge(conn, brokerage, from, into, now).await
    }
}
