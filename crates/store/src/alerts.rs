//! Alerts for people (the admins, a number's agents, an office's managers): recorded so none
//! is lost, texted through `agent_alert` jobs under a rate limit counted here (docs/architecture.md
//! step 9), and shown on the dashboard's banner (admins).

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, CallId, ContactId, MessageId, Result};

pub struct NewAlert<'a> {
    /// `admins`, `agents` (the conversation's assigned agent, else the number's) or
    /// `managers` (the office's)
    pub audience: &'a str,
    pub reason: &'a str,
    pub detail: Option<&'a str>,
    pub contact_id: Option<ContactId>,
    pub message_id: Option<MessageId>,
    pub call_id: Option<CallId>,
    pub now: DateTime<Utc>,
}

pub async fn raise(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    alert: &NewAlert<'_>,
) -> Result<Option<i64>> {
    // `on conflict`: alerts raised once per period (R15's daily limit) have a unique index.
    Ok(sqlx::query_scalar(
        "insert into alert (brokerage_id, audience, reason, detail, contact_id, message_id, call_id, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing returning alert_id",
    )
    .bind(brokerage)
    .bind(alert.audience)
    .bind(alert.reason)
    .bind(alert.detail)
    .bind(alert.contact_id)
    .bind(alert.message_id)
    .bind(alert.call_id)
    .bind(alert.now)
    .fetch_optional(conn)
    .await?)
}

/// The brokerage's active admins.
pub async fn admins(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "select agent_id from agent where brokerage_id = $1 and role = 'admin' and is_active order by agent_id",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

/// An office's active managers (the brokerage's admins when it has none).
pub async fn managers(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    office_id: i64,
) -> Result<Vec<i64>> {
    let managers: Vec<i64> = sqlx::query_scalar(
        "select agent_id from agent where brokerage_id = $1 and office_id = $2 and role = 'manager' and is_active order by agent_id",
    )
    .bind(brokerage)
    .bind(office_id)
    .fetch_all(&mut *conn)
    .await?;
    if managers.is_empty() {
        return admins(conn, brokerage).await;
    }
    Ok(managers)
}

/// Who hears about a contact: the conversation's assigned agent while active, else the
/// active agents of the number (the conversation's, else `number_id`).
pub async fn agents_for(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: Option<ContactId>,
    number_id: Option<i64>,
) -> Result<Vec<i64>> {
    if let Some(contact_id) = contact_id {
        let assigned: Option<i64> = sqlx::query_scalar(
            "select a.agent_id from conversation c0
               join conversation c on c.brokerage_id = c0.brokerage_id and c.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
               join agent a on a.brokerage_id = c.brokerage_id and a.agent_id = c.assigned_agent_id
              where c0.brokerage_id = $1 and c0.contact_id = $2 and a.is_active",
        )
        .bind(brokerage)
        .bind(contact_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(agent) = assigned {
            return Ok(vec![agent]);
        }
    }
    let number: Option<i64> = match contact_id {
        Some(contact_id) => sqlx::query_scalar(
            "select c.number_id from conversation c0
               join conversation c on c.brokerage_id = c0.brokerage_id and c.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
              where c0.brokerage_id = $1 and c0.contact_id = $2",
        )
        .bind(brokerage)
        .bind(contact_id)
        .fetch_optional(&mut *conn)
        .await?
        .or(number_id),
        None => number_id,
    };
    let Some(number) = number else {
        return Ok(Vec::new());
    };
    Ok(sqlx::query_scalar(
        "select r.agent_id from number_ring r join agent a on a.brokerage_id = r.brokerage_id and a.agent_id = r.agent_id
          where r.brokerage_id = $1 and r.number_id = $2 and a.is_active order by r.position",
    )
    .bind(brokerage)
    .bind(number)
    .fetch_all(conn)
    .await?)
}

/// An alert as its `agent_alert` job reads it, with what the text says.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub alert_id: i64,
    pub audience: String,
    pub reason: String,
    pub detail: Option<String>,
    pub contact_id: Option<ContactId>,
    pub message_id: Option<MessageId>,
    pub call_id: Option<CallId>,
    pub created_at: DateTime<Utc>,
    pub brokerage_name: String,
    pub contact_phone: Option<String>,
    pub contact_name: Option<String>,
    /// The contact's conversation (the link), its number and listing.
    pub conversation_id: Option<i64>,
    pub number_id: Option<i64>,
    pub listing: Option<String>,
    /// The lead's text the alert previews.
    pub message_body: Option<String>,
    /// The claimed types of the message's media, in order (README.md "Pictures").
    pub media_types: Option<Vec<String>>,
    pub message_direction: Option<String>,
    pub assigned_name: Option<String>,
    pub waiting_since: Option<DateTime<Utc>>,
    /// The number's `callback` mode (`off`, `offer`, `auto`).
    pub number_callback: Option<String>,
    /// The voicemail it is about, its length and transcript.
    pub voicemail_id: Option<i64>,
    pub voicemail_secs: Option<i32>,
    pub voicemail_transcript: Option<String>,
}

pub async fn get(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    alert_id: i64,
) -> Result<Option<AlertRow>> {
    Ok(sqlx::query_as::<_, AlertRow>(
        "select al.alert_id, al.audience, al.reason, al.detail, al.contact_id, al.message_id, al.call_id, al.created_at,
                b.name as brokerage_name, ct.phone as contact_phone, ct.name as contact_name,
                cv.conversation_id,
                coalesce(cv.number_id, ca.number_id, m.number_id) as number_id,
                n.listing,
                m.body as message_body, m.direction as message_direction,
                (select array_agg(coalesce(x.claimed_type, '') order by x.position) from media x
                  where x.brokerage_id = al.brokerage_id and x.message_id = al.message_id) as media_types,
                ag.name as assigned_name, cv.waiting_since, n.callback as number_callback,
                al.voicemail_id, v.duration_secs as voicemail_secs, v.transcript as voicemail_transcript
           from alert al
           join brokerage b on b.brokerage_id = al.brokerage_id
           left join contact ct on ct.brokerage_id = al.brokerage_id and ct.contact_id = al.contact_id
           left join conversation c0 on c0.brokerage_id = al.brokerage_id and c0.contact_id = al.contact_id
           left join conversation cv on cv.brokerage_id = c0.brokerage_id and cv.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
           left join call ca on ca.brokerage_id = al.brokerage_id and ca.call_id = al.call_id
           left join message m on m.brokerage_id = al.brokerage_id and m.message_id = al.message_id
           left join number n on n.brokerage_id = al.brokerage_id and n.number_id = coalesce(cv.number_id, ca.number_id, m.number_id)
           left join agent ag on ag.brokerage_id = cv.brokerage_id and ag.agent_id = cv.assigned_agent_id
           left join voicemail v on v.brokerage_id = al.brokerage_id and v.voicemail_id = al.voicemail_id
          where al.brokerage_id = $1 and al.alert_id = $2",
    )
    .bind(brokerage)
    .bind(alert_id)
    .fetch_optional(conn)
    .await?)
}

/// The person an alert goes to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub agent_id: i64,
    pub name: String,
    pub phone: String,
    pub is_active: bool,
}

pub async fn recipient(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    agent_id: i64,
) -> Result<Option<Recipient>> {
    Ok(sqlx::query_as::<_, Recipient>(
        "select agent_id, name, phone, is_active from agent where brokerage_id = $1 and agent_id = $2",
    )
    .bind(brokerage)
    .bind(agent_id)
    .fetch_optional(conn)
    .await?)
}

/// A brokerage number to send an alert from when the alert names none: the first active one.
pub async fn any_number(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "select number_id from number where brokerage_id = $1 and is_active order by number_id limit 1",
    )
    .bind(brokerage)
    .fetch_optional(conn)
    .await?)
}

/// Serialises the rate limit's count-and-record for one person across instances, until the
/// end of the transaction.
pub async fn lock_recipient(conn: &mut PgConnection, agent_id: i64) -> Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtext('textback:agent-alerts'), hashtext($1::bigint::text))")
        .bind(agent_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Alerts texted to the person about this conversation in the last 5 minutes, and to the
/// person in the last hour.
pub async fn recent_deliveries(
    conn: &mut PgConnection,
    agent_id: i64,
    conversation_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "select (select count(*) from alert_delivery where agent_id = $1 and decision = 'send'
                    and conversation_id = $2 and decided_at > $3),
                (select count(*) from alert_delivery where agent_id = $1 and decision = 'send'
                    and decided_at > $4)",
    )
    .bind(agent_id)
    .bind(conversation_id)
    .bind(now - Duration::seconds(textback_core::domain::alerts::PER_CONVERSATION_SECS))
    .bind(now - Duration::hours(1))
    .fetch_one(conn)
    .await?)
}

pub struct Delivery<'a> {
    pub alert_id: i64,
    pub agent_id: i64,
    pub conversation_id: Option<i64>,
    pub decision: &'a str,
    pub reason: &'a str,
    pub job_id: i64,
    pub message_id: Option<MessageId>,
    pub now: DateTime<Utc>,
}

pub async fn record_delivery(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    d: &Delivery<'_>,
) -> Result<()> {
    sqlx::query(
        "insert into alert_delivery (brokerage_id, alert_id, agent_id, conversation_id, decision, reason, job_id, message_id, decided_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(brokerage)
    .bind(d.alert_id)
    .bind(d.agent_id)
    .bind(d.conversation_id)
    .bind(d.decision)
    .bind(d.reason)
    .bind(d.job_id)
    .bind(d.message_id)
    .bind(d.now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The rate limit's decision for a job, when an earlier attempt of it made one (a retry of a
/// text the carrier did not take is not counted twice).
pub async fn delivery_for_job(conn: &mut PgConnection, job_id: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "select decision from alert_delivery where job_id = $1 order by alert_delivery_id limit 1",
    )
    .bind(job_id)
    .fetch_optional(conn)
    .await?)
}
