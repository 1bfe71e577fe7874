//! Missed-call leads (one per `text_back` job) and their milestones, for the dashboard's
//! funnel (migrations/0004 `lead`). Each writer here runs in the transaction of the event, under
//! the contact's lock. A job's end is copied by a trigger in whatever transaction ends the job,
//! locking the lead row after the job row (no writer takes them in the other order).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, CallId, ContactId, MessageId, Result};

/// A new text-back job: its lead, attributed to the number called, its office and the
/// conversation's agent at this moment.
pub async fn open(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    job_id: i64,
    contact_id: ContactId,
    call_id: CallId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into lead (job_id, brokerage_id, contact_id, number_id, office_id, agent_id, missed_at, created_at)
         select $2, $1, $3, ca.number_id, n.office_id,
                (select t.assigned_agent_id from conversation c0
                   join conversation t on t.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
                  where c0.brokerage_id = $1 and c0.contact_id = $3),
                $5, $5
           from call ca join number n on n.brokerage_id = ca.brokerage_id and n.number_id = ca.number_id
          where ca.brokerage_id = $1 and ca.call_id = $4",
    )
    .bind(brokerage)
    .bind(job_id)
    .bind(contact_id)
    .bind(call_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A further miss in the episode re-armed the job: the lead's miss is the latest one.
pub async fn rearm(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    job_id: i64,
    call_id: CallId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update lead l set missed_at = $4, number_id = ca.number_id, office_id = n.office_id
           from call ca join number n on n.brokerage_id = ca.brokerage_id and n.number_id = ca.number_id
          where l.brokerage_id = $1 and l.job_id = $2 and ca.brokerage_id = $1 and ca.call_id = $3",
    )
    .bind(brokerage)
    .bind(job_id)
    .bind(call_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The contact replied: the first reply to its latest lead's text-back, if that text went out
/// (a lead cancelled because they wrote first got no text to reply to, and an older lead's
/// text is not what this reply answers).
pub async fn replied(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update lead set replied_at = $3
          where job_id = (select job_id from lead where brokerage_id = $1 and contact_id = $2
                           order by created_at desc limit 1)
            and replied_at is null
            -- its text went out, or may have (the lead's state follows the job only at its end:
            -- a text-back being reconciled is still `scheduled` there)
            and exists (select 1 from message m where m.job_id = lead.job_id
                          and m.send_state in ('sending', 'unknown', 'sent', 'needs_review'))",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// An agent's text to the contact went out: the first human reply to the leads of its
/// conversation (merged numbers included) that replied.
pub async fn human_replied(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update lead set human_at = $3
          where brokerage_id = $1 and replied_at is not null and human_at is null
            and contact_id in (select m.contact_id from conversation c0
                                 join conversation m on m.brokerage_id = c0.brokerage_id
                                  and coalesce(m.merged_into, m.conversation_id) = coalesce(c0.merged_into, c0.conversation_id)
                                where c0.brokerage_id = $1 and c0.contact_id = $2)",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A call with the contact connected: the latest lead's first connected call.
pub async fn answered(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update lead set answered_at = $3
          where job_id = (select job_id from lead where brokerage_id = $1 and contact_id = $2 and missed_at <= $3
                           order by created_at desc limit 1)
            and answered_at is null",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The carrier accepted the lead's text-back (sent, or found by reconciliation): when, and
/// with which template variant.
pub async fn texted(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    job_id: i64,
    message_id: MessageId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update lead set texted_at = coalesce(texted_at, $4),
                variant = (select template_variant from message where brokerage_id = $1 and message_id = $3)
          where brokerage_id = $1 and job_id = $2",
    )
    .bind(brokerage)
    .bind(job_id)
    .bind(message_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
