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
}
