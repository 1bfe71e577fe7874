//! Callback tasks: "call back Jordan, landline, about 123 Main St".

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, CallId, ContactId, MessageId, Result};

pub struct NewTask<'a> {
    pub contact_id: ContactId,
    pub number_id: i64,
    pub call_id: Option<CallId>,
    pub message_id: Option<MessageId>,
    pub reason: &'a str,
    pub detail: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Opens a callback task unless the contact already has an open one. Returns its id when it
/// created one.
pub async fn open_callback(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    task: &NewTask<'_>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "insert into task (brokerage_id, contact_id, number_id, call_id, message_id, kind, reason, detail, created_at)
         values ($1, $2, $3, $4, $5, 'callback', $6, $7, $8)
         on conflict (contact_id) where kind = 'callback' and state = 'open' do nothing
         returning task_id",
    )
    .bind(brokerage)
    .bind(task.contact_id)
    .bind(task.number_id)
    .bind(task.call_id)
    .bind(task.message_id)
    .bind(task.reason)
    .bind(task.detail)
    .bind(task.now)
    .fetch_optional(conn)
    .await?)
}

/// Closes the contact's open callback tasks (an answered call reached them).
pub async fn close_for_contact(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let done = sqlx::query(
        "update task set state = 'done', done_at = $4, done_reason = $3
          where brokerage_id = $1 and contact_id = $2 and state = 'open'",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A person marked one of the conversation's callback tasks done. Returns false when it was
/// not open or not the conversation's.
pub async fn mark_done(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    task_id: i64,
    contact_ids: &[ContactId],
    who: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query(
        "update task set state = 'done', done_at = $5, done_reason = 'agent', done_by = $4
          where brokerage_id = $1 and task_id = $2 and contact_id = any($3) and state = 'open'",
    )
    .bind(brokerage)
    .bind(task_id)
    .bind(contact_ids)
    .bind(who)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}
