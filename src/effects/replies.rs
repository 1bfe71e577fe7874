//! An agent's reply, queued through the gate's rules that a person's text must also pass.

use crate::store::ContactId;
use crate::store::jobs::{JobPayload, Place, payload};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::calls::human_answered;

use crate::store::{self, BrokerageId, contacts, jobs};

/// Why an agent's reply cannot be queued (docs/compliance.md R1, R3, R11), in the words the inbox
/// shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyRefused {
    OptedOut,
    ReviewHold,
    Shortener,
    Empty,
}

impl ReplyRefused {
    pub fn reason(self) -> &'static str {
        match self {
            ReplyRefused::OptedOut => "opted_out",
            ReplyRefused::ReviewHold => "review_hold",
            ReplyRefused::Shortener => "link_shortener",
            ReplyRefused::Empty => "empty",
        }
    }
}

/// An agent's reply from the inbox (docs/architecture.md step 6): refused at once when the gate would
/// certainly refuse it (suppressed anywhere in the brokerage, review hold, a public
/// shortener), else queued as an `agent_reply` job that takes over the conversation (R12:
/// pending automation stops) and passes the whole gate when it runs. Returns the job.
pub async fn queue_agent_reply(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    agent_email: &str,
    body: &str,
    now: DateTime<Utc>,
) -> store::Result<Result<i64, ReplyRefused>> {
    queue(
        conn,
        brokerage,
        contact_id,
        number_id,
        agent_email,
        Said {
            body,
            once: None,
            by_text: None,
            media_ids: &[],
        },
        now,
    )
    .await
}

/// [`queue_agent_reply`] for a reply texted from the agent's phone (README.md "Agents on their
/// phones"): `agent_id` is told by text if the gate refuses it when it runs.
#[allow(clippy::too_many_arguments)]
pub async fn queue_agent_reply_by_text(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    agent_email: &str,
    agent_id: i64,
    body: &str,
    now: DateTime<Utc>,
) -> store::Result<Result<i64, ReplyRefused>> {
    queue(
        conn,
        brokerage,
        contact_id,
        number_id,
        agent_email,
        Said {
            body,
            once: None,
            by_text: Some(agent_id),
            media_ids: &[],
        },
        now,
    )
    .await
}

/// What the agent said: the text, the form's one-time token, the agent who texted it from their
/// phone, the attachments (README.md "Pictures").
pub struct Said<'a> {
    pub body: &'a str,
    pub once: Option<&'a str>,
    pub by_text: Option<i64>,
    pub media_ids: &'a [i64],
}

/// [`queue_agent_reply`] for a form carrying a one-time token (`said.once`): a second
/// submission of the same form (a double click, a reload of the POST) finds the first one's job
/// and queues nothing more. The attachments go with the text, through the same gate.
pub async fn queue_agent_reply_once(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    agent_email: &str,
    said: Said<'_>,
    now: DateTime<Utc>,
) -> store::Result<Result<i64, ReplyRefused>> {
    queue(
        conn,
        brokerage,
        contact_id,
        number_id,
        agent_email,
        said,
        now,
    )
    .await
}

async fn queue(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    agent_email: &str,
    said: Said<'_>,
    now: DateTime<Utc>,
) -> store::Result<Result<i64, ReplyRefused>> {
    let Said {
        body,
        once,
        by_text,
        media_ids,
    } = said;
    let body = body.trim();
    // A picture alone is a reply too.
    if body.is_empty() && media_ids.is_empty() {
        return Ok(Err(ReplyRefused::Empty));
    }
    if crate::domain::links::check(body, &[])
        .iter()
        .any(|p| matches!(p, crate::domain::links::LinkProblem::Shortener { .. }))
    {
        return Ok(Err(ReplyRefused::Shortener));
    }
    let Some(contact) = contacts::lock(conn, brokerage, contact_id).await? else {
        return Err(store::Error::NotFound);
    };
    // Under the contact's lock, so two submissions of one form cannot both pass.
    if let Some(once) = once
        && let Some(job) = jobs::agent_reply_with_token(conn, brokerage, contact_id, once).await?
    {
        return Ok(Ok(job));
    }
    let facts = store::gate::contact_facts(conn, brokerage, contact_id, now).await?;
    if facts.is_suppressed {
        return Ok(Err(ReplyRefused::OptedOut));
    }
    if facts.review_hold {
        return Ok(Err(ReplyRefused::ReviewHold));
    }
    jobs::cancel_scheduled(
        conn,
        brokerage,
        contact_id,
        jobs::AUTOMATION,
        "agent_takeover",
        now,
    )
    .await?;
    // The first human reply answers a waiting lead and disarms the escalation.
    human_answered(
        conn,
        brokerage,
        contact_id,
        agent_email,
        "human_replied",
        now,
    )
    .await?;
    let job = payload::AgentReply {
        number_id,
        agent: agent_email.to_owned(),
        body: body.to_owned(),
        once: once.map(str::to_owned),
        by_text,
        media_ids: media_ids.to_vec(),
    }
    .enqueue(
        conn,
        brokerage,
        Place::for_contact(contact.contact_id, now, now),
    )
    .await?;
    if !media_ids.is_empty() {
        store::media::attach(conn, brokerage, media_ids, job.0).await?;
    }
    Ok(Ok(job.0))
}
