//! Conversations: one per contact, what the inbox lists. Written in the transactions of the
//! events that change them (a call, a text, an agent's action), after the contact's lock.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, ContactId, MessageId, Result};

/// A conversation as the pipeline needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRef {
    /// The conversation the contact's events show in (the merge target when merged).
    pub conversation_id: i64,
    pub number_id: i64,
    pub assigned_agent_id: Option<i64>,
    pub is_closed: bool,
    pub waiting_since: Option<DateTime<Utc>>,
    /// A person took it over (no more automated follow-ups, R12).
    pub taken_over: bool,
}

/// The contact called or texted `number_id`: its conversation is created (unassigned: the
/// routing gives it an owner next, `effects::routing::route_new`), or moved to that number, reopened and shown
/// again if a person had closed or deleted it. Returns the conversation the event shows in.
pub async fn touch_inbound(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    now: DateTime<Utc>,
) -> Result<ConversationRef> {
    let merged_into: Option<i64> = sqlx::query_scalar(
        "insert into conversation as c (brokerage_id, contact_id, number_id, assigned_agent_id, last_activity_at, last_inbound_at, created_at)
         values ($1, $2, $3, null, $4, $4, $4)
         on conflict (contact_id) do update
            set number_id = excluded.number_id,
                last_activity_at = greatest(c.last_activity_at, excluded.last_activity_at),
                last_inbound_at = greatest(c.last_inbound_at, excluded.last_inbound_at),
                is_closed = false, closed_at = null, closed_by = null,
                -- back after a delete: a fresh start, not the old take-over or escalation
                taken_over_at = case when c.deleted_at is null then c.taken_over_at end,
                taken_over_by = case when c.deleted_at is null then c.taken_over_by end,
                escalated_at = case when c.deleted_at is null then c.escalated_at end,
                deleted_at = null
         returning merged_into",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(number_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    if let Some(target) = merged_into {
        sqlx::query(
            "update conversation
                set last_activity_at = greatest(last_activity_at, $3),
                    last_inbound_at = greatest(last_inbound_at, $3),
                    is_closed = false, closed_at = null, closed_by = null,
                    taken_over_at = case when deleted_at is null then taken_over_at end,
                    taken_over_by = case when deleted_at is null then taken_over_by end,
                    escalated_at = case when deleted_at is null then escalated_at end,
                    deleted_at = null
              where brokerage_id = $1 and conversation_id = $2",
        )
        .bind(brokerage)
        .bind(target)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    for_contact(conn, brokerage, contact_id)
        .await?
        .ok_or(super::Error::NotFound)
}

/// Something went out to the contact (a text): the conversation moves up the list.
pub async fn touch_outbound(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update conversation set last_activity_at = greatest(last_activity_at, $3)
          where brokerage_id = $1
            and conversation_id = (select coalesce(merged_into, conversation_id) from conversation
                                    where brokerage_id = $1 and contact_id = $2)",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The conversation a contact's events show in.
pub async fn for_contact(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
) -> Result<Option<ConversationRef>> {
    Ok(sqlx::query_as::<_, ConversationRef>(
        "select t.conversation_id, t.number_id, t.assigned_agent_id, t.is_closed, t.waiting_since,
                t.taken_over_at is not null as taken_over
           from conversation c
           join conversation t on t.brokerage_id = c.brokerage_id and t.conversation_id = coalesce(c.merged_into, c.conversation_id)
          where c.brokerage_id = $1 and c.contact_id = $2",
    )
    .bind(brokerage)
    .bind(contact_id)
    .fetch_optional(conn)
    .await?)
}

/// The contacts whose events a conversation shows: its own and those merged into it.
pub async fn contacts_of(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
) -> Result<Vec<ContactId>> {
    Ok(sqlx::query_scalar(
        "select contact_id from conversation
          where brokerage_id = $1 and (conversation_id = $2 or merged_into = $2)
          order by conversation_id = $2 desc, contact_id",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .fetch_all(conn)
    .await?)
}

/// A lead's reply now waits for a person. Returns the new wait's id, or `None` when the
/// conversation was already waiting (its escalation is armed already).
pub async fn start_waiting(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    message_id: MessageId,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let started: Option<(i64, Option<i64>)> = sqlx::query_as(
        "update conversation set waiting_since = $3, escalated_at = null
          where brokerage_id = $1 and conversation_id = $2 and waiting_since is null
         returning number_id, assigned_agent_id",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((number_id, agent_id)) = started else {
        return Ok(None);
    };
    Ok(Some(
        sqlx::query_scalar(
            "insert into reply_wait (brokerage_id, conversation_id, number_id, agent_id, message_id, waiting_since)
             values ($1, $2, $3, $4, $5, $6) returning reply_wait_id",
        )
        .bind(brokerage)
        .bind(conversation_id)
        .bind(number_id)
        .bind(agent_id)
        .bind(message_id)
        .bind(now)
        .fetch_one(conn)
        .await?,
    ))
}

/// A person answered (a reply, a call that connected, a close): the wait ends. Returns
/// whether the conversation was waiting.
pub async fn stop_waiting(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let was = sqlx::query(
        "update conversation set waiting_since = null
          where brokerage_id = $1 and conversation_id = $2 and waiting_since is not null",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    sqlx::query(
        "update reply_wait set answered_at = $3, answered_by = $4
          where brokerage_id = $1 and conversation_id = $2 and answered_at is null",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(now)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(was)
}

/// An open wait as the escalation job reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenWait {
    pub conversation_id: i64,
    pub contact_id: ContactId,
    pub number_id: i64,
    pub office_id: i64,
    pub assigned_agent_id: Option<i64>,
    pub waiting_since: DateTime<Utc>,
}

/// Marks the wait escalated if nobody has answered it yet; returns it then.
pub async fn escalate(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    reply_wait_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<OpenWait>> {
    let open: Option<OpenWait> = sqlx::query_as::<_, OpenWait>(
        "update reply_wait w set escalated_at = $3
           from conversation c, number n
          where w.brokerage_id = $1 and w.reply_wait_id = $2 and w.answered_at is null and w.escalated_at is null
            and c.brokerage_id = w.brokerage_id and c.conversation_id = w.conversation_id
            and c.waiting_since = w.waiting_since
            and n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
         returning c.conversation_id, c.contact_id, c.number_id, n.office_id, c.assigned_agent_id, w.waiting_since",
    )
    .bind(brokerage)
    .bind(reply_wait_id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(w) = &open {
        sqlx::query("update conversation set escalated_at = $3 where brokerage_id = $1 and conversation_id = $2")
            .bind(brokerage)
            .bind(w.conversation_id)
            .bind(now)
            .execute(conn)
            .await?;
    }
    Ok(open)
}

pub async fn assign(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    agent_id: Option<i64>,
) -> Result<bool> {
    Ok(sqlx::query(
        "update conversation set assigned_agent_id = $3
          where brokerage_id = $1 and conversation_id = $2 and assigned_agent_id is distinct from $3",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(agent_id)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// A line for the thread: what a person did to the conversation (`assigned`, `unassigned`,
/// `closed`, `reopened`, `taken_over`), who, and for `assigned` to whom.
pub async fn record_event(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    kind: &str,
    by_agent_id: Option<i64>,
    to_agent_id: Option<i64>,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into conversation_event (brokerage_id, conversation_id, kind, by_agent_id, to_agent_id, at)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(kind)
    .bind(by_agent_id)
    .bind(to_agent_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_closed(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    closed: bool,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query(
        "update conversation
            set is_closed = $3,
                closed_at = case when $3 then $5 end,
                closed_by = case when $3 then $4 end
          where brokerage_id = $1 and conversation_id = $2 and is_closed <> $3",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(closed)
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

pub async fn take_over(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    // True when nobody had taken it over before (the old value, read by the same statement).
    let first: Option<bool> = sqlx::query_scalar(
        "update conversation c set taken_over_at = $4, taken_over_by = $3
           from (select taken_over_at from conversation
                  where brokerage_id = $1 and conversation_id = $2) old
          where c.brokerage_id = $1 and c.conversation_id = $2
         returning old.taken_over_at is null",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(by)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(first.unwrap_or(false))
}

pub async fn mark_read(
    conn: &mut PgConnection,
    user_id: i64,
    conversation_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into conversation_read (user_id, conversation_id, read_at) values ($1, $2, $3)
         on conflict (user_id, conversation_id) do update set read_at = greatest(conversation_read.read_at, excluded.read_at)",
    )
    .bind(user_id)
    .bind(conversation_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Hides a conversation (and those merged into it) until the contact gets in touch again;
/// the thread then starts now. Erases the name an agent gave the contact. Records are kept.
pub async fn delete(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update conversation set deleted_at = $3, visible_from = $3, waiting_since = null,
                is_closed = true, closed_at = $3, closed_by = 'deleted'
          where brokerage_id = $1 and (conversation_id = $2 or merged_into = $2)",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "update contact set name = null
          where brokerage_id = $1
            and contact_id in (select contact_id from conversation where brokerage_id = $1 and (conversation_id = $2 or merged_into = $2))",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "update reply_wait set answered_at = $3, answered_by = 'deleted'
          where brokerage_id = $1 and conversation_id = $2 and answered_at is null",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Folds conversation `from` (and whatever was merged into it) into `into`: its history
/// shows there from now on, and its contact's new events land there.
pub async fn merge(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: i64,
    into: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    // What `from` carried goes on in `into`: an unanswered reply waits there, a take-over
    // holds there (no follow-ups), and it stays open while either was open.
    sqlx::query(
        "update conversation t
            set waiting_since = case when f.waiting_since is null then t.waiting_since
                                     else least(coalesce(t.waiting_since, f.waiting_since), f.waiting_since) end,
                taken_over_at = coalesce(t.taken_over_at, f.taken_over_at),
                taken_over_by = case when t.taken_over_at is null then f.taken_over_by else t.taken_over_by end,
                is_closed = t.is_closed and f.is_closed,
                closed_at = case when t.is_closed and f.is_closed then t.closed_at end,
                closed_by = case when t.is_closed and f.is_closed then t.closed_by end
           from conversation f
          where t.brokerage_id = $1 and t.conversation_id = $3
            and f.brokerage_id = $1 and f.conversation_id = $2",
    )
    .bind(brokerage)
    .bind(from)
    .bind(into)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "update reply_wait set conversation_id = $3
          where brokerage_id = $1 and conversation_id = $2 and answered_at is null",
    )
    .bind(brokerage)
    .bind(from)
    .bind(into)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "update conversation set merged_into = $3, waiting_since = null
          where brokerage_id = $1 and (conversation_id = $2 or merged_into = $2)",
    )
    .bind(brokerage)
    .bind(from)
    .bind(into)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "update conversation t
            set last_activity_at = greatest(t.last_activity_at, $3),
                last_inbound_at = greatest(t.last_inbound_at,
                    (select max(last_inbound_at) from conversation where brokerage_id = $1 and merged_into = $2))
          where t.brokerage_id = $1 and t.conversation_id = $2",
    )
    .bind(brokerage)
    .bind(into)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks `ids`' conversation rows (in id order) and tells whether each is still live: not
/// merged into another, not deleted.
pub async fn lock_live(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    ids: &[i64],
) -> Result<bool> {
    let live: Vec<bool> = sqlx::query_scalar(
        "select merged_into is null and deleted_at is null from conversation
          where brokerage_id = $1 and conversation_id = any($2)
          order by conversation_id for update",
    )
    .bind(brokerage)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(live.len() == ids.len() && live.iter().all(|l| *l))
}

/// Conversations assigned to agents the setup file no longer lists become unassigned.
pub async fn unassign_inactive(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<u64> {
    Ok(sqlx::query(
        "update conversation c set assigned_agent_id = null
           from agent a
          where c.brokerage_id = $1 and a.brokerage_id = c.brokerage_id and a.agent_id = c.assigned_agent_id
            and not a.is_active",
    )
    .bind(brokerage)
    .execute(conn)
    .await?
    .rows_affected())
}

/// An internal note by an agent.
pub async fn add_note(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    agent_id: i64,
    body: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into note (brokerage_id, conversation_id, agent_id, body, created_at)
         values ($1, $2, $3, $4, $5) returning note_id",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(agent_id)
    .bind(body)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// The name agents know the contact by (the `{first_name}` of templates too).
pub async fn set_contact_name(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    name: Option<&str>,
) -> Result<()> {
    sqlx::query("update contact set name = $3 where brokerage_id = $1 and contact_id = $2")
        .bind(brokerage)
        .bind(contact_id)
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// Why the contact's automated follow-ups must not go on (docs/compliance.md R12,
/// docs/architecture.md step 7): a person took the conversation over, or closed it.
pub async fn automation_stopped(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
) -> Result<Option<&'static str>> {
    let row = for_contact(conn, brokerage, contact_id).await?;
    Ok(match row {
        Some(c) if c.taken_over => Some("agent_takeover"),
        Some(c) if c.is_closed => Some("conversation_closed"),
        _ => None,
    })
}
