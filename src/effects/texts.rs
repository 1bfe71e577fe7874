//! An inbound text's effects (docs/compliance.md §4.3): keywords first, then a reply stops
//! pending automation and opens the wait for an answer.

use crate::store::jobs::{JobKind, JobPayload, Place, payload};
use crate::store::{ContactId, MessageId};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use super::alerts::{Deliver, raise_alert};
use super::calls::human_answered;

use crate::domain::keywords::{Class, Classified};
use crate::domain::language;
use crate::store::{
    self, BrokerageId, alerts, brokerages, contacts, conversations, jobs, leads, suppressions,
};

/// What an inbound text did (docs/compliance.md §4.3 effects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundEffect {
    pub class: Class,
    /// The number went from not suppressed to suppressed (R2), or the reverse (R5).
    pub changed: bool,
    pub cancelled: u64,
}

/// Facts of one inbound text for [`on_inbound_text`].
pub struct Inbound<'a> {
    pub contact_id: ContactId,
    pub phone: &'a str,
    pub number_id: i64,
    pub message_id: MessageId,
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
    let (cancel_kinds, cancel_reason, ack): (&[JobKind], &str, Option<&str>) = match class {
        Class::OptOut => {
            changed = suppressions::suppress(conn, brokerage, m.phone, &evidence, now).await?;
            (jobs::ON_OPT_OUT, "opted_out", Some("opt_out_ack"))
        }
        Class::OptIn => {
            changed = suppressions::lift(conn, brokerage, m.phone, &evidence, now).await?;
            if !changed {
                // docs/compliance.md R5: not suppressed, or opted out again after this arrived.
                tracing::info!("an opt-in lifted nothing");
            }
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
                Some(m.message_id),
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
        payload::KeywordReply {
            ack: ack.to_owned(),
            number_id: m.number_id,
            inbound_message_id: m.message_id,
            received_at: now,
            carrier_answered,
            already_confirmed: class == Class::OptOut && !changed,
        }
        .enqueue(conn, brokerage, Place::for_contact(m.contact_id, now, now))
        .await?;
    }
    Ok(InboundEffect {
        class,
        changed,
        cancelled,
    })
}

/// The contact's language after their text `body` (README.md "Spanish"): a keyword (ESPAÑOL,
/// ENGLISH) or a Spanish opt-out word sets it, a confident guess changes a guessed one
/// (`default`: the brokerage's language, for a contact not known yet). Called
/// with the contact locked, before the text is routed (a Spanish speaker gets it) and before a
/// keyword's confirmation is queued (it goes in the language just written).
pub async fn note_language(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    body: &str,
    default: language::Language,
    now: DateTime<Utc>,
) -> store::Result<()> {
    let Some(contact) = contacts::get(conn, brokerage, contact_id).await? else {
        return Ok(());
    };
    if let Some((language, how)) = language::after_text(contact.language_now(default), body) {
        contacts::set_language(conn, brokerage, contact_id, language, how, None, now).await?;
        tracing::info!(
            language = language.as_str(),
            how = how.as_str(),
            "the contact's language"
        );
    }
    Ok(())
}

/// A lead's reply (docs/architecture.md step 5): the conversation waits for a person, an escalation to
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
        let run_at = now + Duration::seconds(i64::from(after));
        payload::Escalation { reply_wait_id }
            .enqueue(
                conn,
                brokerage,
                Place::for_contact(m.contact_id, run_at, now),
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
