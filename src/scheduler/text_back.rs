//! The `text_back` job (docs/architecture.md step 3) with the at-most-once send
//! protocol of docs/reliability.md §2:
//!
//! 0. an earlier attempt left a live send → reconcile it, never send again;
//! 1. re-check what may have superseded the job (an answered call, an inbound text);
//! 2. the free checks (gate steps 1–2: usable number, suppression) before paying for Lookup;
//! 3. the line type (Lookup v2, cached for `lookup_max_age`): no-text types become a callback
//!    task;
//! 4. the pre-send transaction: contact locked, the job fenced on its attempt, supersession
//!    and the gate checked again, the outbound row inserted `sending` with its idempotency key;
//! 5. the send, with bounded timeouts;
//! 6. the record: accepted, certainly not sent (retry with backoff), rejected (the code's
//!    effect), unknown (reconcile).

use std::hash::{Hash, Hasher};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::{Outcome, jitter, send};
use crate::context::AppState;
use crate::domain::backoff;
use crate::domain::caller_name;
use crate::domain::gate::{self, Decision};
use crate::domain::language;
use crate::domain::line_type;
use crate::domain::phone::PhoneNumber;
use crate::domain::sms_text;
use crate::domain::template::{Field, Template};
use crate::store::jobs::JobState;
use crate::store::{
    self, BrokerageId, ContactId, brokerages, calls, contacts, jobs, lookups, tasks,
};

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let now = state.clock.now();
    // 0. Never send twice: an earlier attempt's live send is settled, not repeated.
    let (mut conn, contact, recipient) = match send::start(state, job).await? {
        send::Start::Go { conn, contact, to } => (conn, contact, to),
        send::Start::Done(outcome) => return Ok(outcome),
    };
    let contact_id = contact.contact_id;

    // 1. Still wanted?
    let call = match send::the_call(&mut conn, job).await? {
        Ok(call) => call,
        Err(outcome) => return Ok(outcome),
    };
    if let Some(reason) =
        send::superseded(&mut conn, brokerage, contact_id, call.started_at).await?
    {
        return Ok(Outcome::Cancelled(reason.into()));
    }

    // 2. The free checks, before anything is paid for.
    let facts = store::gate::contact_facts(&mut conn, brokerage, contact_id, now).await?;
    if let Some(decision @ Decision::Skip { rule, reason }) =
        gate::free_checks(&recipient, facts.number_flags())
    {
        state.metrics.gate(decision.label(), rule, reason);
        let mut tx = state.pool.begin().await?;
        if matches!(reason, "outside_us" | "opted_out" | "cannot_receive") {
            // R8: a caller from abroad still deserves a call back; so does an opted-out
            // caller who calls again (docs/architecture.md step 8), and one whose number the carrier
            // said cannot take texts: no text, a person calls.
            open_task(
                &mut tx,
                brokerage,
                contact_id,
                call.number_id,
                Some(call.call_id),
                reason,
                None,
                now,
            )
            .await?;
        }
        return skip_recorded(
            tx,
            gate::Kind::TextBack,
            job,
            contact_id,
            call.number_id,
            &recipient,
            decision,
            now,
        )
        .await;
    }

    // 3. The line type.
    let settings = brokerages::text_back_settings(&mut conn, brokerage).await?;
    drop(conn);
    let lookup = line_type(state, brokerage, &recipient, &settings, now).await?;
    if !lookup.valid {
        state.metrics.gate("skip", "R8", "invalid_number");
        let mut tx = state.pool.begin().await?;
        contacts::mark_invalid(&mut tx, brokerage, contact_id, now).await?;
        let decision = Decision::Skip {
            rule: "R8",
            reason: "invalid_number",
        };
        return skip_recorded(
            tx,
            gate::Kind::TextBack,
            job,
            contact_id,
            call.number_id,
            &recipient,
            decision,
            now,
        )
        .await;
    }
    if !line_type::can_text(lookup.line_type.as_deref()) {
        state.metrics.gate("skip", "R8", "line_type");
        let mut tx = state.pool.begin().await?;
        open_task(
            &mut tx,
            brokerage,
            contact_id,
            call.number_id,
            Some(call.call_id),
            "line_type",
            lookup.line_type.as_deref(),
            now,
        )
        .await?;
        let decision = Decision::Skip {
            rule: "R8",
            reason: "line_type",
        };
        let outcome = skip_recorded(
            tx,
            gate::Kind::TextBack,
            job,
            contact_id,
            call.number_id,
            &recipient,
            decision,
            now,
        )
        .await?;
        tracing::info!(to = %recipient.masked(), line_type = lookup.line_type.as_deref().unwrap_or("unknown"), "no text: a callback task instead");
        return Ok(outcome);
    }

    // The text itself: the contact's stable variant of the template, in their language
    // (README.md "Spanish"); a caller not known yet gets the brokerage's default language.
    let (language, templates) = language::pick(
        contact.language_or(settings.default_language()),
        &settings.text_back_templates.0[..],
        settings.text_back_templates_es.as_ref().map(|t| &t.0[..]),
    );
    let variant = stable_variant(&contact.phone, templates.len());
    let Some(source) = templates.get(variant) else {
        return Ok(Outcome::Dead(
            "the brokerage has no text-back template".into(),
        ));
    };
    // A name an agent gave the contact; else a consumer's first name from CNAM, when it reads
    // as one (never "Hi WIRELESS").
    let cnam_first = lookup
        .caller_name
        .as_deref()
        .and_then(|cnam| caller_name::first_name(cnam, lookup.caller_type.as_deref()));
    let first_name = contact.name.as_deref().or(cnam_first.as_deref());
    let body = render(source, &settings.name, &call, first_name)?;

    // R10: every automated text names the brokerage and carries the opt-out words.
    let body = sms_text::identify_in(&body, &settings.name, true, language);

    // 4–6. The pre-send transaction with the whole gate, the send, the record.
    let rules = store::gate::brokerage_rules(&mut *state.pool.acquire().await?, brokerage).await?;
    let out = send::Outgoing {
        media_urls: &[],
        kind: gate::Kind::TextBack,
        contact_id,
        to: &recipient,
        number_id: call.number_id,
        from: &call.number_e164,
        body: &body,
        template_variant: i32::try_from(variant).ok(),
        keyword: None,
        call_id: Some(call.call_id),
        call_ended_at: call.outcome_at,
        missed_at: call.outcome_at,
        superseded_since: Some(call.started_at),
        by_text: None,
    };
    send::gate_and_send(state, job, &out, &rules).await
}

/// Ends the job `skipped` by a check taken before the pre-send transaction, with its decision
/// record, in `tx` together with what the caller already wrote there (a callback task). For
/// the text-back and the lead text alike.
#[allow(clippy::too_many_arguments)]
pub(super) async fn skip_recorded(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    kind: gate::Kind,
    job: &jobs::Claimed,
    contact_id: ContactId,
    number_id: i64,
    recipient: &PhoneNumber,
    decision: Decision,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    let reason = decision.reason();
    send::record_early(
        &mut tx, kind, job, contact_id, number_id, recipient, decision, now,
    )
    .await?;
    if !send::finish(&mut tx, job, JobState::Skipped, Some(reason), None, now).await? {
        // Another worker holds the job now: nothing of this is written.
        return Ok(Outcome::Persisted {
            label: "lost_lease",
        });
    }
    tx.commit().await?;
    Ok(Outcome::Persisted { label: "skipped" })
}

/// Opens a callback task for the contact (a person calls instead of a text), for the call it
/// answers when there is one.
#[allow(clippy::too_many_arguments)]
pub(super) async fn open_task(
    conn: &mut sqlx::PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    call_id: Option<store::CallId>,
    reason: &str,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> store::Result<()> {
    crate::effects::open_callback_task(
        conn,
        brokerage,
        &tasks::NewTask {
            contact_id,
            number_id,
            call_id,
            message_id: None,
            reason,
            detail,
            now,
        },
    )
    .await?;
    Ok(())
}

/// The line type, from the cache when it is fresh enough, else from Lookup v2. Lookup is a
/// read, so it is retried; if it keeps failing the type counts as unknown (R8) and the text
/// goes (a 30006 would turn it into a callback task).
pub(super) async fn line_type(
    state: &AppState,
    brokerage: BrokerageId,
    recipient: &PhoneNumber,
    settings: &brokerages::TextBackSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<lookups::CachedLookup> {
    let fresh_since = now - chrono::Duration::seconds(settings.lookup_max_age_secs);
    let mut conn = state.pool.acquire().await?;
    if let Some(cached) =
        lookups::fresh(&mut conn, brokerage, recipient.as_e164(), fresh_since).await?
    {
        return Ok(cached);
    }
    drop(conn);
    let t = &state.timing;
    // Without credentials there is nothing to pay with: the type is unknown, and the send
    // that follows ends with the reason for the admins.
    let creds = match state.credentials(brokerage).await? {
        Ok(creds) => creds,
        Err(why) => {
            tracing::warn!(%why, "no Lookup: the brokerage has no usable account");
            return Ok(lookups::CachedLookup {
                valid: true,
                line_type: None,
                caller_name: None,
                caller_type: None,
                looked_up_at: now,
            });
        }
    };
    for attempt in 1..=t.lookup_attempts {
        match state
            .twilio
            .lookup(&creds, recipient.as_e164(), settings.caller_name_lookup)
            .await
        {
            Ok(answer) => {
                let cached = lookups::CachedLookup {
                    valid: answer.valid,
                    line_type: answer.line_type,
                    caller_name: answer.caller_name,
                    caller_type: answer.caller_type,
                    looked_up_at: now,
                };
                let mut conn = state.pool.acquire().await?;
                lookups::store(&mut conn, brokerage, recipient.as_e164(), &cached).await?;
                return Ok(cached);
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "Lookup failed");
                if attempt < t.lookup_attempts {
                    tokio::time::sleep(backoff::delay(
                        attempt,
                        t.backoff_base,
                        t.backoff_cap,
                        None,
                        jitter(),
                    ))
                    .await;
                }
            }
        }
    }
    Ok(lookups::CachedLookup {
        valid: true,
        line_type: None,
        caller_name: None,
        caller_type: None,
        looked_up_at: now,
    })
}

/// Renders an automated template for the call it answers (README.md "The setup file").
pub(super) fn render(
    source: &str,
    brokerage_name: &str,
    call: &calls::TextBackContext,
    contact_name: Option<&str>,
) -> anyhow::Result<String> {
    fill(
        source,
        &Fields {
            brokerage: brokerage_name,
            office: &call.office_name,
            agent: call.agent_name.as_deref(),
            listing: call.listing.as_deref(),
            number_e164: &call.number_e164,
            first_name: contact_name.and_then(|n| n.split_whitespace().next()),
        },
    )
}

/// What an automated text's template fields say (docs/leads.md for the lead text's).
pub(super) struct Fields<'a> {
    pub brokerage: &'a str,
    pub office: &'a str,
    /// The agent's full name; `{agent_first_name}` is its first word.
    pub agent: Option<&'a str>,
    pub listing: Option<&'a str>,
    /// The brokerage number the text goes from, shown nationally as `{number}`.
    pub number_e164: &'a str,
    pub first_name: Option<&'a str>,
}

/// A stored template with its fields filled.
pub(super) fn fill(source: &str, f: &Fields<'_>) -> anyhow::Result<String> {
    let template = Template::parse(source).context("a stored template does not parse")?;
    let number_shown = national(f.number_e164);
    Ok(template.render(|field| match field {
        Field::Brokerage => Some(f.brokerage),
        Field::Office => Some(f.office),
        Field::AgentFirstName => f.agent.and_then(|n| n.split_whitespace().next()),
        Field::AgentName => f.agent,
        Field::Listing => f.listing,
        Field::Number => Some(number_shown.as_str()),
        Field::FirstName => f.first_name,
    }))
}

/// Each contact gets one variant, the same every time (a stable hash of the number).
pub(super) fn stable_variant(phone: &str, variants: usize) -> usize {
    if variants <= 1 {
        return 0;
    }
    // FNV-1a: stable across processes and releases, unlike std's randomly keyed hasher.
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    phone.hash(&mut h);
    (h.finish() % variants as u64) as usize
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// `+15555550100` → `(555) 555-0100` for a US number; other numbers as they are.
pub(super) fn national(e164: &str) -> String {
    match e164.strip_prefix("+1") {
        Some(d) if d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..])
        }
        _ => e164.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_stable_and_spread() {
        assert_eq!(stable_variant("+16175550123", 1), 0);
        let a = stable_variant("+16175550123", 3);
        assert_eq!(a, stable_variant("+16175550123", 3), "stable");
        let spread: std::collections::HashSet<usize> = (0..50)
            .map(|i| stable_variant(&format!("+1617555{i:04}"), 3))
            .collect();
        assert_eq!(spread.len(), 3, "every variant is used");
    }

    #[test]
    fn brokerage_numbers_read_nationally_in_texts() {
        assert_eq!(national("+15555550100"), "(555) 555-0100");
        assert_eq!(national("+442071838750"), "+442071838750");
    }
}
