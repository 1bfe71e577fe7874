//! Messages in and out, and outbound status events. Idempotent on `MessageSid`; the carrier
//! status only moves forward (docs/twilio.md §3.3, enforced by `message_status_rank` in SQL).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, ContactId, MessageId, Result, body_sha256};

pub struct NewInbound<'a> {
    pub number_id: i64,
    pub contact_id: Option<ContactId>,
    pub sid: &'a str,
    pub from_raw: &'a str,
    pub to_raw: &'a str,
    pub body: &'a str,
    pub num_media: i32,
    pub num_segments: Option<i32>,
    pub opt_out_type: Option<&'a str>,
    /// The keyword class of docs/compliance.md §4.3.
    pub keyword_class: &'a str,
    pub received_at: DateTime<Utc>,
}

/// Stores an inbound text verbatim; `None` when this `MessageSid` was already stored.
pub async fn insert_inbound_if_new(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    m: &NewInbound<'_>,
) -> Result<Option<MessageId>> {
    Ok(sqlx::query_scalar(
        "insert into message (brokerage_id, number_id, contact_id, direction, sid, from_raw, to_raw, body, body_sha256,
                              num_media, num_segments, opt_out_type, keyword_class, carrier_status, occurred_at)
         values ($1, $2, $3, 'inbound', $4, $5, $6, $7, $8, $9, $10, $11, $12, 'received', $13)
         on conflict (sid) do nothing
         returning message_id",
    )
    .bind(brokerage)
    .bind(m.number_id)
    .bind(m.contact_id)
    .bind(m.sid)
    .bind(m.from_raw)
    .bind(m.to_raw)
    .bind(m.body)
    .bind(body_sha256(m.body))
    .bind(m.num_media)
    .bind(m.num_segments)
    .bind(m.opt_out_type)
    .bind(m.keyword_class)
    .bind(m.received_at)
    .fetch_optional(conn)
    .await?)
}

pub struct NewOutbound<'a> {
    pub number_id: i64,
    pub contact_id: Option<ContactId>,
    pub from: &'a str,
    pub to: &'a str,
    pub body: &'a str,
    pub idempotency_key: &'a str,
    pub job_id: Option<i64>,
    pub attempt: Option<i32>,
    pub template_variant: Option<i32>,
    /// text_back, follow_up, manual, opt_out_ack, opt_in_ack, help, agent_alert
    pub kind: &'a str,
    /// Counted by the frequency cap (docs/compliance.md R9).
    pub counts_for_cap: bool,
    pub started_at: DateTime<Utc>,
}

/// The pre-send record of docs/reliability.md §2 step 2: `send_state = 'sending'`.
pub async fn insert_outbound_sending(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    m: &NewOutbound<'_>,
) -> Result<MessageId> {
    Ok(sqlx::query_scalar(
        "insert into message (brokerage_id, number_id, contact_id, direction, from_raw, to_raw, body, body_sha256,
                              send_state, idempotency_key, job_id, attempt, template_variant, kind, counts_for_cap, occurred_at)
         values ($1, $2, $3, 'outbound', $4, $5, $6, $7, 'sending', $8, $9, $10, $11, $12, $13, $14)
         returning message_id",
    )
    .bind(brokerage)
    .bind(m.number_id)
    .bind(m.contact_id)
    .bind(m.from)
    .bind(m.to)
    .bind(m.body)
    .bind(body_sha256(m.body))
    .bind(m.idempotency_key)
    .bind(m.job_id)
    .bind(m.attempt)
    .bind(m.template_variant)
    .bind(m.kind)
    .bind(m.counts_for_cap)
    .bind(m.started_at)
    .fetch_one(conn)
    .await?)
}

/// The carrier accepted an outbound message: store its sid and initial status (fenced on
/// `send_state = 'sending'`). Returns false when the row had already been settled.
pub async fn mark_accepted(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
    sid: &str,
    carrier_status: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "update message set send_state = 'sent', sid = $3, carrier_status = $4, updated_at = now()
          where brokerage_id = $1 and message_id = $2 and send_state = 'sending'",
    )
    .bind(brokerage)
    .bind(message_id)
    .bind(sid)
    .bind(carrier_status)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboundRow {
    pub message_id: MessageId,
    pub number_id: i64,
    pub contact_id: Option<ContactId>,
    pub to_raw: String,
    pub carrier_status: Option<String>,
    pub error_code: Option<i32>,
    /// text_back, follow_up, manual, …, agent_alert
    pub kind: Option<String>,
}

/// One of this brokerage's outbound messages by carrier sid.
pub async fn find_outbound_by_sid(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    sid: &str,
) -> Result<Option<OutboundRow>> {
    Ok(sqlx::query_as::<_, OutboundRow>(
        "select message_id, number_id, contact_id, to_raw, carrier_status, error_code, kind from message
          where brokerage_id = $1 and sid = $2 and direction = 'outbound'",
    )
    .bind(brokerage)
    .bind(sid)
    .fetch_optional(conn)
    .await?)
}

/// Records a status callback once per (message, status), keeping the raw `ErrorCode`.
/// Returns false for a duplicate.
pub async fn insert_status_event_if_new(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
    status: &str,
    error_code_raw: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "insert into message_status_event (brokerage_id, message_id, status, error_code_raw, received_at)
         values ($1, $2, $3, $4, $5)
         on conflict (message_id, status, (coalesce(error_code_raw, ''))) do nothing",
    )
    .bind(brokerage)
    .bind(message_id)
    .bind(status)
    .bind(error_code_raw)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves `carrier_status` forward by rank in one statement (never `delivered` back to
/// `sent`; unknown statuses move nothing) and keeps the error code that came with it.
pub async fn advance_carrier_status(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
    status: &str,
    error_code: Option<i32>,
) -> Result<bool> {
    let done = sqlx::query(
        "update message set carrier_status = $3, error_code = coalesce($4, error_code), updated_at = now()
          where brokerage_id = $1 and message_id = $2
            and message_status_rank($3) is not null
            and (carrier_status is null or message_status_rank(carrier_status) is null
                 or message_status_rank($3) > message_status_rank(carrier_status))",
    )
    .bind(brokerage)
    .bind(message_id)
    .bind(status)
    .bind(error_code)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Outbound {
    pub message_id: MessageId,
    pub brokerage_id: super::BrokerageId,
    pub number_id: i64,
    pub contact_id: Option<ContactId>,
    pub job_id: Option<i64>,
    pub send_state: Option<String>,
    pub sid: Option<String>,
    pub from_raw: String,
    pub to_raw: String,
    pub body: String,
    /// The pre-send commit (docs/reliability.md §2 `started_at`).
    pub occurred_at: DateTime<Utc>,
    /// The carrier's error code from a status callback (30006, 30007, …).
    pub error_code: Option<i32>,
}

const OUTBOUND_COLUMNS: &str = "message_id, brokerage_id, number_id, contact_id, job_id, send_state, sid, from_raw, to_raw, body, occurred_at, error_code";

/// The job's live send (`sending`, `unknown`, `sent`, `needs_review`), if an earlier attempt
/// left one: a re-claimed job must not send again (docs/reliability.md §2, F7).
pub async fn live_send_for_job(conn: &mut PgConnection, job_id: i64) -> Result<Option<Outbound>> {
    Ok(sqlx::query_as::<_, Outbound>(sqlx::AssertSqlSafe(format!(
        "select {OUTBOUND_COLUMNS} from message
          where job_id = $1 and send_state in ('sending', 'unknown', 'sent', 'needs_review')"
    )))
    .bind(job_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn outbound(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
) -> Result<Option<Outbound>> {
    Ok(sqlx::query_as::<_, Outbound>(sqlx::AssertSqlSafe(format!(
        "select {OUTBOUND_COLUMNS} from message where brokerage_id = $1 and message_id = $2 and direction = 'outbound'"
    )))
    .bind(brokerage)
    .bind(message_id)
    .fetch_optional(conn)
    .await?)
}

/// Moves an outbound row between `send_state`s, fenced on the state it must be in. Sets
/// `error_code` and the `review_reason` when given.
pub async fn settle(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
    from_states: &[&str],
    to_state: &str,
    error_code: Option<i32>,
    review_reason: Option<&str>,
) -> Result<bool> {
    let done = sqlx::query(
        "update message set send_state = $4, error_code = coalesce($5, error_code),
                            review_reason = coalesce($6, review_reason), updated_at = now()
          where brokerage_id = $1 and message_id = $2 and send_state = any($3)",
    )
    .bind(brokerage)
    .bind(message_id)
    .bind(from_states)
    .bind(to_state)
    .bind(error_code)
    .bind(review_reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Links an unsettled row to the carrier's message `sid` (found by reconciliation).
pub async fn link_found(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
    sid: &str,
    carrier_status: Option<&str>,
) -> Result<bool> {
    let done = sqlx::query(
        "update message set send_state = 'sent', sid = $3, carrier_status = coalesce($4, carrier_status), updated_at = now()
          where brokerage_id = $1 and message_id = $2 and send_state in ('sending', 'unknown')",
    )
    .bind(brokerage)
    .bind(message_id)
    .bind(sid)
    .bind(carrier_status)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The bodies of our other outbound rows from `from` to `to` recorded since `since`: a
/// message the carrier lists under one of them is that row's text (perhaps one whose answer
/// has not been written yet), not ours under another body (docs/reliability.md §2).
pub async fn other_bodies_between(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    to: &str,
    from: &str,
    except: MessageId,
    since: DateTime<Utc>,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select distinct body from message
          where brokerage_id = $1 and to_raw = $2 and from_raw = $3 and direction = 'outbound'
            and message_id <> $4 and occurred_at >= $5",
    )
    .bind(brokerage)
    .bind(to)
    .bind(from)
    .bind(except)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// Which of these carrier sids are already linked to a row.
pub async fn linked_sids(conn: &mut PgConnection, sids: &[String]) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("select sid from message where sid = any($1)")
            .bind(sids)
            .fetch_all(conn)
            .await?,
    )
}

/// Unsettled sends (`sending`, `unknown`) from `from` to `to`, locked: a status callback
/// whose sid we do not know may belong to one of them. The lock orders the callback with the
/// transaction that links the sid (it updates the same row), so a callback is either seen as
/// the linked message's or kept as an orphan the linking transaction then adopts.
pub async fn unsettled_between(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    to: &str,
    from: &str,
) -> Result<Vec<MessageId>> {
    Ok(sqlx::query_scalar(
        "select message_id from message
          where brokerage_id = $1 and to_raw = $2 and from_raw = $3 and send_state in ('sending', 'unknown')
          order by message_id
            for update",
    )
    .bind(brokerage)
    .bind(to)
    .bind(from)
    .fetch_all(conn)
    .await?)
}

/// Flags a sent message for a person (30008: "this text may not have reached them").
pub async fn flag_for_review(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
    reason: &str,
) -> Result<()> {
    sqlx::query("update message set review_reason = $3, updated_at = now() where brokerage_id = $1 and message_id = $2 and review_reason is null")
        .bind(brokerage)
        .bind(message_id)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

/// Keeps a status callback for a sid not linked yet (an unsettled send's). False for a
/// duplicate.
pub async fn insert_orphan_status(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    sid: &str,
    status: &str,
    error_code_raw: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "insert into message_status_event (brokerage_id, message_id, message_sid, status, error_code_raw, received_at)
         values ($1, null, $2, $3, $4, $5)
         on conflict (message_sid, status, (coalesce(error_code_raw, ''))) where message_id is null do nothing",
    )
    .bind(brokerage)
    .bind(sid)
    .bind(status)
    .bind(error_code_raw)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes the orphan callbacks of `sid` (to be applied to the message it now belongs to).
pub async fn take_orphan_statuses(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    sid: &str,
) -> Result<Vec<(String, Option<String>, DateTime<Utc>)>> {
    Ok(sqlx::query_as(
        "delete from message_status_event
          where brokerage_id = $1 and message_id is null and message_sid = $2
         returning status, error_code_raw, received_at",
    )
    .bind(brokerage)
    .bind(sid)
    .fetch_all(conn)
    .await?)
}

/// An agent texted the contact since `since` (R12: the agent took over).
pub async fn agent_wrote_since(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    since: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from message where brokerage_id = $1 and contact_id = $2 and direction = 'outbound'
                          and kind = 'manual' and occurred_at >= $3 and send_state not in ('failed_certain', 'rejected'))",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(since)
    .fetch_one(conn)
    .await?)
}

/// R10: nothing has gone to the contact yet from this brokerage, or nothing since their last
/// opt-in: the next message must introduce the brokerage.
/// A message's body as stored.
pub async fn body(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("select body from message where brokerage_id = $1 and message_id = $2")
            .bind(brokerage)
            .bind(message_id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn is_first_outbound(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    phone: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select not exists (
            select 1 from message m
             where m.brokerage_id = $1 and m.contact_id = $2 and m.direction = 'outbound'
               and m.send_state not in ('failed_certain', 'rejected')
               and coalesce(m.kind, 'text_back') not in ('opt_out_ack', 'opt_in_ack', 'help', 'agent_alert')
               and m.occurred_at > coalesce((select max(at) from consent_event e
                                              where e.brokerage_id = $1 and e.phone = $3 and e.event = 'opt_in'), '-infinity'))",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(phone)
    .fetch_one(conn)
    .await?)
}

/// The carrier's error code on the text to the contact sent just before `message_id` (texts
/// to leads only; none when there is no earlier one): two 30003s in a row end a sequence.
pub async fn previous_error_code(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    message_id: MessageId,
) -> Result<Option<i32>> {
    Ok(sqlx::query_scalar(
        "select m.error_code from message m
          where m.brokerage_id = $1 and m.contact_id = $2 and m.direction = 'outbound'
            and m.kind is distinct from 'agent_alert' and m.message_id < $3
            and m.send_state = 'sent'
          order by m.message_id desc limit 1",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(message_id)
    .fetch_optional(conn)
    .await?
    .flatten())
}
