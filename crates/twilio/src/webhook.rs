//! Webhook payloads, built from the decoded, signature-checked form pairs.
//!
//! Once a webhook's signature is valid, Twilio sent it, and its content never makes us drop
//! it: Twilio does not retry an inbound text, so a refused STOP would be lost for good. Values
//! are kept as received (a form feed or an escape character in a body included); the one
//! character PostgreSQL cannot store in text, NUL, becomes U+FFFD. Parsing is lenient where
//! Twilio's parameter sets vary (unknown keys are ignored, optional numbers that do not parse
//! are treated as absent) and strict only where no answer could be right: a required field
//! missing or not of its kind (a `CallSid` that is not a SID), or a field we read sent twice
//! with two different values (which `From` opted out?). Twilio sends neither; docs/security.md
//! "After the signature".

use std::collections::HashMap;
use std::fmt;

/// The decoded pairs of a webhook body whose signature was valid, and the account whose key
/// signed it.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    signed_by: Option<String>,
}

/// Why a signed body is still refused with 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    Missing(&'static str),
    /// A field the payloads read, sent twice with different values.
    Repeated(String),
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::Missing(k) => write!(f, "missing required field {k}"),
            FieldError::Repeated(k) => write!(f, "field {k} is repeated with different values"),
            FieldError::Invalid { field, reason } => write!(f, "field {field} {reason}"),
        }
    }
}

/// Every field a payload below reads: only these must be unambiguous. A key Twilio may one day
/// send as a list (as its Conversations webhooks do) is kept and ignored.
const READ_FIELDS: &[&str] = &[
    "AccountSid",
    "Body",
    "CallDuration",
    "CallSid",
    "CallStatus",
    "DialBridged",
    "DialCallDuration",
    "DialCallSid",
    "DialCallStatus",
    "Digits",
    "ErrorCode",
    "From",
    "MessageSid",
    "MessageStatus",
    "NumMedia",
    "NumSegments",
    "OptOutType",
    "ParentCallSid",
    "RecordingDuration",
    "RecordingSid",
    "RecordingStatus",
    "SequenceNumber",
    "To",
    "TranscriptionStatus",
    "TranscriptionText",
];

impl Params {
    /// Keeps the pairs as received, with NUL made storable; refuses only a field we read that
    /// came twice with different values (the same value twice is one value).
    pub fn new(pairs: Vec<(String, String)>) -> Result<Params, FieldError> {
        let mut first: HashMap<String, String> = HashMap::new();
        let mut kept = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let (k, v) = (storable(k), storable(v));
            match first.get(&k) {
                Some(seen) if *seen == v => continue,
                Some(_) if READ_FIELDS.contains(&k.as_str()) => {
                    return Err(FieldError::Repeated(k));
                }
                Some(_) => {}
                None => {
                    first.insert(k.clone(), v.clone());
                }
            }
            kept.push((k, v));
        }
        Ok(Params {
            pairs: kept,
            signed_by: None,
        })
    }

    /// The account (its SID) whose key checked the signature; `None` for the deployment's
    /// default account when `TWILIO_ACCOUNT_SID` is not set. Set by the guard, never read from
    /// the body: the body's `AccountSid` only chose which key to try.
    pub fn signed_by(mut self, account: Option<String>) -> Params {
        self.signed_by = account;
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &'static str) -> Result<&str, FieldError> {
        self.get(key).ok_or(FieldError::Missing(key))
    }

    /// A non-empty optional value.
    fn optional(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    fn number(&self, key: &str) -> Option<i32> {
        self.get(key).and_then(|v| v.trim().parse().ok())
    }

    fn sid(&self, key: &'static str) -> Result<Sid, FieldError> {
        Sid::parse(self.required(key)?).ok_or(FieldError::Invalid {
            field: key,
            reason: "is not a Twilio SID",
        })
    }

    fn optional_sid(&self, key: &str) -> Option<Sid> {
        self.get(key).and_then(Sid::parse)
    }
}

/// A value as PostgreSQL can keep it: NUL, the one character a `text` column refuses, becomes
/// U+FFFD (the replacement character); everything else is kept as received.
fn storable(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

/// A Twilio SID (`CA…`, `SM…`). Checked loosely (1–64 ASCII letters and digits) so that a
/// change in Twilio's format would not make us refuse every webhook.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sid(String);

impl Sid {
    pub fn parse(s: &str) -> Option<Sid> {
        (!s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Sid(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `/twilio/voice`: an incoming call.
#[derive(Debug, Clone)]
pub struct VoiceIncoming {
    pub call_sid: Sid,
    /// `From` as received; a contact only when it is E.164.
    pub from_raw: String,
    pub to_raw: String,
    pub call_status: Option<String>,
    /// The account whose key signed the webhook (checked against the number's brokerage's).
    pub signed_by: Option<String>,
}

impl VoiceIncoming {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        Ok(VoiceIncoming {
            signed_by: p.signed_by.clone(),
            call_sid: p.sid("CallSid")?,
            from_raw: p.required("From")?.to_owned(),
            to_raw: p.required("To")?.to_owned(),
            call_status: p.optional("CallStatus"),
        })
    }
}

/// `/twilio/voice/dial`: the `<Dial action>` result (docs/twilio.md §1.4).
#[derive(Debug, Clone)]
pub struct DialResult {
    pub call_sid: Sid,
    pub dial_call_status: String,
    /// `DialBridged` as sent (`None` when absent); classified by `domain::dial`.
    pub dial_bridged_raw: Option<String>,
    pub dial_call_sid: Option<Sid>,
    pub dial_call_duration: Option<i32>,
    /// The parent call's `CallStatus`: `completed` means the caller has gone.
    pub parent_call_status: Option<String>,
    pub from_raw: Option<String>,
    pub to_raw: Option<String>,
    /// The account whose key signed the webhook (checked against the number's brokerage's).
    pub signed_by: Option<String>,
}

impl DialResult {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        Ok(DialResult {
            signed_by: p.signed_by.clone(),
            call_sid: p.sid("CallSid")?,
            dial_call_status: p.required("DialCallStatus")?.to_owned(),
            dial_bridged_raw: p.get("DialBridged").map(str::to_owned),
            dial_call_sid: p.optional_sid("DialCallSid"),
            dial_call_duration: p.number("DialCallDuration"),
            parent_call_status: p.optional("CallStatus"),
            from_raw: p.get("From").map(str::to_owned),
            to_raw: p.get("To").map(str::to_owned),
        })
    }
}

/// `/twilio/voice/status`: a parent-call status callback (docs/twilio.md §1.5).
#[derive(Debug, Clone)]
pub struct CallStatus {
    pub call_sid: Sid,
    pub call_status: String,
    /// -1 when absent.
    pub sequence_number: i32,
    pub call_duration: Option<i32>,
    pub to_raw: Option<String>,
    /// The account whose key signed the webhook (checked against the number's brokerage's).
    pub signed_by: Option<String>,
}

impl CallStatus {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        Ok(CallStatus {
            signed_by: p.signed_by.clone(),
            call_sid: p.sid("CallSid")?,
            call_status: p.required("CallStatus")?.to_owned(),
            sequence_number: p.number("SequenceNumber").unwrap_or(-1),
            call_duration: p.number("CallDuration"),
            to_raw: p.get("To").map(str::to_owned),
        })
    }
}

/// `/twilio/voice/screen` and `/twilio/voice/screen/answer`: requests on an agent's leg.
#[derive(Debug, Clone)]
pub struct ScreenLeg {
    pub call_sid: Sid,
    /// The inbound call this leg belongs to.
    pub parent_call_sid: Option<Sid>,
    /// The agent's phone (the leg's `To`).
    pub to_raw: Option<String>,
    /// The key pressed (screen answer only).
    pub digits: Option<String>,
    /// The account whose key signed the webhook (checked against the number's brokerage's).
    pub signed_by: Option<String>,
}

impl ScreenLeg {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        Ok(ScreenLeg {
            signed_by: p.signed_by.clone(),
            call_sid: p.sid("CallSid")?,
            parent_call_sid: p.optional_sid("ParentCallSid"),
            to_raw: p.optional("To"),
            digits: p.optional("Digits"),
        })
    }
}

/// The agent's leg of a callback (docs/calls.md): the TwiML request when the agent picks up,
/// the key they pressed, and the leg's status callbacks.
#[derive(Debug, Clone)]
pub struct CallbackLeg {
    pub call_sid: Sid,
    pub call_status: Option<String>,
    /// The key pressed (the prompt's answer only).
    pub digits: Option<String>,
    /// Seconds; final status callbacks only.
    pub call_duration: Option<i32>,
    /// The account whose key signed the webhook (checked against the callback's brokerage's).
    pub signed_by: Option<String>,
}

impl CallbackLeg {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        Ok(CallbackLeg {
            signed_by: p.signed_by.clone(),
            call_sid: p.sid("CallSid")?,
            call_status: p.optional("CallStatus"),
            digits: p.optional("Digits"),
            call_duration: p.number("CallDuration"),
        })
    }
}

/// `/twilio/voice/recording` (the recording status callback) and `/twilio/voice/voicemail`
/// (the `<Record action>`): a voicemail's recording (docs/twilio.md §1.7).
#[derive(Debug, Clone)]
pub struct Recording {
    pub call_sid: Sid,
    /// `None` on a `<Record action>` that carried no recording (the caller hung up at once).
    pub recording_sid: Option<Sid>,
    /// `completed`, `absent`, `failed`; `None` on the `<Record action>`.
    pub recording_status: Option<String>,
    pub recording_duration: Option<i32>,
    pub signed_by: Option<String>,
}

impl Recording {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        // The `<Record action>` names the recording only by its URL, ending in the SID.
        let sid = p.optional_sid("RecordingSid").or_else(|| {
            p.get("RecordingUrl")
                .and_then(|u| u.rsplit('/').next())
                .and_then(|last| Sid::parse(last.split('.').next().unwrap_or(last)))
                .filter(|s| s.as_str().starts_with("RE"))
        });
        Ok(Recording {
            signed_by: p.signed_by.clone(),
            call_sid: p.sid("CallSid")?,
            recording_sid: sid,
            recording_status: p.optional("RecordingStatus"),
            recording_duration: p.number("RecordingDuration"),
        })
    }
}

/// `/twilio/voice/transcription`: the `transcribeCallback` of a voicemail.
#[derive(Debug, Clone)]
pub struct Transcription {
    pub recording_sid: Sid,
    pub call_sid: Option<Sid>,
    /// `completed` or `failed`.
    pub status: String,
    /// Verbatim; may be empty.
    pub text: String,
    pub signed_by: Option<String>,
}

impl Transcription {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        Ok(Transcription {
            signed_by: p.signed_by.clone(),
            recording_sid: p.sid("RecordingSid")?,
            call_sid: p.optional_sid("CallSid"),
            status: p.required("TranscriptionStatus")?.to_owned(),
            text: p.get("TranscriptionText").unwrap_or_default().to_owned(),
        })
    }
}

/// `/twilio/sms`: an inbound text (docs/twilio.md §3.5).
#[derive(Debug, Clone)]
pub struct SmsInbound {
    pub message_sid: Sid,
    pub from_raw: String,
    pub to_raw: String,
    /// Verbatim; may be empty (a photo alone).
    pub body: String,
    pub num_media: i32,
    /// `MediaUrlN` and `MediaContentTypeN` for N below `NumMedia` (at most 10), as received.
    pub media: Vec<(String, Option<String>)>,
    pub num_segments: Option<i32>,
    pub opt_out_type: Option<String>,
    /// The account whose key signed the webhook (checked against the number's brokerage's).
    pub signed_by: Option<String>,
}

impl SmsInbound {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        Ok(SmsInbound {
            signed_by: p.signed_by.clone(),
            message_sid: p.sid("MessageSid")?,
            from_raw: p.required("From")?.to_owned(),
            to_raw: p.required("To")?.to_owned(),
            body: p.get("Body").unwrap_or_default().to_owned(),
            num_media: p.number("NumMedia").unwrap_or(0).max(0),
            media: (0..p.number("NumMedia").unwrap_or(0).clamp(0, 10))
                .filter_map(|n| {
                    let url = p.get(&format!("MediaUrl{n}"))?.to_owned();
                    Some((url, p.optional(&format!("MediaContentType{n}"))))
                })
                .collect(),
            num_segments: p.number("NumSegments"),
            opt_out_type: p.optional("OptOutType"),
        })
    }
}

/// `/twilio/sms/status`: an outbound message's status callback (docs/twilio.md §3.4).
#[derive(Debug, Clone)]
pub struct MessageStatus {
    pub message_sid: Sid,
    pub message_status: String,
    /// As received; `ErrorCode=abc` is kept raw and moves nothing.
    pub error_code_raw: Option<String>,
    /// Our number (the message's sender): how the brokerage is found.
    pub from_raw: Option<String>,
    /// The recipient.
    pub to_raw: Option<String>,
    /// The account whose key signed the webhook (checked against the number's brokerage's).
    pub signed_by: Option<String>,
}

impl MessageStatus {
    pub fn from_params(p: &Params) -> Result<Self, FieldError> {
        Ok(MessageStatus {
            signed_by: p.signed_by.clone(),
            message_sid: p.sid("MessageSid")?,
            message_status: p.required("MessageStatus")?.to_owned(),
            error_code_raw: p.optional("ErrorCode"),
            from_raw: p.optional("From"),
            to_raw: p.optional("To"),
        })
    }

    /// `Some(Ok(code))` for a numeric `ErrorCode`, `Some(Err(()))` for garbage, `None` when
    /// absent.
    pub fn error_code(&self) -> Option<Result<i32, ()>> {
        self.error_code_raw
            .as_deref()
            .map(|raw| raw.trim().parse::<i32>().map_err(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form;

    fn params(body: &[u8]) -> Params {
        Params::new(form::decode(body).expect("decodes")).expect("valid")
    }

    #[test]
    fn every_fixture_parses_into_its_payload() {
        let p = params(include_bytes!(
            "../../../fixtures/twilio/voice-incoming.txt"
        ));
        let v = VoiceIncoming::from_params(&p).expect("voice");
        assert_eq!(v.call_sid.as_str(), "CA7b810266248bdfda6ab66f956c264d20");
        assert_eq!(v.from_raw, "+16175550123");
        assert_eq!(v.to_raw, "+15555550100");

        let p = params(include_bytes!(
            "../../../fixtures/twilio/voice-dial-action-no-answer.txt"
        ));
        let d = DialResult::from_params(&p).expect("dial");
        assert_eq!(d.dial_call_status, "no-answer");
        assert_eq!(d.dial_bridged_raw.as_deref(), Some("false"));
        assert_eq!(d.dial_call_duration, None);
        assert_eq!(d.parent_call_status.as_deref(), Some("in-progress"));

        let p = params(include_bytes!(
            "../../../fixtures/twilio/voice-dial-action-completed.txt"
        ));
        let d = DialResult::from_params(&p).expect("dial");
        assert_eq!(d.dial_call_duration, Some(64));

        let p = params(include_bytes!(
            "../../../fixtures/twilio/voice-status-completed.txt"
        ));
        let s = CallStatus::from_params(&p).expect("status");
        assert_eq!(
            (s.call_status.as_str(), s.sequence_number, s.call_duration),
            ("completed", 0, Some(31))
        );

        let p = params(include_bytes!(
            "../../../fixtures/twilio/sms-inbound-stop.txt"
        ));
        let m = SmsInbound::from_params(&p).expect("sms");
        assert_eq!(
            (m.body.as_str(), m.opt_out_type.as_deref()),
            ("STOP", Some("STOP"))
        );

        let p = params(include_bytes!(
            "../../../fixtures/twilio/sms-status-undelivered-30006.txt"
        ));
        let s = MessageStatus::from_params(&p).expect("status");
        assert_eq!(s.error_code(), Some(Ok(30006)));
        assert_eq!(s.from_raw.as_deref(), Some("+15555550100"));
    }

    #[test]
    fn required_fields_are_named_when_missing() {
        let p = params(b"From=%2B16175550123&To=%2B15555550100");
        assert_eq!(
            VoiceIncoming::from_params(&p).err(),
            Some(FieldError::Missing("CallSid"))
        );
        let p = params(b"CallSid=CA1");
        assert_eq!(
            DialResult::from_params(&p).err(),
            Some(FieldError::Missing("DialCallStatus"))
        );
        let p = params(b"MessageSid=SM1&From=x");
        assert_eq!(
            SmsInbound::from_params(&p).err(),
            Some(FieldError::Missing("To"))
        );
        let p = params(b"MessageSid=SM1");
        assert_eq!(
            MessageStatus::from_params(&p).err(),
            Some(FieldError::Missing("MessageStatus"))
        );
        let p = params(b"CallSid=");
        assert!(matches!(
            CallStatus::from_params(&p).err(),
            Some(FieldError::Invalid {
                field: "CallSid",
                ..
            })
        ));
    }

    #[test]
    fn control_characters_are_kept_and_nul_is_made_storable() {
        let p = params(b"Body=STOP%0C&From=%2B16175550123");
        assert_eq!(
            p.get("Body"),
            Some("STOP\u{c}"),
            "a form feed is kept as received"
        );
        let p = params(b"Body=a%1Bb%00c&CallerCity=BOS%00TON");
        assert_eq!(p.get("Body"), Some("a\u{1b}b\u{FFFD}c"));
        assert_eq!(p.get("CallerCity"), Some("BOS\u{FFFD}TON"));
        let p = params(b"Body=line1%0D%0Aline2%09tab");
        assert_eq!(p.get("Body"), Some("line1\r\nline2\ttab"));
    }

    #[test]
    fn only_a_field_we_read_sent_twice_with_two_values_is_refused() {
        let pairs = form::decode(b"From=a&From=b").expect("decodes");
        assert_eq!(
            Params::new(pairs).err(),
            Some(FieldError::Repeated("From".into()))
        );
        let pairs = form::decode(b"From=a&From=a&Body=x").expect("decodes");
        let p = Params::new(pairs).expect("the same value twice is one value");
        assert_eq!((p.get("From"), p.pairs.len()), (Some("a"), 2));
        let pairs = form::decode(b"Binding=a&Binding=b&Body=x").expect("decodes");
        assert!(
            Params::new(pairs).is_ok(),
            "a list-valued field we do not read is kept and ignored"
        );
    }

    #[test]
    fn garbage_error_codes_are_kept_but_not_numbers() {
        let p = params(b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=abc");
        assert_eq!(
            MessageStatus::from_params(&p).expect("parses").error_code(),
            Some(Err(()))
        );
    }
}
