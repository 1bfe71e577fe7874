//! A lead from the brokerage's website or a lead source (docs/leads.md), in one transaction:
//! the contact and its conversation (routed like a caller's), the lead as received, its
//! written consent in the ledger, the `lead_text` job that answers it, and the alert to the
//! agents. All of it commits together or not at all.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::lead_intake::Lead;
use crate::store::jobs::{JobKind, JobPayload, Place, payload};
use crate::store::web_leads::{self, NewWebLead};
use crate::store::{self, BrokerageId, alerts, contacts, conversations};

use super::alerts::{Deliver, raise_alert};

/// Who sent the lead: an API key or a hosted form.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    ApiKey { api_key_id: i64, name: &'a str },
    Form { web_form_id: i64, slug: &'a str },
}

impl Sender<'_> {
    /// The consent ledger's `who` and `how`.
    fn who(&self) -> (String, &'static str) {
        match self {
            Sender::ApiKey { name, .. } => (format!("api:{name}"), "api"),
            Sender::Form { slug, .. } => (format!("form:{slug}"), "form"),
        }
    }
}

/// What became of a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored and answered: the lead's id and its conversation.
    Created {
        web_lead_id: i64,
        conversation_id: i64,
    },
    /// The key sent this `Idempotency-Key` already: nothing was written (the caller rolls
    /// back and answers as the first time).
    Replay,
}

/// Receives `lead` for `number_id` (one of the brokerage's active numbers).
#[allow(clippy::too_many_arguments)]
pub async fn on_web_lead(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    sender: Sender<'_>,
    lead: &Lead,
    number_id: i64,
    idempotency_key: Option<&str>,
    request_hash: &[u8],
    now: DateTime<Utc>,
) -> store::Result<Received> {
    // The contact's lock first, as every writer of its rows takes it (docs/reliability.md §4).
    let contact_id = contacts::upsert(conn, brokerage, &lead.phone).await?;
    let known_name = contacts::lock(conn, brokerage, contact_id)
        .await?
        .and_then(|c| c.name);
    let conv = conversations::touch_inbound(conn, brokerage, contact_id, number_id, now).await?;
    let ip = lead.consent.ip.to_string();
    let row = NewWebLead {
        api_key_id: match sender {
            Sender::ApiKey { api_key_id, .. } => Some(api_key_id),
            Sender::Form { .. } => None,
        },
        web_form_id: match sender {
            Sender::Form { web_form_id, .. } => Some(web_form_id),
            Sender::ApiKey { .. } => None,
        },
        contact_id,
        number_id,
        conversation_id: conv.conversation_id,
        name: lead.name.as_deref(),
        source: lead.source.as_deref(),
        listing: lead.listing.as_deref(),
        message: lead.message.as_deref(),
        consent_text: &lead.consent.text,
        consent_url: &lead.consent.url,
        consent_at: lead.consent.at,
        consent_ip: &ip,
        idempotency_key,
        request_hash,
        now,
    };
    let Some(web_lead_id) = web_leads::insert(conn, brokerage, &row).await? else {
        return Ok(Received::Replay);
    };
    // The name the lead gave, unless agents know them by one already.
    if let Some(name) = lead.name.as_deref()
        && known_name.is_none()
    {
        conversations::set_contact_name(conn, brokerage, contact_id, Some(name)).await?;
    }
    let (who, how) = sender.who();
    web_leads::record_written_consent(
        conn,
        brokerage,
        lead.phone.as_e164(),
        web_lead_id,
        &who,
        how,
        &row,
    )
    .await?;
    // Routed like a caller's lead (docs/routing.md); a first-to-claim number offers it by text.
    super::routing::route_new(conn, brokerage, &conv, contact_id, now).await?;
    // One lead text waiting per person: a second lead while the first's text waits (for the
    // morning's window, say) is recorded and alerted, not texted again.
    if !store::jobs::pending_of_kind(conn, brokerage, contact_id, JobKind::LeadText).await? {
        payload::LeadText { web_lead_id }
            .enqueue(conn, brokerage, Place::for_contact(contact_id, now, now))
            .await?;
    }
    let offered = store::routing::open_offer_for(conn, brokerage, conv.conversation_id)
        .await?
        .is_some();
    if !offered {
        // The agents hear of it (an offer's text says it already).
        let detail = serde_json::json!({
            "source": lead.source,
            "listing": lead.listing,
            "message": lead.message,
        })
        .to_string();
        raise_alert(
            conn,
            brokerage,
            &alerts::NewAlert {
                audience: "agents",
                reason: "web_lead",
                detail: Some(&detail),
                contact_id: Some(contact_id),
                message_id: None,
                call_id: None,
                now,
            },
            Deliver::Yes {
                number_id: Some(number_id),
            },
        )
        .await?;
    }
    Ok(Received::Created {
        web_lead_id,
        conversation_id: conv.conversation_id,
    })
}
