//! The suppression list and the consent ledger (docs/compliance.md R1, R3, R5, R13): one
//! current-state row per (brokerage, number), and an append-only event for every change, with
//! who, when, how and the evidence. Every writer holds the contact's row lock (docs/reliability.md
//! §4), so a suppression and a send are strictly ordered.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, ContactId, MessageId, Result};

/// Who asked, how, and what proves it: one consent-ledger event.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// keyword, phrase, carrier_keyword, review, agent, carrier, import
    pub source: &'a str,
    /// `contact`, an agent's email, `carrier`, `import:FILE`
    pub who: &'a str,
    /// `sms`, `OptOutType=STOP`, `ErrorCode 21610`, …
    pub how: Option<&'a str>,
    /// The MessageSid, CallSid or record behind it.
    pub evidence: Option<&'a str>,
    /// The inbound text as received.
    pub raw_text: Option<&'a str>,
    /// Why, in words (the suppression's `detail`; `dnc export`'s reason).
    pub reason: Option<&'a str>,
}

/// Suppresses `phone` brokerage-wide and records the event. Returns false when it already was
/// (the event is recorded all the same: a repeated opt-out is evidence too).
pub async fn suppress(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
    e: &Evidence<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "insert into suppression (brokerage_id, phone, source, detail, who, created_at) values ($1, $2, $3, $4, $5, $6)
         on conflict (brokerage_id, phone) do update
            set source = excluded.source, detail = excluded.detail, who = excluded.who,
                created_at = excluded.created_at, lifted_at = null
          where suppression.lifted_at is not null",
    )
    .bind(brokerage)
    .bind(phone)
    .bind(e.source)
    .bind(e.reason.or(e.how))
    .bind(e.who)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    record(conn, brokerage, phone, "opt_out", e, true, now).await?;
    Ok(done.rows_affected() == 1)
}

/// R5: lifts a suppression (an opt-in by the contact's own text; nothing else may call this).
/// Returns false when the number was not suppressed, or when an opt-out of it is recorded
/// after `now`, the time the opt-in arrived: an opt-in applied late (from another instance's
/// spool, README.md "When the database goes away") never undoes an opt-out that came after it.
pub async fn lift(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
    e: &Evidence<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update suppression set lifted_at = $3
          where brokerage_id = $1 and phone = $2 and lifted_at is null
            and not exists (
                select 1 from consent_event c
                 where c.brokerage_id = $1 and c.phone = $2 and c.event = 'opt_out' and c.at > $3)",
    )
    .bind(brokerage)
    .bind(phone)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        record(conn, brokerage, phone, "opt_in", e, false, now).await?;
    }
    Ok(done.rows_affected() == 1)
}

/// Appends one consent-ledger event.
pub async fn record(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    phone: &str,
    event: &str,
    e: &Evidence<'_>,
    suppressed_after: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into consent_event (brokerage_id, phone, event, source, who, how, evidence, raw_text, suppressed_after, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(brokerage)
    .bind(phone)
    .bind(event)
    .bind(e.source)
    .bind(e.who)
    .bind(e.how)
    .bind(e.evidence)
    .bind(e.raw_text)
    .bind(suppressed_after)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
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

/// R3: puts the contact on review hold (a possible opt-out awaits a person).
pub async fn hold_for_review(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    phone: &str,
    message_id: Option<MessageId>,
    e: &Evidence<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update contact set review_hold_at = $3, review_hold_message_id = $4
          where brokerage_id = $1 and contact_id = $2",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(now)
    .bind(message_id)
    .execute(&mut *conn)
    .await?;
    let suppressed = is_suppressed(conn, brokerage, phone).await?;
    record(conn, brokerage, phone, "review_hold", e, suppressed, now).await
}

/// A person's decision on a review hold (R3): `opt_out` suppresses (source `review`),
/// `not_opt_out` lifts the hold. Returns false when the contact was not on hold.
pub async fn resolve_review(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    opt_out: bool,
    who: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let phone: Option<String> = sqlx::query_scalar(
        "update contact set review_hold_at = null, review_hold_message_id = null
          where brokerage_id = $1 and contact_id = $2 and review_hold_at is not null
          returning phone",
    )
    .bind(brokerage)
    .bind(contact_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(phone) = phone else {
        return Ok(false);
    };
    let e = Evidence {
        source: "review",
        who,
        how: Some(if opt_out { "opt-out" } else { "not an opt-out" }),
        evidence: None,
        raw_text: None,
        reason: Some("a person read the message as an opt-out"),
    };
    if opt_out {
        suppress(conn, brokerage, &phone, &e, now).await?;
    } else {
        let suppressed = is_suppressed(conn, brokerage, &phone).await?;
        record(
            conn,
            brokerage,
            &phone,
            "review_cleared",
            &e,
            suppressed,
            now,
        )
        .await?;
    }
    Ok(true)
}

/// One row of the suppression list, as `dnc export` writes it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    pub phone: String,
    pub reason: Option<String>,
    pub source: String,
    pub at: DateTime<Utc>,
    pub who: Option<String>,
}

/// The brokerage's current suppressions, oldest first.
impl Listed {
    /// The row as the export writes it (`domain::dnc::export`).
    pub fn exported(&self) -> textback_core::domain::dnc::Exported<'_> {
        textback_core::domain::dnc::Exported {
            phone: &self.phone,
            reason: self.reason.as_deref(),
            source: &self.source,
            at: self.at,
            who: self.who.as_deref(),
        }
    }
}

pub async fn list(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<Vec<Listed>> {
    Ok(sqlx::query_as::<_, Listed>(
        "select phone, detail as reason, source, created_at as at, who from suppression
          where brokerage_id = $1 and lifted_at is null order by created_at, phone",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

/// `dnc import` (docs/compliance.md R1): every row suppresses its number brokerage-wide, with a
/// consent-ledger event, and cancels what was pending for the contact. The caller runs it in
/// one transaction (all or nothing). Returns (newly suppressed, already suppressed).
pub async fn import(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    rows: &[textback_core::domain::dnc::Row],
    file: &str,
    now: DateTime<Utc>,
) -> Result<(u64, u64)> {
    let who = format!("import:{file}");
    let (mut added, mut already) = (0, 0);
    for row in rows {
        let contact_id = super::contacts::upsert_locked(conn, brokerage, &row.phone).await?;
        if is_suppressed(conn, brokerage, row.phone.as_e164()).await? {
            already += 1;
            continue;
        }
        let evidence = format!("{file}:{}", row.line);
        let reason = (!row.reason.is_empty()).then_some(row.reason.as_str());
        let e = Evidence {
            source: "import",
            who: &who,
            how: Some(&row.source),
            evidence: Some(&evidence),
            raw_text: None,
            reason,
        };
        suppress(conn, brokerage, row.phone.as_e164(), &e, row.at).await?;
        super::jobs::cancel_scheduled(
            conn,
            brokerage,
            contact_id,
            super::jobs::ON_OPT_OUT,
            "opted_out",
            now,
        )
        .await?;
        added += 1;
    }
    Ok((added, already))
}
