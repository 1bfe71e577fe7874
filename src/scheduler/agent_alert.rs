//! The `agent_alert` job (docs/architecture.md step 9): texts one of the brokerage's own people about an
//! alert (a lead's reply, a callback task, a repeat call, an escalation, a configuration
//! problem). Not gated (the recipient is staff, not a lead), but rate-limited: at most one
//! alert per conversation per 5 minutes and 30 per person per hour, counted in PostgreSQL
//! under a per-person lock so the limit holds across instances. Every decision is recorded
//! (`alert_delivery`, and a decision record of kind `agent_alert`). The send itself is the
//! at-most-once protocol every text uses.

use chrono::Utc;

use super::{Outcome, send};
use crate::context::AppState;
use crate::domain::alerts::{self as words, AlertText, Limit};
use crate::domain::phone::{PhoneNumber, mask};
use crate::store::jobs::JobState;
use crate::store::{self, alerts, callbacks, jobs, messages, numbers};

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let p: jobs::payload::AgentAlert = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let mut conn = state.pool.acquire().await?;
    // Never twice: an earlier attempt's live send is settled, not repeated.
    if let Some(previous) = messages::live_send_for_job(&mut conn, job.job_id).await? {
        drop(conn);
        return send::settle_previous(state, job, previous).await;
    }
    let Some(alert) = alerts::get(&mut conn, brokerage, p.alert_id).await? else {
        return Ok(Outcome::Dead("the alert is gone".into()));
    };
    let Some(person) = alerts::recipient(&mut conn, brokerage, p.agent_id).await? else {
        return Ok(Outcome::Dead("the agent is gone".into()));
    };
    if !person.is_active {
        return Ok(Outcome::Skipped("agent_inactive".into()));
    }
    let Ok(to) = PhoneNumber::parse(&person.phone) else {
        return Ok(Outcome::Dead("the agent's phone is not E.164".into()));
    };
    let number_id = match alert.number_id {
        Some(n) => Some(n),
        None => alerts::any_number(&mut conn, brokerage).await?,
    };
    let Some(number_id) = number_id else {
        return Ok(Outcome::Dead(
            "the brokerage has no number to text from".into(),
        ));
    };
    let Some(from) = numbers::e164(&mut conn, brokerage, number_id).await? else {
        return Ok(Outcome::Dead("the number is gone".into()));
    };
    let now = state.clock.now();
    drop(conn);
    // Staff alerts about a conversation are limited per conversation; admin alerts are not
    // about one, and a notice (the answer to the person's own text, a claim, a move) is not
    // held back by an alert about the same lead a minute before: only the hourly limit counts
    // it.
    let conversation = if alert.audience == "admins" || alert.reason == "notice" {
        None
    } else {
        alert.conversation_id
    };

    let mut tx = state.pool.begin().await?;
    if !jobs::lock_if_held(&mut tx, job.job_id, job.attempt).await? {
        return Ok(Outcome::Persisted {
            label: "lost_lease",
        });
    }
    alerts::lock_recipient(&mut tx, p.agent_id).await?;
    let limit = match alerts::delivery_for_job(&mut tx, job.job_id)
        .await?
        .as_deref()
    {
        // A retry after the carrier did not take the text: decided already, counted once.
        Some("send") => Limit::Send,
        _ => {
            let (recent, hour) =
                alerts::recent_deliveries(&mut tx, p.agent_id, conversation, now).await?;
            let limit = words::limit(recent, hour);
            alerts::record_delivery(
                &mut tx,
                brokerage,
                &alerts::Delivery {
                    alert_id: alert.alert_id,
                    agent_id: p.agent_id,
                    conversation_id: conversation,
                    decision: if limit == Limit::Send {
                        "send"
                    } else {
                        "limited"
                    },
                    reason: limit.reason(),
                    job_id: job.job_id,
                    message_id: None,
                    now,
                },
            )
            .await?;
            limit
        }
    };
    let at = store::gate::DecisionRef {
        contact_id: None,
        number_id: Some(number_id),
        job_id: Some(job.job_id),
        message_id: None,
        attempt: Some(job.attempt),
    };
    if limit != Limit::Send {
        store::gate::record_alert_decision(&mut tx, brokerage, &at, false, limit.reason(), now)
            .await?;
        send::finish(
            &mut tx,
            job,
            JobState::Skipped,
            Some(limit.reason()),
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        state.metrics.gate("skip", "alert", limit.reason());
        tracing::info!(to = %mask(&person.phone), reason = limit.reason(), "alert held back by the rate limit");
        return Ok(Outcome::Persisted { label: "skipped" });
    }
    // A callback link for this person and this lead (docs/calls.md), when the number offers
    // one: made only for a text that goes, in its pre-send transaction.
    let callback_link = match (alert.contact_id, alert.number_callback.as_deref()) {
        (Some(contact_id), Some("offer" | "auto"))
            if alert.audience == "agents" && alert.number_id.is_some() =>
        {
            let token = crate::context::tokens::random_token()?;
            let link = callbacks::NewLink {
                token_hash: &crate::context::tokens::token_hash(&token),
                agent_id: p.agent_id,
                contact_id,
                number_id: alert.number_id.unwrap_or(number_id),
                call_id: alert.call_id,
                now,
                expires_at: now + chrono::Duration::seconds(crate::domain::callback::LINK_TTL_SECS),
            };
            callbacks::insert_link(&mut tx, brokerage, &link).await?;
            Some(state.config.public_url.join(&format!("/cb/{token}")))
        }
        _ => None,
    };
    // A sign-in link to the conversation for this person (README.md "Agents on their phones"):
    // single use, minutes long, made only for a text that goes.
    let signin = match (
        alert.conversation_id,
        alert.audience.as_str(),
        alert.reason.as_str(),
    ) {
        (Some(conversation_id), "agents" | "managers", reason) if reason != "notice" => {
            match store::routing::user_of_agent(&mut tx, brokerage, p.agent_id).await? {
                Some(user_id) => {
                    let token = crate::context::tokens::random_token()?;
                    store::routing::insert_signin_link(
                        &mut tx,
                        &crate::context::tokens::token_hash(&token),
                        user_id,
                        conversation_id,
                        now,
                        now + chrono::Duration::minutes(SIGNIN_LINK_MINUTES),
                    )
                    .await?;
                    Some(state.config.public_url.join(&format!("/s/{token}")))
                }
                None => None,
            }
        }
        _ => None,
    };
    let body = compose(
        state,
        &alert,
        now,
        callback_link.as_deref(),
        signin.as_deref(),
    );
    // Whose account sends it, resolved in the pre-send transaction before its record (as for a
    // lead's text).
    let creds = state.credentials_on(&mut tx, brokerage).await?;
    let message_id = messages::insert_outbound_sending(
        &mut tx,
        brokerage,
        &messages::NewOutbound {
            number_id,
            contact_id: None,
            from: &from,
            to: to.as_e164(),
            body: &body,
            idempotency_key: &format!("{}:{}", job.job_id, job.attempt),
            job_id: Some(job.job_id),
            attempt: Some(job.attempt),
            template_variant: None,
            kind: "agent_alert",
            counts_for_cap: false,
            started_at: now,
        },
    )
    .await?;
    let at = store::gate::DecisionRef {
        message_id: Some(message_id),
        ..at
    };
    store::gate::record_alert_decision(&mut tx, brokerage, &at, true, limit.reason(), now).await?;
    tx.commit().await?;
    state.metrics.gate("allow", "alert", limit.reason());
    let sent = send::Sent {
        media_urls: &[],
        kind: "agent_alert",
        to: to.as_e164(),
        from: &from,
        body: &body,
        contact_id: None,
        number_id,
        call_id: alert.call_id,
        missed_at: None,
    };
    send::send_and_record(state, job, message_id, &sent, creds).await
}

/// What a `web_lead` alert keeps of the lead (its `detail`, written by `effects::web_leads`).
#[derive(Debug, Default, serde::Deserialize)]
struct WebLeadDetail {
    source: Option<String>,
    listing: Option<String>,
    message: Option<String>,
}

impl WebLeadDetail {
    fn read(detail: Option<&str>) -> WebLeadDetail {
        detail
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    }
}

/// How long the sign-in link of an alert text works.
pub const SIGNIN_LINK_MINUTES: i64 = 15;

/// The alert's text (domain::alerts), with a link to the conversation (`signin`: the person's
/// sign-in link to it), or to the dashboard for a configuration alert.
fn compose(
    state: &AppState,
    alert: &alerts::AlertRow,
    now: chrono::DateTime<Utc>,
    callback_link: Option<&str>,
    signin: Option<&str>,
) -> String {
    let who = alert
        .contact_phone
        .as_deref()
        .map(|p| words::who(alert.contact_name.as_deref(), p))
        .unwrap_or_else(|| "a lead".to_owned());
    let link = match (alert.audience.as_str(), alert.conversation_id, signin) {
        ("admins", _, _) if alert.reason == "webhook_paused" => {
            state.config.public_url.join("/connections")
        }
        ("admins", _, _) | (_, None, _) => state.config.public_url.join("/dashboard"),
        (_, Some(_), Some(signin)) => signin.to_owned(),
        (_, Some(c), None) => state.config.public_url.join(&format!("/inbox/c/{c}")),
    };
    let listing = alert.listing.as_deref();
    let admin;
    let why;
    let media_tag;
    let web;
    let text = match alert.reason.as_str() {
        "lead_reply" => {
            let types: Vec<&str> = alert
                .media_types
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            media_tag = crate::domain::media::tag(&types);
            AlertText::Reply {
                who: &who,
                listing,
                body: alert.message_body.as_deref().unwrap_or(""),
                media: media_tag.as_deref(),
            }
        }
        "callback_task" => {
            why = words::callback_why(alert.detail.as_deref().unwrap_or(""));
            AlertText::Callback {
                who: &who,
                listing,
                why: &why,
            }
        }
        "repeat_missed_call" => AlertText::RepeatCall { who: &who, listing },
        "missed_call" => AlertText::MissedCall { who: &who, listing },
        "voicemail" => AlertText::Voicemail {
            who: &who,
            listing,
            secs: alert.voicemail_secs.unwrap_or(0),
            transcript: alert.voicemail_transcript.as_deref(),
        },
        "escalation" => AlertText::Escalation {
            who: &who,
            minutes: alert
                .waiting_since
                .map_or(0, |since| (now - since).num_minutes().max(0)),
            assigned: alert.assigned_name.as_deref(),
        },
        "lead_offer" => AlertText::Offer { who: &who, listing },
        "web_lead" => {
            web = WebLeadDetail::read(alert.detail.as_deref());
            AlertText::WebLead {
                who: &who,
                listing: web.listing.as_deref().or(listing),
                source: web.source.as_deref(),
                message: web.message.as_deref(),
            }
        }
        "notice" => AlertText::Notice {
            text: alert.detail.as_deref().unwrap_or(""),
        },
        reason => {
            admin = words::admin_reason(reason, alert.detail.as_deref());
            AlertText::Admin { what: &admin }
        }
    };
    match (alert.audience.as_str(), alert.conversation_id) {
        ("agents" | "managers", Some(c)) => {
            words::text_about(&alert.brokerage_name, c, &text, &link, callback_link)
        }
        _ => words::text_with_callback(&alert.brokerage_name, &text, &link, callback_link),
    }
}
