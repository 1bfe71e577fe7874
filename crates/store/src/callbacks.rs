//! Callbacks through a brokerage number, their alert links, and voicemails (docs/calls.md).
//! The webhooks of a callback's agent leg find it by the id in their URL (`cb=`), which the
//! carrier signed; the recording webhooks find their call by its `CallSid`. Those two lookups
//! are the entry points without a brokerage; everything after them is scoped.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, CallId, ContactId, Result};

pub struct NewCallback<'a> {
    pub contact_id: ContactId,
    pub number_id: i64,
    /// `inbox`, `link` or `auto`.
    pub origin: &'a str,
    pub requested_by: Option<i64>,
    pub agent_id: i64,
    pub remaining: &'a [i64],
    pub call_id: Option<CallId>,
    pub now: DateTime<Utc>,
}

/// A new callback, `queued`; `None` when the contact has a live one already (one callback at a
/// time per lead: a second click while one rings places nothing).
pub async fn insert(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    c: &NewCallback<'_>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "insert into callback (brokerage_id, contact_id, number_id, origin, requested_by, agent_id, remaining, call_id, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (brokerage_id, contact_id) where state <> 'ended' do nothing
         returning callback_id",
    )
    .bind(brokerage)
    .bind(c.contact_id)
    .bind(c.number_id)
    .bind(c.origin)
    .bind(c.requested_by)
    .bind(c.agent_id)
    .bind(c.remaining)
    .bind(c.call_id)
    .bind(c.now)
    .fetch_optional(conn)
    .await?)
}

/// A callback ended before it was placed (the rule refused it): recorded so the thread says why.
pub async fn insert_refused(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    c: &NewCallback<'_>,
    detail: &str,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into callback (brokerage_id, contact_id, number_id, origin, requested_by, agent_id, call_id, created_at,
                               state, outcome, detail, ended_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, 'ended', 'refused', $9, $8)
         returning callback_id",
    )
    .bind(brokerage)
    .bind(c.contact_id)
    .bind(c.number_id)
    .bind(c.origin)
    .bind(c.requested_by)
    .bind(c.agent_id)
    .bind(c.call_id)
    .bind(c.now)
    .bind(detail)
    .fetch_one(conn)
    .await?)
}

/// A callback with what its job and its webhooks need.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallbackRow {
    pub callback_id: i64,
    pub brokerage_id: BrokerageId,
    pub contact_id: ContactId,
    pub number_id: i64,
    pub origin: String,
    pub requested_by: Option<i64>,
    pub agent_id: i64,
    pub remaining: Vec<i64>,
    pub call_id: Option<CallId>,
    pub state: String,
    pub outcome: Option<String>,
    pub agent_call_sid: Option<String>,
    pub created_at: DateTime<Utc>,
    pub create_started_at: Option<DateTime<Utc>>,
    pub agent_phone: String,
    pub agent_active: bool,
    pub number_e164: String,
    pub number_active: bool,
    pub listing: Option<String>,
    pub ring_timeout_secs: i32,
    pub brokerage_name: String,
    pub twilio_account_sid: Option<String>,
    pub contact_phone: String,
    pub contact_name: Option<String>,
}

const ROW: &str = "select cb.callback_id, cb.brokerage_id, cb.contact_id, cb.number_id, cb.origin, cb.requested_by,
        cb.agent_id, cb.remaining, cb.call_id, cb.state, cb.outcome, cb.agent_call_sid, cb.created_at,
        cb.create_started_at, a.phone as agent_phone, a.is_active as agent_active, n.e164 as number_e164,
        n.is_active as number_active, n.listing, n.ring_timeout_secs, b.name as brokerage_name,
        b.twilio_account_sid, ct.phone as contact_phone, ct.name as contact_name
   from callback cb
   join agent a on a.brokerage_id = cb.brokerage_id and a.agent_id = cb.agent_id
   join number n on n.brokerage_id = cb.brokerage_id and n.number_id = cb.number_id
   join brokerage b on b.brokerage_id = cb.brokerage_id
   join contact ct on ct.brokerage_id = cb.brokerage_id and ct.contact_id = cb.contact_id";

/// The callback a webhook's `cb=` names, locked. The entry point of the agent leg's webhooks
/// (their signed URL carries the id); the caller then checks the account that signed.
pub async fn find_for_update(
    conn: &mut PgConnection,
    callback_id: i64,
) -> Result<Option<CallbackRow>> {
    Ok(
        sqlx::query_as::<_, CallbackRow>(sqlx::AssertSqlSafe(format!(
            "{ROW} where cb.callback_id = $1 for update of cb"
        )))
        .bind(callback_id)
        .fetch_optional(conn)
        .await?,
    )
}

/// One of the brokerage's callbacks, locked.
pub async fn get_for_update(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    callback_id: i64,
) -> Result<Option<CallbackRow>> {
    Ok(
        sqlx::query_as::<_, CallbackRow>(sqlx::AssertSqlSafe(format!(
            "{ROW} where cb.brokerage_id = $1 and cb.callback_id = $2 for update of cb"
        )))
        .bind(brokerage)
        .bind(callback_id)
        .fetch_optional(conn)
        .await?,
    )
}

/// The create is about to leave: from now on its outcome is unknown until the carrier answers.
pub async fn start_create(
    conn: &mut PgConnection,
    callback_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update callback set state = 'creating', create_started_at = $2 where callback_id = $1",
    )
    .bind(callback_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Back to `queued`: the carrier certainly did not create the call (no connection, 429, 503).
pub async fn requeue(conn: &mut PgConnection, callback_id: i64) -> Result<()> {
    sqlx::query(
        "update callback set state = 'queued' where callback_id = $1 and state = 'creating'",
    )
    .bind(callback_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The create's answer was lost: settled by listing the account's calls.
pub async fn set_unknown(conn: &mut PgConnection, callback_id: i64) -> Result<()> {
    sqlx::query(
        "update callback set state = 'unknown' where callback_id = $1 and state = 'creating'",
    )
    .bind(callback_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The carrier has the call `sid` (its create answer, the list, or the agent leg's first
/// webhook, whichever came first). A later stage is never moved back.
pub async fn placed(conn: &mut PgConnection, callback_id: i64, sid: &str) -> Result<()> {
    sqlx::query(
        "update callback set agent_call_sid = coalesce(agent_call_sid, $2),
                state = case when state in ('queued', 'creating', 'unknown') then 'ringing' else state end
          where callback_id = $1",
    )
    .bind(callback_id)
    .bind(sid)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether another callback already holds this call SID (the list must not adopt it twice).
pub async fn sid_taken(conn: &mut PgConnection, sid: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from callback where agent_call_sid = $1)")
            .bind(sid)
            .fetch_one(conn)
            .await?,
    )
}

/// The agent picked up and hears the prompt.
pub async fn answered(conn: &mut PgConnection, callback_id: i64, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "update callback set state = 'answered', answered_at = coalesce(answered_at, $2)
          where callback_id = $1 and state in ('queued', 'creating', 'unknown', 'ringing')",
    )
    .bind(callback_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The agent pressed 1: the lead is dialled. False when it had ended meanwhile.
pub async fn dialing(conn: &mut PgConnection, callback_id: i64) -> Result<bool> {
    Ok(sqlx::query(
        "update callback set state = 'dialing' where callback_id = $1 and state <> 'ended'",
    )
    .bind(callback_id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

pub struct End<'a> {
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
    pub talk_secs: Option<i32>,
    pub lead_call_sid: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Ends the callback with its outcome, once: false when it had ended already.
pub async fn end(conn: &mut PgConnection, callback_id: i64, e: &End<'_>) -> Result<bool> {
    Ok(sqlx::query(
        "update callback set state = 'ended', outcome = $2, detail = $3, talk_secs = $4,
                lead_call_sid = coalesce($5, lead_call_sid), ended_at = $6,
                bridged_at = case when $2 = 'connected' then $6 else bridged_at end
          where callback_id = $1 and state <> 'ended'",
    )
    .bind(callback_id)
    .bind(e.outcome)
    .bind(e.detail)
    .bind(e.talk_secs)
    .bind(e.lead_call_sid)
    .bind(e.now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// The link of an alert text, stored by the SHA-256 of its token.
pub struct NewLink<'a> {
    pub token_hash: &'a [u8],
    pub agent_id: i64,
    pub contact_id: ContactId,
    pub number_id: i64,
    pub call_id: Option<CallId>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_link(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    l: &NewLink<'_>,
) -> Result<()> {
    sqlx::query(
        "insert into callback_link (token_hash, brokerage_id, agent_id, contact_id, number_id, call_id, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(l.token_hash)
    .bind(brokerage)
    .bind(l.agent_id)
    .bind(l.contact_id)
    .bind(l.number_id)
    .bind(l.call_id)
    .bind(l.now)
    .bind(l.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub brokerage_id: BrokerageId,
    pub agent_id: i64,
    pub agent_name: String,
    pub contact_id: ContactId,
    pub number_id: i64,
    pub call_id: Option<CallId>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub contact_phone: String,
    pub contact_name: Option<String>,
    pub deleted: bool,
    pub listing: Option<String>,
    pub brokerage_name: String,
}

/// A link by its token's hash (the entry point of `/cb/{token}`); locked with `for_update`.
pub async fn link(
    conn: &mut PgConnection,
    token_hash: &[u8],
    for_update: bool,
) -> Result<Option<LinkRow>> {
    let lock = if for_update { " for update of l" } else { "" };
    Ok(sqlx::query_as::<_, LinkRow>(sqlx::AssertSqlSafe(format!(
        "select l.brokerage_id, l.agent_id, a.name as agent_name, l.contact_id, l.number_id, l.call_id,
                l.expires_at, l.used_at, ct.phone as contact_phone, ct.name as contact_name,
                exists (select 1 from conversation cv where cv.brokerage_id = l.brokerage_id
                         and cv.contact_id = l.contact_id and cv.deleted_at is not null) as deleted,
                n.listing, b.name as brokerage_name
           from callback_link l
           join agent a on a.brokerage_id = l.brokerage_id and a.agent_id = l.agent_id
           join contact ct on ct.brokerage_id = l.brokerage_id and ct.contact_id = l.contact_id
           join number n on n.brokerage_id = l.brokerage_id and n.number_id = l.number_id
           join brokerage b on b.brokerage_id = l.brokerage_id
          where l.token_hash = $1{lock}"
    )))
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

/// Marks the link used (by the callback it placed, if any).
pub async fn use_link(
    conn: &mut PgConnection,
    token_hash: &[u8],
    callback_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("update callback_link set used_at = $2, callback_id = $3 where token_hash = $1 and used_at is null")
        .bind(token_hash)
        .bind(now)
        .bind(callback_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The hours of a number's office (`opens_at`, `closes_at`), when the setup file names them.
pub async fn office_hours(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
) -> Result<Option<(chrono::NaiveTime, chrono::NaiveTime)>> {
    let row: Option<(Option<chrono::NaiveTime>, Option<chrono::NaiveTime>)> = sqlx::query_as(
        "select o.opens_at, o.closes_at from number n
           join office o on o.brokerage_id = n.brokerage_id and o.office_id = n.office_id
          where n.brokerage_id = $1 and n.number_id = $2",
    )
    .bind(brokerage)
    .bind(number_id)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((Some(open), Some(close))) => Some((open, close)),
        _ => None,
    })
}

/// What the call rule reads about a contact.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleFacts {
    pub phone: String,
    pub deleted: bool,
    pub suppression_source: Option<String>,
    pub review_hold: bool,
}

pub async fn rule_facts(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
) -> Result<Option<RuleFacts>> {
    Ok(sqlx::query_as::<_, RuleFacts>(
        "select ct.phone,
                exists (select 1 from conversation cv where cv.brokerage_id = ct.brokerage_id
                         and cv.contact_id = ct.contact_id and cv.deleted_at is not null) as deleted,
                (select s.source from suppression s where s.brokerage_id = ct.brokerage_id and s.phone = ct.phone
                   and s.lifted_at is null) as suppression_source,
                ct.review_hold_at is not null as review_hold
           from contact ct where ct.brokerage_id = $1 and ct.contact_id = $2",
    )
    .bind(brokerage)
    .bind(contact_id)
    .fetch_optional(conn)
    .await?)
}

/// A callback as the thread shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallbackItem {
    pub callback_id: i64,
    pub origin: String,
    pub agent_name: String,
    pub state: String,
    pub outcome: Option<String>,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub talk_secs: Option<i32>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// The callbacks to any of `contacts`, each from its `since`.
pub async fn for_thread(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contacts: &[i64],
    since: &[DateTime<Utc>],
) -> Result<Vec<CallbackItem>> {
    Ok(sqlx::query_as::<_, CallbackItem>(
        "select cb.callback_id, cb.origin, a.name as agent_name, cb.state, cb.outcome,
                cb.detail, cb.created_at, cb.talk_secs, cb.ended_at
           from callback cb
           join unnest($2::bigint[], $3::timestamptz[]) as v(contact_id, since) on v.contact_id = cb.contact_id
           join agent a on a.brokerage_id = cb.brokerage_id and a.agent_id = cb.agent_id
          where cb.brokerage_id = $1 and cb.created_at >= v.since
          order by cb.created_at, cb.callback_id",
    )
    .bind(brokerage)
    .bind(contacts)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

pub struct NewVoicemail<'a> {
    pub call_id: CallId,
    pub contact_id: Option<ContactId>,
    pub recording_sid: &'a str,
    pub account_sid: Option<&'a str>,
    pub duration_secs: Option<i32>,
    pub now: DateTime<Utc>,
}

/// Records a voicemail once per `RecordingSid`: the new row's id, or `None` when it was known
/// (its duration is filled in if it was missing).
pub async fn insert_voicemail(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    v: &NewVoicemail<'_>,
) -> Result<Option<i64>> {
    let id: Option<i64> = sqlx::query_scalar(
        "insert into voicemail (brokerage_id, call_id, contact_id, recording_sid, account_sid, duration_secs, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (recording_sid) do nothing
         returning voicemail_id",
    )
    .bind(brokerage)
    .bind(v.call_id)
    .bind(v.contact_id)
    .bind(v.recording_sid)
    .bind(v.account_sid)
    .bind(v.duration_secs)
    .bind(v.now)
    .fetch_optional(&mut *conn)
    .await?;
    if id.is_none() {
        sqlx::query(
            "update voicemail set duration_secs = coalesce(duration_secs, $3)
              where brokerage_id = $1 and recording_sid = $2",
        )
        .bind(brokerage)
        .bind(v.recording_sid)
        .bind(v.duration_secs)
        .execute(conn)
        .await?;
    }
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VoicemailRow {
    pub voicemail_id: i64,
    pub brokerage_id: BrokerageId,
    pub call_id: CallId,
    pub contact_id: Option<ContactId>,
    pub number_id: i64,
    pub recording_sid: String,
    pub account_sid: Option<String>,
    pub transcription_status: String,
    pub transcript: Option<String>,
    pub duration_secs: Option<i32>,
    pub created_at: DateTime<Utc>,
}

const VOICEMAIL: &str =
    "select v.voicemail_id, v.brokerage_id, v.call_id, v.contact_id, c.number_id, v.recording_sid,
        v.account_sid, v.transcription_status, v.transcript, v.duration_secs, v.created_at
   from voicemail v join call c on c.brokerage_id = v.brokerage_id and c.call_id = v.call_id";

/// A voicemail by its `RecordingSid`, locked (the entry point of the transcription webhook).
pub async fn voicemail_by_recording(
    conn: &mut PgConnection,
    recording_sid: &str,
) -> Result<Option<VoicemailRow>> {
    Ok(
        sqlx::query_as::<_, VoicemailRow>(sqlx::AssertSqlSafe(format!(
            "{VOICEMAIL} where v.recording_sid = $1 for update of v"
        )))
        .bind(recording_sid)
        .fetch_optional(conn)
        .await?,
    )
}

pub async fn voicemail(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    voicemail_id: i64,
) -> Result<Option<VoicemailRow>> {
    Ok(
        sqlx::query_as::<_, VoicemailRow>(sqlx::AssertSqlSafe(format!(
            "{VOICEMAIL} where v.brokerage_id = $1 and v.voicemail_id = $2"
        )))
        .bind(brokerage)
        .bind(voicemail_id)
        .fetch_optional(conn)
        .await?,
    )
}

/// Records the transcript once (`completed` or `failed`); false when one was recorded already.
pub async fn set_transcript(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    voicemail_id: i64,
    status: &str,
    text: Option<&str>,
    keyword_class: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query(
        "update voicemail set transcription_status = $3, transcript = $4, keyword_class = $5, transcribed_at = $6
          where brokerage_id = $1 and voicemail_id = $2 and transcription_status = 'none'",
    )
    .bind(brokerage)
    .bind(voicemail_id)
    .bind(status)
    .bind(text)
    .bind(keyword_class)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// A voicemail as the thread shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VoicemailItem {
    pub voicemail_id: i64,
    pub duration_secs: Option<i32>,
    pub transcript: Option<String>,
    pub transcription_status: String,
    pub keyword_class: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn voicemails_for_thread(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contacts: &[i64],
    since: &[DateTime<Utc>],
) -> Result<Vec<VoicemailItem>> {
    Ok(sqlx::query_as::<_, VoicemailItem>(
        "select v.voicemail_id, v.duration_secs, v.transcript, v.transcription_status, v.keyword_class, v.created_at
           from voicemail v
           join unnest($2::bigint[], $3::timestamptz[]) as s(contact_id, since) on s.contact_id = v.contact_id
          where v.brokerage_id = $1 and v.created_at >= s.since
          order by v.created_at, v.voicemail_id",
    )
    .bind(brokerage)
    .bind(contacts)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// The pending `agent_alert` jobs about a voicemail's alert: due now (its transcript came).
pub async fn hurry_voicemail_alerts(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    voicemail_id: i64,
    now: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query(
        "update job j set run_at = least(j.run_at, $3)
           from alert al
          where al.brokerage_id = $1 and al.voicemail_id = $2
            and j.brokerage_id = al.brokerage_id and j.kind = 'agent_alert' and j.state = 'scheduled'
            and (j.payload->>'alert_id')::bigint = al.alert_id",
    )
    .bind(brokerage)
    .bind(voicemail_id)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Ties an alert to the voicemail it is about (its text previews the transcript).
pub async fn tag_alert_voicemail(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    alert_id: i64,
    voicemail_id: i64,
) -> Result<()> {
    sqlx::query("update alert set voicemail_id = $3 where brokerage_id = $1 and alert_id = $2")
        .bind(brokerage)
        .bind(alert_id)
        .bind(voicemail_id)
        .execute(conn)
        .await?;
    Ok(())
}
