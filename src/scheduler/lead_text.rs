//! The `lead_text` job (docs/leads.md): the text that answers a lead from the website or a
//! lead source at once, by the text-back's steps and its at-most-once send protocol
//! (docs/reliability.md §2):
//!
//! 0. an earlier attempt left a live send → reconcile it, never send again;
//! 1. still wanted: the lead wrote or a call connected since (a person has them), or a lead
//!    text went to them in the last 24 hours (one a day, however many forms they fill in);
//! 2. the free checks (gate steps 1–2) before paying for Lookup;
//! 3. the line type: a landline becomes a callback task, as for a missed call;
//! 4. the whole gate in the pre-send transaction (the lead's written consent is its basis,
//!    R12), the send, the record.

use chrono::{DateTime, Duration, Utc};

use super::{Outcome, send, text_back};
use crate::context::AppState;
use crate::domain::gate::{self, Decision};
use crate::domain::language;
use crate::domain::lead_intake;
use crate::domain::line_type;
use crate::domain::phone::PhoneNumber;
use crate::domain::sms_text;
use crate::store::web_leads::LeadForText;
use crate::store::{self, brokerages, contacts, jobs, web_leads};

/// A second lead from the same person within this long gets no second text.
const ONE_TEXT_PER: i64 = 24;

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let now = state.clock.now();
    let p: jobs::payload::LeadText = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    // 0. Never send twice.
    let (mut conn, contact, recipient) = match send::start(state, job).await? {
        send::Start::Go { conn, contact, to } => (conn, contact, to),
        send::Start::Done(outcome) => return Ok(outcome),
    };
    let contact_id = contact.contact_id;
    let Some(lead) = web_leads::for_text(&mut conn, brokerage, p.web_lead_id).await? else {
        return Ok(Outcome::Dead("the web lead is gone".into()));
    };
    if !lead.number_active {
        return Ok(Outcome::Cancelled("number_removed".into()));
    }

    // 1. Still wanted?
    if let Some(reason) =
        send::superseded(&mut conn, brokerage, contact_id, lead.created_at).await?
    {
        return Ok(Outcome::Cancelled(reason.into()));
    }
    let since = now - Duration::hours(ONE_TEXT_PER);
    if web_leads::texted_since(&mut conn, brokerage, contact_id, since).await? {
        return Ok(Outcome::Cancelled("lead_texted_today".into()));
    }

    // 2. The free checks, before anything is paid for.
    let facts = store::gate::contact_facts(&mut conn, brokerage, contact_id, now).await?;
    if let Some(decision @ Decision::Skip { rule, reason }) =
        gate::free_checks(&recipient, facts.number_flags())
    {
        state.metrics.gate(decision.label(), rule, reason);
        let mut tx = state.pool.begin().await?;
        if matches!(reason, "outside_us" | "opted_out" | "cannot_receive") {
            // No text, but the lead asked to be contacted: a person calls (as for a caller).
            text_back::open_task(
                &mut tx,
                brokerage,
                contact_id,
                lead.number_id,
                None,
                reason,
                None,
                now,
            )
            .await?;
        }
        return skip(tx, job, &lead, &recipient, decision, now).await;
    }

    // 3. The line type.
    let settings = brokerages::text_back_settings(&mut conn, brokerage).await?;
    drop(conn);
    let lookup = text_back::line_type(state, brokerage, &recipient, &settings, now).await?;
    if !lookup.valid {
        state.metrics.gate("skip", "R8", "invalid_number");
        let mut tx = state.pool.begin().await?;
        contacts::mark_invalid(&mut tx, brokerage, contact_id, now).await?;
        let decision = Decision::Skip {
            rule: "R8",
            reason: "invalid_number",
        };
        return skip(tx, job, &lead, &recipient, decision, now).await;
    }
    if !line_type::can_text(lookup.line_type.as_deref()) {
        state.metrics.gate("skip", "R8", "line_type");
        let mut tx = state.pool.begin().await?;
        text_back::open_task(
            &mut tx,
            brokerage,
            contact_id,
            lead.number_id,
            None,
            "line_type",
            lookup.line_type.as_deref(),
            now,
        )
        .await?;
        let decision = Decision::Skip {
            rule: "R8",
            reason: "line_type",
        };
        return skip(tx, job, &lead, &recipient, decision, now).await;
    }

    // The text: the contact's stable variant of `[lead_text]`, else of the text-back's.
    // In the contact's language (README.md "Spanish").
    let en = settings
        .lead_text_templates
        .as_ref()
        .map_or(&settings.text_back_templates.0, |t| &t.0);
    let es = settings
        .lead_text_templates_es
        .as_ref()
        .or(settings.text_back_templates_es.as_ref())
        .map(|t| &t.0[..]);
    let (language, templates) = language::pick(
        contact.language_or(settings.default_language()),
        &en[..],
        es,
    );
    let variant = text_back::stable_variant(&contact.phone, templates.len());
    let Some(source) = templates.get(variant) else {
        return Ok(Outcome::Dead(
            "the brokerage has no lead-text template".into(),
        ));
    };
    let name = lead.name.as_deref().or(contact.name.as_deref());
    let body = render(source, &settings.name, &lead, name)?;
    // R10: every automated text names the brokerage and carries the opt-out words.
    let body = sms_text::identify_in(&body, &settings.name, true, language);

    // 4. The pre-send transaction with the whole gate, the send, the record.
    let rules = store::gate::brokerage_rules(&mut *state.pool.acquire().await?, brokerage).await?;
    let out = send::Outgoing {
        media_urls: &[],
        kind: gate::Kind::LeadText,
        contact_id,
        to: &recipient,
        number_id: lead.number_id,
        from: &lead.number_e164,
        body: &body,
        template_variant: i32::try_from(variant).ok(),
        keyword: None,
        call_id: None,
        call_ended_at: None,
        missed_at: None,
        superseded_since: Some(lead.created_at),
        by_text: None,
    };
    send::gate_and_send(state, job, &out, &rules).await
}

/// The template for this lead: the listing they asked about (else the number's), the number
/// they hear from, its office, the conversation's agent when routing gave it one. What the lead
/// sent goes into the text only when R11 would let a template say it (docs/leads.md): else the
/// number's listing, and the template's fallback for the name.
fn render(
    source: &str,
    brokerage_name: &str,
    lead: &LeadForText,
    contact_name: Option<&str>,
) -> anyhow::Result<String> {
    text_back::fill(
        source,
        &text_back::Fields {
            brokerage: brokerage_name,
            office: &lead.office_name,
            agent: lead.agent_name.as_deref(),
            listing: lead
                .listing
                .as_deref()
                .filter(|l| lead_intake::insertable_listing(l))
                .or(lead.number_listing.as_deref()),
            number_e164: &lead.number_e164,
            first_name: contact_name
                .and_then(|n| n.split_whitespace().next())
                .filter(|n| lead_intake::insertable_first_name(n)),
        },
    )
}

/// Ends the job `skipped` before its pre-send transaction, with its decision record.
async fn skip(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    job: &jobs::Claimed,
    lead: &LeadForText,
    recipient: &PhoneNumber,
    decision: Decision,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    text_back::skip_recorded(
        tx,
        gate::Kind::LeadText,
        job,
        lead.contact_id,
        lead.number_id,
        recipient,
        decision,
        now,
    )
    .await
}
