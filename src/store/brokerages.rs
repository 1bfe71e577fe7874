//! A brokerage's settings as the pipeline reads them.

use sqlx::PgConnection;
use sqlx::types::Json;

use super::{BrokerageId, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TextBackSettings {
    pub name: String,
    pub time_zone: String,
    pub text_back_delay_secs: i32,
    pub text_back_templates: Json<Vec<String>>,
    pub caller_name_lookup: bool,
    pub lookup_max_age_secs: i64,
}

pub async fn text_back_settings(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<TextBackSettings> {
    Ok(sqlx::query_as::<_, TextBackSettings>(
        "select name, time_zone, text_back_delay_secs, text_back_templates, caller_name_lookup, lookup_max_age_secs
           from brokerage where brokerage_id = $1",
    )
    .bind(brokerage)
    .fetch_one(conn)
    .await?)
}
