//! Routing's effects (docs/routing.md), in the event's transaction: a new lead is given to an
//! agent, offered to several (first to claim) or handed to the managers; a claim wins once; an
//! unclaimed offer falls back; the escalation moves ownership. Every step leaves a line of the
//! routing trace in the thread.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sqlx::PgConnection;

use crate::domain::alerts::who;
use crate::domain::language::Language;
use crate::domain::routing::{self, Availability, Decision, Mode, Target};
use crate::store::jobs::{JobPayload, Place, payload};
use crate::store::routing::{self as rows, RoutingAgent};
use crate::store::{self, BrokerageId, ContactId, alerts, contacts, conversations};

use super::alerts::{Deliver, notify, raise_alert};

/// Routing's view of a stored agent (an unreadable availability counts as away: never
/// route to someone whose state is unknown).
pub fn agent(a: &RoutingAgent) -> routing::Agent {
    routing::Agent {
        agent_id: a.agent_id,
        weight: u8::try_from(a.weight).unwrap_or(1),
        hours: a.hours_start.zip(a.hours_end),
        availability: Availability::from_stored(&a.availability, a.back_on)
            .unwrap_or(Availability::Away),
        languages: a
            .languages
            .iter()
            .filter_map(|l| Language::parse(l))
            .collect(),
    }
}

/// The language the lead writes in (README.md "Spanish"), or the brokerage's default.
async fn lead_language(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
) -> store::Result<Language> {
    Ok(
        match contacts::language(conn, brokerage, contact_id).await? {
            Some((language, _)) => language,
            None => store::brokerages::default_language(conn, brokerage).await?,
        },
    )
}

pub fn zone(name: &str) -> Tz {
    name.parse::<Tz>().unwrap_or(chrono_tz::America::New_York)
}

fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or(name)
}

/// "Sam and Ava", "Sam, Ava and Jo".
pub fn names(list: &[&str]) -> String {
    match list {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Who a lead is, for texts to agents: "#12 Alex (+1617***0128)".
pub async fn lead_label(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
) -> store::Result<String> {
    let row: Option<(String, Option<String>)> =
        crate::store::inbox::lead_of(conn, brokerage, conversation_id).await?;
    Ok(match row {
        Some((phone, name)) => format!("#{conversation_id} {}", who(name.as_deref(), &phone)),
        None => format!("#{conversation_id}"),
    })
}

/// A conversation nobody owns (new, or its agent left): routed by its number, unless an offer
/// is open. The contact is locked by the caller.
pub async fn route_new(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conv: &conversations::ConversationRef,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> store::Result<()> {
    if conv.assigned_agent_id.is_some()
        || rows::open_offer_for(conn, brokerage, conv.conversation_id)
            .await?
            .is_some()
    {
        return Ok(());
    }
    let Some(number) = rows::number_locked(conn, brokerage, conv.number_id).await? else {
        return Ok(());
    };
    let mode = Mode::parse(&number.routing).unwrap_or_default();
    let ring = rows::ring(conn, brokerage, number.number_id).await?;
    let ring_view: Vec<routing::Agent> = ring.iter().map(agent).collect();
    let language = lead_language(conn, brokerage, contact_id).await?;
    let decision = routing::route(
        mode,
        now,
        zone(&number.time_zone),
        &ring_view,
        number.rr_cursor,
        language,
    );
    apply(
        conn,
        brokerage,
        &Applied {
            conversation_id: conv.conversation_id,
            contact_id,
            number: &number,
            ring: &ring,
            previous: None,
            why: Why::New,
        },
        decision,
        now,
    )
    .await
}

/// Why a decision is applied: the words of its trace and texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    New,
    ClaimTimedOut { secs: i32 },
    Escalated { minutes: i64 },
}

struct Applied<'a> {
    conversation_id: i64,
    contact_id: ContactId,
    number: &'a rows::NumberRouting,
    ring: &'a [RoutingAgent],
    /// The owner it moves from (the escalation).
    previous: Option<i64>,
    why: Why,
}

async fn apply(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    a: &Applied<'_>,
    decision: Decision,
    now: DateTime<Utc>,
) -> store::Result<()> {
    let conv = a.conversation_id;
    for (agent_id, why) in &decision.skipped {
        rows::trace(
            conn,
            brokerage,
            &rows::Trace {
                conversation_id: conv,
                kind: "skipped",
                by_agent_id: None,
                to_agent_id: Some(*agent_id),
                agent_ids: None,
                detail: Some(&why.code()),
                at: now,
            },
        )
        .await?;
    }
    if let Some(cursor) = decision.cursor {
        rows::set_cursor(conn, brokerage, a.number.number_id, cursor).await?;
    }
    let label = lead_label(conn, brokerage, conv).await?;
    match decision.target {
        Target::Assign(agent_id) => {
            conversations::assign(conn, brokerage, conv, Some(agent_id)).await?;
            let kind = if a.previous.is_some() {
                "reassigned"
            } else {
                "routed"
            };
            let mut detail = match a.why {
                Why::New => a.number.routing.clone(),
                Why::ClaimTimedOut { .. } => "claim_timeout".to_owned(),
                Why::Escalated { minutes } => format!("escalated:{minutes}"),
            };
            if let Some(language) = decision.language {
                detail.push('+');
                detail.push_str(language.as_str());
            }
            rows::trace(
                conn,
                brokerage,
                &rows::Trace {
                    conversation_id: conv,
                    kind,
                    by_agent_id: a.previous,
                    to_agent_id: Some(agent_id),
                    agent_ids: None,
                    detail: Some(&detail),
                    at: now,
                },
            )
            .await?;
            told_it_is_theirs(conn, brokerage, a, agent_id, &label, now).await?;
        }
        Target::Offer(agent_ids) => {
            let Some(offer_id) =
                rows::open_offer(conn, brokerage, conv, a.number.number_id, &agent_ids, now)
                    .await?
            else {
                return Ok(());
            };
            rows::trace(
                conn,
                brokerage,
                &rows::Trace {
                    conversation_id: conv,
                    kind: "offered",
                    by_agent_id: None,
                    to_agent_id: None,
                    agent_ids: Some(&agent_ids),
                    detail: decision
                        .language
                        .map(|l| format!("+{}", l.as_str()))
                        .as_deref(),
                    at: now,
                },
            )
            .await?;
            raise_alert(
                conn,
                brokerage,
                &alerts::NewAlert {
                    audience: "agents",
                    reason: "lead_offer",
                    detail: None,
                    contact_id: Some(a.contact_id),
                    message_id: None,
                    call_id: None,
                    now,
                },
                Deliver::To(agent_ids),
            )
            .await?;
            let run_at = now + Duration::seconds(i64::from(a.number.claim_timeout_secs));
            payload::ClaimTimeout {
                claim_offer_id: offer_id,
            }
            .enqueue(
                conn,
                brokerage,
                Place::for_contact(a.contact_id, run_at, now),
            )
            .await?;
        }
        Target::Managers => {
            let managers = rows::managers(conn, brokerage, a.number.office_id).await?;
            let view: Vec<routing::Agent> = managers
                .iter()
                .filter(|m| Some(m.agent_id) != a.previous)
                .map(agent)
                .collect();
            let picked =
                routing::pick_manager(now, zone(&a.number.time_zone), &view).or(a.previous);
            if let Some(manager) = picked {
                conversations::assign(conn, brokerage, conv, Some(manager)).await?;
            }
            rows::trace(
                conn,
                brokerage,
                &rows::Trace {
                    conversation_id: conv,
                    kind: "to_managers",
                    by_agent_id: a.previous,
                    to_agent_id: picked,
                    agent_ids: None,
                    detail: None,
                    at: now,
                },
            )
            .await?;
            if let Some(manager) = picked
                && Some(manager) != a.previous
            {
                told_it_is_theirs(conn, brokerage, a, manager, &label, now).await?;
            }
        }
    }
    Ok(())
}

/// The new owner hears of it (not a new lead routed in turn: its first alert comes with the
/// lead's reply, as before routing), and the one who lost it too.
async fn told_it_is_theirs(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    a: &Applied<'_>,
    to: i64,
    label: &str,
    now: DateTime<Utc>,
) -> store::Result<()> {
    let to_name = name_of(conn, brokerage, a.ring, to).await?;
    let text = match a.why {
        Why::New => return Ok(()),
        Why::ClaimTimedOut { secs } => format!(
            "{label} was not claimed in {} min: it is yours now. Reply here to text them.",
            (secs + 59) / 60
        ),
        Why::Escalated { minutes } => format!(
            "{label}'s reply waited {minutes} min with no answer: it is yours now. Reply here to text them."
        ),
    };
    notify(conn, brokerage, to, Some(a.contact_id), &text, now).await?;
    if let Some(previous) = a.previous
        && previous != to
    {
        notify(
            conn,
            brokerage,
            previous,
            Some(a.contact_id),
            &format!("{label} moved to {to_name}: its reply waited with no answer."),
            now,
        )
        .await?;
    }
    Ok(())
}

async fn name_of(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    ring: &[RoutingAgent],
    agent_id: i64,
) -> store::Result<String> {
    if let Some(a) = ring.iter().find(|a| a.agent_id == agent_id) {
        return Ok(a.name.clone());
    }
    Ok(rows::agent(conn, brokerage, agent_id)
        .await?
        .map_or_else(|| "someone else".to_owned(), |a| a.name))
}

/// What a claim came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Theirs now (the others offered it are told).
    Won,
    AlreadyTheirs,
    /// Someone else has it: their name.
    Held(String),
}

/// `agent_id` claims the conversation (a text's CLAIM, the thread's button, an answered
/// call). Of two claims in the same instant one wins: the offer's row is locked and ended
/// once. Locks the contact first (docs/reliability.md §4).
pub async fn claim(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    contact_id: ContactId,
    agent_id: i64,
    now: DateTime<Utc>,
) -> store::Result<Claimed> {
    contacts::lock(conn, brokerage, contact_id).await?;
    let offer = rows::open_offer_for(conn, brokerage, conversation_id).await?;
    if let Some(offer) = offer.filter(|o| o.agent_ids.contains(&agent_id)) {
        rows::end_offer(
            conn,
            brokerage,
            offer.claim_offer_id,
            "claimed",
            Some(agent_id),
            now,
        )
        .await?;
        conversations::assign(conn, brokerage, conversation_id, Some(agent_id)).await?;
        rows::trace(
            conn,
            brokerage,
            &rows::Trace {
                conversation_id,
                kind: "claimed",
                by_agent_id: Some(agent_id),
                to_agent_id: Some(agent_id),
                agent_ids: None,
                detail: None,
                at: now,
            },
        )
        .await?;
        let label = lead_label(conn, brokerage, conversation_id).await?;
        let me = name_of(conn, brokerage, &[], agent_id).await?;
        for other in offer.agent_ids.iter().filter(|a| **a != agent_id) {
            notify(
                conn,
                brokerage,
                *other,
                Some(contact_id),
                &format!("{label} was claimed by {me}."),
                now,
            )
            .await?;
        }
        return Ok(Claimed::Won);
    }
    let Some(conv) = conversations::for_contact(conn, brokerage, contact_id).await? else {
        return Err(store::Error::NotFound);
    };
    match conv.assigned_agent_id {
        Some(a) if a == agent_id => Ok(Claimed::AlreadyTheirs),
        Some(a) => Ok(Claimed::Held(name_of(conn, brokerage, &[], a).await?)),
        None => {
            conversations::assign(conn, brokerage, conversation_id, Some(agent_id)).await?;
            rows::trace(
                conn,
                brokerage,
                &rows::Trace {
                    conversation_id,
                    kind: "claimed",
                    by_agent_id: Some(agent_id),
                    to_agent_id: Some(agent_id),
                    agent_ids: None,
                    detail: None,
                    at: now,
                },
            )
            .await?;
            Ok(Claimed::Won)
        }
    }
}

/// A person assigned the conversation in the inbox: an open offer ends (`withdrawn`).
pub async fn withdraw_offer(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    now: DateTime<Utc>,
) -> store::Result<()> {
    if let Some(offer) = rows::open_offer_for(conn, brokerage, conversation_id).await? {
        rows::end_offer(
            conn,
            brokerage,
            offer.claim_offer_id,
            "withdrawn",
            None,
            now,
        )
        .await?;
    }
    Ok(())
}

/// The `claim_timeout` job's effect: an offer still open ends, and the lead falls back to a
/// round robin among the agents available now, then the managers. False when it had been
/// claimed (or withdrawn) meanwhile.
pub async fn claim_timed_out(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    claim_offer_id: i64,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> store::Result<bool> {
    contacts::lock(conn, brokerage, contact_id).await?;
    let Some(offer) = rows::offer_if_open(conn, brokerage, claim_offer_id).await? else {
        return Ok(false);
    };
    rows::end_offer(
        conn,
        brokerage,
        offer.claim_offer_id,
        "timed_out",
        None,
        now,
    )
    .await?;
    rows::trace(
        conn,
        brokerage,
        &rows::Trace {
            conversation_id: offer.conversation_id,
            kind: "claim_timed_out",
            by_agent_id: None,
            to_agent_id: None,
            agent_ids: Some(&offer.agent_ids),
            detail: None,
            at: now,
        },
    )
    .await?;
    let Some(number) = rows::number_locked(conn, brokerage, offer.number_id).await? else {
        return Ok(true);
    };
    let ring = rows::ring(conn, brokerage, number.number_id).await?;
    let view: Vec<routing::Agent> = ring.iter().map(agent).collect();
    let language = lead_language(conn, brokerage, contact_id).await?;
    let decision = routing::after_claim_timeout(
        now,
        zone(&number.time_zone),
        &view,
        number.rr_cursor,
        language,
    );
    apply(
        conn,
        brokerage,
        &Applied {
            conversation_id: offer.conversation_id,
            contact_id,
            number: &number,
            ring: &ring,
            previous: None,
            why: Why::ClaimTimedOut {
                secs: number.claim_timeout_secs,
            },
        },
        decision,
        now,
    )
    .await?;
    Ok(true)
}

/// The escalation moves the conversation (docs/routing.md): to the next available agent by the
/// number's routing, never back to its owner; else a manager. Both people are told.
pub async fn reassign_on_escalation(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    wait: &conversations::OpenWait,
    now: DateTime<Utc>,
) -> store::Result<()> {
    // An offer still open has nobody to move it from: it falls back when it times out.
    if rows::open_offer_for(conn, brokerage, wait.conversation_id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let Some(number) = rows::number_locked(conn, brokerage, wait.number_id).await? else {
        return Ok(());
    };
    let mode = Mode::parse(&number.routing).unwrap_or_default();
    let ring = rows::ring(conn, brokerage, number.number_id).await?;
    let view: Vec<routing::Agent> = ring.iter().map(agent).collect();
    let language = lead_language(conn, brokerage, wait.contact_id).await?;
    let decision = routing::reassign(
        mode,
        now,
        zone(&number.time_zone),
        &view,
        number.rr_cursor,
        wait.assigned_agent_id,
        language,
    );
    apply(
        conn,
        brokerage,
        &Applied {
            conversation_id: wait.conversation_id,
            contact_id: wait.contact_id,
            number: &number,
            ring: &ring,
            previous: wait.assigned_agent_id,
            why: Why::Escalated {
                minutes: (now - wait.waiting_since).num_minutes().max(0),
            },
        },
        decision,
        now,
    )
    .await
}

/// Who an incoming call rings (agent ids): the routing's pick among the number's ring, else the
/// office's managers when nobody is available.
pub async fn ring_for_call(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    number_id: i64,
    owner: Option<i64>,
    now: DateTime<Utc>,
) -> store::Result<Vec<RoutingAgent>> {
    let Some(number) = rows::number(conn, brokerage, number_id).await? else {
        return Ok(Vec::new());
    };
    let mode = Mode::parse(&number.routing).unwrap_or_default();
    let ring = rows::ring(conn, brokerage, number_id).await?;
    let view: Vec<routing::Agent> = ring.iter().map(agent).collect();
    let picked = routing::ring_for_call(mode, now, zone(&number.time_zone), &view, owner);
    if picked.is_empty() {
        return rows::managers(conn, brokerage, number.office_id).await;
    }
    Ok(ring
        .into_iter()
        .filter(|a| picked.contains(&a.agent_id))
        .collect())
}

/// The first name of an agent, for short texts.
pub fn short(name: &str) -> &str {
    first_name(name)
}
