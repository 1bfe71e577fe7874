//! The people's decisions in the inbox that the rules need (docs/compliance.md R1, R3, R12), each
//! applied in the caller's transaction under the contacts' locks, so that a send racing it is
//! ordered before or after it (docs/reliability.md §4).
use crate::store::jobs::JobKind;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::human_answered;
use crate::store::{
    self, BrokerageId, ContactId, contacts, conversations, jobs, suppressions, tasks,
};

/// Locks every contact of a conversation, in id order (two actions on two merged
/// conversations cannot deadlock), before anything of theirs is written. Returns them.
pub async fn lock_all(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
) -> store::Result<Vec<ContactId>> {
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
    contact_id: ContactId,
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
    contact_id: ContactId,
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
    contacts: &[ContactId],
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
    contact_id: ContactId,
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
    let changed = suppressions::suppress(conn, brokerage, &contact.phone, &evidence, now).await?;
    stop_for_opt_out(conn, brokerage, contact_id, "do_not_text", now).await?;
    Ok(changed)
}

/// R12: a person takes the conversation over: automation stops for good. True when nobody
/// had taken it over before.
pub async fn take_over(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    who: &str,
    now: DateTime<Utc>,
) -> store::Result<bool> {
    let contacts = lock_all(conn, brokerage, conversation_id).await?;
    cancel_automation(conn, brokerage, &contacts, "agent_takeover", now).await?;
    conversations::take_over(conn, brokerage, conversation_id, who, now).await
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
/// ledger are kept (docs/compliance.md R13), so a suppression survives; a pending opt-out
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
                JobKind::TextBack,
                JobKind::FollowUp,
                JobKind::AgentReply,
                JobKind::Escalation,
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
) -> store::Result<Vec<ContactId>> {
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
