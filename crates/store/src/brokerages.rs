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
    /// `[lead_text] template` (docs/leads.md); `None`: the text-back's templates answer web leads.
    pub lead_text_templates: Option<Json<Vec<String>>>,
    /// `[brokerage] language`: what a caller not known yet is texted in.
    pub default_language: String,
    /// The Spanish variants (`template_es`), when the file has them.
    pub text_back_templates_es: Option<Json<Vec<String>>>,
    pub lead_text_templates_es: Option<Json<Vec<String>>>,
}

impl TextBackSettings {
    pub fn default_language(&self) -> textback_core::domain::language::Language {
        textback_core::domain::language::Language::parse(&self.default_language)
            .unwrap_or(textback_core::domain::language::Language::En)
    }
}

pub async fn text_back_settings(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<TextBackSettings> {
    Ok(sqlx::query_as::<_, TextBackSettings>(
        "select name, time_zone, text_back_delay_secs, text_back_templates, caller_name_lookup, lookup_max_age_secs,
                lead_text_templates, default_language, text_back_templates_es, lead_text_templates_es
           from brokerage where brokerage_id = $1",
    )
    .bind(brokerage)
    .fetch_one(conn)
    .await?)
}

/// One step of the follow-up sequence (`[[follow_ups]]`), in order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FollowUpStep {
    pub position: i32,
    pub after_secs: i64,
    pub templates: Json<Vec<String>>,
    pub templates_es: Option<Json<Vec<String>>>,
}

pub async fn follow_up_steps(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<Vec<FollowUpStep>> {
    Ok(sqlx::query_as::<_, FollowUpStep>(
        "select position, after_secs, templates, templates_es from follow_up_step where brokerage_id = $1 order by position",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

/// A brokerage by its slug (the CLI's `--brokerage`).
pub async fn by_slug(conn: &mut PgConnection, slug: &str) -> Result<Option<BrokerageId>> {
    Ok(
        sqlx::query_scalar("select brokerage_id from brokerage where slug = $1")
            .bind(slug)
            .fetch_optional(conn)
            .await?,
    )
}

/// How long a lead's reply may wait before the office's managers are alerted
/// (`[inbox] escalate_after`).
pub async fn escalate_after_secs(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<i32> {
    Ok(
        sqlx::query_scalar("select escalate_after_secs from brokerage where brokerage_id = $1")
            .bind(brokerage)
            .fetch_one(conn)
            .await?,
    )
}

/// `[brokerage] language`: what a contact whose language is not known is texted in.
pub async fn default_language(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<textback_core::domain::language::Language> {
    let code: String =
        sqlx::query_scalar("select default_language from brokerage where brokerage_id = $1")
            .bind(brokerage)
            .fetch_one(conn)
            .await?;
    Ok(textback_core::domain::language::Language::parse(&code)
        .unwrap_or(textback_core::domain::language::Language::En))
}

/// The brokerage's name and time zone (pages).
pub async fn name_and_zone(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<(String, String)> {
    Ok(
        sqlx::query_as("select name, time_zone from brokerage where brokerage_id = $1")
            .bind(brokerage)
            .fetch_one(conn)
            .await?,
    )
}

/// The brokerage's own Twilio account (its setup file's `[twilio]`), if it names one; `None`:
/// the deployment's account. Never a secret: where to read them.
pub async fn twilio_account(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<Option<textback_core::setup::twilio::TwilioAccount>> {
    let stored: Option<Json<textback_core::setup::twilio::TwilioAccount>> =
        sqlx::query_scalar("select twilio_secrets from brokerage where brokerage_id = $1")
            .bind(brokerage)
            .fetch_one(conn)
            .await?;
    Ok(stored.map(|j| j.0))
}

/// Every brokerage that names its own Twilio account, with its slug.
pub async fn all_twilio_accounts(
    conn: &mut PgConnection,
) -> Result<Vec<(String, textback_core::setup::twilio::TwilioAccount)>> {
    let rows: Vec<(String, Json<textback_core::setup::twilio::TwilioAccount>)> = sqlx::query_as(
        "select slug, twilio_secrets from brokerage where twilio_secrets is not null order by slug",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(slug, j)| (slug, j.0)).collect())
}

/// Every brokerage (id, slug), by slug: `doctor` checks each.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<(BrokerageId, String)>> {
    Ok(
        sqlx::query_as("select brokerage_id, slug from brokerage order by slug")
            .fetch_all(conn)
            .await?,
    )
}
