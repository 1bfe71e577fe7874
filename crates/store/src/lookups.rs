//! Cached Lookup v2 answers (`[text_back] lookup_max_age`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CachedLookup {
    pub valid: bool,
    pub line_type: Option<String>,
    pub caller_name: Option<String>,
    pub caller_type: Option<String>,
    pub looked_up_at: DateTime<Utc>,
}

/// The cached answer if it is younger than `fresh_since`.
pub async fn fresh(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
    fresh_since: DateTime<Utc>,
) -> Result<Option<CachedLookup>> {
    Ok(sqlx::query_as::<_, CachedLookup>(
        "select valid, line_type, caller_name, caller_type, looked_up_at from line_lookup
          where brokerage_id = $1 and phone = $2 and looked_up_at >= $3",
    )
    .bind(brokerage)
    .bind(phone)
    .bind(fresh_since)
    .fetch_optional(conn)
    .await?)
}

pub async fn store(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
    lookup: &CachedLookup,
) -> Result<()> {
    sqlx::query(
        "insert into line_lookup (brokerage_id, phone, valid, line_type, caller_name, caller_type, looked_up_at)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (brokerage_id, phone) do update
            set valid = excluded.valid, line_type = excluded.line_type, caller_name = excluded.caller_name,
                caller_type = excluded.caller_type, looked_up_at = excluded.looked_up_at",
    )
    .bind(brokerage)
    .bind(phone)
    .bind(lookup.valid)
    .bind(&lookup.line_type)
    .bind(&lookup.caller_name)
    .bind(&lookup.caller_type)
    .bind(lookup.looked_up_at)
    .execute(conn)
    .await?;
    Ok(())
}
