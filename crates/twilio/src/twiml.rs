//! The TwiML we answer with. Small and fixed, so written directly, with every text and
//! attribute value XML-escaped.

/// `Content-Type` of every TwiML answer.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Escapes text and attribute values (both quote kinds, so either delimiter is safe).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<Response/>`: nothing to do (unknown numbers, inbound texts, a caller who already left).
pub fn empty() -> String {
    format!("{HEAD}<Response/>")
}

/// `<Response><Hangup/></Response>`.
pub fn hangup() -> String {
    format!("{HEAD}<Response><Hangup/></Response>")
}

/// `<Say>` the message, then hang up (a number's `missed_message`).
pub fn say_then_hangup(message: &str) -> String {
    format!(
        "{HEAD}<Response><Say>{}</Say><Hangup/></Response>",
        escape(message)
    )
}

/// One agent leg of a `<Dial>`.
pub struct DialTarget<'a> {
    pub number: &'a str,
    /// `<Number url=…>`: TwiML run on the agent's leg after it answers, before bridging.
    pub screen_url: Option<&'a str>,
}

/// Rings every target at once for `timeout_secs`; Twilio then requests `action_url` with the
/// result. `answerOnBridge` keeps the caller hearing ringing until an agent takes the call, so
/// an agent's voicemail that answers and fails the screen never sounds "connected" to them.
pub fn dial(timeout_secs: i32, action_url: &str, targets: &[DialTarget<'_>]) -> String {
    let mut out = format!(
        r#"{HEAD}<Response><Dial timeout="{timeout_secs}" answerOnBridge="true" action="{}" method="POST">"#,
        escape(action_url)
    );
    for t in targets {
        match t.screen_url {
            Some(url) => out.push_str(&format!(
                r#"<Number url="{}" method="POST">{}</Number>"#,
                escape(url),
                escape(t.number)
            )),
            None => out.push_str(&format!("<Number>{}</Number>", escape(t.number))),
        }
    }
    out.push_str("</Dial></Response>");
    out
}

/// The screen on an agent's leg: "press 1 to take it", else hang up that leg. `<Gather>`
/// sends the digit to `action_url`; no key within the timeout (a voicemail greeting) falls
/// through to `<Hangup/>`.
pub fn screen(prompt: &str, action_url: &str) -> String {
    format!(
        r#"{HEAD}<Response><Gather numDigits="1" timeout="8" action="{}" method="POST"><Say>{}</Say></Gather><Hangup/></Response>"#,
        escape(action_url),
        escape(prompt)
    )
}

/// The bridge of a callback, once the agent pressed 1: dial the lead from the brokerage number
/// (`caller_id`, the number the lead called), ringing `timeout_secs`; `answerOnBridge` keeps
/// the agent hearing ringing until the lead picks up; the result goes to `action_url`.
pub fn bridge(caller_id: &str, lead: &str, timeout_secs: u32, action_url: &str) -> String {
    format!(
        r#"{HEAD}<Response><Dial callerId="{}" timeout="{timeout_secs}" answerOnBridge="true" action="{}" method="POST"><Number>{}</Number></Dial></Response>"#,
        escape(caller_id),
        escape(action_url),
        escape(lead)
    )
}

/// `<Say>` the message, then `<Hangup/>`, as a voicemail's last words.
pub fn say(message: &str) -> String {
    format!(
        "{HEAD}<Response><Say>{}</Say><Hangup/></Response>",
        escape(message)
    )
}

/// Where a voicemail's recording and its transcript are reported.
pub struct Voicemail<'a> {
    /// The `<Record action>`: the request after the caller hangs up or presses a key.
    pub action_url: &'a str,
    pub recording_status_url: &'a str,
    /// `Some`: ask Twilio to transcribe and report here.
    pub transcribe_url: Option<&'a str>,
    pub max_secs: u32,
}

/// The missed message (when the number has one), then a beep and a recording of up to
/// `max_secs` (docs/twilio.md §1.7). `action` is always set, or Twilio would request this
/// document again and loop.
pub fn voicemail(message: Option<&str>, v: &Voicemail<'_>) -> String {
    let say = message
        .map(|m| format!("<Say>{}</Say>", escape(m)))
        .unwrap_or_default();
    let transcribe = match v.transcribe_url {
        Some(url) => format!(r#" transcribe="true" transcribeCallback="{}""#, escape(url)),
        None => String::new(),
    };
    format!(
        r#"{HEAD}<Response>{say}<Record maxLength="{}" playBeep="true" timeout="5" trim="trim-silence" action="{}" method="POST" recordingStatusCallback="{}" recordingStatusCallbackMethod="POST" recordingStatusCallbackEvent="completed absent"{transcribe}/></Response>"#,
        v.max_secs,
        escape(v.action_url),
        escape(v.recording_status_url),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).expect("well-formed XML")
    }

    #[test]
    fn dial_rings_every_target_with_the_screen() {
        let xml = dial(
            18,
            "https://t.example/twilio/voice/dial",
            &[
                DialTarget {
                    number: "+15555550101",
                    screen_url: Some("https://t.example/twilio/voice/screen"),
                },
                DialTarget {
                    number: "+15555550102",
                    screen_url: Some("https://t.example/twilio/voice/screen"),
                },
            ],
        );
        let doc = parse(&xml);
        let d = doc
            .descendants()
            .find(|n| n.has_tag_name("Dial"))
            .expect("a Dial");
        assert_eq!(d.attribute("timeout"), Some("18"));
        assert_eq!(d.attribute("answerOnBridge"), Some("true"));
        assert_eq!(
            d.attribute("action"),
            Some("https://t.example/twilio/voice/dial")
        );
        let numbers: Vec<_> = d.children().filter(|n| n.has_tag_name("Number")).collect();
        assert_eq!(numbers.len(), 2);
        assert_eq!(numbers[1].text(), Some("+15555550102"));
        assert_eq!(
            numbers[0].attribute("url"),
            Some("https://t.example/twilio/voice/screen")
        );
    }

    #[test]
    fn without_screen_numbers_have_no_url() {
        let xml = dial(
            5,
            "https://t.example/d",
            &[DialTarget {
                number: "+15555550101",
                screen_url: None,
            }],
        );
        let doc = parse(&xml);
        let n = doc
            .descendants()
            .find(|n| n.has_tag_name("Number"))
            .expect("a Number");
        assert_eq!(n.attribute("url"), None);
    }

    #[test]
    fn text_is_escaped() {
        let xml = say_then_hangup(r#"Tom & Jerry's <"Realty">"#);
        let doc = parse(&xml);
        let say = doc
            .descendants()
            .find(|n| n.has_tag_name("Say"))
            .expect("a Say");
        assert_eq!(say.text(), Some(r#"Tom & Jerry's <"Realty">"#));
        assert!(doc.descendants().any(|n| n.has_tag_name("Hangup")));
    }

    #[test]
    fn screen_gathers_one_digit_then_hangs_up() {
        let xml = screen(
            "Call for Harbor Realty about 123 Main St. Press 1 to take it.",
            "https://t.example/twilio/voice/screen/answer",
        );
        let doc = parse(&xml);
        let g = doc
            .descendants()
            .find(|n| n.has_tag_name("Gather"))
            .expect("a Gather");
        assert_eq!(g.attribute("numDigits"), Some("1"));
        assert_eq!(
            g.attribute("action"),
            Some("https://t.example/twilio/voice/screen/answer")
        );
        let root = doc.root_element();
        let last = root.children().rfind(|n| n.is_element()).expect("children");
        assert!(last.has_tag_name("Hangup"));
    }

    #[test]
    fn empty_and_hangup_are_well_formed() {
        assert_eq!(parse(&empty()).root_element().children().count(), 0);
        assert!(
            parse(&hangup())
                .descendants()
                .any(|n| n.has_tag_name("Hangup"))
        );
    }

    #[test]
    fn a_bridge_dials_the_lead_from_the_brokerage_number() {
        let xml = bridge(
            "+15555550100",
            "+16175550123",
            30,
            "https://t.example/twilio/voice/callback/dial?cb=7",
        );
        let doc = parse(&xml);
        let d = doc
            .descendants()
            .find(|n| n.has_tag_name("Dial"))
            .expect("a Dial");
        assert_eq!(d.attribute("callerId"), Some("+15555550100"));
        assert_eq!(d.attribute("answerOnBridge"), Some("true"));
        assert_eq!(d.attribute("timeout"), Some("30"));
        assert_eq!(
            d.attribute("action"),
            Some("https://t.example/twilio/voice/callback/dial?cb=7")
        );
        let n = d
            .children()
            .find(|n| n.has_tag_name("Number"))
            .expect("a Number");
        assert_eq!(n.text(), Some("+16175550123"));
    }

    #[test]
    fn a_voicemail_says_the_message_then_records_with_its_callbacks() {
        let v = Voicemail {
            action_url: "https://t.example/twilio/voice/voicemail",
            recording_status_url: "https://t.example/twilio/voice/recording",
            transcribe_url: Some("https://t.example/twilio/voice/transcription"),
            max_secs: 120,
        };
        let xml = voicemail(Some("Sorry we missed you & will text."), &v);
        let doc = parse(&xml);
        let say = doc
            .descendants()
            .find(|n| n.has_tag_name("Say"))
            .expect("a Say");
        assert_eq!(say.text(), Some("Sorry we missed you & will text."));
        let r = doc
            .descendants()
            .find(|n| n.has_tag_name("Record"))
            .expect("a Record");
        assert_eq!(r.attribute("maxLength"), Some("120"));
        assert_eq!(r.attribute("playBeep"), Some("true"));
        assert_eq!(
            r.attribute("action"),
            Some("https://t.example/twilio/voice/voicemail")
        );
        assert_eq!(
            r.attribute("recordingStatusCallback"),
            Some("https://t.example/twilio/voice/recording")
        );
        assert_eq!(r.attribute("transcribe"), Some("true"));
        assert_eq!(
            r.attribute("transcribeCallback"),
            Some("https://t.example/twilio/voice/transcription")
        );
        let plain = voicemail(
            None,
            &Voicemail {
                transcribe_url: None,
                ..v
            },
        );
        let doc = parse(&plain);
        assert!(!doc.descendants().any(|n| n.has_tag_name("Say")));
        let r = doc
            .descendants()
            .find(|n| n.has_tag_name("Record"))
            .expect("a Record");
        assert_eq!(r.attribute("transcribe"), None);
    }
}
