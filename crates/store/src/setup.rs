//! `setup apply`: writes a validated setup file in one transaction, all or nothing.
//!
//! Idempotent: every write is conditional on a difference (`… where (…) is distinct from
//! (…)`), so applying the same file twice changes no row (not even `updated_at`). Edits update
//! rows in place (keyed by slug, email and number); what the file no longer lists is
//! deactivated, never deleted, so its history stays.

use std::collections::HashMap;

use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use super::{BrokerageId, Error};
use textback_core::setup::{Problem, SetupFile};

/// What an apply changed, one line per change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    pub brokerage_id: i64,
    pub changes: Vec<String>,
}

impl ApplySummary {
    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The file is valid on its own but conflicts with the database (a number that belongs to
    /// another brokerage). Nothing was applied.
    #[error("the setup file conflicts with the database")]
    Problems(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] Error),
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Store(Error::Db(e))
    }
}

/// Applies `file` in one transaction.
pub async fn apply(pool: &PgPool, file: &SetupFile) -> Result<ApplySummary, ApplyError> {
    let mut tx = pool.begin().await?;
    // One apply at a time across processes: two concurrent applies of edited files would
    // otherwise interleave their deactivations.
    sqlx::query("select pg_advisory_xact_lock(hashtext('textback:setup-apply'))")
        .execute(&mut *tx)
        .await?;

    let conflicts = number_conflicts(&mut tx, file).await?;
    if !conflicts.is_empty() {
        return Err(ApplyError::Problems(conflicts));
    }

    let mut summary = ApplySummary::default();
    let brokerage = upsert_brokerage(&mut tx, file, &mut summary).await?;
    summary.brokerage_id = brokerage.0;
    let offices = apply_offices(&mut tx, brokerage, file, &mut summary).await?;
    let agents = apply_agents(&mut tx, brokerage, file, &offices, &mut summary).await?;
    apply_numbers(&mut tx, brokerage, file, &offices, &agents, &mut summary).await?;
    apply_follow_ups(&mut tx, brokerage, file, &mut summary).await?;
    apply_saved_replies(&mut tx, brokerage, file, &mut summary).await?;
    apply_forms(&mut tx, brokerage, file, &mut summary).await?;
    summary.changes.extend(
        crate::webhooks::apply(&mut tx, brokerage, file)
            .await
            .map_err(ApplyError::Store)?,
    );

    tx.commit().await?;
    Ok(summary)
}

/// A number may belong to one brokerage only (docs/security.md §3 row 32).
async fn number_conflicts(
    conn: &mut PgConnection,
    file: &SetupFile,
) -> Result<Vec<Problem>, ApplyError> {
    let numbers: Vec<String> = file
        .numbers
        .iter()
        .map(|n| n.number.as_e164().to_owned())
        .collect();
    let taken: Vec<(String, String, bool)> = sqlx::query_as(
        "select n.e164, b.slug, n.is_active from number n join brokerage b using (brokerage_id)
          where n.e164 = any($1) and b.slug <> $2",
    )
    .bind(&numbers)
    .bind(&file.brokerage.slug)
    .fetch_all(conn)
    .await?;
    let mut problems: Vec<Problem> = taken
        .into_iter()
        .map(|(e164, slug, is_active)| {
            let (line, index) = file
                .numbers
                .iter()
                .enumerate()
                .find(|(_, n)| n.number.as_e164() == e164)
                .map_or((0, 0), |(i, n)| (n.line, i + 1));
            Problem {
                line,
                key: format!("[[numbers]] #{index} number"),
                message: if is_active {
                    format!("{e164} already belongs to brokerage `{slug}`; a number can belong to one brokerage only")
                } else {
                    format!("{e164} was a number of brokerage `{slug}` (removed there, its history kept with it); a number can belong to one brokerage only")
                },
            }
        })
        .collect();
    problems.sort_by_key(|p| p.line);
    Ok(problems)
}

async fn upsert_brokerage(
    conn: &mut PgConnection,
    file: &SetupFile,
    summary: &mut ApplySummary,
) -> Result<BrokerageId, ApplyError> {
    let b = &file.brokerage;
    let tb = &file.text_back;
    let compliance = serde_json::to_value(&file.compliance)
        .map_err(|e| Error::Db(sqlx::Error::Encode(Box::new(e))))?;
    // Where the secrets are read from, never the secrets (the file holds none).
    let account_sid = file.twilio.as_ref().map(|t| t.account_sid.as_str());
    let secrets = match &file.twilio {
        Some(t) => {
            Some(serde_json::to_value(t).map_err(|e| Error::Db(sqlx::Error::Encode(Box::new(e))))?)
        }
        None => None,
    };
    let row: Option<(i64, bool)> = sqlx::query_as(
        "insert into brokerage as x (slug, name, time_zone, text_back_delay_secs, text_back_templates, caller_name_lookup,
                                     lookup_max_age_secs, after_hours, escalate_after_secs, compliance,
                                     twilio_account_sid, twilio_secrets, lead_text_templates, default_language,
                                     text_back_templates_es, lead_text_templates_es)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         on conflict (slug) do update
            set name = excluded.name, time_zone = excluded.time_zone,
                text_back_delay_secs = excluded.text_back_delay_secs, text_back_templates = excluded.text_back_templates,
                caller_name_lookup = excluded.caller_name_lookup, lookup_max_age_secs = excluded.lookup_max_age_secs,
                after_hours = excluded.after_hours, escalate_after_secs = excluded.escalate_after_secs,
                compliance = excluded.compliance, twilio_account_sid = excluded.twilio_account_sid,
                twilio_secrets = excluded.twilio_secrets, lead_text_templates = excluded.lead_text_templates,
                default_language = excluded.default_language, text_back_templates_es = excluded.text_back_templates_es,
                lead_text_templates_es = excluded.lead_text_templates_es,
                updated_at = now()
          where (x.name, x.time_zone, x.text_back_delay_secs, x.text_back_templates, x.caller_name_lookup,
                 x.lookup_max_age_secs, x.after_hours, x.escalate_after_secs, x.compliance,
                 x.twilio_account_sid, x.twilio_secrets, x.lead_text_templates, x.default_language,
                 x.text_back_templates_es, x.lead_text_templates_es)
                is distinct from
                (excluded.name, excluded.time_zone, excluded.text_back_delay_secs, excluded.text_back_templates,
                 excluded.caller_name_lookup, excluded.lookup_max_age_secs, excluded.after_hours,
                 excluded.escalate_after_secs, excluded.compliance, excluded.twilio_account_sid,
                 excluded.twilio_secrets, excluded.lead_text_templates, excluded.default_language,
                 excluded.text_back_templates_es, excluded.lead_text_templates_es)
         returning brokerage_id, (xmax = 0) as inserted",
    )
    .bind(&b.slug)
    .bind(&b.name)
    .bind(&b.time_zone)
    .bind(i32::try_from(tb.delay_secs).unwrap_or(i32::MAX))
    .bind(Json(&tb.templates))
    .bind(tb.caller_name_lookup)
    .bind(i64::try_from(tb.lookup_max_age_secs).unwrap_or(i64::MAX))
    .bind(tb.after_hours.as_str())
    .bind(i32::try_from(file.inbox.escalate_after_secs).unwrap_or(i32::MAX))
    .bind(Json(compliance))
    .bind(account_sid)
    .bind(secrets.map(Json))
    .bind(file.lead_text.as_ref().map(Json))
    .bind(b.language.as_str())
    .bind(tb.templates_es.as_ref().map(Json))
    .bind(file.lead_text_es.as_ref().map(Json))
    .fetch_optional(&mut *conn)
    .await?;
    let id = match row {
        Some((id, inserted)) => {
            summary.changes.push(format!(
                "brokerage {} ({}): {}",
                b.slug,
                b.name,
                if inserted {
                    "created"
                } else {
                    "settings updated"
                }
            ));
            id
        }
        None => {
            sqlx::query_scalar("select brokerage_id from brokerage where slug = $1")
                .bind(&b.slug)
                .fetch_one(conn)
                .await?
        }
    };
    Ok(BrokerageId(id))
}

async fn apply_offices(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    file: &SetupFile,
    summary: &mut ApplySummary,
) -> Result<HashMap<String, i64>, ApplyError> {
    let mut ids = HashMap::new();
    for o in &file.offices {
        let row: Option<(i64, bool)> = sqlx::query_as(
            "insert into office as x (brokerage_id, slug, name, opens_at, closes_at) values ($1, $2, $3, $4, $5)
             on conflict (brokerage_id, slug) do update set name = excluded.name, opens_at = excluded.opens_at,
                    closes_at = excluded.closes_at, is_active = true, updated_at = now()
              where (x.name, x.opens_at, x.closes_at, x.is_active)
                    is distinct from (excluded.name, excluded.opens_at, excluded.closes_at, true)
             returning office_id, (xmax = 0) as inserted",
        )
        .bind(brokerage)
        .bind(&o.slug)
        .bind(&o.name)
        .bind(o.hours.map(|(open, _)| open))
        .bind(o.hours.map(|(_, close)| close))
        .fetch_optional(&mut *conn)
        .await?;
        let id = match row {
            Some((id, inserted)) => {
                summary.changes.push(format!(
                    "office {}: {}",
                    o.slug,
                    if inserted { "created" } else { "updated" }
                ));
                id
            }
            None => {
                sqlx::query_scalar(
                    "select office_id from office where brokerage_id = $1 and slug = $2",
                )
                .bind(brokerage)
                .bind(&o.slug)
                .fetch_one(&mut *conn)
                .await?
            }
        };
        ids.insert(o.slug.clone(), id);
    }
    let slugs: Vec<&str> = file.offices.iter().map(|o| o.slug.as_str()).collect();
    let gone: Vec<String> = sqlx::query_scalar(
        "update office set is_active = false, updated_at = now()
          where brokerage_id = $1 and is_active and slug <> all($2)
         returning slug",
    )
    .bind(brokerage)
    .bind(&slugs)
    .fetch_all(conn)
    .await?;
    summary.changes.extend(
        gone.into_iter()
            .map(|s| format!("office {s}: deactivated (no longer in the file; history kept)")),
    );
    Ok(ids)
}

async fn apply_agents(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    file: &SetupFile,
    offices: &HashMap<String, i64>,
    summary: &mut ApplySummary,
) -> Result<HashMap<String, i64>, ApplyError> {
    let mut ids = HashMap::new();
    for a in &file.agents {
        let office_id = offices.get(&a.office).copied().ok_or(Error::NotFound)?;
        let row: Option<(i64, bool)> = sqlx::query_as(
            "insert into agent as x (brokerage_id, office_id, email, name, phone, role, hours_start, hours_end, weight, languages)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             on conflict (brokerage_id, email) do update
                set office_id = excluded.office_id, name = excluded.name, phone = excluded.phone, role = excluded.role,
                    hours_start = excluded.hours_start, hours_end = excluded.hours_end, weight = excluded.weight,
                    languages = excluded.languages, is_active = true, updated_at = now()
              where (x.office_id, x.name, x.phone, x.role, x.hours_start, x.hours_end, x.weight, x.languages, x.is_active)
                    is distinct from (excluded.office_id, excluded.name, excluded.phone, excluded.role,
                                      excluded.hours_start, excluded.hours_end, excluded.weight, excluded.languages, true)
             returning agent_id, (xmax = 0) as inserted",
        )
        .bind(brokerage)
        .bind(office_id)
        .bind(&a.email)
        .bind(&a.name)
        .bind(a.phone.as_e164())
        .bind(a.role.as_str())
        .bind(a.hours.map(|(s, _)| s))
        .bind(a.hours.map(|(_, e)| e))
        .bind(i32::from(a.weight))
        .bind(a.languages.iter().map(|l| l.as_str()).collect::<Vec<_>>())
        .fetch_optional(&mut *conn)
        .await?;
        let id = match row {
            Some((id, inserted)) => {
                summary.changes.push(format!(
                    "agent {}: {}",
                    a.email,
                    if inserted { "created" } else { "updated" }
                ));
                id
            }
            None => {
                sqlx::query_scalar(
                    "select agent_id from agent where brokerage_id = $1 and email = $2",
                )
                .bind(brokerage)
                .bind(&a.email)
                .fetch_one(&mut *conn)
                .await?
            }
        };
        ids.insert(a.email.clone(), id);
    }
    let emails: Vec<&str> = file.agents.iter().map(|a| a.email.as_str()).collect();
    let gone: Vec<String> = sqlx::query_scalar(
        "update agent set is_active = false, updated_at = now()
          where brokerage_id = $1 and is_active and email <> all($2)
         returning email",
    )
    .bind(brokerage)
    .bind(&emails)
    .fetch_all(&mut *conn)
    .await?;
    if !gone.is_empty() {
        // Removed people cannot log in any more, and their conversations wait for someone
        // else (the "Unassigned" filter of the inbox).
        let ended = super::users::end_sessions_of_inactive(conn, brokerage).await?;
        let unassigned = super::conversations::unassign_inactive(conn, brokerage).await?;
        tracing::info!(ended, unassigned, "agents removed from the setup file");
    }
    summary.changes.extend(
        gone.into_iter()
            .map(|e| format!("agent {e}: deactivated (no longer in the file; history kept)")),
    );
    Ok(ids)
}

async fn apply_numbers(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    file: &SetupFile,
    offices: &HashMap<String, i64>,
    agents: &HashMap<String, i64>,
    summary: &mut ApplySummary,
) -> Result<(), ApplyError> {
    for (position, n) in file.numbers.iter().enumerate() {
        let office_id = offices.get(&n.office).copied().ok_or(Error::NotFound)?;
        let e164 = n.number.as_e164();
        let row: Option<(i64, bool)> = sqlx::query_as(
            "insert into number as x (brokerage_id, office_id, e164, listing, ring_timeout_secs, screen, missed_message, callback, voicemail,
                                      routing, claim_timeout_secs)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             on conflict (e164) do update
                set office_id = excluded.office_id, listing = excluded.listing,
                    ring_timeout_secs = excluded.ring_timeout_secs, screen = excluded.screen,
                    missed_message = excluded.missed_message, callback = excluded.callback,
                    voicemail = excluded.voicemail, routing = excluded.routing,
                    claim_timeout_secs = excluded.claim_timeout_secs, is_active = true, updated_at = now()
              where x.brokerage_id = excluded.brokerage_id
                and (x.office_id, x.listing, x.ring_timeout_secs, x.screen, x.missed_message, x.callback, x.voicemail,
                     x.routing, x.claim_timeout_secs, x.is_active)
                    is distinct from
                    (excluded.office_id, excluded.listing, excluded.ring_timeout_secs, excluded.screen,
                     excluded.missed_message, excluded.callback, excluded.voicemail,
                     excluded.routing, excluded.claim_timeout_secs, true)
             returning number_id, (xmax = 0) as inserted",
        )
        .bind(brokerage)
        .bind(office_id)
        .bind(e164)
        .bind(&n.listing)
        .bind(i32::try_from(n.ring_timeout_secs).unwrap_or(18))
        .bind(n.screen)
        .bind(&n.missed_message)
        .bind(n.callback.as_str())
        .bind(n.voicemail)
        .bind(n.routing.as_str())
        .bind(i32::try_from(n.claim_timeout_secs).unwrap_or(300))
        .fetch_optional(&mut *conn)
        .await?;
        let number_id = match row {
            Some((id, inserted)) => {
                summary.changes.push(format!(
                    "number {e164}: {}",
                    if inserted { "created" } else { "updated" }
                ));
                id
            }
            None => {
                sqlx::query_scalar(
                    "select number_id from number where brokerage_id = $1 and e164 = $2",
                )
                .bind(brokerage)
                .bind(e164)
                .fetch_one(&mut *conn)
                .await?
            }
        };

        // Where the file lists it: a web lead without a `number` hears from the first
        // (docs/leads.md).
        sqlx::query(
            "update number set file_position = $3
              where brokerage_id = $1 and number_id = $2 and file_position is distinct from $3",
        )
        .bind(brokerage)
        .bind(number_id)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .execute(&mut *conn)
        .await?;

        let wanted: Vec<i64> = n
            .ring
            .iter()
            .map(|email| agents.get(email).copied().ok_or(Error::NotFound))
            .collect::<Result<_, _>>()?;
        let current: Vec<i64> =
            sqlx::query_scalar("select agent_id from number_ring where brokerage_id = $1 and number_id = $2 order by position")
                .bind(brokerage)
                .bind(number_id)
                .fetch_all(&mut *conn)
                .await?;
        if current != wanted {
            sqlx::query("delete from number_ring where brokerage_id = $1 and number_id = $2")
                .bind(brokerage)
                .bind(number_id)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "insert into number_ring (brokerage_id, number_id, position, agent_id)
                 select $1, $2, p.ord - 1, p.agent_id from unnest($3::bigint[]) with ordinality as p(agent_id, ord)",
            )
            .bind(brokerage)
            .bind(number_id)
            .bind(&wanted)
            .execute(&mut *conn)
            .await?;
            summary.changes.push(format!(
                "number {e164}: ring list set to {}",
                n.ring.join(", ")
            ));
        }
    }
    let numbers: Vec<&str> = file.numbers.iter().map(|n| n.number.as_e164()).collect();
    let gone: Vec<String> = sqlx::query_scalar(
        "update number set is_active = false, updated_at = now()
          where brokerage_id = $1 and is_active and e164 <> all($2)
         returning e164",
    )
    .bind(brokerage)
    .bind(&numbers)
    .fetch_all(conn)
    .await?;
    summary.changes.extend(
        gone.into_iter()
            .map(|e| format!("number {e}: deactivated (no longer in the file; history kept)")),
    );
    Ok(())
}

async fn apply_follow_ups(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    file: &SetupFile,
    summary: &mut ApplySummary,
) -> Result<(), ApplyError> {
    for (position, step) in file.follow_ups.iter().enumerate() {
        let position = i32::try_from(position).unwrap_or(i32::MAX);
        let changed: Option<bool> = sqlx::query_scalar(
            "insert into follow_up_step as x (brokerage_id, position, after_secs, templates, templates_es) values ($1, $2, $3, $4, $5)
             on conflict (brokerage_id, position) do update
                set after_secs = excluded.after_secs, templates = excluded.templates,
                    templates_es = excluded.templates_es, updated_at = now()
              where (x.after_secs, x.templates, x.templates_es)
                    is distinct from (excluded.after_secs, excluded.templates, excluded.templates_es)
             returning (xmax = 0)",
        )
        .bind(brokerage)
        .bind(position)
        .bind(i64::try_from(step.after_secs).unwrap_or(i64::MAX))
        .bind(Json(&step.templates))
        .bind(step.templates_es.as_ref().map(Json))
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(inserted) = changed {
            summary.changes.push(format!(
                "follow-up #{}: {}",
                position + 1,
                if inserted { "created" } else { "updated" }
            ));
        }
    }
    let removed: Vec<i32> = sqlx::query_scalar(
        "delete from follow_up_step where brokerage_id = $1 and position >= $2 returning position",
    )
    .bind(brokerage)
    .bind(i32::try_from(file.follow_ups.len()).unwrap_or(i32::MAX))
    .fetch_all(conn)
    .await?;
    summary.changes.extend(
        removed
            .into_iter()
            .map(|p| format!("follow-up #{}: removed", p + 1)),
    );
    Ok(())
}

/// `[[forms]]`: each upserted by its slug; a form the file no longer lists is deactivated
/// (its page answers 404; its leads keep pointing at it).
async fn apply_forms(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    file: &SetupFile,
    summary: &mut ApplySummary,
) -> Result<(), ApplyError> {
    for f in &file.forms {
        let number_id: Option<i64> = match &f.number {
            Some(n) => Some(
                sqlx::query_scalar(
                    "select number_id from number where brokerage_id = $1 and e164 = $2",
                )
                .bind(brokerage)
                .bind(n.as_e164())
                .fetch_one(&mut *conn)
                .await?,
            ),
            None => None,
        };
        let row: Option<bool> = sqlx::query_scalar(
            "insert into web_form as x (brokerage_id, slug, title, consent_text, number_id, listing, frame_origins)
             values ($1, $2, $3, $4, $5, $6, $7)
             on conflict (brokerage_id, slug) do update
                set title = excluded.title, consent_text = excluded.consent_text,
                    number_id = excluded.number_id, listing = excluded.listing,
                    frame_origins = excluded.frame_origins, is_active = true
              where (x.title, x.consent_text, x.number_id, x.listing, x.frame_origins, x.is_active)
                    is distinct from
                    (excluded.title, excluded.consent_text, excluded.number_id, excluded.listing,
                     excluded.frame_origins, true)
             returning (xmax = 0)",
        )
        .bind(brokerage)
        .bind(&f.slug)
        .bind(&f.title)
        .bind(&f.consent)
        .bind(number_id)
        .bind(&f.listing)
        .bind(&f.frame_origins)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(inserted) = row {
            summary.changes.push(format!(
                "form {}: {}",
                f.slug,
                if inserted { "created" } else { "updated" }
            ));
        }
    }
    let slugs: Vec<&str> = file.forms.iter().map(|f| f.slug.as_str()).collect();
    let gone: Vec<String> = sqlx::query_scalar(
        "update web_form set is_active = false
          where brokerage_id = $1 and is_active and not (slug = any($2))
         returning slug",
    )
    .bind(brokerage)
    .bind(&slugs)
    .fetch_all(&mut *conn)
    .await?;
    summary.changes.extend(
        gone.into_iter()
            .map(|s| format!("form {s}: deactivated (no longer in the file)")),
    );
    Ok(())
}

/// `[[saved_replies]]`: replaced as a whole when they differ.
async fn apply_saved_replies(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    file: &SetupFile,
    summary: &mut ApplySummary,
) -> Result<(), ApplyError> {
    let current: Vec<(String, String)> = sqlx::query_as(
        "select name, body from saved_reply where brokerage_id = $1 order by position",
    )
    .bind(brokerage)
    .fetch_all(&mut *conn)
    .await?;
    let wanted: Vec<(String, String)> = file
        .saved_replies
        .iter()
        .map(|r| (r.name.clone(), r.text.clone()))
        .collect();
    if current == wanted {
        return Ok(());
    }
    sqlx::query("delete from saved_reply where brokerage_id = $1")
        .bind(brokerage)
        .execute(&mut *conn)
        .await?;
    let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    let bodies: Vec<&str> = wanted.iter().map(|(_, b)| b.as_str()).collect();
    sqlx::query(
        "insert into saved_reply (brokerage_id, position, name, body)
         select $1, r.ord - 1, r.name, r.body from unnest($2::text[], $3::text[]) with ordinality as r(name, body, ord)",
    )
    .bind(brokerage)
    .bind(&names)
    .bind(&bodies)
    .execute(conn)
    .await?;
    summary
        .changes
        .push(format!("saved replies: {} set", wanted.len()));
    Ok(())
}
