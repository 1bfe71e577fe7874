//! What happened, in order: the events a brokerage's activity feed shows (the demo prints
//! them; the inbox will). Each query takes the last id already seen.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TextBackTransition {
    pub id: i64,
    pub from_state: Option<String>,
    pub to_state: String,
    pub reason: Option<String>,
    pub phone: Option<String>,
    pub run_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
    /// The job's latest text, once one was sent.
    pub body: Option<String>,
}

pub async fn text_back_transitions(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    after: i64,
) -> Result<Vec<TextBackTransition>> {
    Ok(sqlx::query_as::<_, TextBackTransition>(
        "select t.job_transition_id as id, t.from_state, t.to_state, t.reason, c.phone, j.run_at, t.at,
                (select m.body from message m where m.job_id = j.job_id order by m.message_id desc limit 1) as body
           from job_transition t
           join job j on j.job_id = t.job_id
           left join contact c on c.brokerage_id = j.brokerage_id and c.contact_id = j.contact_id
          where t.brokerage_id = $1 and t.job_transition_id > $2 and j.kind = 'text_back'
          order by t.job_transition_id",
    )
    .bind(brokerage)
    .bind(after)
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NewTask {
    pub id: i64,
    pub phone: String,
    pub detail: Option<String>,
    pub listing: Option<String>,
    /// First names of the number's agents: "Sam and Ava".
    pub agents: Option<String>,
}

pub async fn tasks(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    after: i64,
) -> Result<Vec<NewTask>> {
    Ok(sqlx::query_as::<_, NewTask>(
        "select t.task_id as id, c.phone, t.detail, n.listing,
                (select string_agg(split_part(a.name, ' ', 1), ' and ' order by r.position)
                   from number_ring r join agent a on a.brokerage_id = r.brokerage_id and a.agent_id = r.agent_id
                  where r.brokerage_id = t.brokerage_id and r.number_id = t.number_id) as agents
           from task t
           join contact c on c.brokerage_id = t.brokerage_id and c.contact_id = t.contact_id
           join number n on n.brokerage_id = t.brokerage_id and n.number_id = t.number_id
          where t.brokerage_id = $1 and t.task_id > $2
          order by t.task_id",
    )
    .bind(brokerage)
    .bind(after)
    .fetch_all(conn)
    .await?)
}

/// Deliveries of outbound texts: (event id, recipient).
pub async fn deliveries(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    after: i64,
) -> Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "select e.message_status_event_id, m.to_raw
           from message_status_event e join message m on m.brokerage_id = e.brokerage_id and m.message_id = e.message_id
          where e.brokerage_id = $1 and e.message_status_event_id > $2 and e.status = 'delivered'
            and m.kind is distinct from 'agent_alert'
          order by 1",
    )
    .bind(brokerage)
    .bind(after)
    .fetch_all(conn)
    .await?)
}

/// Inbound texts: (message id, sender as received, keyword class).
pub async fn inbound(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    after: i64,
) -> Result<Vec<(i64, String, Option<String>)>> {
    Ok(sqlx::query_as(
        "select message_id, from_raw, keyword_class from message
          where brokerage_id = $1 and direction = 'inbound' and message_id > $2
          order by message_id",
    )
    .bind(brokerage)
    .bind(after)
    .fetch_all(conn)
    .await?)
}

/// Alerts texted to the brokerage's people and accepted by the carrier: (message id, the
/// agent's first name, the text).
pub async fn alerts(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    after: i64,
) -> Result<Vec<(i64, String, String)>> {
    Ok(sqlx::query_as(
        "select m.message_id, split_part(coalesce(a.name, m.to_raw), ' ', 1), m.body
           from message m
           left join agent a on a.brokerage_id = m.brokerage_id and a.phone = m.to_raw
          where m.brokerage_id = $1 and m.kind = 'agent_alert' and m.send_state = 'sent' and m.message_id > $2
          order by m.message_id",
    )
    .bind(brokerage)
    .bind(after)
    .fetch_all(conn)
    .await?)
}
