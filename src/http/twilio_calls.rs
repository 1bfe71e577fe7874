//! The call side's webhooks (docs/calls.md): a callback's agent leg (the prompt when the agent
//! picks up, the key they press, the bridge's result, the leg's status callbacks) and a
//! voicemail's (the `<Record action>`, the recording status callback, the transcription). All
//! behind the signature guard; each records facts idempotently under the row's lock.
//!
//! A callback's webhooks find it by the `cb=` of their URL, which textback wrote into the
//! create and the carrier signed; the account that signed must be the callback's brokerage's.

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::twilio_guard::{TwilioForm, with_outcome};
use super::{AppState, Result, empty_ok, foreign_account, twiml_response};
use crate::domain::callback::{self, Ended, Origin, Stage};
use crate::domain::keywords::{self, Class};
use crate::effects;
use crate::store::{callbacks, calls, jobs, numbers, suppressions};
use crate::twilio::twiml;
use crate::twilio::webhook::{CallbackLeg, DialResult, Recording, Transcription};

/// How long a voicemail's alert waits for its transcript before it goes without one.
pub const TRANSCRIPT_WAIT_SECS: i64 = 90;

/// The `cb` of a callback webhook's query (`cb=123`).
fn callback_id(query: Option<&str>) -> Option<i64> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("cb="))
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|id| *id > 0)
}

fn unknown_callback(endpoint: &'static str) -> Response {
    tracing::info!(
        endpoint,
        "callback webhook for no callback we know; answered without effect"
    );
    with_outcome(
        twiml_response(twiml::say("This call is no longer needed. Goodbye.")),
        "unknown_callback",
    )
}

/// A callback webhook's callback, locked in a transaction: found by the `cb=` of its URL, and
/// signed by the account of the callback's brokerage. `Err` is the answer to give instead.
struct Locked {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    cb: callbacks::CallbackRow,
}

async fn lock(
    state: &AppState,
    query: Option<&str>,
    signed_by: Option<&str>,
    unknown: fn() -> Response,
) -> Result<std::result::Result<Locked, Response>> {
    let Some(id) = callback_id(query) else {
        return Ok(Err(unknown()));
    };
    let mut tx = state.pool.begin().await?;
    let Some(cb) = callbacks::find_for_update(&mut tx, id).await? else {
        return Ok(Err(unknown()));
    };
    if let Some(refused) = foreign_account(state, cb.twilio_account_sid.as_deref(), signed_by) {
        return Ok(Err(refused));
    }
    Ok(Ok(Locked { tx, cb }))
}

fn ended_page() -> Response {
    with_outcome(
        twiml_response(twiml::say("This callback has ended. Goodbye.")),
        "stale",
    )
}

/// `/twilio/voice/callback?cb=ID`: the agent picked up; they hear who it is about and are asked
/// to press 1.
#[tracing::instrument(skip_all, fields(call_sid = %leg.call_sid.as_str()))]
pub async fn callback_answered(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    TwilioForm(leg): TwilioForm<CallbackLeg>,
) -> Result<Response> {
    let unknown = || unknown_callback("/twilio/voice/callback");
    let Locked { mut tx, cb } =
        match lock(&state, query.as_deref(), leg.signed_by.as_deref(), unknown).await? {
            Ok(locked) => locked,
            Err(answer) => return Ok(answer),
        };
    let id = cb.callback_id;
    let other_call = cb
        .agent_call_sid
        .as_deref()
        .is_some_and(|s| s != leg.call_sid.as_str());
    if other_call || cb.state == "ended" {
        tracing::warn!(
            callback_id = id,
            "a callback's prompt requested by a call that is not its own, or after it ended"
        );
        return Ok(ended_page());
    }
    callbacks::placed(&mut tx, id, leg.call_sid.as_str()).await?;
    callbacks::answered(&mut tx, id, state.clock.now()).await?;
    tx.commit().await?;
    let origin = Origin::parse(&cb.origin).unwrap_or(Origin::Inbox);
    let prompt = callback::agent_prompt(
        origin,
        &cb.brokerage_name,
        cb.contact_name.as_deref(),
        cb.listing.as_deref(),
    );
    let action = state
        .config
        .public_url
        .join(&format!("/twilio/voice/callback/press?cb={id}"));
    tracing::info!(callback_id = id, "callback: the agent picked up");
    Ok(twiml_response(twiml::screen(&prompt, &action)))
}

/// `/twilio/voice/callback/press?cb=ID`: `1` dials the lead from the number they called;
/// anything else (or a voicemail greeting pressing nothing) ends the callback.
#[tracing::instrument(skip_all, fields(call_sid = %leg.call_sid.as_str()))]
pub async fn callback_press(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    TwilioForm(leg): TwilioForm<CallbackLeg>,
) -> Result<Response> {
    let unknown = || unknown_callback("/twilio/voice/callback/press");
    let Locked { mut tx, cb } =
        match lock(&state, query.as_deref(), leg.signed_by.as_deref(), unknown).await? {
            Ok(locked) => locked,
            Err(answer) => return Ok(answer),
        };
    let (id, now) = (cb.callback_id, state.clock.now());
    if cb.state == "ended" {
        return Ok(ended_page());
    }
    if leg.digits.as_deref() != Some("1") {
        let detail = leg.digits.as_deref().map(|_| "another key was pressed");
        effects::callbacks::end(&mut tx, &cb, Ended::AgentDeclined, detail, None, None, now)
            .await?;
        tx.commit().await?;
        return Ok(twiml_response(twiml::say("Goodbye.")));
    }
    // The rule once more: the lead may have been put on the do-not-call list, or the hour
    // passed, while the agent's phone rang.
    let origin = Origin::parse(&cb.origin).unwrap_or(Origin::Inbox);
    let rule = effects::callbacks::call_rule(
        &mut tx,
        cb.brokerage_id,
        cb.contact_id,
        cb.number_id,
        origin,
        now,
    )
    .await?;
    if let callback::CallRule::Refuse { .. } = rule {
        let words = rule.words();
        effects::callbacks::end(&mut tx, &cb, Ended::Refused, Some(&words), None, None, now)
            .await?;
        tx.commit().await?;
        return Ok(twiml_response(twiml::say(&format!(
            "The call cannot be placed: {words}. Goodbye."
        ))));
    }
    callbacks::dialing(&mut tx, id).await?;
    tx.commit().await?;
    crate::context::crash_point("after_callback_press");
    let action = state
        .config
        .public_url
        .join(&format!("/twilio/voice/callback/dial?cb={id}"));
    tracing::info!(
        callback_id = id,
        "callback: the agent pressed 1; dialling the lead"
    );
    Ok(twiml_response(twiml::bridge(
        &cb.number_e164,
        &cb.contact_phone,
        callback::LEAD_RING_SECS,
        &action,
    )))
}

/// `/twilio/voice/callback/dial?cb=ID`: the bridge's result. Connected counts as an answered
/// call everywhere one counts (docs/calls.md).
#[tracing::instrument(skip_all, fields(call_sid = %result.call_sid.as_str()))]
pub async fn callback_dial(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    TwilioForm(result): TwilioForm<DialResult>,
) -> Result<Response> {
    let unknown = || unknown_callback("/twilio/voice/callback/dial");
    let Locked { mut tx, cb } = match lock(
        &state,
        query.as_deref(),
        result.signed_by.as_deref(),
        unknown,
    )
    .await?
    {
        Ok(locked) => locked,
        Err(answer) => return Ok(answer),
    };
    let ended =
        callback::bridge_result(&result.dial_call_status, result.dial_bridged_raw.as_deref());
    let connected = ended == Ended::Connected;
    let recorded = effects::callbacks::end(
        &mut tx,
        &cb,
        ended,
        (!connected).then_some(result.dial_call_status.as_str()),
        connected.then_some(result.dial_call_duration.unwrap_or(0)),
        result.dial_call_sid.as_ref().map(|s| s.as_str()),
        state.clock.now(),
    )
    .await?;
    tx.commit().await?;
    let response = twiml_response(twiml::hangup());
    if !recorded {
        return Ok(with_outcome(response, "duplicate"));
    }
    tracing::info!(
        callback_id = cb.callback_id,
        outcome = ended.as_str(),
        "callback bridge result"
    );
    Ok(response)
}

/// `/twilio/voice/callback/status?cb=ID`: the agent leg's status callbacks. A final status
/// before a bridge result says who did not act (docs/calls.md).
#[tracing::instrument(skip_all, fields(call_sid = %leg.call_sid.as_str()))]
pub async fn callback_status(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    TwilioForm(leg): TwilioForm<CallbackLeg>,
) -> Result<Response> {
    let unknown = || with_outcome(empty_ok(), "unknown_callback");
    let Locked { mut tx, cb } =
        match lock(&state, query.as_deref(), leg.signed_by.as_deref(), unknown).await? {
            Ok(locked) => locked,
            Err(answer) => return Ok(answer),
        };
    if cb
        .agent_call_sid
        .as_deref()
        .is_some_and(|s| s != leg.call_sid.as_str())
    {
        return Ok(with_outcome(empty_ok(), "unknown_sid"));
    }
    // The create's answer may still be on its way (or lost): the leg's own callback places it.
    callbacks::placed(&mut tx, cb.callback_id, leg.call_sid.as_str()).await?;
    let status = leg.call_status.as_deref().unwrap_or("");
    let ended = Stage::from_state(&cb.state).and_then(|stage| callback::leg_ended(stage, status));
    if let Some(ended) = ended {
        let now = state.clock.now();
        if effects::callbacks::end(&mut tx, &cb, ended, Some(status), None, None, now).await? {
            tracing::info!(
                callback_id = cb.callback_id,
                outcome = ended.as_str(),
                "callback ended on the agent's leg"
            );
        }
    }
    tx.commit().await?;
    Ok(empty_ok())
}

/// Records a voicemail's recording once (by `RecordingSid`) and applies its effects.
async fn record_voicemail(state: &AppState, rec: &Recording) -> Result<Option<Response>> {
    let Some(sid) = &rec.recording_sid else {
        return Ok(None);
    };
    if rec.recording_duration.is_some_and(|d| d <= 0) {
        return Ok(None);
    }
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let Some((brokerage, call_id, number_id, contact_id)) =
        calls::resolve_parent(&mut tx, rec.call_sid.as_str()).await?
    else {
        tracing::info!("recording for a call we have no record of; ignored");
        return Ok(Some(with_outcome(empty_ok(), "unknown_sid")));
    };
    let number = numbers::get(&mut tx, brokerage, number_id).await?;
    let account = number.as_ref().and_then(|n| n.twilio_account_sid.clone());
    if let Some(refused) = foreign_account(state, account.as_deref(), rec.signed_by.as_deref()) {
        return Ok(Some(refused));
    }
    let signed_by = state
        .expected_account(account.as_deref())
        .map(str::to_owned);
    let new = callbacks::NewVoicemail {
        call_id,
        contact_id,
        recording_sid: sid.as_str(),
        account_sid: signed_by.as_deref(),
        duration_secs: rec.recording_duration,
        now,
    };
    let inserted = callbacks::insert_voicemail(&mut tx, brokerage, &new).await?;
    if let (Some(voicemail_id), Some(contact_id)) = (inserted, contact_id) {
        effects::callbacks::on_voicemail(
            &mut tx,
            brokerage,
            contact_id,
            call_id,
            voicemail_id,
            number_id,
            now + chrono::Duration::seconds(TRANSCRIPT_WAIT_SECS),
            now,
        )
        .await?;
        tracing::info!(
            brokerage = brokerage.0,
            voicemail_id,
            secs = rec.recording_duration,
            "voicemail recorded"
        );
    }
    tx.commit().await?;
    Ok(None)
}

/// `/twilio/voice/voicemail`: the `<Record action>`, after the caller hung up or pressed a key.
/// It carries the recording's URL: recorded here too, in case its status callback is lost.
#[tracing::instrument(skip_all, fields(call_sid = %rec.call_sid.as_str()))]
pub async fn voicemail_done(
    State(state): State<AppState>,
    TwilioForm(rec): TwilioForm<Recording>,
) -> Result<Response> {
    if let Some(early) = record_voicemail(&state, &rec).await? {
        return Ok(early);
    }
    Ok(twiml_response(twiml::say("Thank you. Goodbye.")))
}

/// `/twilio/voice/recording`: the recording status callback (`completed`, `absent`, `failed`).
#[tracing::instrument(skip_all, fields(call_sid = %rec.call_sid.as_str()))]
pub async fn recording_status(
    State(state): State<AppState>,
    TwilioForm(rec): TwilioForm<Recording>,
) -> Result<Response> {
    match rec.recording_status.as_deref() {
        Some("completed") | None => {
            if let Some(early) = record_voicemail(&state, &rec).await? {
                return Ok(early);
            }
        }
        Some(other) => tracing::info!(status = other, "a voicemail recording that holds nothing"),
    }
    Ok(empty_ok())
}

/// `/twilio/voice/transcription`: a voicemail's transcript. It passes the keyword classifier
/// like a text: "please stop calling and texting me" is an opt-out request by a reasonable
/// means (docs/compliance.md R2, R3) and gets the same suppression or review hold.
#[tracing::instrument(skip_all, fields(recording_sid = %t.recording_sid.as_str()))]
pub async fn transcription(
    State(state): State<AppState>,
    TwilioForm(t): TwilioForm<Transcription>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let Some(vm) = callbacks::voicemail_by_recording(&mut tx, t.recording_sid.as_str()).await?
    else {
        tracing::info!("transcription for a recording we have no record of; ignored");
        return Ok(with_outcome(empty_ok(), "unknown_sid"));
    };
    let brokerage = vm.brokerage_id;
    let number = numbers::get(&mut tx, brokerage, vm.number_id).await?;
    let account = number.as_ref().and_then(|n| n.twilio_account_sid.clone());
    if let Some(refused) = foreign_account(&state, account.as_deref(), t.signed_by.as_deref()) {
        return Ok(refused);
    }
    let completed = t.status.eq_ignore_ascii_case("completed");
    let text = completed.then_some(t.text.as_str());
    // The contact's lock first, as every event of a contact takes it (docs/reliability.md §4),
    // so the suppression read below cannot race a STOP.
    let contact = match vm.contact_id {
        Some(c) => {
            crate::store::contacts::lock(&mut tx, brokerage, c).await?;
            crate::store::contacts::get(&mut tx, brokerage, c).await?
        }
        None => None,
    };
    let class = match (&contact, text) {
        (Some(c), Some(text)) if !text.trim().is_empty() => {
            let suppressed = suppressions::is_suppressed(&mut tx, brokerage, &c.phone).await?;
            Some(keywords::classify(text, None, suppressed).class)
        }
        _ => None,
    };
    let class_word = class.map(|c| c.as_str());
    if !callbacks::set_transcript(
        &mut tx,
        brokerage,
        vm.voicemail_id,
        if completed { "completed" } else { "failed" },
        text,
        class_word,
        now,
    )
    .await?
    {
        return Ok(with_outcome(empty_ok(), "duplicate"));
    }
    if let (Some(c), Some(class), Some(text)) = (&contact, class, text) {
        let evidence = suppressions::Evidence {
            source: "voicemail",
            who: "contact",
            how: Some("voicemail"),
            evidence: Some(t.recording_sid.as_str()),
            raw_text: Some(text),
            reason: Some("the contact asked in a voicemail"),
        };
        match class {
            Class::OptOut => {
                suppressions::suppress(&mut tx, brokerage, &c.phone, &evidence, now).await?;
                jobs::cancel_scheduled(
                    &mut tx,
                    brokerage,
                    c.contact_id,
                    jobs::ON_OPT_OUT,
                    "opted_out",
                    now,
                )
                .await?;
                tracing::info!(
                    brokerage = brokerage.0,
                    "a voicemail asked to opt out: suppressed"
                );
            }
            Class::Review => {
                let e = suppressions::Evidence {
                    source: "review",
                    reason: Some("a voicemail may ask to opt out; a person decides"),
                    ..evidence
                };
                suppressions::hold_for_review(
                    &mut tx,
                    brokerage,
                    c.contact_id,
                    &c.phone,
                    None,
                    &e,
                    now,
                )
                .await?;
                tracing::info!(
                    brokerage = brokerage.0,
                    "a voicemail may ask to opt out: on review hold"
                );
            }
            _ => {}
        }
    }
    callbacks::hurry_voicemail_alerts(&mut tx, brokerage, vm.voicemail_id, now).await?;
    tx.commit().await?;
    Ok(empty_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_id_comes_from_cb_only() {
        assert_eq!(callback_id(Some("cb=12")), Some(12));
        assert_eq!(callback_id(Some("x=1&cb=7")), Some(7));
        assert_eq!(callback_id(Some("cb=-1")), None);
        assert_eq!(callback_id(Some("cb=abc")), None);
        assert_eq!(callback_id(Some("callback=3")), None);
        assert_eq!(callback_id(None), None);
    }
}
