//! The suppression list (compliance.md R1): one current-state row per (brokerage, number).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, Result};

/// Suppresses `phone` brokerage-wide. The caller holds the contact's row lock (reliability.md
/// §4). Returns false when it already was.
pub async fn suppress(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
    source: &str,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "insert into suppression (brokerage_id, phone, source, detail, created_at) values ($1, $2, $3, $4, $5)
         on conflict (brokerage_id, phone) do update
            set source = excluded.source, detail = excluded.detail, created_at = excluded.created_at, lifted_at = null
          where suppression.lifted_at is not null",
    )
    .bind(brokerage)
    .bind(phone)
    .bind(source)
    .bind(detail)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn is_suppressed(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar("select exists (select 1 from suppression where brokerage_id = $1 and phone = $2 and lifted_at is null)")
        .bind(brokerage)
        .bind(phone)
        .fetch_one(conn)
        .await?)
}
