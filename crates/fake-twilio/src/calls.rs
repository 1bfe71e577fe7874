//! Calls created through `POST …/Calls.json`, played as Twilio plays them (docs/twilio.md §1.5,
//! §5): the status callbacks of the agent's leg (`initiated`, `ringing`, `answered`,
//! `completed`), the TwiML request when the agent answers, the `<Gather>`'s digits, and the
//! `<Dial>` to the lead with its `action` request, every one signed as the account signs its
//! webhooks. How each leg behaves is a [`CallPlan`], per number called or for every call.
//! Also the calls' list and fetch, and recordings (voicemails) with their callbacks and media.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::player::{self, Pair, Signer};
use super::{FakeCall, Shared, shapes};
use std::sync::Arc;

/// What the agent does when the fake rings their phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// Rings out (`no-answer`, SIP 487).
    NoAnswer,
    /// `busy`, SIP 486.
    Busy,
    /// Answers and presses these keys at the prompt.
    Presses(String),
    /// Answers and presses nothing (a voicemail greeting, an agent who hangs up).
    PressesNothing,
}

/// What the lead's phone does when the agent's `<Dial>` rings it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadAction {
    /// Answers and talks this many seconds.
    Answers {
        secs: u32,
    },
    Busy,
    NoAnswer,
    Fails,
}

/// How a created call is played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPlan {
    pub agent: AgentAction,
    pub lead: LeadAction,
    /// Before the agent answers (ringing time).
    pub ring: Duration,
}

impl CallPlan {
    /// The agent answers and presses 1; the lead answers and talks `secs`.
    pub fn connects(secs: u32) -> CallPlan {
        CallPlan {
            agent: AgentAction::Presses("1".into()),
            lead: LeadAction::Answers { secs },
            ring: Duration::from_millis(20),
        }
    }

    pub fn agent(agent: AgentAction) -> CallPlan {
        CallPlan {
            agent,
            ..CallPlan::connects(30)
        }
    }

    pub fn lead(lead: LeadAction) -> CallPlan {
        CallPlan {
            lead,
            ..CallPlan::connects(30)
        }
    }
}

/// One step of a played call, for tests to read ([`super::FakeTwilio::call_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStep {
    pub call_sid: String,
    /// `status:ringing`, `twiml`, `digits:1`, `dial:completed`, …
    pub what: String,
    /// Our server's HTTP status, or the error in words.
    pub answer: Result<u16, String>,
}

/// A recording the fake holds (a voicemail): served as MP3 to its account.
#[derive(Debug, Clone)]
pub struct FakeRecording {
    pub sid: String,
    pub account_sid: String,
    pub call_sid: String,
    pub duration_secs: u32,
}

/// `RE` + 32 lowercase hex digits.
pub fn new_recording_sid() -> String {
    format!("RE{:032x}", rand::random::<u128>())
}

/// A few silent MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, mono): a playable MP3.
pub fn silent_mp3(frames: usize) -> Vec<u8> {
    // Header: sync, MPEG-1, layer III, no CRC; 128 kbit/s; 44.1 kHz; no padding; mono.
    const HEADER: [u8; 4] = [0xFF, 0xFB, 0x90, 0xC4];
    const FRAME_LEN: usize = 417; // 144 * 128000 / 44100
    let mut out = Vec::with_capacity(frames * FRAME_LEN);
    for _ in 0..frames {
        out.extend_from_slice(&HEADER);
        out.resize(out.len() + FRAME_LEN - HEADER.len(), 0);
    }
    out
}

fn signer_for(s: &Shared, account: &str) -> Signer {
    s.lock()
        .accounts
        .get(account)
        .map(|a| a.signer.clone())
        .unwrap_or_else(|| Signer::auth_token(&s.auth_token))
}

/// The standard voice parameters of an outbound-api call (docs/twilio.md §1.1).
fn voice_params(account: &str, c: &FakeCall, status: &str) -> Vec<Pair> {
    let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    vec![
        p("AccountSid", account),
        p("ApiVersion", shapes::API_VERSION),
        p("CallSid", &c.sid),
        p("CallStatus", status),
        p("Called", &c.to),
        p("Caller", &c.from),
        p("Direction", "outbound-api"),
        p("From", &c.from),
        p("To", &c.to),
    ]
}

async fn post(
    s: &Shared,
    account: &str,
    url: &str,
    params: &[Pair],
) -> Result<(u16, String), String> {
    let signer = signer_for(s, account);
    let response = player::post_signed_form(&s.http, &signer, url, params)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

fn log(s: &Shared, sid: &str, what: String, answer: &Result<(u16, String), String>) {
    s.lock().call_log.push(CallStep {
        call_sid: sid.to_owned(),
        what,
        answer: answer.as_ref().map(|(st, _)| *st).map_err(Clone::clone),
    });
}

fn set_status(s: &Shared, sid: &str, status: &str, duration: Option<u32>) {
    let mut state = s.lock();
    if let Some(c) = state.calls.iter_mut().find(|c| c.sid == sid) {
        c.status = status.to_owned();
        if duration.is_some() {
            c.duration = duration;
        }
    }
}

/// One status callback of the agent's leg, if the create asked for that event.
async fn status(
    s: &Shared,
    account: &str,
    c: &FakeCall,
    event: &str,
    status: &str,
    seq: u32,
    duration: Option<u32>,
) {
    set_status(s, &c.sid, status, duration);
    let Some(url) = &c.status_callback else {
        return;
    };
    let asked = c.status_callback_events.iter().any(|e| e == event)
        || (c.status_callback_events.is_empty() && event == "completed");
    if !asked {
        return;
    }
    let mut params = voice_params(account, c, status);
    params.push(("Timestamp".into(), shapes::rfc2822(s.clock.now())));
    params.push(("CallbackSource".into(), "call-progress-events".into()));
    params.push(("SequenceNumber".into(), seq.to_string()));
    if event == "completed" {
        let secs = duration.unwrap_or(0);
        params.push(("CallDuration".into(), secs.to_string()));
        params.push(("Duration".into(), secs.div_ceil(60).to_string()));
        match status {
            "no-answer" => params.push(("SipResponseCode".into(), "487".into())),
            "busy" => params.push(("SipResponseCode".into(), "486".into())),
            _ => {}
        }
    }
    let answer = post(s, account, url, &params).await;
    log(s, &c.sid, format!("status:{status}"), &answer);
}

/// The verbs of a TwiML answer we act on.
#[derive(Debug, Default)]
struct Twiml {
    gather_action: Option<String>,
    dial: Option<(String, String, Option<String>)>, // (number, action, callerId)
}

fn read_twiml(body: &str) -> Twiml {
    let Ok(doc) = roxmltree::Document::parse(body) else {
        return Twiml::default();
    };
    let mut t = Twiml::default();
    if let Some(g) = doc.descendants().find(|n| n.has_tag_name("Gather")) {
        t.gather_action = g.attribute("action").map(str::to_owned);
    }
    if let Some(d) = doc.descendants().find(|n| n.has_tag_name("Dial")) {
        let number = d
            .children()
            .find(|n| n.has_tag_name("Number"))
            .and_then(|n| n.text())
            .unwrap_or_default()
            .trim()
            .to_owned();
        if let Some(action) = d.attribute("action") {
            t.dial = Some((
                number,
                action.to_owned(),
                d.attribute("callerId").map(str::to_owned),
            ));
        }
    }
    t
}

/// Plays a created call by its plan, to the end. Spawned by the create.
pub(crate) async fn play(s: Arc<Shared>, account: String, c: FakeCall, plan: CallPlan) {
    status(&s, &account, &c, "initiated", "queued", 0, None).await;
    status(&s, &account, &c, "ringing", "ringing", 1, None).await;
    tokio::time::sleep(plan.ring).await;
    let digits = match &plan.agent {
        AgentAction::NoAnswer => {
            status(&s, &account, &c, "completed", "no-answer", 2, Some(0)).await;
            return;
        }
        AgentAction::Busy => {
            status(&s, &account, &c, "completed", "busy", 2, Some(0)).await;
            return;
        }
        AgentAction::Presses(d) => Some(d.clone()),
        AgentAction::PressesNothing => None,
    };
    status(&s, &account, &c, "answered", "in-progress", 2, None).await;
    let mut talked = 4; // the prompt
    let Some(url) = &c.url else {
        status(&s, &account, &c, "completed", "completed", 3, Some(talked)).await;
        return;
    };
    let answer = post(
        &s,
        &account,
        url,
        &voice_params(&account, &c, "in-progress"),
    )
    .await;
    log(&s, &c.sid, "twiml".into(), &answer);
    let mut twiml = match &answer {
        Ok((200, body)) => read_twiml(body),
        _ => Twiml::default(),
    };
    if let (Some(action), Some(d)) = (twiml.gather_action.clone(), digits) {
        let mut params = voice_params(&account, &c, "in-progress");
        params.push(("Digits".into(), d.clone()));
        params.push(("FinishedOnKey".into(), String::new()));
        let answer = post(&s, &account, &action, &params).await;
        log(&s, &c.sid, format!("digits:{d}"), &answer);
        twiml = match &answer {
            Ok((200, body)) => read_twiml(body),
            // Our server did not answer: Twilio says "an application error has occurred"
            // and the call ends.
            _ => Twiml::default(),
        };
    } else {
        twiml.dial = None;
        talked += 8; // the gather's timeout
    }
    if let Some((lead, action, _caller_id)) = twiml.dial {
        let child = player::new_call_sid();
        let (dial_status, bridged, secs) = match plan.lead {
            LeadAction::Answers { secs } => ("completed", "true", Some(secs)),
            LeadAction::Busy => ("busy", "false", None),
            LeadAction::NoAnswer => ("no-answer", "false", None),
            LeadAction::Fails => ("failed", "false", None),
        };
        {
            let mut state = s.lock();
            state.dialed.push((c.sid.clone(), lead.clone()));
        }
        let mut params = voice_params(&account, &c, "in-progress");
        params.push(("DialCallStatus".into(), dial_status.into()));
        params.push(("DialCallSid".into(), child));
        if let Some(secs) = secs {
            params.push(("DialCallDuration".into(), secs.to_string()));
            talked += secs;
        }
        params.push(("DialBridged".into(), bridged.into()));
        let answer = post(&s, &account, &action, &params).await;
        log(&s, &c.sid, format!("dial:{dial_status}"), &answer);
    }
    status(&s, &account, &c, "completed", "completed", 3, Some(talked)).await;
}

/// `GET …/Calls.json` page body: the account's calls, filtered by `To`, `From` and `StartTime>`
/// (a date; as Twilio's, it filters on the start time, which a call still `queued` has not),
/// newest first.
pub(crate) fn list_body(
    s: &Shared,
    account: &str,
    query: &[(String, String)],
    path: &str,
) -> serde_json::Value {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let since = get("StartTime>")
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| DateTime::<Utc>::from_naive_utc_and_offset(d, Utc));
    let state = s.lock();
    let mut calls: Vec<serde_json::Value> = state
        .calls
        .iter()
        .filter(|c| c.account_sid == account)
        .filter(|c| get("To").is_none_or(|to| c.to == to))
        .filter(|c| get("From").is_none_or(|from| c.from == from))
        .filter(|c| since.is_none_or(|t| c.status != "queued" && c.date_created >= t))
        .rev()
        .map(|c| shapes::call_json(c, account))
        .collect();
    calls.truncate(100);
    serde_json::json!({
        "calls": calls,
        "end": 0,
        "first_page_uri": path,
        "next_page_uri": serde_json::Value::Null,
        "page": 0,
        "page_size": 100,
        "previous_page_uri": serde_json::Value::Null,
        "start": 0,
        "uri": path,
    })
}

/// Posts a voicemail's webhooks for `call_sid` as Twilio would after a `<Record>`: the
/// recording status callback and the `<Record action>` to `public_url`'s paths, then the
/// transcription callback (when `transcript` is given). Returns the RecordingSid.
pub(crate) async fn voicemail(
    s: &Arc<Shared>,
    player: &player::Player,
    call_sid: &str,
    from: &str,
    to: &str,
    secs: u32,
    transcript: Option<&str>,
) -> anyhow::Result<String> {
    let sid = new_recording_sid();
    let account = player.account_sid.clone();
    s.lock().recordings.push(FakeRecording {
        sid: sid.clone(),
        account_sid: account.clone(),
        call_sid: call_sid.to_owned(),
        duration_secs: secs,
    });
    let url = format!(
        "{}/{}/Accounts/{account}/Recordings/{sid}",
        s.base_url,
        shapes::API_VERSION
    );
    let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let recording = vec![
        p("AccountSid", &account),
        p("CallSid", call_sid),
        p("RecordingSid", &sid),
        p("RecordingUrl", &url),
        p("RecordingStatus", "completed"),
        p("RecordingDuration", &secs.to_string()),
        p("RecordingChannels", "1"),
        p("RecordingStartTime", &shapes::rfc2822(s.clock.now())),
        p("RecordingSource", "RecordVerb"),
        p("RecordingTrack", "both"),
        p("ErrorCode", "0"),
    ];
    let r = player
        .post_signed("/twilio/voice/recording", &recording)
        .await?;
    anyhow::ensure!(r.status == 200, "recording callback answered {}", r.status);
    let mut action = player.incoming_call_params(call_sid, from, to);
    for (k, v) in &mut action {
        if k == "CallStatus" {
            "completed".clone_into(v);
        }
    }
    action.push(p("RecordingUrl", &url));
    action.push(p("RecordingDuration", &secs.to_string()));
    action.push(p("Digits", "hangup"));
    let r = player
        .post_signed("/twilio/voice/voicemail", &action)
        .await?;
    anyhow::ensure!(r.status == 200, "record action answered {}", r.status);
    if let Some(text) = transcript {
        let t = vec![
            p("AccountSid", &account),
            p("ApiVersion", shapes::API_VERSION),
            p("CallSid", call_sid),
            p("RecordingSid", &sid),
            p("RecordingUrl", &url),
            p(
                "TranscriptionSid",
                &format!("TR{:032x}", rand::random::<u128>()),
            ),
            p("TranscriptionStatus", "completed"),
            p("TranscriptionText", text),
            p("TranscriptionType", "fast"),
            p("TranscriptionUrl", &format!("{url}/Transcriptions")),
            p(
                "url",
                &format!("{}/twilio/voice/transcription", player.public_url),
            ),
        ];
        let r = player
            .post_signed("/twilio/voice/transcription", &t)
            .await?;
        anyhow::ensure!(
            r.status == 200,
            "transcription callback answered {}",
            r.status
        );
    }
    Ok(sid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_is_read_for_the_gather_and_the_dial() {
        let t = read_twiml(
            r#"<?xml version="1.0"?><Response><Gather numDigits="1" action="https://x/press?cb=1"><Say>Hi</Say></Gather><Hangup/></Response>"#,
        );
        assert_eq!(t.gather_action.as_deref(), Some("https://x/press?cb=1"));
        assert!(t.dial.is_none());
        let t = read_twiml(
            r#"<Response><Dial callerId="+15555550100" action="https://x/dial?cb=1"><Number>+16175550123</Number></Dial></Response>"#,
        );
        assert_eq!(
            t.dial,
            Some((
                "+16175550123".into(),
                "https://x/dial?cb=1".into(),
                Some("+15555550100".into())
            ))
        );
        assert!(read_twiml("not xml").dial.is_none());
    }

    #[test]
    fn the_silent_mp3_is_whole_frames() {
        let mp3 = silent_mp3(3);
        assert_eq!(mp3.len(), 3 * 417);
        assert_eq!(&mp3[..2], &[0xFF, 0xFB]);
        assert_eq!(&mp3[417..419], &[0xFF, 0xFB]);
    }
}
