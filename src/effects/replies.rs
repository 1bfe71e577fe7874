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
    queue_agent_reply_once(
        conn,
        brokerage,
        contact_id,
        number_id,
        agent_email,
        body,
        None,
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
        body,
        None,
        Some(agent_id),
        now,
    )
    .await
}

/// [`queue_agent_reply`] for a form carrying a one-time token (`once`): a second submission
/// of the same form (a double click, a reload of the POST) finds the first one's job and
/// queues nothing more.
#[allow(clippy::too_many_arguments)]
pub async fn queue_agent_reply_once(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    agent_email: &str,
    body: &str,
    once: Option<&str>,
    now: DateTime<Utc>,
) -> store::Result<Result<i64, ReplyRefused>> {
    queue(
        conn,
        brokerage,
        contact_id,
        number_id,
        agent_email,
        body,
        once,
        None,
        now,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn queue(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    number_id: i64,
    agent_email: &str,
    body: &str,
    once: Option<&str>,
    by_text: Option<i64>,
    now: DateTime<Utc>,
) -> store::Result<Result<i64, ReplyRefused>> {
    let body = body.trim();
    if body.is_empty() {
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
    }
    .enqueue(
        conn,
        brokerage,
        Place::for_contact(contact.contact_id, now, now),
    )
    .await?;
    Ok(Ok(job.0))
}
