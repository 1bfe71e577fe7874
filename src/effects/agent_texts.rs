//! A text from an agent's phone to a brokerage number (README.md "Agents on their phones"): a
//! reply relayed to the lead through the gate and the at-most-once sender, or a command (claim,
//! close, take over, call back). Which conversation it means is decided by
//! `domain::agent_text`; when that is not clear, the agent is asked and nothing goes to a lead.
//! Every text is kept (`agent_text`) with what was made of it, once per MessageSid.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;

use crate::domain::agent_text::{self, Command, Which};
use crate::domain::alerts::who;
use crate::domain::callback::Origin;
use crate::store::routing::{self as rows, OpenAlert};
use crate::store::{self, BrokerageId, conversations};

use super::alerts::notify;
use super::callbacks::{Ask, Asked, ask};
use super::replies::{ReplyRefused, queue_agent_reply_by_text};
use super::routing::{Claimed, claim, lead_label};

/// How far back an alert makes a conversation one an agent's text may mean.
pub const OPEN_ALERT_HOURS: i64 = 8;

/// The text as the webhook received it.
pub struct AgentText<'a> {
    pub number_id: i64,
    pub message_sid: &'a str,
    pub from: &'a str,
    pub body: &'a str,
    pub opt_out_type: Option<&'a str>,
}

/// What was made of it (the webhook's log and metrics label).
pub async fn on_agent_text(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    agent: Option<i64>,
    text: &AgentText<'_>,
    now: DateTime<Utc>,
) -> store::Result<&'static str> {
    let Some(text_id) = rows::insert_agent_text(
        conn,
        brokerage,
        &rows::NewAgentText {
            number_id: text.number_id,
            agent_id: agent,
            message_sid: text.message_sid,
            from_phone: text.from,
            body: text.body,
            received_at: now,
        },
    )
    .await?
    else {
        return Ok("duplicate");
    };
    let Some(person) = (match agent {
        Some(a) => rows::agent(conn, brokerage, a).await?,
        None => None,
    }) else {
        // A removed agent's phone: recorded, never acted on, never answered.
        rows::settle_agent_text(conn, text_id, "ignored", Some("removed_agent"), None, None)
            .await?;
        return Ok("removed_agent");
    };
    let parsed = agent_text::parse(text.body, text.opt_out_type);
    let settle = |outcome: &'static str,
                  detail: Option<String>,
                  conv: Option<i64>,
                  job: Option<i64>| { (outcome, detail, conv, job) };
    let (outcome, detail, conversation, job) = match &parsed.command {
        Command::Empty => settle("ignored", Some("empty".into()), None, None),
        // The carrier acts on STOP for the agent's own phone; relaying it would opt a lead out
        // of nothing and tell them a keyword they never sent.
        Command::Keyword => settle("ignored", Some("keyword".into()), None, None),
        Command::Help => {
            notify(
                conn,
                brokerage,
                person.agent_id,
                None,
                &format!(
                    "{} Start with a lead's number (#12) when you have several.",
                    agent_text::COMMANDS
                ),
                now,
            )
            .await?;
            settle("help", None, None, None)
        }
        command => {
            let open = rows::open_alerts(
                conn,
                brokerage,
                person.agent_id,
                text.number_id,
                now - Duration::hours(OPEN_ALERT_HOURS),
            )
            .await?;
            let ids: Vec<i64> = open.iter().map(|o| o.conversation_id).collect();
            match agent_text::which(parsed.conversation, &ids) {
                Which::None => {
                    let words = match parsed.conversation {
                        Some(id) => format!(
                            "#{id} is not one of your open leads on this number. Nothing was sent."
                        ),
                        None => "You have no open lead on this number to answer. Nothing was sent."
                            .to_owned(),
                    };
                    notify(conn, brokerage, person.agent_id, None, &words, now).await?;
                    settle(
                        "refused",
                        Some("no_conversation".into()),
                        parsed.conversation,
                        None,
                    )
                }
                Which::Ambiguous(many) => {
                    let candidates: Vec<(i64, String)> = open
                        .iter()
                        .filter(|o| many.contains(&o.conversation_id))
                        .map(|o| {
                            (
                                o.conversation_id,
                                who(o.contact_name.as_deref(), &o.contact_phone),
                            )
                        })
                        .collect();
                    notify(
                        conn,
                        brokerage,
                        person.agent_id,
                        None,
                        &agent_text::question(&candidates),
                        now,
                    )
                    .await?;
                    settle("ambiguous", None, None, None)
                }
                Which::One(id) => {
                    let Some(target) = open.iter().find(|o| o.conversation_id == id) else {
                        return Err(store::Error::NotFound);
                    };
                    let (outcome, detail, job) =
                        act(conn, brokerage, &person, target, command, now).await?;
                    settle(outcome, detail, Some(id), job)
                }
            }
        }
    };
    rows::settle_agent_text(conn, text_id, outcome, detail.as_deref(), conversation, job).await?;
    if let Some(conversation_id) = conversation
        && outcome != "refused"
    {
        rows::trace(
            conn,
            brokerage,
            &rows::Trace {
                conversation_id,
                kind: "agent_text",
                by_agent_id: Some(person.agent_id),
                to_agent_id: None,
                agent_ids: None,
                detail: Some(parsed.command.as_str()),
                at: now,
            },
        )
        .await?;
    }
    Ok(outcome)
}

/// Carries out a command on one conversation the agent may act on. Returns the outcome, its
/// detail, and the reply's job when one was queued.
async fn act(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    person: &rows::RoutingAgent,
    target: &OpenAlert,
    command: &Command,
    now: DateTime<Utc>,
) -> store::Result<(&'static str, Option<String>, Option<i64>)> {
    let conv = target.conversation_id;
    let label = lead_label(conn, brokerage, conv).await?;
    let mine = target.assigned_agent_id == Some(person.agent_id);
    let oversees = person.role == "admin" || (person.role == "manager");
    let owner_name = match target.assigned_agent_id {
        Some(a) if !mine => rows::agent(conn, brokerage, a).await?.map(|a| a.name),
        _ => None,
    };
    let not_yours = |what: &str| match &owner_name {
        Some(name) => format!("{label} is {name}'s: {what}. Text TAKE OVER to take it first."),
        None => format!("{label} is not yours yet: {what}. Text CLAIM or TAKE OVER first."),
    };
    match command {
        Command::Reply(body) => {
            if !mine {
                notify(
                    conn,
                    brokerage,
                    person.agent_id,
                    Some(target.contact_id),
                    &not_yours("nothing was sent"),
                    now,
                )
                .await?;
                return Ok(("refused", Some("not_theirs".into()), None));
            }
            match queue_agent_reply_by_text(
                conn,
                brokerage,
                target.contact_id,
                target.number_id,
                &person.email,
                person.agent_id,
                body,
                now,
            )
            .await?
            {
                Ok(job) => Ok(("reply", None, Some(job))),
                Err(refused) => {
                    notify(
                        conn,
                        brokerage,
                        person.agent_id,
                        Some(target.contact_id),
                        &format!("Not sent to {label}: {}", refused_words(refused)),
                        now,
                    )
                    .await?;
                    Ok(("refused", Some(refused.reason().to_owned()), None))
                }
            }
        }
        Command::Claim => {
            let result = claim(
                conn,
                brokerage,
                conv,
                target.contact_id,
                person.agent_id,
                now,
            )
            .await?;
            let words = match &result {
                Claimed::Won => format!("{label} is yours. Reply here to text them."),
                Claimed::AlreadyTheirs => format!("{label} is already yours."),
                Claimed::Held(name) => format!("{label} is already {name}'s. Nothing changed."),
            };
            notify(
                conn,
                brokerage,
                person.agent_id,
                Some(target.contact_id),
                &words,
                now,
            )
            .await?;
            Ok(match result {
                Claimed::Won => ("claim", None, None),
                Claimed::AlreadyTheirs => ("claim", Some("already_theirs".into()), None),
                Claimed::Held(_) => ("refused", Some("claimed_by_other".into()), None),
            })
        }
        Command::Close => {
            if !mine && !oversees {
                notify(
                    conn,
                    brokerage,
                    person.agent_id,
                    Some(target.contact_id),
                    &not_yours("not closed"),
                    now,
                )
                .await?;
                return Ok(("refused", Some("not_theirs".into()), None));
            }
            super::people::set_closed(conn, brokerage, conv, true, &person.email, now).await?;
            conversations::record_event(
                conn,
                brokerage,
                conv,
                "closed",
                Some(person.agent_id),
                None,
                now,
            )
            .await?;
            notify(
                conn,
                brokerage,
                person.agent_id,
                Some(target.contact_id),
                &format!("{label} closed."),
                now,
            )
            .await?;
            Ok(("close", None, None))
        }
        Command::TakeOver => {
            if !mine && !oversees && !target.offered {
                notify(
                    conn,
                    brokerage,
                    person.agent_id,
                    Some(target.contact_id),
                    &format!(
                        "{label} is {}'s; only its owner or a manager can take it over.",
                        owner_name.as_deref().unwrap_or("someone else")
                    ),
                    now,
                )
                .await?;
                return Ok(("refused", Some("not_theirs".into()), None));
            }
            if target.offered {
                super::routing::withdraw_offer(conn, brokerage, conv, now).await?;
            }
            if conversations::assign(conn, brokerage, conv, Some(person.agent_id)).await? {
                conversations::record_event(
                    conn,
                    brokerage,
                    conv,
                    "assigned",
                    Some(person.agent_id),
                    Some(person.agent_id),
                    now,
                )
                .await?;
                if let Some(previous) = target.assigned_agent_id {
                    notify(
                        conn,
                        brokerage,
                        previous,
                        Some(target.contact_id),
                        &format!("{label} was taken over by {}.", person.name),
                        now,
                    )
                    .await?;
                }
            }
            if super::people::take_over(conn, brokerage, conv, &person.email, now).await? {
                conversations::record_event(
                    conn,
                    brokerage,
                    conv,
                    "taken_over",
                    Some(person.agent_id),
                    None,
                    now,
                )
                .await?;
            }
            notify(
                conn,
                brokerage,
                person.agent_id,
                Some(target.contact_id),
                &format!(
                    "{label} is yours; its automated texts have stopped. Reply here to text them."
                ),
                now,
            )
            .await?;
            Ok(("take_over", None, None))
        }
        Command::CallBack => {
            if !mine && !oversees {
                notify(
                    conn,
                    brokerage,
                    person.agent_id,
                    Some(target.contact_id),
                    &not_yours("no call placed"),
                    now,
                )
                .await?;
                return Ok(("refused", Some("not_theirs".into()), None));
            }
            let asked = ask(
                conn,
                brokerage,
                &Ask {
                    contact_id: target.contact_id,
                    number_id: target.number_id,
                    origin: Origin::Link,
                    requested_by: Some(person.agent_id),
                    agent_id: person.agent_id,
                    remaining: Vec::new(),
                    call_id: None,
                },
                now,
            )
            .await?;
            let (words, outcome) = match &asked {
                Asked::Queued { .. } => (
                    format!("Calling you now to connect you with {label}."),
                    "call_back",
                ),
                Asked::AlreadyLive => (
                    format!("A callback to {label} is already under way."),
                    "call_back",
                ),
                Asked::Refused { words, .. } => {
                    (format!("No call to {label}: {words}."), "refused")
                }
            };
            notify(
                conn,
                brokerage,
                person.agent_id,
                Some(target.contact_id),
                &words,
                now,
            )
            .await?;
            Ok((outcome, None, None))
        }
        Command::Help | Command::Keyword | Command::Empty => Ok(("ignored", None, None)),
    }
}

/// Why a relayed reply was refused, in the words texted back to the agent.
pub fn refused_words(refused: ReplyRefused) -> &'static str {
    match refused {
        ReplyRefused::OptedOut => "they opted out of texts",
        ReplyRefused::ReviewHold => {
            "their last text may be an opt-out; decide it in the inbox first"
        }
        ReplyRefused::Shortener => "link shorteners are not allowed; use the full link",
        ReplyRefused::Empty => "the text was empty",
    }
}
