//! Calls and their status events. Idempotent on `CallSid`; outcomes and statuses only move
//! forward (docs/security.md §1.3).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, CallId, ContactId, Result};

pub struct NewCall<'a> {
    pub number_id: i64,
    pub contact_id: Option<ContactId>,
    pub call_sid: &'a str,
    pub from_raw: &'a str,
    pub invalid_reason: Option<&'a str>,
    pub call_status: Option<&'a str>,
    pub started_at: DateTime<Utc>,
}

/// Records a call; `None` when this `CallSid` was already recorded (a replay).
pub async fn insert_if_new(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call: &NewCall<'_>,
) -> Result<Option<CallId>> {
    Ok(sqlx::query_scalar(
        "insert into call (brokerage_id, number_id, contact_id, call_sid, from_raw, invalid_reason, call_status, started_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (call_sid) do nothing
         returning call_id",
    )
    .bind(brokerage)
    .bind(call.number_id)
    .bind(call.contact_id)
    .bind(call.call_sid)
    .bind(call.from_raw)
    .bind(call.invalid_reason)
    .bind(call.call_status)
    .bind(call.started_at)
    .fetch_optional(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallRow {
    pub call_id: CallId,
    pub number_id: i64,
    pub contact_id: Option<ContactId>,
    pub outcome: Option<String>,
    pub outcome_source: Option<String>,
    pub call_status: Option<String>,
}

/// A call of this brokerage by `CallSid`, locked for the rest of the transaction so that two
/// racing webhooks for one call are ordered.
pub async fn find_for_update(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_sid: &str,
) -> Result<Option<CallRow>> {
    Ok(sqlx::query_as::<_, CallRow>(
        "select call_id, number_id, contact_id, outcome, outcome_source, call_status
           from call where brokerage_id = $1 and call_sid = $2
            for update",
    )
    .bind(brokerage)
    .bind(call_sid)
    .fetch_optional(conn)
    .await?)
}

/// Whether this brokerage has a call with this `CallSid`.
pub async fn exists(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_sid: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from call where brokerage_id = $1 and call_sid = $2)",
    )
    .bind(brokerage)
    .bind(call_sid)
    .fetch_one(conn)
    .await?)
}

/// Finds the tenant and number of a parent call from its `CallSid` (the screen runs on the
/// agent's leg, whose request carries the parent's sid as `ParentCallSid`).
pub async fn resolve_parent(
    conn: &mut PgConnection,
    parent_call_sid: &str,
) -> Result<Option<(BrokerageId, CallId, i64, Option<ContactId>)>> {
    Ok(sqlx::query_as(
        "select brokerage_id, call_id, number_id, contact_id from call where call_sid = $1",
    )
    .bind(parent_call_sid)
    .fetch_optional(conn)
    .await?)
}

pub struct DialFacts<'a> {
    pub dial_call_status: &'a str,
    pub dial_bridged: Option<bool>,
    pub dial_call_sid: Option<&'a str>,
    pub dial_call_duration: Option<i32>,
    pub outcome: &'a str,
    /// The parent call's `CallStatus` in the same request, moved forward with the rest.
    pub parent_call_status: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// What [`record_dial_result`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialRecord {
    /// Recorded on this call; `previous` is the outcome it replaced (a miss the status
    /// callback inferred), if any.
    Recorded {
        call_id: CallId,
        contact_id: Option<ContactId>,
        previous: Option<String>,
    },
    /// The call already has a dial result: a replay.
    AlreadyRecorded,
    /// No call of this brokerage has this `CallSid`.
    NoSuchCall,
}

/// Records the `<Dial action>` result in one statement. The first dial result wins; it also
/// replaces an outcome the status callback inferred earlier (the dial result is
/// authoritative). A racing duplicate waits for the row lock of the first, then no longer
/// matches. One write per dial result keeps it cheap: the call row is updated once, not
/// locked, updated and updated again.
pub async fn record_dial_result(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_sid: &str,
    facts: &DialFacts<'_>,
) -> Result<DialRecord> {
    let recorded: Option<(CallId, Option<ContactId>, Option<String>)> = sqlx::query_as(
        "with old as (select call_id, outcome from call where brokerage_id = $1 and call_sid = $2)
         update call
            set dial_call_status = $3, dial_bridged = $4, dial_call_sid = $5, dial_call_duration = $6,
                outcome = $7, outcome_source = 'dial', outcome_at = $8,
                call_status = case
                    when call_status_rank($9) is not null
                     and (call.call_status is null or call_status_rank(call.call_status) is null
                          or call_status_rank($9) > call_status_rank(call.call_status))
                    then $9 else call.call_status end
           from old
          where call.call_id = old.call_id
            and (call.outcome is null or call.outcome_source = 'status')
         returning call.call_id, call.contact_id, old.outcome",
    )
    .bind(brokerage)
    .bind(call_sid)
    .bind(facts.dial_call_status)
    .bind(facts.dial_bridged)
    .bind(facts.dial_call_sid)
    .bind(facts.dial_call_duration)
    .bind(facts.outcome)
    .bind(facts.at)
    .bind(facts.parent_call_status)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((call_id, contact_id, previous)) = recorded {
        return Ok(DialRecord::Recorded {
            call_id,
            contact_id,
            previous,
        });
    }
    let exists: Option<i64> =
        sqlx::query_scalar("select call_id from call where brokerage_id = $1 and call_sid = $2")
            .bind(brokerage)
            .bind(call_sid)
            .fetch_optional(conn)
            .await?;
    Ok(if exists.is_some() {
        DialRecord::AlreadyRecorded
    } else {
        DialRecord::NoSuchCall
    })
}

/// Records a parent-call status callback once per (`CallStatus`, `SequenceNumber`). Returns
/// false for a duplicate.
pub async fn insert_event_if_new(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_id: CallId,
    call_status: &str,
    sequence_number: i32,
    call_duration: Option<i32>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "insert into call_event (brokerage_id, call_id, call_status, sequence_number, call_duration, received_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (call_id, call_status, sequence_number) do nothing",
    )
    .bind(brokerage)
    .bind(call_id)
    .bind(call_status)
    .bind(sequence_number)
    .bind(call_duration)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the call's status forward (never back: a late `ringing` after `completed` changes
/// nothing; unknown values change nothing).
pub async fn advance_status(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_id: CallId,
    call_status: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "update call set call_status = $3
          where brokerage_id = $1 and call_id = $2
            and call_status_rank($3) is not null
            and (call_status is null or call_status_rank(call_status) is null
                 or call_status_rank($3) > call_status_rank(call_status))",
    )
    .bind(brokerage)
    .bind(call_id)
    .bind(call_status)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The backup path (docs/twilio.md §1.6 point 3): the parent call ended and no dial result was
/// recorded, so the caller hung up while agents were ringing. Records a missed call unless an
/// outcome is already known. Returns true when it did.
pub async fn record_miss_from_status(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_id: CallId,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update call set outcome = 'missed', outcome_source = 'status', outcome_at = $3
          where brokerage_id = $1 and call_id = $2 and outcome is null",
    )
    .bind(brokerage)
    .bind(call_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The agent who pressed 1 at the screen (first one wins).
pub async fn record_screen_accept(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_id: CallId,
    agent_id: i64,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update call set screened_agent_id = $3, screened_at = $4
          where brokerage_id = $1 and call_id = $2 and screened_at is null",
    )
    .bind(brokerage)
    .bind(call_id)
    .bind(agent_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What a text-back needs about the call it answers.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TextBackContext {
    pub call_id: CallId,
    pub number_id: i64,
    pub number_e164: String,
    pub number_active: bool,
    pub listing: Option<String>,
    pub office_name: String,
    pub started_at: DateTime<Utc>,
    /// When the miss was recorded (the start of the text-back delay metric).
    pub outcome_at: Option<DateTime<Utc>>,
    /// The conversation's owner (the routing's pick), else the first active agent of the
    /// number's ring list (a lead still offered to several).
    pub agent_name: Option<String>,
}

pub async fn text_back_context(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_id: CallId,
) -> Result<Option<TextBackContext>> {
    Ok(sqlx::query_as::<_, TextBackContext>(
        "select c.call_id, n.number_id, n.e164 as number_e164, n.is_active as number_active, n.listing,
                o.name as office_name, c.started_at, c.outcome_at,
                coalesce(
                  (select a.name from conversation c0
                     join conversation cv on cv.brokerage_id = c0.brokerage_id and cv.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
                     join agent a on a.brokerage_id = cv.brokerage_id and a.agent_id = cv.assigned_agent_id
                    where c0.brokerage_id = c.brokerage_id and c0.contact_id = c.contact_id and a.is_active),
                  (select a.name from number_ring r
                     join agent a on a.brokerage_id = r.brokerage_id and a.agent_id = r.agent_id
                    where r.brokerage_id = n.brokerage_id and r.number_id = n.number_id and a.is_active
                    order by r.position limit 1)) as agent_name
           from call c
           join number n on n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
           join office o on o.brokerage_id = n.brokerage_id and o.office_id = n.office_id
          where c.brokerage_id = $1 and c.call_id = $2",
    )
    .bind(brokerage)
    .bind(call_id)
    .fetch_optional(conn)
    .await?)
}

/// The agents an incoming call rang (the routing's pick; the dashboard's answer rate per agent).
pub async fn set_rang(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_id: CallId,
    agent_ids: &[i64],
) -> Result<()> {
    sqlx::query("update call set rang_agent_ids = $3 where brokerage_id = $1 and call_id = $2")
        .bind(brokerage)
        .bind(call_id)
        .bind(agent_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// The agent who took an answered call: the one who pressed 1 at the screen, else the one
/// agent it rang. `None` when several rang unscreened (Twilio's Dial result does not say).
pub async fn answerer(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    call_id: CallId,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar::<_, Option<i64>>(
        "select coalesce(screened_agent_id,
                         case when cardinality(rang_agent_ids) = 1 then rang_agent_ids[1] end)
           from call where brokerage_id = $1 and call_id = $2",
    )
    .bind(brokerage)
    .bind(call_id)
    .fetch_optional(conn)
    .await?
    .flatten())
}
