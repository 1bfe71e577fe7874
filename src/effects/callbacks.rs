//! The call side's effects (docs/calls.md), in the event's transaction: a callback asked for
//! (the call rule, then a `call_back` job), a bridge that connected (an answered call for
//! everything an answered call stops), an automatic callback that moves on to the next agent,
//! and a voicemail (the follow-ups stop; the agents hear of it).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::callback::{self, CallRule, Ended, Origin};
use crate::domain::gate;
use crate::domain::phone::PhoneNumber;
use crate::domain::{quiet_hours, zones};
use crate::store::jobs::{JobKind, JobPayload, Place, payload};
use crate::store::{
    self, BrokerageId, CallId, ContactId, alerts, callbacks, contacts, jobs, leads, tasks,
};

use super::alerts::{Deliver, raise_alert};

/// A callback someone (or the automation) asks for.
#[derive(Debug, Clone)]
pub struct Ask {
    pub contact_id: ContactId,
    pub number_id: i64,
    pub origin: Origin,
    pub requested_by: Option<i64>,
    pub agent_id: i64,
    pub remaining: Vec<i64>,
    pub call_id: Option<CallId>,
}

/// What became of the ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Queued: the `call_back` job places the call.
    Queued { callback_id: i64 },
    /// The contact has a callback under way already: nothing new.
    AlreadyLive,
    /// The call rule refused it, in words.
    Refused { reason: &'static str, words: String },
}

/// The call rule for a contact now (README.md "Compliance in brief": the call rule).
pub async fn call_rule(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    origin: Origin,
    now: DateTime<Utc>,
) -> store::Result<CallRule> {
    let Some(facts) = callbacks::rule_facts(conn, brokerage, contact_id).await? else {
        return Ok(CallRule::Refuse {
            reason: "deleted",
            until: None,
        });
    };
    let usability = match PhoneNumber::parse(&facts.phone) {
        Ok(p) => gate::usability(&p),
        Err(_) => gate::Usability::Invalid,
    };
    let rules = store::gate::brokerage_rules(conn, brokerage).await?;
    let tz = rules
        .time_zone
        .parse::<chrono_tz::Tz>()
        .unwrap_or(chrono_tz::America::New_York);
    let hours = callbacks::office_hours(conn, brokerage, number_id).await?;
    let blackouts = rules.blackouts();
    let zone = zones::lookup(&facts.phone);
    // Fail closed as the gate does: no window data, no call.
    let Ok(profiles) = quiet_hours::profiles() else {
        return Ok(CallRule::Refuse {
            reason: "calling_window",
            until: None,
        });
    };
    let input = callback::RuleInput {
        origin,
        usability,
        deleted: facts.deleted,
        suppression_source: facts.suppression_source.as_deref(),
        review_hold: facts.review_hold,
        office_open: callback::office_open(now, tz, hours),
        zone: &zone,
        profile: profiles.get(zone.state),
        blackouts: &blackouts,
    };
    Ok(callback::rule(&input, now))
}

/// Asks for a callback: the call rule, then a `callback` row and its `call_back` job, due now.
/// The contact is locked first (the events of one contact are ordered, docs/reliability.md §4).
pub async fn ask(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    ask: &Ask,
    now: DateTime<Utc>,
) -> store::Result<Asked> {
    contacts::lock(conn, brokerage, ask.contact_id).await?;
    let new = callbacks::NewCallback {
        contact_id: ask.contact_id,
        number_id: ask.number_id,
        origin: ask.origin.as_str(),
        requested_by: ask.requested_by,
        agent_id: ask.agent_id,
        remaining: &ask.remaining,
        call_id: ask.call_id,
        now,
    };
    if let rule @ CallRule::Refuse { reason, .. } = call_rule(
        conn,
        brokerage,
        ask.contact_id,
        ask.number_id,
        ask.origin,
        now,
    )
    .await?
    {
        let words = rule.words();
        // A person is told at once; the automation's refusal is kept for the thread.
        if ask.origin == Origin::Auto {
            callbacks::insert_refused(conn, brokerage, &new, &words).await?;
        }
        return Ok(Asked::Refused { reason, words });
    }
    let Some(callback_id) = callbacks::insert(conn, brokerage, &new).await? else {
        return Ok(Asked::AlreadyLive);
    };
    payload::CallBack { callback_id }
        .enqueue(
            conn,
            brokerage,
            Place::for_contact(ask.contact_id, now, now).with_call(ask.call_id),
        )
        .await?;
    Ok(Asked::Queued { callback_id })
}

/// A miss on a number with `callback = "offer"` or `"auto"` (docs/calls.md): `auto` calls the
/// number's agents one at a time in ring order; `offer` alerts them, the text carrying the
/// callback link. `off` does nothing.
pub async fn after_miss(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    call_id: CallId,
    number: &store::numbers::NumberInfo,
    now: DateTime<Utc>,
) -> store::Result<()> {
    let number_id = number.number_id;
    match number.callback.as_str() {
        "auto" => {
            let ring: Vec<i64> = store::numbers::ring(conn, brokerage, number_id)
                .await?
                .into_iter()
                .map(|a| a.agent_id)
                .collect();
            let Some((first, rest)) = ring.split_first() else {
                return Ok(());
            };
            let asked = ask(
                conn,
                brokerage,
                &Ask {
                    contact_id,
                    number_id,
                    origin: Origin::Auto,
                    requested_by: None,
                    agent_id: *first,
                    remaining: rest.to_vec(),
                    call_id: Some(call_id),
                },
                now,
            )
            .await?;
            tracing::info!(brokerage = brokerage.0, asked = ?asked, "automatic callback after a miss");
        }
        "offer" => {
            raise_alert(
                conn,
                brokerage,
                &alerts::NewAlert {
                    audience: "agents",
                    reason: "missed_call",
                    detail: None,
                    contact_id: Some(contact_id),
                    message_id: None,
                    call_id: Some(call_id),
                    now,
                },
                Deliver::Yes {
                    number_id: Some(number_id),
                },
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Ends a callback with `ended`, once (false when it had ended already), with everything that
/// follows: a connected bridge is an answered call ([`on_bridged`]); an automatic callback the
/// agent did not take goes on to the next agent ([`after_end`]).
pub async fn end(
    conn: &mut PgConnection,
    cb: &callbacks::CallbackRow,
    ended: Ended,
    detail: Option<&str>,
    talk_secs: Option<i32>,
    lead_call_sid: Option<&str>,
    now: DateTime<Utc>,
) -> store::Result<bool> {
    let e = callbacks::End {
        outcome: ended.as_str(),
        detail,
        talk_secs,
        lead_call_sid,
        now,
    };
    if !callbacks::end(conn, cb.callback_id, &e).await? {
        return Ok(false);
    }
    if ended == Ended::Connected {
        let cancelled = on_bridged(conn, cb.brokerage_id, cb.contact_id, now).await?;
        tracing::info!(
            callback_id = cb.callback_id,
            cancelled,
            "callback connected: pending automation stopped"
        );
    }
    after_end(conn, cb, ended, now).await?;
    Ok(true)
}

/// A callback's bridge connected: the lead and an agent talked. Everything an answered call
/// stops stops (docs/architecture.md step 2): the pending text-back and follow-ups are cancelled
/// (`called_back`), the callback tasks closed, the reply wait answered, the lead's "call
/// connected" moves.
async fn on_bridged(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> store::Result<u64> {
    contacts::lock(conn, brokerage, contact_id).await?;
    tasks::close_for_contact(conn, brokerage, contact_id, "called_back", now).await?;
    let cancelled = jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        jobs::AUTOMATION,
        "called_back",
        now,
    )
    .await?;
    super::calls::human_answered(
        conn,
        brokerage,
        contact_id,
        "called_back",
        "called_back",
        now,
    )
    .await?;
    leads::answered(conn, brokerage, contact_id, now).await?;
    Ok(cancelled)
}

/// A callback ended with `ended`: an automatic one the agent did not take goes on to the next
/// agent in ring order.
async fn after_end(
    conn: &mut PgConnection,
    row: &callbacks::CallbackRow,
    ended: Ended,
    now: DateTime<Utc>,
) -> store::Result<()> {
    if row.origin != Origin::Auto.as_str() || !ended.tries_next_agent() {
        return Ok(());
    }
    let Some((next, rest)) = row.remaining.split_first() else {
        return Ok(());
    };
    let asked = ask(
        conn,
        row.brokerage_id,
        &Ask {
            contact_id: row.contact_id,
            number_id: row.number_id,
            origin: Origin::Auto,
            requested_by: None,
            agent_id: *next,
            remaining: rest.to_vec(),
            call_id: row.call_id,
        },
        now,
    )
    .await?;
    tracing::info!(brokerage = row.brokerage_id.0, asked = ?asked, "automatic callback: the next agent");
    Ok(())
}

/// A voicemail from a contact (docs/calls.md "Voicemail"): the lead reached out again, so the
/// follow-ups stop (`voicemail`); the text-back still goes. The agents are alerted, the text
/// previewing the transcript: the alert waits until `alert_at` for it.
#[allow(clippy::too_many_arguments)]
pub async fn on_voicemail(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    call_id: CallId,
    voicemail_id: i64,
    number_id: i64,
    alert_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> store::Result<()> {
    contacts::lock(conn, brokerage, contact_id).await?;
    jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        &[JobKind::FollowUp],
        "voicemail",
        now,
    )
    .await?;
    // The conversation comes up in the inbox as new activity.
    store::conversations::touch_inbound(conn, brokerage, contact_id, number_id, now).await?;
    let alert = alerts::NewAlert {
        audience: "agents",
        reason: "voicemail",
        detail: None,
        contact_id: Some(contact_id),
        message_id: None,
        call_id: Some(call_id),
        now,
    };
    let Some(alert_id) = alerts::raise(conn, brokerage, &alert).await? else {
        return Ok(());
    };
    callbacks::tag_alert_voicemail(conn, brokerage, alert_id, voicemail_id).await?;
    for agent_id in alerts::agents_for(conn, brokerage, Some(contact_id), Some(number_id)).await? {
        payload::AgentAlert { alert_id, agent_id }
            .enqueue(conn, brokerage, Place::at(alert_at, now))
            .await?;
    }
    Ok(())
}
