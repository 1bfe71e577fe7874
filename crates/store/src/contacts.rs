//! Contacts: one per brokerage and E.164 number.

use sqlx::PgConnection;
use textback_core::domain::language::{How, Language};

use super::{BrokerageId, ContactId, Result};
use textback_core::domain::phone::PhoneNumber;

/// The contact for `phone`, created if missing. Two statements rather than one upsert: a
/// plain `on conflict do nothing` followed by a select in the same statement cannot see a row
/// a concurrent transaction just committed, and `do update` would write on every replay.
pub async fn upsert(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &PhoneNumber,
) -> Result<ContactId> {
    let inserted: Option<ContactId> = sqlx::query_scalar(
        "insert into contact (brokerage_id, phone) values ($1, $2)
         on conflict (brokerage_id, phone) do nothing
         returning contact_id",
    )
    .bind(brokerage)
    .bind(phone.as_e164())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok(id);
    }
    Ok(
        sqlx::query_scalar("select contact_id from contact where brokerage_id = $1 and phone = $2")
            .bind(brokerage)
            .bind(phone.as_e164())
            .fetch_one(conn)
            .await?,
    )
}

/// Locks the contact's row for the rest of the transaction. Every writer of a suppression and
/// every pre-send transaction takes this lock first, so a suppression and a send are strictly
/// ordered (docs/reliability.md §4).
pub async fn lock(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
) -> Result<Option<ContactRow>> {
    Ok(sqlx::query_as::<_, ContactRow>(
        "select contact_id, phone, name, invalid_at, language, language_how from contact where brokerage_id = $1 and contact_id = $2 for update",
    )
    .bind(brokerage)
    .bind(contact_id)
    .fetch_optional(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub contact_id: ContactId,
    pub phone: String,
    pub name: Option<String>,
    pub invalid_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `en` or `es` once known (README.md "Spanish"); null: the brokerage's default.
    pub language: Option<String>,
    /// `detected`, `keyword` or `agent`.
    pub language_how: Option<String>,
}

impl ContactRow {
    /// The language to text them in, given the brokerage's default.
    pub fn language_or(&self, default: Language) -> Language {
        self.language
            .as_deref()
            .and_then(Language::parse)
            .unwrap_or(default)
    }

    /// The language and how it was decided, `(default, Default)` when nothing is recorded.
    pub fn language_now(&self, default: Language) -> (Language, How) {
        let recorded = self
            .language
            .as_deref()
            .and_then(Language::parse)
            .zip(self.language_how.as_deref().and_then(How::parse));
        recorded.unwrap_or((default, How::Default))
    }
}

/// A contact's language as recorded: (language, how), or `None` when not known yet.
pub async fn language(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
) -> Result<Option<(Language, How)>> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "select language, language_how from contact where brokerage_id = $1 and contact_id = $2",
    )
    .bind(brokerage)
    .bind(contact_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|(l, h)| {
        Some((
            l.as_deref().and_then(Language::parse)?,
            h.as_deref().and_then(How::parse)?,
        ))
    }))
}

/// Records a contact's language and how it was decided, with a line in its thread. Returns
/// whether it changed.
pub async fn set_language(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    language: Language,
    how: How,
    by_agent_id: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool> {
    let changed = sqlx::query(
        "update contact set language = $3, language_how = $4, language_at = $5
          where brokerage_id = $1 and contact_id = $2
            and (language, language_how) is distinct from ($3, $4)",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(language.as_str())
    .bind(how.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if changed {
        sqlx::query(
            "insert into conversation_event (brokerage_id, conversation_id, kind, by_agent_id, detail, at)
             select $1, conversation_id, 'language', $3, $4, $5 from conversation
              where brokerage_id = $1 and contact_id = $2",
        )
        .bind(brokerage)
        .bind(contact_id)
        .bind(by_agent_id)
        .bind(format!("{}:{}", language.as_str(), how.as_str()))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(changed)
}

pub async fn get(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
) -> Result<Option<ContactRow>> {
    Ok(sqlx::query_as::<_, ContactRow>("select contact_id, phone, name, invalid_at, language, language_how from contact where brokerage_id = $1 and contact_id = $2")
        .bind(brokerage)
        .bind(contact_id)
        .fetch_optional(conn)
        .await?)
}

/// The contact by phone (a status callback's `To`).
pub async fn find_by_phone(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
) -> Result<Option<ContactId>> {
    Ok(
        sqlx::query_scalar("select contact_id from contact where brokerage_id = $1 and phone = $2")
            .bind(brokerage)
            .bind(phone)
            .fetch_optional(conn)
            .await?,
    )
}

/// The carrier (21211) or Lookup (`valid: false`) said the number is invalid.
pub async fn mark_invalid(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    sqlx::query("update contact set invalid_at = $3 where brokerage_id = $1 and contact_id = $2 and invalid_at is null")
        .bind(brokerage)
        .bind(contact_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The carrier said the number cannot take texts (`code`: 21614, 21635, 30005, 30006): later
/// automated texts skip it until [`clear_cannot_text`]. The first report is kept.
pub async fn mark_cannot_text(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    code: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    sqlx::query(
        "update contact set cannot_text_at = $3, cannot_text_code = $4
          where brokerage_id = $1 and contact_id = $2 and cannot_text_at is null",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(now)
    .bind(code)
    .execute(conn)
    .await?;
    Ok(())
}

/// An inbound text from the number proves it takes texts after all.
pub async fn clear_cannot_text(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
) -> Result<bool> {
    Ok(sqlx::query(
        "update contact set cannot_text_at = null, cannot_text_code = null
          where brokerage_id = $1 and contact_id = $2 and cannot_text_at is not null",
    )
    .bind(brokerage)
    .bind(contact_id)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// What happened with the contact since `since`: an answered call, an inbound text. A
/// text-back re-checks these before it sends (docs/architecture.md step 3). An opt-out text is not
/// counted here: its effect is the suppression, which the gate checks in the same pre-send
/// transaction and records (docs/compliance.md R1: skip `opted_out`; docs/reliability.md F11).
pub async fn activity_since(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<(bool, bool)> {
    Ok(sqlx::query_as(
        "select exists (select 1 from call where brokerage_id = $1 and contact_id = $2 and outcome = 'answered' and started_at >= $3),
                exists (select 1 from message where brokerage_id = $1 and contact_id = $2 and direction = 'inbound' and occurred_at >= $3
                              and coalesce(keyword_class, 'reply') <> 'opt_out')",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(since)
    .fetch_one(conn)
    .await?)
}

/// The contact for `phone`, created if missing, and locked for the rest of the transaction.
/// Take this lock before inserting rows that reference the contact when the transaction will
/// lock it anyway: the foreign-key check of such an insert takes a share lock, and two
/// transactions upgrading their share locks to this one would deadlock.
pub async fn upsert_locked(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &PhoneNumber,
) -> Result<ContactId> {
    let contact_id = upsert(conn, brokerage, phone).await?;
    lock(conn, brokerage, contact_id).await?;
    Ok(contact_id)
}
