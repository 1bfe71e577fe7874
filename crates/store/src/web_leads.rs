//! Leads from the brokerage's website and lead sources (docs/leads.md): API keys, each lead as
//! it was received with the consent it came with, and that consent in the ledger.
//!
//! `key_by_hash` and `form` are entry points that find the tenant (like `numbers::resolve`):
//! an API key, a form's public address, belong to one brokerage; every other function here
//! takes the `BrokerageId`.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, ContactId, Result};

/// A live API key, as a request presents it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub api_key_id: i64,
    pub brokerage_id: BrokerageId,
    pub name: String,
}

/// A key as `api-key list` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyListed {
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Stores a new key (its hash and the prefix shown in lists). `None`: a live key of the
/// brokerage has that name already.
pub async fn create_key(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    name: &str,
    prefix: &str,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "insert into api_key (brokerage_id, name, prefix, key_hash, created_at)
         values ($1, $2, $3, $4, $5)
         on conflict (brokerage_id, name) where revoked_at is null do nothing
         returning api_key_id",
    )
    .bind(brokerage)
    .bind(name)
    .bind(prefix)
    .bind(hash)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// The brokerage's keys, live ones first, newest first.
pub async fn list_keys(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<Vec<ApiKeyListed>> {
    Ok(sqlx::query_as(
        "select name, prefix, created_at, last_used_at, revoked_at from api_key
          where brokerage_id = $1
          order by revoked_at is not null, created_at desc, api_key_id desc",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

/// Revokes the live key named `name`; false when there is none.
pub async fn revoke_key(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update api_key set revoked_at = $3
          where brokerage_id = $1 and name = $2 and revoked_at is null",
    )
    .bind(brokerage)
    .bind(name)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The live key whose SHA-256 is `hash`, and its brokerage (an active one).
pub async fn key_by_hash(conn: &mut PgConnection, hash: &[u8]) -> Result<Option<ApiKeyRow>> {
    Ok(sqlx::query_as(
        "select k.api_key_id, k.brokerage_id, k.name from api_key k
          where k.key_hash = $1 and k.revoked_at is null",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?)
}

/// Notes when a key was last used (at most once a minute per key, to spare the row).
pub async fn touch_key(conn: &mut PgConnection, api_key_id: i64, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "update api_key set last_used_at = $2
          where api_key_id = $1 and (last_used_at is null or last_used_at < $2 - interval '1 minute')",
    )
    .bind(api_key_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A lead as received, to be stored.
#[derive(Debug, Clone)]
pub struct NewWebLead<'a> {
    /// Who sent it: a key or a form (one of the two).
    pub api_key_id: Option<i64>,
    pub web_form_id: Option<i64>,
    pub contact_id: ContactId,
    pub number_id: i64,
    pub conversation_id: i64,
    pub name: Option<&'a str>,
    pub source: Option<&'a str>,
    pub listing: Option<&'a str>,
    pub message: Option<&'a str>,
    pub consent_text: &'a str,
    pub consent_url: &'a str,
    pub consent_at: DateTime<Utc>,
    pub consent_ip: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub request_hash: &'a [u8],
    pub now: DateTime<Utc>,
}

/// An earlier lead of the same key and `Idempotency-Key`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Replayed {
    pub web_lead_id: i64,
    pub conversation_id: i64,
    pub request_hash: Vec<u8>,
}

/// Stores the lead. `None`: the key (or the form) already sent a lead with this
/// `Idempotency-Key` (a concurrent one waits here for the first to commit or roll back).
pub async fn insert(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    l: &NewWebLead<'_>,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "insert into web_lead (brokerage_id, api_key_id, contact_id, number_id, conversation_id,
                               name, source, listing, message, consent_text, consent_url,
                               consent_at, consent_ip, idempotency_key, request_hash, created_at,
                               web_form_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::inet, $14, $15, $16, $17)
         on conflict do nothing
         returning web_lead_id",
    )
    .bind(brokerage)
    .bind(l.api_key_id)
    .bind(l.contact_id)
    .bind(l.number_id)
    .bind(l.conversation_id)
    .bind(l.name)
    .bind(l.source)
    .bind(l.listing)
    .bind(l.message)
    .bind(l.consent_text)
    .bind(l.consent_url)
    .bind(l.consent_at)
    .bind(l.consent_ip)
    .bind(l.idempotency_key)
    .bind(l.request_hash)
    .bind(l.now)
    .bind(l.web_form_id)
    .fetch_optional(conn)
    .await?)
}

/// The lead a key already sent with `idempotency_key`.
pub async fn replayed(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    api_key_id: i64,
    idempotency_key: &str,
) -> Result<Option<Replayed>> {
    Ok(sqlx::query_as(
        "select web_lead_id, conversation_id, request_hash from web_lead
          where brokerage_id = $1 and api_key_id = $2 and idempotency_key = $3",
    )
    .bind(brokerage)
    .bind(api_key_id)
    .bind(idempotency_key)
    .fetch_optional(conn)
    .await?)
}

/// Written consent in the ledger (docs/compliance.md R12, R13), pointing at the lead that
/// brought it: the text exactly as the lead saw it, the page, the time they gave it and the
/// address it came from. `who`: `api:KEY NAME` or `form:SLUG`; `how`: `api` or `form`.
pub async fn record_written_consent(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
    web_lead_id: i64,
    who: &str,
    how: &str,
    l: &NewWebLead<'_>,
) -> Result<()> {
    let suppressed = super::suppressions::is_suppressed(conn, brokerage, phone).await?;
    sqlx::query(
        "insert into consent_event (brokerage_id, phone, event, source, who, how, evidence, raw_text,
                                    suppressed_after, at, web_lead_id, consent_url, consent_ip)
         values ($1, $2, 'written_consent', 'web_form', $3, $11, $4, $5, $6, $7, $8, $9, $10::inet)",
    )
    .bind(brokerage)
    .bind(phone)
    .bind(who)
    .bind(format!("web_lead:{web_lead_id}"))
    .bind(l.consent_text)
    .bind(suppressed)
    .bind(l.consent_at)
    .bind(web_lead_id)
    .bind(l.consent_url)
    .bind(l.consent_ip)
    .bind(how)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the `lead_text` job needs of its lead.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeadForText {
    pub web_lead_id: i64,
    pub contact_id: ContactId,
    pub number_id: i64,
    pub number_e164: String,
    pub number_active: bool,
    pub number_listing: Option<String>,
    pub office_name: String,
    pub listing: Option<String>,
    pub name: Option<String>,
    pub agent_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn for_text(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    web_lead_id: i64,
) -> Result<Option<LeadForText>> {
    Ok(sqlx::query_as(
        "select w.web_lead_id, w.contact_id, w.number_id, n.e164 as number_e164,
                n.is_active as number_active, n.listing as number_listing, o.name as office_name,
                w.listing, w.name, a.name as agent_name, w.created_at
           from web_lead w
           join number n on n.brokerage_id = w.brokerage_id and n.number_id = w.number_id
           join office o on o.office_id = n.office_id
           left join conversation c on c.brokerage_id = w.brokerage_id and c.contact_id = w.contact_id
           left join agent a on a.agent_id = c.assigned_agent_id
          where w.brokerage_id = $1 and w.web_lead_id = $2",
    )
    .bind(brokerage)
    .bind(web_lead_id)
    .fetch_optional(conn)
    .await?)
}

/// A lead text to this contact the carrier took (or may have) since `since`: a second lead
/// from the same person within a day is not texted again.
pub async fn texted_since(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    since: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from message
                         where brokerage_id = $1 and contact_id = $2 and direction = 'outbound'
                           and kind = 'lead_text' and occurred_at >= $3
                           and send_state in ('sending', 'sent', 'unknown', 'needs_review')
                           and coalesce(carrier_status, '') not in ('failed', 'undelivered', 'canceled'))",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(since)
    .fetch_one(conn)
    .await?)
}

/// The leads of a contact, as the thread shows them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeadShown {
    pub web_lead_id: i64,
    pub source: Option<String>,
    pub listing: Option<String>,
    pub message: Option<String>,
    pub name: Option<String>,
    pub key_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The leads of the thread's contacts, each from its conversation's start (`since`).
pub async fn for_thread(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contacts: &[i64],
    since: &[DateTime<Utc>],
) -> Result<Vec<LeadShown>> {
    Ok(sqlx::query_as(
        "select w.web_lead_id, w.source, w.listing, w.message, w.name,
                coalesce(k.name, 'form ' || f.slug) as key_name, w.created_at
           from web_lead w left join api_key k on k.api_key_id = w.api_key_id
           left join web_form f on f.web_form_id = w.web_form_id
           join unnest($2::bigint[], $3::timestamptz[]) as v(contact_id, since)
             on v.contact_id = w.contact_id and w.created_at >= v.since
          where w.brokerage_id = $1
          order by w.created_at, w.web_lead_id",
    )
    .bind(brokerage)
    .bind(contacts)
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// A hosted form as its page needs it: the number its leads hear from resolved (its own, else
/// the brokerage's first active one).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FormRow {
    pub web_form_id: i64,
    pub brokerage_id: BrokerageId,
    pub brokerage_name: String,
    pub slug: String,
    pub title: Option<String>,
    pub consent_text: String,
    pub number_id: Option<i64>,
    pub listing: Option<String>,
    pub frame_origins: Vec<String>,
}

/// The active form `form_slug` of the brokerage `brokerage_slug`.
pub async fn form(
    conn: &mut PgConnection,
    brokerage_slug: &str,
    form_slug: &str,
) -> Result<Option<FormRow>> {
    Ok(sqlx::query_as(
        "select f.web_form_id, f.brokerage_id, b.name as brokerage_name, f.slug, f.title,
                f.consent_text, f.listing, f.frame_origins,
                coalesce(
                  (select n.number_id from number n
                    where n.brokerage_id = f.brokerage_id and n.number_id = f.number_id and n.is_active),
                  (select n.number_id from number n where n.brokerage_id = f.brokerage_id and n.is_active
                    order by n.file_position nulls last, n.number_id limit 1)) as number_id
           from web_form f join brokerage b on b.brokerage_id = f.brokerage_id
          where b.slug = $1 and f.slug = $2 and f.is_active",
    )
    .bind(brokerage_slug)
    .bind(form_slug)
    .fetch_optional(conn)
    .await?)
}
