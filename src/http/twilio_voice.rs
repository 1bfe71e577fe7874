//! Voice webhooks: the incoming call, the screen on each agent's leg, the dial result and the
//! parent call's status callbacks. Each records facts idempotently and answers at once; the
//! text-back that follows a miss is scheduled in the dial result's transaction
//! (`effects::on_missed_call`, docs/architecture.md step 2).

use axum::extract::State;
use axum::response::Response;

use super::twilio_guard::{TwilioForm, with_outcome};
use super::{AppState, Result, empty_ok, foreign_account, twiml_response};
use crate::domain::dial::{self, DialOutcome};
use crate::domain::phone::{PhoneNumber, mask};
use crate::effects;
use crate::store::{BrokerageId, calls, contacts, conversations, numbers, tasks};
use crate::twilio::twiml;
use crate::twilio::webhook::{CallStatus, DialResult, ScreenLeg, VoiceIncoming};

fn unknown_number(to: &str, endpoint: &'static str) -> Response {
    tracing::info!(endpoint, to = %mask(to), "webhook for a number that is not a brokerage's; answered with an empty response");
    with_outcome(twiml_response(twiml::empty()), "unknown_number")
}

/// The contact for a caller whose `From` is E.164; `None` (and the reason) otherwise: such a
/// caller never becomes a contact (docs/architecture.md step 1).
///
/// The contact is locked (`FOR UPDATE`) before the call that references it is inserted: a miss
/// locks it anyway (docs/architecture.md step 2), and taking the lock after the insert's foreign-key
/// share lock would let two concurrent misses deadlock.
async fn contact_for(
    conn: &mut sqlx::PgConnection,
    brokerage: BrokerageId,
    from_raw: &str,
) -> crate::store::Result<(Option<crate::store::ContactId>, Option<&'static str>)> {
    match PhoneNumber::parse(from_raw) {
        Ok(phone) => Ok((
            Some(contacts::upsert_locked(conn, brokerage, &phone).await?),
            None,
        )),
        Err(_) => Ok((None, Some("invalid_number"))),
    }
}

/// `/twilio/voice`: record the call and ring the number's agents.
#[tracing::instrument(skip_all, fields(call_sid = %call.call_sid.as_str()))]
pub async fn voice_incoming(
    State(state): State<AppState>,
    TwilioForm(call): TwilioForm<VoiceIncoming>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let Some(number) = numbers::resolve(&mut tx, &call.to_raw)
        .await?
        .filter(|n| n.is_active)
    else {
        return Ok(unknown_number(&call.to_raw, "/twilio/voice"));
    };
    if let Some(refused) = foreign_account(
        &state,
        number.twilio_account_sid.as_deref(),
        call.signed_by.as_deref(),
    ) {
        return Ok(refused);
    }
    let brokerage = number.brokerage_id;
    let (contact_id, invalid_reason) = contact_for(&mut tx, brokerage, &call.from_raw).await?;
    let inserted = calls::insert_if_new(
        &mut tx,
        brokerage,
        &calls::NewCall {
            number_id: number.number_id,
            contact_id,
            call_sid: call.call_sid.as_str(),
            from_raw: &call.from_raw,
            invalid_reason,
            call_status: call.call_status.as_deref(),
            started_at: now,
        },
    )
    .await?;
    if inserted.is_none() && !calls::exists(&mut tx, brokerage, call.call_sid.as_str()).await? {
        // The CallSid is another brokerage's call: never touch it from here. The transaction
        // is dropped, so the contact upsert above is rolled back too.
        tracing::warn!(to = %mask(&call.to_raw), "incoming call whose CallSid belongs to another brokerage's number; ignored");
        return Ok(with_outcome(twiml_response(twiml::empty()), "unknown_sid"));
    }
    let mut owner = None;
    if let (Some(_), Some(contact_id)) = (inserted, contact_id) {
        // The call shows in the contact's conversation (created, or moved to this number),
        // and a new lead is routed (docs/routing.md).
        let conv =
            conversations::touch_inbound(&mut tx, brokerage, contact_id, number.number_id, now)
                .await?;
        effects::routing::route_new(&mut tx, brokerage, &conv, contact_id, now).await?;
    }
    if let Some(contact_id) = contact_id {
        owner = conversations::for_contact(&mut tx, brokerage, contact_id)
            .await?
            .and_then(|c| c.assigned_agent_id);
    }
    // Who rings follows the routing: availability, and the owner alone for round robin and
    // first to claim (docs/routing.md).
    let ring: Vec<numbers::RingAgent> =
        effects::routing::ring_for_call(&mut tx, brokerage, number.number_id, owner, now)
            .await?
            .into_iter()
            .filter_map(|a| {
                PhoneNumber::parse(&a.phone)
                    .ok()
                    .map(|phone| numbers::RingAgent {
                        agent_id: a.agent_id,
                        phone,
                    })
            })
            .collect();
    if let Some(call_id) = inserted {
        let ids: Vec<i64> = ring.iter().map(|a| a.agent_id).collect();
        calls::set_rang(&mut tx, brokerage, call_id, &ids).await?;
    }
    tx.commit().await?;

    if inserted.is_some() {
        tracing::info!(brokerage = brokerage.0, from = %mask(&call.from_raw), agents = ring.len(), "incoming call");
    }
    let body = if ring.is_empty() {
        // Cannot happen with a valid setup file (ring names agents of the file); answered
        // like a miss rather than with a <Dial> Twilio would refuse.
        tracing::error!(
            brokerage = brokerage.0,
            number_id = number.number_id,
            "number has no active agent to ring"
        );
        match &number.missed_message {
            Some(message) => twiml::say_then_hangup(message),
            None => twiml::hangup(),
        }
    } else {
        let action = state.config.public_url.join("/twilio/voice/dial");
        let screen = state.config.public_url.join("/twilio/voice/screen");
        let targets: Vec<twiml::DialTarget<'_>> = ring
            .iter()
            .map(|a| twiml::DialTarget {
                number: a.phone.as_e164(),
                screen_url: number.screen.then_some(screen.as_str()),
            })
            .collect();
        twiml::dial(number.ring_timeout_secs, &action, &targets)
    };
    let response = twiml_response(body);
    Ok(if inserted.is_some() {
        response
    } else {
        with_outcome(response, "duplicate")
    })
}

/// `/twilio/voice/screen`: on an agent's leg, after it answers and before it is bridged.
#[tracing::instrument(skip_all, fields(call_sid = %leg.call_sid.as_str()))]
pub async fn voice_screen(
    State(state): State<AppState>,
    TwilioForm(leg): TwilioForm<ScreenLeg>,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let mut prompt = "You have a call. Press 1 to take it.".to_owned();
    if let Some(parent) = &leg.parent_call_sid
        && let Some((brokerage, _, number_id, _)) =
            calls::resolve_parent(&mut conn, parent.as_str()).await?
        && let Some(number) = numbers::get(&mut conn, brokerage, number_id).await?
    {
        if let Some(refused) = foreign_account(
            &state,
            number.twilio_account_sid.as_deref(),
            leg.signed_by.as_deref(),
        ) {
            return Ok(refused);
        }
        prompt = match &number.listing {
            Some(listing) => format!(
                "Call for {} about {listing}. Press 1 to take it.",
                number.brokerage_name
            ),
            None => format!("Call for {}. Press 1 to take it.", number.brokerage_name),
        };
    }
    let action = state.config.public_url.join("/twilio/voice/screen/answer");
    Ok(twiml_response(twiml::screen(&prompt, &action)))
}

/// `/twilio/voice/screen/answer`: `1` ends the screen's TwiML, so Twilio bridges the agent;
/// anything else (a voicemail greeting pressing nothing, a wrong key) hangs up that leg.
#[tracing::instrument(skip_all, fields(call_sid = %leg.call_sid.as_str()))]
pub async fn voice_screen_answer(
    State(state): State<AppState>,
    TwilioForm(leg): TwilioForm<ScreenLeg>,
) -> Result<Response> {
    if leg.digits.as_deref() != Some("1") {
        return Ok(twiml_response(twiml::hangup()));
    }
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    if let Some(parent) = &leg.parent_call_sid
        && let Some((brokerage, call_id, number_id, _)) =
            calls::resolve_parent(&mut tx, parent.as_str()).await?
    {
        let account = numbers::get(&mut tx, brokerage, number_id)
            .await?
            .and_then(|n| n.twilio_account_sid);
        if let Some(refused) = foreign_account(&state, account.as_deref(), leg.signed_by.as_deref())
        {
            return Ok(refused);
        }
        let agent_id = match &leg.to_raw {
            Some(to) => numbers::agent_by_phone(&mut tx, brokerage, to).await?,
            None => None,
        };
        // An unknown phone (changed mid-call) records nothing rather than blocking the record.
        if let Some(agent_id) = agent_id {
            calls::record_screen_accept(&mut tx, brokerage, call_id, agent_id, now).await?;
        }
    }
    tx.commit().await?;
    Ok(twiml_response(twiml::empty()))
}

/// `/twilio/voice/dial`: the `<Dial action>` result, classified by the precedence table of
/// docs/twilio.md §1.6 and recorded once.
#[tracing::instrument(skip_all, fields(call_sid = %result.call_sid.as_str()))]
pub async fn voice_dial_result(
    State(state): State<AppState>,
    TwilioForm(result): TwilioForm<DialResult>,
) -> Result<Response> {
    let now = state.clock.now();
    let to = result.to_raw.as_deref().unwrap_or_default();
    let mut tx = state.pool.begin().await?;
    // A number removed from the setup file mid-call still gets its dial result recorded.
    let Some(number) = numbers::resolve(&mut tx, to).await? else {
        return Ok(unknown_number(to, "/twilio/voice/dial"));
    };
    if let Some(refused) = foreign_account(
        &state,
        number.twilio_account_sid.as_deref(),
        result.signed_by.as_deref(),
    ) {
        return Ok(refused);
    }
    let brokerage = number.brokerage_id;
    let sid = result.call_sid.as_str();

    let bridged = dial::parse_bridged(result.dial_bridged_raw.as_deref());
    let outcome = dial::classify(bridged, &result.dial_call_status);
    let facts = calls::DialFacts {
        dial_call_status: &result.dial_call_status,
        dial_bridged: bridged,
        dial_call_sid: result.dial_call_sid.as_ref().map(|s| s.as_str()),
        dial_call_duration: result.dial_call_duration,
        outcome: outcome.as_str(),
        parent_call_status: result.parent_call_status.as_deref(),
        at: now,
    };
    let mut record = calls::record_dial_result(&mut tx, brokerage, sid, &facts).await?;
    if record == calls::DialRecord::NoSuchCall {
        // The incoming-call request never reached us (or failed): the dial result carries the
        // same standard parameters, so record the call from it, then the result.
        let from_raw = result.from_raw.as_deref().unwrap_or_default();
        let (contact_id, invalid_reason) = contact_for(&mut tx, brokerage, from_raw).await?;
        let new_call = calls::NewCall {
            number_id: number.number_id,
            contact_id,
            call_sid: sid,
            from_raw,
            invalid_reason,
            call_status: result.parent_call_status.as_deref(),
            started_at: now,
        };
        calls::insert_if_new(&mut tx, brokerage, &new_call).await?;
        record = calls::record_dial_result(&mut tx, brokerage, sid, &facts).await?;
    }
    let recorded = match record {
        calls::DialRecord::Recorded {
            call_id,
            contact_id,
            previous,
        } => {
            // What the outcome means for the contact, in this same transaction.
            if let Some(contact_id) = contact_id {
                match outcome {
                    // A miss the status callback already inferred was handled then.
                    DialOutcome::Missed if previous.as_deref() != Some("missed") => {
                        let action = effects::on_missed_call(
                            &mut tx, brokerage, contact_id, call_id, &number, now,
                        )
                        .await?;
                        tracing::info!(action = ?action, "missed call");
                    }
                    DialOutcome::Missed => {}
                    DialOutcome::Answered => {
                        effects::on_answered_call(&mut tx, brokerage, contact_id, now).await?;
                        // The agent who took the call claims a lead offered to them
                        // (docs/routing.md): known from the screen, or the one agent rung.
                        if let Some(agent) = calls::answerer(&mut tx, brokerage, call_id).await?
                            && let Some(conv) =
                                conversations::for_contact(&mut tx, brokerage, contact_id).await?
                            && conv.assigned_agent_id.is_none()
                        {
                            effects::routing::claim(
                                &mut tx,
                                brokerage,
                                conv.conversation_id,
                                contact_id,
                                agent,
                                now,
                            )
                            .await?;
                        }
                    }
                    DialOutcome::Unclassified => {
                        effects::open_callback_task(
                            &mut tx,
                            brokerage,
                            &tasks::NewTask {
                                contact_id,
                                number_id: number.number_id,
                                call_id: Some(call_id),
                                message_id: None,
                                reason: "unclassified_call",
                                detail: Some(&result.dial_call_status),
                                now,
                            },
                        )
                        .await?;
                    }
                }
            }
            true
        }
        calls::DialRecord::AlreadyRecorded => false,
        calls::DialRecord::NoSuchCall => {
            // The CallSid is another brokerage's call: never touch it from here. The
            // transaction is dropped, so the contact upsert above is rolled back too.
            tracing::warn!(to = %mask(to), "dial result whose CallSid belongs to another brokerage's number; ignored");
            return Ok(with_outcome(twiml_response(twiml::empty()), "unknown_sid"));
        }
    };
    tx.commit().await?;
    if recorded {
        tracing::info!(brokerage = brokerage.0, outcome = outcome.as_str(), dial_call_status = %result.dial_call_status, "dial result");
    }

    let caller_gone = result
        .parent_call_status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("completed"));
    let body = match outcome {
        DialOutcome::Answered => twiml::hangup(),
        _ if caller_gone => twiml::empty(),
        DialOutcome::Missed if number.voicemail => {
            let base = &state.config.public_url;
            let (action, recording, transcribe) = (
                base.join("/twilio/voice/voicemail"),
                base.join("/twilio/voice/recording"),
                base.join("/twilio/voice/transcription"),
            );
            twiml::voicemail(
                number.missed_message.as_deref(),
                &twiml::Voicemail {
                    action_url: &action,
                    recording_status_url: &recording,
                    transcribe_url: Some(&transcribe),
                    max_secs: 120,
                },
            )
        }
        DialOutcome::Missed => match &number.missed_message {
            Some(message) => twiml::say_then_hangup(message),
            None => twiml::hangup(),
        },
        DialOutcome::Unclassified => twiml::hangup(),
    };
    let response = twiml_response(body);
    Ok(if recorded {
        response
    } else {
        with_outcome(response, "duplicate")
    })
}

/// `/twilio/voice/status`: the parent call's status callbacks. A backup signal: a final status
/// with no dial result recorded means the caller hung up while the agents were ringing, a
/// missed call (docs/twilio.md §1.6 point 3); the dial result, when it comes, is authoritative.
#[tracing::instrument(skip_all, fields(call_sid = %status.call_sid.as_str()))]
pub async fn voice_status(
    State(state): State<AppState>,
    TwilioForm(status): TwilioForm<CallStatus>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let number = match &status.to_raw {
        Some(to) => numbers::resolve(&mut tx, to).await?,
        None => None,
    };
    let call = match &number {
        Some(n) => {
            calls::find_for_update(&mut tx, n.brokerage_id, status.call_sid.as_str()).await?
        }
        None => None,
    };
    let (Some(number), Some(call)) = (number, call) else {
        tracing::info!("status callback for a call we have no record of; ignored");
        return Ok(with_outcome(empty_ok(), "unknown_sid"));
    };
    if let Some(refused) = foreign_account(
        &state,
        number.twilio_account_sid.as_deref(),
        status.signed_by.as_deref(),
    ) {
        return Ok(refused);
    }
    let brokerage = number.brokerage_id;
    let new = calls::insert_event_if_new(
        &mut tx,
        brokerage,
        call.call_id,
        &status.call_status,
        status.sequence_number,
        status.call_duration,
        now,
    )
    .await?;
    if !new {
        return Ok(with_outcome(empty_ok(), "duplicate"));
    }
    calls::advance_status(&mut tx, brokerage, call.call_id, &status.call_status).await?;
    if call.outcome.is_none()
        && dial::classify_parent_final(&status.call_status) == Some(DialOutcome::Missed)
    {
        calls::record_miss_from_status(&mut tx, brokerage, call.call_id, now).await?;
        if let Some(contact_id) = call.contact_id {
            effects::on_missed_call(&mut tx, brokerage, contact_id, call.call_id, &number, now)
                .await?;
        }
        tracing::info!(
            brokerage = brokerage.0,
            "call ended before any dial result: recorded as missed"
        );
    }
    tx.commit().await?;
    Ok(empty_ok())
}
