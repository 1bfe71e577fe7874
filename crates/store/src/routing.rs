//! Routing's rows (docs/routing.md): a number's mode and round-robin cursor, its agents'
//! availability, first-to-claim offers, the routing trace, agents' texts, saved replies and
//! sign-in links.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, Result};

/// A number as routing reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NumberRouting {
    pub number_id: i64,
    pub office_id: i64,
    pub routing: String,
    pub claim_timeout_secs: i32,
    pub rr_cursor: Option<i32>,
    pub time_zone: String,
}

/// Locks the number's row (the round robin's cursor moves one lead at a time) and reads it.
///
/// `for no key update`, not `for update`: the event's transaction already holds a key-share
/// lock on this row from the foreign key of the call or message it inserted, and so does every
/// concurrent event on the number; two of them upgrading to `for update` would deadlock. `no
/// key update` still orders them one at a time, and never waits for a key-share lock.
pub async fn number_locked(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
) -> Result<Option<NumberRouting>> {
    Ok(sqlx::query_as::<_, NumberRouting>(
        "select n.number_id, n.office_id, n.routing, n.claim_timeout_secs, n.rr_cursor, b.time_zone
           from number n join brokerage b using (brokerage_id)
          where n.brokerage_id = $1 and n.number_id = $2
            for no key update of n",
    )
    .bind(brokerage)
    .bind(number_id)
    .fetch_optional(conn)
    .await?)
}

/// The number's routing without a lock (who a call rings).
pub async fn number(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
) -> Result<Option<NumberRouting>> {
    Ok(sqlx::query_as::<_, NumberRouting>(
        "select n.number_id, n.office_id, n.routing, n.claim_timeout_secs, n.rr_cursor, b.time_zone
           from number n join brokerage b using (brokerage_id)
          where n.brokerage_id = $1 and n.number_id = $2",
    )
    .bind(brokerage)
    .bind(number_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn set_cursor(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
    cursor: i32,
) -> Result<()> {
    sqlx::query("update number set rr_cursor = $3 where brokerage_id = $1 and number_id = $2")
        .bind(brokerage)
        .bind(number_id)
        .bind(cursor)
        .execute(conn)
        .await?;
    Ok(())
}

/// An agent as routing sees them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoutingAgent {
    pub agent_id: i64,
    pub email: String,
    pub name: String,
    pub phone: String,
    pub role: String,
    pub weight: i32,
    pub hours_start: Option<NaiveTime>,
    pub hours_end: Option<NaiveTime>,
    pub availability: String,
    pub back_on: Option<NaiveDate>,
    /// `en`, `es`: the languages they text in.
    pub languages: Vec<String>,
}

/// `select` of a [`RoutingAgent`] (alias `a`), then the rest of the statement.
macro_rules! select_agents {
    ($rest:literal) => {
        concat!(
            "select a.agent_id, a.email, a.name, a.phone, a.role, a.weight, a.hours_start, a.hours_end, a.availability, a.back_on, a.languages ",
            $rest
        )
    };
}

/// The number's active ring agents, in ring order.
pub async fn ring(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
) -> Result<Vec<RoutingAgent>> {
    Ok(sqlx::query_as::<_, RoutingAgent>(select_agents!(
        "from number_ring r join agent a on a.brokerage_id = r.brokerage_id and a.agent_id = r.agent_id
          where r.brokerage_id = $1 and r.number_id = $2 and a.is_active
          order by r.position"
    ))
    .bind(brokerage)
    .bind(number_id)
    .fetch_all(conn)
    .await?)
}

/// The office's active managers (the brokerage's admins when it has none), by id.
pub async fn managers(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    office_id: i64,
) -> Result<Vec<RoutingAgent>> {
    let managers = sqlx::query_as::<_, RoutingAgent>(select_agents!(
        "from agent a
          where a.brokerage_id = $1 and a.office_id = $2 and a.role = 'manager' and a.is_active
          order by a.agent_id"
    ))
    .bind(brokerage)
    .bind(office_id)
    .fetch_all(&mut *conn)
    .await?;
    if !managers.is_empty() {
        return Ok(managers);
    }
    Ok(sqlx::query_as::<_, RoutingAgent>(select_agents!(
        "from agent a
          where a.brokerage_id = $1 and a.role = 'admin' and a.is_active
          order by a.agent_id"
    ))
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

/// The agent (active or not) with this phone: a removed agent's text is recorded, not taken
/// for a lead's.
pub async fn agent_by_phone(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
) -> Result<Option<(i64, bool)>> {
    Ok(sqlx::query_as(
        "select agent_id, is_active from agent where brokerage_id = $1 and phone = $2
          order by is_active desc, agent_id limit 1",
    )
    .bind(brokerage)
    .bind(phone)
    .fetch_optional(conn)
    .await?)
}

/// One active agent by id.
pub async fn agent(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    agent_id: i64,
) -> Result<Option<RoutingAgent>> {
    Ok(sqlx::query_as::<_, RoutingAgent>(select_agents!(
        "from agent a where a.brokerage_id = $1 and a.agent_id = $2 and a.is_active"
    ))
    .bind(brokerage)
    .bind(agent_id)
    .fetch_optional(conn)
    .await?)
}

/// What an agent says of themself (their own page).
pub async fn set_availability(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    agent_id: i64,
    availability: &str,
    back_on: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update agent set availability = $3, back_on = $4, availability_at = $5
          where brokerage_id = $1 and agent_id = $2",
    )
    .bind(brokerage)
    .bind(agent_id)
    .bind(availability)
    .bind(back_on)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A line of the routing trace (`conversation_event`).
pub struct Trace<'a> {
    pub conversation_id: i64,
    pub kind: &'a str,
    pub by_agent_id: Option<i64>,
    pub to_agent_id: Option<i64>,
    pub agent_ids: Option<&'a [i64]>,
    pub detail: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub async fn trace(conn: &mut PgConnection, brokerage: BrokerageId, t: &Trace<'_>) -> Result<()> {
    sqlx::query(
        "insert into conversation_event (brokerage_id, conversation_id, kind, by_agent_id, to_agent_id, agent_ids, detail, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(brokerage)
    .bind(t.conversation_id)
    .bind(t.kind)
    .bind(t.by_agent_id)
    .bind(t.to_agent_id)
    .bind(t.agent_ids)
    .bind(t.detail)
    .bind(t.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An open first-to-claim offer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Offer {
    pub claim_offer_id: i64,
    pub conversation_id: i64,
    pub number_id: i64,
    pub agent_ids: Vec<i64>,
    pub offered_at: DateTime<Utc>,
}

/// Opens an offer; `None` when the conversation has one open already.
pub async fn open_offer(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    number_id: i64,
    agent_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "insert into claim_offer (brokerage_id, conversation_id, number_id, agent_ids, offered_at)
         values ($1, $2, $3, $4, $5) on conflict do nothing returning claim_offer_id",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(number_id)
    .bind(agent_ids)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// The conversation's open offer, locked.
pub async fn open_offer_for(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
) -> Result<Option<Offer>> {
    Ok(sqlx::query_as::<_, Offer>(
        "select claim_offer_id, conversation_id, number_id, agent_ids, offered_at from claim_offer
          where brokerage_id = $1 and conversation_id = $2 and outcome is null
            for update",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .fetch_optional(conn)
    .await?)
}

/// An offer by id, locked, if still open.
pub async fn offer_if_open(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    claim_offer_id: i64,
) -> Result<Option<Offer>> {
    Ok(sqlx::query_as::<_, Offer>(
        "select claim_offer_id, conversation_id, number_id, agent_ids, offered_at from claim_offer
          where brokerage_id = $1 and claim_offer_id = $2 and outcome is null
            for update",
    )
    .bind(brokerage)
    .bind(claim_offer_id)
    .fetch_optional(conn)
    .await?)
}

/// Ends an open offer (`claimed` by an agent, `timed_out`, `withdrawn`). False when it had
/// ended already: the caller lost the race.
pub async fn end_offer(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    claim_offer_id: i64,
    outcome: &str,
    claimed_by: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query(
        "update claim_offer set outcome = $3, claimed_by = $4, ended_at = $5
          where brokerage_id = $1 and claim_offer_id = $2 and outcome is null",
    )
    .bind(brokerage)
    .bind(claim_offer_id)
    .bind(outcome)
    .bind(claimed_by)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// A text from an agent's phone, once per MessageSid. `None`: seen already (the carrier's
/// retry).
pub struct NewAgentText<'a> {
    pub number_id: i64,
    pub agent_id: Option<i64>,
    pub message_sid: &'a str,
    pub from_phone: &'a str,
    pub body: &'a str,
    pub received_at: DateTime<Utc>,
}

pub async fn insert_agent_text(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    t: &NewAgentText<'_>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "insert into agent_text (brokerage_id, number_id, agent_id, message_sid, from_phone, body, outcome, received_at)
         values ($1, $2, $3, $4, $5, $6, 'received', $7) on conflict (message_sid) do nothing returning agent_text_id",
    )
    .bind(brokerage)
    .bind(t.number_id)
    .bind(t.agent_id)
    .bind(t.message_sid)
    .bind(t.from_phone)
    .bind(t.body)
    .bind(t.received_at)
    .fetch_optional(conn)
    .await?)
}

pub async fn settle_agent_text(
    conn: &mut PgConnection,
    agent_text_id: i64,
    outcome: &str,
    detail: Option<&str>,
    conversation_id: Option<i64>,
    job_id: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "update agent_text set outcome = $2, detail = $3, conversation_id = $4, job_id = $5 where agent_text_id = $1",
    )
    .bind(agent_text_id)
    .bind(outcome)
    .bind(detail)
    .bind(conversation_id)
    .bind(job_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A conversation an agent may mean by a text to `number_id`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenAlert {
    pub conversation_id: i64,
    pub contact_id: super::ContactId,
    pub contact_phone: String,
    pub contact_name: Option<String>,
    pub number_id: i64,
    pub office_id: i64,
    pub assigned_agent_id: Option<i64>,
    pub offered: bool,
}

/// The conversations an agent was texted an alert about from `number_id` since `since`, still
/// open and still theirs to act on (assigned to them, offered to them, or — for a manager or
/// admin — in their view), most recent alert first.
pub async fn open_alerts(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    agent_id: i64,
    number_id: i64,
    since: DateTime<Utc>,
) -> Result<Vec<OpenAlert>> {
    Ok(sqlx::query_as::<_, OpenAlert>(
        "with me as (select role, office_id from agent where brokerage_id = $1 and agent_id = $2 and is_active),
              alerted as (
                select d.conversation_id, max(d.decided_at) as at
                  from alert_delivery d
                  join message m on m.job_id = d.job_id and m.brokerage_id = d.brokerage_id
                 where d.brokerage_id = $1 and d.agent_id = $2 and d.decision = 'send'
                   and d.conversation_id is not null and m.number_id = $3 and d.decided_at >= $4
                 group by d.conversation_id)
         select c.conversation_id, c.contact_id, ct.phone as contact_phone, ct.name as contact_name,
                c.number_id, n.office_id, c.assigned_agent_id,
                exists (select 1 from claim_offer o where o.conversation_id = c.conversation_id
                          and o.outcome is null and $2 = any(o.agent_ids)) as offered
           from alerted al
           join conversation c on c.brokerage_id = $1 and c.conversation_id = al.conversation_id
           join contact ct on ct.brokerage_id = c.brokerage_id and ct.contact_id = c.contact_id
           join number n on n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
           cross join me
          where not c.is_closed and c.merged_into is null and c.deleted_at is null
            and (c.assigned_agent_id = $2
                 or exists (select 1 from claim_offer o where o.conversation_id = c.conversation_id
                              and o.outcome is null and $2 = any(o.agent_ids))
                 or me.role = 'admin'
                 or (me.role = 'manager' and n.office_id = me.office_id))
          order by al.at desc, c.conversation_id desc",
    )
    .bind(brokerage)
    .bind(agent_id)
    .bind(number_id)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// A saved reply as the thread offers it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SavedReply {
    pub name: String,
    pub body: String,
}

pub async fn saved_replies(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<Vec<SavedReply>> {
    Ok(sqlx::query_as::<_, SavedReply>(
        "select name, body from saved_reply where brokerage_id = $1 order by position",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

/// A sign-in link for an alert text: one login, one conversation.
pub async fn insert_signin_link(
    conn: &mut PgConnection,
    token_hash: &[u8],
    user_id: i64,
    conversation_id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into signin_link (token_hash, user_id, conversation_id, created_at, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(conversation_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a sign-in link is, when it exists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigninLink {
    pub user_id: i64,
    pub conversation_id: i64,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The person is still in the setup file.
    pub agent_active: bool,
}

/// Reads a link without using it (a GET, which link previews also do).
pub async fn peek_signin_link(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<SigninLink>> {
    Ok(sqlx::query_as::<_, SigninLink>(
        "select l.user_id, l.conversation_id, l.expires_at, l.used_at, a.is_active as agent_active
           from signin_link l join app_user u using (user_id)
           join agent a on a.brokerage_id = u.brokerage_id and a.agent_id = u.agent_id
          where l.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

/// Reads a link and marks it used, in one statement: of two uses, one wins.
pub async fn use_signin_link(
    conn: &mut PgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<(SigninLink, bool)>> {
    let used: Option<i64> = sqlx::query_scalar(
        "update signin_link set used_at = $2 where token_hash = $1 and used_at is null and expires_at > $2
         returning user_id",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let link = sqlx::query_as::<_, SigninLink>(
        "select l.user_id, l.conversation_id, l.expires_at, l.used_at, a.is_active as agent_active
           from signin_link l join app_user u using (user_id)
           join agent a on a.brokerage_id = u.brokerage_id and a.agent_id = u.agent_id
          where l.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(link.map(|l| (l, used.is_some())))
}

/// The login of an agent, if they have one.
pub async fn user_of_agent(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    agent_id: i64,
) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar(
            "select user_id from app_user where brokerage_id = $1 and agent_id = $2",
        )
        .bind(brokerage)
        .bind(agent_id)
        .fetch_optional(conn)
        .await?,
    )
}
