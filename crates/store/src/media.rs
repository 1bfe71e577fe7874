//! Pictures in and out (README.md "Pictures"): an inbound text's media items, fetched by a
//! `media_fetch` job; an agent's attachments, served to Twilio by token until they expire.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, MessageId, Result};

/// A new inbound media item: `sids` are Twilio's (message, media) when its URL was Twilio's,
/// else why not (`not_twilio`, `other_account`: refused at once, never fetched).
pub struct NewInbound<'a> {
    pub message_id: MessageId,
    pub position: i32,
    pub sids: std::result::Result<(String, String), &'a str>,
    pub claimed_type: Option<&'a str>,
}

/// Records an inbound media item: `pending` (to fetch) or `refused` with its reason.
pub async fn insert_inbound(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    m: &NewInbound<'_>,
    now: DateTime<Utc>,
) -> Result<(i64, bool)> {
    let (mm, me, state, reason) = match &m.sids {
        Ok((mm, me)) => (Some(mm.as_str()), Some(me.as_str()), "pending", None),
        Err(why) => (None, None, "refused", Some(*why)),
    };
    let id: i64 = sqlx::query_scalar(
        "insert into media (brokerage_id, direction, message_id, position, message_sid, media_sid, claimed_type, state, reason, created_at)
         values ($1, 'inbound', $2, $3, $4, $5, $6, $7, $8, $9) returning media_id",
    )
    .bind(brokerage)
    .bind(m.message_id)
    .bind(m.position)
    .bind(mm)
    .bind(me)
    .bind(m.claimed_type)
    .bind(state)
    .bind(reason)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok((id, state == "pending"))
}

/// What a fetch needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ToFetch {
    pub media_id: i64,
    pub message_sid: Option<String>,
    pub media_sid: Option<String>,
    pub state: String,
}

pub async fn to_fetch(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    media_id: i64,
) -> Result<Option<ToFetch>> {
    Ok(sqlx::query_as::<_, ToFetch>(
        "select media_id, message_sid, media_sid, state from media
          where brokerage_id = $1 and media_id = $2 and direction = 'inbound'",
    )
    .bind(brokerage)
    .bind(media_id)
    .fetch_optional(conn)
    .await?)
}

/// A checked file to keep.
pub struct Stored<'a> {
    pub bytes: &'a [u8],
    pub content_type: &'a str,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Keeps a pending item's bytes. False when it was not pending any more.
pub async fn mark_stored(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    media_id: i64,
    s: &Stored<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update media set state = 'stored', bytes = $3, size = $4, content_type = $5, width = $6, height = $7,
                          reason = null, stored_at = $8
          where brokerage_id = $1 and media_id = $2 and state = 'pending'",
    )
    .bind(brokerage)
    .bind(media_id)
    .bind(s.bytes)
    .bind(i32::try_from(s.bytes.len()).unwrap_or(i32::MAX))
    .bind(s.content_type)
    .bind(s.width.and_then(|w| i32::try_from(w).ok()))
    .bind(s.height.and_then(|h| i32::try_from(h).ok()))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a pending item `refused` (the file failed our checks) or `failed` (the fetch), with
/// its reason; a `pending` one keeps its last error while it is retried.
pub async fn mark(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    media_id: i64,
    state: &str,
    reason: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "update media set state = $3, reason = $4
          where brokerage_id = $1 and media_id = $2 and state = 'pending'",
    )
    .bind(brokerage)
    .bind(media_id)
    .bind(state)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A media item as a thread shows it (no bytes).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Item {
    pub media_id: i64,
    pub message_id: Option<MessageId>,
    pub job_id: Option<i64>,
    pub claimed_type: Option<String>,
    pub content_type: Option<String>,
    pub state: String,
    pub reason: Option<String>,
    pub size: Option<i32>,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

/// The media of these messages (inbound) and of the replies these jobs sent (outbound), in
/// order.
pub async fn of_thread(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_ids: &[i64],
    job_ids: &[i64],
) -> Result<Vec<Item>> {
    Ok(sqlx::query_as::<_, Item>(
        "select media_id, message_id, job_id, claimed_type, content_type, state, reason, size, width, height
           from media
          where brokerage_id = $1 and (message_id = any($2) or job_id = any($3))
          order by media_id",
    )
    .bind(brokerage)
    .bind(message_ids)
    .bind(job_ids)
    .fetch_all(conn)
    .await?)
}

/// A stored item's bytes, with the contact whose conversation it belongs to (the caller checks
/// the person may see it).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Content {
    pub contact_id: Option<super::ContactId>,
    /// When its text came or its reply was written: a conversation deleted since shows it no
    /// more.
    pub at: DateTime<Utc>,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

pub async fn content(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    media_id: i64,
) -> Result<Option<Content>> {
    Ok(sqlx::query_as::<_, Content>(
        "select coalesce(m.contact_id, j.contact_id) as contact_id,
                coalesce(m.occurred_at, j.created_at, x.created_at) as at, x.content_type, x.bytes
           from media x
           left join message m on m.brokerage_id = x.brokerage_id and m.message_id = x.message_id
           left join job j on j.brokerage_id = x.brokerage_id and j.job_id = x.job_id
          where x.brokerage_id = $1 and x.media_id = $2 and x.state = 'stored'",
    )
    .bind(brokerage)
    .bind(media_id)
    .fetch_optional(conn)
    .await?)
}

/// An agent's attachment, checked: kept with its token and expiry, for the reply's job.
pub struct NewUpload<'a> {
    pub file: Stored<'a>,
    pub token: &'a str,
    pub expires_at: DateTime<Utc>,
    pub uploaded_by: i64,
}

pub async fn insert_upload(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    u: &NewUpload<'_>,
    now: DateTime<Utc>,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into media (brokerage_id, direction, content_type, bytes, size, width, height, state, token, expires_at, uploaded_by, created_at, stored_at)
         values ($1, 'outbound', $2, $3, $4, $5, $6, 'stored', $7, $8, $9, $10, $10) returning media_id",
    )
    .bind(brokerage)
    .bind(u.file.content_type)
    .bind(u.file.bytes)
    .bind(i32::try_from(u.file.bytes.len()).unwrap_or(i32::MAX))
    .bind(u.file.width.and_then(|w| i32::try_from(w).ok()))
    .bind(u.file.height.and_then(|h| i32::try_from(h).ok()))
    .bind(u.token)
    .bind(u.expires_at)
    .bind(u.uploaded_by)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// Ties attachments to the reply job that sends them.
pub async fn attach(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    media_ids: &[i64],
    job_id: i64,
) -> Result<()> {
    sqlx::query(
        "update media set job_id = $3 where brokerage_id = $1 and media_id = any($2) and direction = 'outbound'",
    )
    .bind(brokerage)
    .bind(media_ids)
    .bind(job_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tokens of a reply's attachments, in order, as it is sent: each answers at least a day
/// more from `now` (a reply held or retried past its three days still finds its photo).
pub async fn tokens_for_send(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    media_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "with kept as (
            update media set expires_at = greatest(expires_at, $3 + interval '1 day')
             where brokerage_id = $1 and media_id = any($2) and direction = 'outbound' and token is not null
             returning token, position, media_id)
         select token from kept order by position, media_id",
    )
    .bind(brokerage)
    .bind(media_ids)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

/// Removes uploads no reply took (a form submitted twice: the first one's job sends its own).
pub async fn discard_unattached(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    media_ids: &[i64],
) -> Result<u64> {
    Ok(sqlx::query(
        "delete from media where brokerage_id = $1 and media_id = any($2) and direction = 'outbound' and job_id is null",
    )
    .bind(brokerage)
    .bind(media_ids)
    .execute(conn)
    .await?
    .rows_affected())
}

/// An attachment by its token, while it has not expired (`GET /media/{token}`, for Twilio).
pub async fn by_token(
    conn: &mut PgConnection,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "select content_type, bytes from media
          where token = $1 and direction = 'outbound' and state = 'stored' and expires_at > $2",
    )
    .bind(token)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}
