//! Alerts for people (the admins or a number's agents), recorded so none is lost; shown and
//! sent by the people's-side issue.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, Result};

pub struct NewAlert<'a> {
    pub audience: &'a str,
    pub reason: &'a str,
    pub detail: Option<&'a str>,
    pub message_id: Option<i64>,
    pub call_id: Option<i64>,
    pub now: DateTime<Utc>,
}

pub async fn raise(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    alert: &NewAlert<'_>,
) -> Result<Option<i64>> {
    // `on conflict`: alerts raised once per period (R15's daily limit) have a unique index.
    Ok(sqlx::query_scalar(
        "insert into alert (brokerage_id, audience, reason, detail, message_id, call_id, created_at)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing returning alert_id",
    )
    .bind(brokerage)
    .bind(alert.audience)
    .bind(alert.reason)
    .bind(alert.detail)
    .bind(alert.message_id)
    .bind(alert.call_id)
    .bind(alert.now)
    .fetch_optional(conn)
    .await?)
}
