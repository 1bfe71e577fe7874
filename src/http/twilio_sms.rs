//! Messaging webhooks: inbound texts and outbound status callbacks.

use axum::extract::State;
use axum::response::Response;

use super::twilio_guard::{TwilioForm, with_outcome};
use super::{AppState, Result, empty_ok, foreign_account, twiml_response};
use crate::domain::keywords;
use crate::domain::phone::{PhoneNumber, mask};
use crate::effects;
use crate::store::jobs::JobPayload as _;
use crate::store::{self, contacts, conversations, jobs, messages, numbers, suppressions};
use crate::twilio::twiml;
use crate::twilio::webhook::{MessageStatus, SmsInbound};

/// `/twilio/sms`: store the text verbatim in the contact's conversation, once per
/// `MessageSid`. Replies go out through the REST API and the gate, never as TwiML, so the
/// answer is always an empty `<Response/>`. Keywords are classified (docs/compliance.md §4) and
/// have their effects in the same transaction: an opt-out is in force once Twilio has our 200.
#[tracing::instrument(skip_all, fields(message_sid = %sms.message_sid.as_str()))]
pub async fn sms_inbound(
    State(state): State<AppState>,
    TwilioForm(sms): TwilioForm<SmsInbound>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    // A number removed from the setup file still takes texts: a lead's STOP to it must never be
    // lost (its history is kept; README.md "The setup file").
    let Some(number) = numbers::resolve(&mut tx, &sms.to_raw).await? else {
        tracing::info!(to = %mask(&sms.to_raw), "text to a number that is not a brokerage's; answered with an empty response");
        return Ok(with_outcome(
            twiml_response(twiml::empty()),
            "unknown_number",
        ));
    };
    if let Some(refused) = foreign_account(
        &state,
        number.twilio_account_sid.as_deref(),
        sms.signed_by.as_deref(),
    ) {
        return Ok(refused);
    }
    let brokerage = number.brokerage_id;
    // One of the brokerage's own people (README.md "Agents on their phones"): a reply to relay
    // or a command, never a lead's text (stored as one it would alert them again, and
    // escalate, in a loop). A removed agent's text is recorded and ignored.
    if let Some((agent_id, active)) =
        store::routing::agent_by_phone(&mut tx, brokerage, &sms.from_raw).await?
    {
        let outcome = effects::agent_texts::on_agent_text(
            &mut tx,
            brokerage,
            active.then_some(agent_id),
            &effects::agent_texts::AgentText {
                number_id: number.number_id,
                message_sid: sms.message_sid.as_str(),
                from: &sms.from_raw,
                body: &sms.body,
                opt_out_type: sms.opt_out_type.as_deref(),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(from = %mask(&sms.from_raw), outcome, "text from one of the brokerage's agents");
        return Ok(with_outcome(twiml_response(twiml::empty()), "staff"));
    }
    let phone = PhoneNumber::parse(&sms.from_raw).ok();
    let contact_id = match &phone {
        // Locked before the message that references it: the inbound text then locks it to
        // cancel automation, and a lock taken after the insert's share lock could deadlock.
        Some(phone) => Some(contacts::upsert_locked(&mut tx, brokerage, phone).await?),
        None => None,
    };
    // Classified under the contact's lock: whether START lifts something depends on the
    // suppression as it is now (docs/compliance.md §4.3).
    let suppressed = match &phone {
        Some(p) => suppressions::is_suppressed(&mut tx, brokerage, p.as_e164()).await?,
        None => false,
    };
    let classified = keywords::classify(&sms.body, sms.opt_out_type.as_deref(), suppressed);
    let stored = messages::insert_inbound_if_new(
        &mut tx,
        brokerage,
        &messages::NewInbound {
            number_id: number.number_id,
            contact_id,
            sid: sms.message_sid.as_str(),
            from_raw: &sms.from_raw,
            to_raw: &sms.to_raw,
            body: &sms.body,
            num_media: sms.num_media,
            num_segments: sms.num_segments,
            opt_out_type: sms.opt_out_type.as_deref(),
            keyword_class: classified.class.as_str(),
            received_at: now,
        },
    )
    .await?;
    if let (Some(message_id), Some(contact_id), Some(phone)) = (stored, contact_id, &phone) {
        // Its media (README.md "Pictures"): recorded with the text, fetched by their own jobs;
        // a URL that is not Twilio's, of this account, is refused and never fetched.
        let account = state
            .expected_account(number.twilio_account_sid.as_deref())
            .unwrap_or_default();
        for (position, (url, claimed)) in sms.media.iter().enumerate() {
            let sids =
                crate::domain::media::twilio_media_sids(url, state.twilio.api_host(), account);
            if let Err(why) = &sids {
                tracing::warn!(reason = why, "an inbound text's media URL refused");
            }
            let (media_id, to_fetch) = store::media::insert_inbound(
                &mut tx,
                brokerage,
                &store::media::NewInbound {
                    message_id,
                    position: i32::try_from(position).unwrap_or(0),
                    sids,
                    claimed_type: claimed.as_deref(),
                },
                now,
            )
            .await?;
            if to_fetch {
                jobs::payload::MediaFetch { media_id }
                    .enqueue(&mut tx, brokerage, jobs::Place::at(now, now))
                    .await?;
            }
        }
        let conv =
            conversations::touch_inbound(&mut tx, brokerage, contact_id, number.number_id, now)
                .await?;
        let rules = store::gate::brokerage_rules(&mut tx, brokerage).await?;
        effects::note_language(
            &mut tx,
            brokerage,
            contact_id,
            &sms.body,
            rules.default_language(),
            now,
        )
        .await?;
        effects::routing::route_new(&mut tx, brokerage, &conv, contact_id, now).await?;
        let effect = effects::on_inbound_text(
            &mut tx,
            brokerage,
            &effects::Inbound {
                contact_id,
                phone: phone.as_e164(),
                number_id: number.number_id,
                message_id,
                sid: sms.message_sid.as_str(),
                body: &sms.body,
                classified: &classified,
                carrier_answers_keywords: rules.compliance.carrier_answers_keywords,
            },
            now,
        )
        .await?;
        tracing::info!(
            class = effect.class.as_str(),
            changed = effect.changed,
            cancelled = effect.cancelled,
            "inbound text classified"
        );
    }
    tx.commit().await?;
    let response = twiml_response(twiml::empty());
    Ok(match stored {
        Some(_) => {
            // The body is never logged: its length is enough to diagnose.
            tracing::info!(brokerage = brokerage.0, from = %mask(&sms.from_raw), body_chars = sms.body.chars().count(), "inbound text");
            response
        }
        None => with_outcome(response, "duplicate"),
    })
}

/// `/twilio/sms/status`: an outbound message's status moves forward only; every (message,
/// status, code) is kept once with its raw `ErrorCode`, and a code has its effect. The
/// brokerage is found from `From`, our own number.
#[tracing::instrument(skip_all, fields(message_sid = %status.message_sid.as_str()))]
pub async fn sms_status(
    State(state): State<AppState>,
    TwilioForm(status): TwilioForm<MessageStatus>,
) -> Result<Response> {
    let now = state.clock.now();
    let sid = status.message_sid.as_str();
    let mut tx = state.pool.begin().await?;
    let number = match &status.from_raw {
        Some(from) => numbers::resolve(&mut tx, from).await?,
        None => None,
    };
    let Some(number) = number else {
        tracing::info!("status callback for a number that is not a brokerage's; ignored");
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
    let mut message = messages::find_outbound_by_sid(&mut tx, brokerage, sid).await?;
    let mut unsettled = Vec::new();
    if message.is_none()
        && let (Some(to), Some(from)) = (&status.to_raw, &status.from_raw)
    {
        // Wait for a send being recorded right now, then look again (a new statement sees
        // what it committed).
        // (Even when none is left: waiting for the lock may be exactly what let the linking
        // transaction commit and take its row out of the unsettled ones.)
        unsettled = messages::unsettled_between(&mut tx, brokerage, to, from).await?;
        message = messages::find_outbound_by_sid(&mut tx, brokerage, sid).await?;
    }
    let Some(message) = message else {
        // A send whose record is not committed yet, or whose answer never came (a crash or a
        // timeout after the request left): keep the callback for when the sid is linked, and
        // let that send's reconcile run now rather than later (docs/reliability.md §2).
        if unsettled.is_empty() {
            tracing::info!("status callback for a message we have no record of; ignored");
            return Ok(with_outcome(empty_ok(), "unknown_sid"));
        }
        let kept = messages::insert_orphan_status(
            &mut tx,
            brokerage,
            sid,
            &status.message_status,
            status.error_code_raw.as_deref(),
            now,
        )
        .await?;
        for message_id in unsettled {
            if let Some(job_id) =
                jobs::pending_reconcile_for(&mut tx, brokerage, message_id).await?
            {
                jobs::run_now(&mut tx, job_id, now).await?;
            }
        }
        tx.commit().await?;
        tracing::info!("status callback for a send not settled yet: kept until the send is linked");
        return Ok(with_outcome(
            empty_ok(),
            if kept { "ok" } else { "duplicate" },
        ));
    };
    let new = effects::on_message_status(
        &mut tx,
        brokerage,
        &message,
        &status.message_status,
        status.error_code_raw.as_deref(),
        now,
    )
    .await?;
    if !new {
        return Ok(with_outcome(empty_ok(), "duplicate"));
    }
    tx.commit().await?;
    Ok(empty_ok())
}
