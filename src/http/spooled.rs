//! What Twilio is answered while a webhook waits in the spool (README.md "When the database goes
//! away"): what its call needs now, from the numbers as last read. An incoming call still rings
//! the number's agents (all of them: who is available is in the database); a missed one hears
//! the missed message and may leave a voicemail; an agent's screen still asks for 1; a text, a
//! status callback or a recording gets the empty answer its handler gives. A callback call
//! placed by textback is ended: its agent is told nothing until the database is back.

use axum::response::Response;

use super::{AppState, empty_ok, twiml_response};
use crate::domain::dial::{self, DialOutcome};
use crate::twilio::twiml;

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The answer to the webhook at `path` with these verified pairs, without the database.
pub fn answer(state: &AppState, path: &str, pairs: &[(String, String)]) -> Response {
    let numbers = state
        .numbers
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let number = |key: &str| param(pairs, key).and_then(|to| numbers.by_e164.get(to));
    let base = &state.config.public_url;
    match path {
        "/twilio/voice" => {
            let body = match number("To") {
                Some(n) if !n.ring.is_empty() => {
                    let action = base.join("/twilio/voice/dial");
                    let screen = base.join("/twilio/voice/screen");
                    let targets: Vec<twiml::DialTarget<'_>> = n
                        .ring
                        .iter()
                        .map(|phone| twiml::DialTarget {
                            number: phone,
                            screen_url: n.info.screen.then_some(screen.as_str()),
                        })
                        .collect();
                    twiml::dial(n.info.ring_timeout_secs, &action, &targets)
                }
                Some(n) => match &n.info.missed_message {
                    Some(message) => twiml::say_then_hangup(message),
                    None => twiml::hangup(),
                },
                None => twiml::empty(),
            };
            twiml_response(body)
        }
        "/twilio/voice/dial" => {
            let status = param(pairs, "DialCallStatus").unwrap_or_default();
            let outcome = dial::classify(dial::parse_bridged(param(pairs, "DialBridged")), status);
            let caller_gone =
                param(pairs, "CallStatus").is_some_and(|s| s.eq_ignore_ascii_case("completed"));
            let body = match (outcome, number("To")) {
                (DialOutcome::Answered, _) => twiml::hangup(),
                _ if caller_gone => twiml::empty(),
                (DialOutcome::Missed, Some(n)) if n.info.voicemail => {
                    let (action, recording, transcribe) = (
                        base.join("/twilio/voice/voicemail"),
                        base.join("/twilio/voice/recording"),
                        base.join("/twilio/voice/transcription"),
                    );
                    twiml::voicemail(
                        n.info.missed_message.as_deref(),
                        &twiml::Voicemail {
                            action_url: &action,
                            recording_status_url: &recording,
                            transcribe_url: Some(&transcribe),
                            max_secs: 120,
                        },
                    )
                }
                (DialOutcome::Missed, Some(n)) => match &n.info.missed_message {
                    Some(message) => twiml::say_then_hangup(message),
                    None => twiml::hangup(),
                },
                _ => twiml::hangup(),
            };
            twiml_response(body)
        }
        "/twilio/voice/screen" => {
            let action = base.join("/twilio/voice/screen/answer");
            twiml_response(twiml::screen(
                "You have a call. Press 1 to take it.",
                &action,
            ))
        }
        "/twilio/voice/screen/answer" => {
            if param(pairs, "Digits") == Some("1") {
                twiml_response(twiml::empty())
            } else {
                twiml_response(twiml::hangup())
            }
        }
        "/twilio/voice/callback"
        | "/twilio/voice/callback/press"
        | "/twilio/voice/callback/dial" => twiml_response(twiml::hangup()),
        // The `<Record>` action: the caller hears the end of the voicemail as usual.
        "/twilio/voice/voicemail" => twiml_response(twiml::say("Thank you. Goodbye.")),
        "/twilio/sms" => twiml_response(twiml::empty()),
        _ => empty_ok(),
    }
}
