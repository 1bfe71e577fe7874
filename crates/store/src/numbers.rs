//! Brokerage numbers and their ring lists.

use sqlx::PgConnection;

use super::{BrokerageId, Result};
use textback_core::domain::phone::PhoneNumber;

/// What a webhook needs to know about the number that was dialled or texted.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct NumberInfo {
    pub brokerage_id: BrokerageId,
    pub number_id: i64,
    pub office_id: i64,
    pub brokerage_name: String,
    pub listing: Option<String>,
    pub ring_timeout_secs: i32,
    pub screen: bool,
    pub missed_message: Option<String>,
    /// `off`, `offer` or `auto` (README.md "The call side").
    pub callback: String,
    pub voicemail: bool,
    pub is_active: bool,
    /// The brokerage's own Twilio account (`[twilio] account_sid`); `None`: the deployment's.
    pub twilio_account_sid: Option<String>,
}

/// Every active number with the phones its ring rings, as last read: what answers an incoming
/// call while the database cannot be reached (README.md "When the database goes away").
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub by_e164: std::collections::HashMap<String, SnapshotNumber>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SnapshotNumber {
    pub info: NumberInfo,
    /// The ring's active agents' phones, in ring order.
    pub ring: Vec<String>,
}

pub async fn snapshot(conn: &mut PgConnection) -> Result<Snapshot> {
    let numbers = sqlx::query_as::<_, NumberInfo>(
        "select n.brokerage_id, n.number_id, n.office_id, b.name as brokerage_name, n.listing,
                n.ring_timeout_secs, n.screen, n.missed_message, n.callback, n.voicemail, n.is_active, b.twilio_account_sid
           from number n join brokerage b using (brokerage_id)
          where n.is_active",
    )
    .fetch_all(&mut *conn)
    .await?;
    let rings: Vec<(i64, String)> = sqlx::query_as(
        "select r.number_id, a.phone from number_ring r
           join agent a on a.brokerage_id = r.brokerage_id and a.agent_id = r.agent_id
          where a.is_active order by r.number_id, r.position",
    )
    .fetch_all(&mut *conn)
    .await?;
    let e164s: Vec<(i64, String)> =
        sqlx::query_as("select number_id, e164 from number where is_active")
            .fetch_all(&mut *conn)
            .await?;
    let mut by_e164 = std::collections::HashMap::new();
    for info in numbers {
        let Some((_, e164)) = e164s.iter().find(|(id, _)| *id == info.number_id) else {
            continue;
        };
        let ring = rings
            .iter()
            .filter(|(id, _)| *id == info.number_id)
            .map(|(_, phone)| phone.clone())
            .collect();
        by_e164.insert(e164.clone(), SnapshotNumber { info, ring });
    }
    Ok(Snapshot { by_e164 })
}

/// Finds the tenant from one of its numbers (`To` of a call or text, `From` of our own
/// outbound messages). The one lookup that is not scoped to a brokerage: it is how the
/// brokerage is found. Inactive (removed) numbers are returned too, with `is_active` false.
pub async fn resolve(conn: &mut PgConnection, e164: &str) -> Result<Option<NumberInfo>> {
    Ok(sqlx::query_as::<_, NumberInfo>(
        "select n.brokerage_id, n.number_id, n.office_id, b.name as brokerage_name, n.listing,
                n.ring_timeout_secs, n.screen, n.missed_message, n.callback, n.voicemail, n.is_active, b.twilio_account_sid
           from number n join brokerage b using (brokerage_id)
          where n.e164 = $1",
    )
    .bind(e164)
    .fetch_optional(conn)
    .await?)
}

/// One of the brokerage's numbers, by id.
pub async fn get(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
) -> Result<Option<NumberInfo>> {
    Ok(sqlx::query_as::<_, NumberInfo>(
        "select n.brokerage_id, n.number_id, n.office_id, b.name as brokerage_name, n.listing,
                n.ring_timeout_secs, n.screen, n.missed_message, n.callback, n.voicemail, n.is_active, b.twilio_account_sid
           from number n join brokerage b using (brokerage_id)
          where n.brokerage_id = $1 and n.number_id = $2",
    )
    .bind(brokerage)
    .bind(number_id)
    .fetch_optional(conn)
    .await?)
}

/// An agent to ring for a number, in ring order.
#[derive(Debug, Clone)]
pub struct RingAgent {
    pub agent_id: i64,
    pub phone: PhoneNumber,
}

/// The active agents of a number's ring list, in order.
pub async fn ring(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
) -> Result<Vec<RingAgent>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "select a.agent_id, a.phone
           from number_ring r
           join agent a on a.brokerage_id = r.brokerage_id and a.agent_id = r.agent_id
          where r.brokerage_id = $1 and r.number_id = $2 and a.is_active
          order by r.position",
    )
    .bind(brokerage)
    .bind(number_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(agent_id, phone)| {
            PhoneNumber::parse(&phone)
                .ok()
                .map(|phone| RingAgent { agent_id, phone })
        })
        .collect())
}

/// The active agent of this brokerage with this phone (the `To` of a screened agent leg).
pub async fn agent_by_phone(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("select agent_id from agent where brokerage_id = $1 and phone = $2 and is_active order by agent_id limit 1")
        .bind(brokerage)
        .bind(phone)
        .fetch_optional(conn)
        .await?)
}

/// A number's E.164 form, by id (the sender of keyword responses and agent replies).
pub async fn e164(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("select e164 from number where brokerage_id = $1 and number_id = $2")
            .bind(brokerage)
            .bind(number_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The brokerage number a web lead hears from (docs/leads.md): `e164` when it is one of the
/// brokerage's active numbers, else none; without `e164`, the first the setup file lists.
pub async fn for_web_lead(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    e164: Option<&str>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "select number_id from number
          where brokerage_id = $1 and is_active and ($2::text is null or e164 = $2)
          order by file_position nulls last, number_id limit 1",
    )
    .bind(brokerage)
    .bind(e164)
    .fetch_optional(conn)
    .await?)
}

/// The brokerage's active numbers, in the setup file's order.
pub async fn active_e164s(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select e164 from number where brokerage_id = $1 and is_active
          order by file_position nulls last, number_id",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}
