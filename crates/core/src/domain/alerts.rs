//! Alerts to the brokerage's own people (docs/architecture.md step 9): what the text says, and the rate
//! limit that holds it back. A text to staff carries no lead message beyond a short preview,
//! and a lead's number only masked: the link opens the conversation for the rest.

use crate::domain::phone::mask;

/// At most one alert per conversation per 5 minutes, and 30 per agent per hour.
pub const PER_CONVERSATION_SECS: i64 = 5 * 60;
pub const PER_AGENT_HOUR: i64 = 30;

/// A preview of a lead's text: at most this many characters.
pub const PREVIEW_CHARS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Send,
    /// Another alert about this conversation went to this person in the last 5 minutes.
    Conversation,
    /// This person had 30 alerts in the last hour.
    Agent,
}

impl Limit {
    pub fn reason(self) -> &'static str {
        match self {
            Limit::Send => "alert_allowed",
            Limit::Conversation => "alert_conversation_limit",
            Limit::Agent => "alert_agent_limit",
        }
    }
}

/// The limit's decision from the counts of alerts already texted: to this person about this
/// conversation in the last 5 minutes, and to this person in the last hour.
pub fn limit(conversation_recent: i64, agent_last_hour: i64) -> Limit {
    if conversation_recent > 0 {
        Limit::Conversation
    } else if agent_last_hour >= PER_AGENT_HOUR {
        Limit::Agent
    } else {
        Limit::Send
    }
}

/// The first [`PREVIEW_CHARS`] characters of `body` on one line, with `…` when cut.
pub fn preview(body: &str) -> String {
    let body = crate::domain::sms_text::printable(body);
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(PREVIEW_CHARS).collect();
    if one_line.chars().count() > PREVIEW_CHARS {
        out = out.trim_end().to_owned();
        out.push('…');
    }
    out
}

/// Who the alert is about: the name an agent gave the contact, else the masked number.
pub fn who(name: Option<&str>, phone: &str) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} ({})", mask(phone)),
        None => mask(phone),
    }
}

fn about(listing: Option<&str>) -> String {
    match listing.map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) => format!(" about {l}"),
        None => String::new(),
    }
}

/// What an alert says, by its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertText<'a> {
    /// A lead replied (docs/architecture.md step 5).
    Reply {
        who: &'a str,
        listing: Option<&'a str>,
        body: &'a str,
        /// Its media as [`super::media::tag`] names them ("[photo]").
        media: Option<&'a str>,
    },
    /// A callback task (docs/architecture.md step 8).
    Callback {
        who: &'a str,
        listing: Option<&'a str>,
        /// "landline", "cannot take texts", …
        why: &'a str,
    },
    /// The caller called again after the text-back left (docs/architecture.md step 2).
    RepeatCall {
        who: &'a str,
        listing: Option<&'a str>,
    },
    /// A lead's reply waited too long (`escalate_after`).
    Escalation {
        who: &'a str,
        minutes: i64,
        assigned: Option<&'a str>,
    },
    /// A missed call on a number with `callback = "offer"` (docs/calls.md): the text carries
    /// the callback link.
    MissedCall {
        who: &'a str,
        listing: Option<&'a str>,
    },
    /// A voicemail (docs/calls.md): its length and, when it came in time, its transcript.
    Voicemail {
        who: &'a str,
        listing: Option<&'a str>,
        secs: i32,
        transcript: Option<&'a str>,
    },
    /// A configuration alert for the admins.
    Admin { what: &'a str },
    /// A new lead offered to several agents: the first to claim it owns it (docs/routing.md).
    Offer {
        who: &'a str,
        listing: Option<&'a str>,
    },
    /// A one-off text to one person (the answer to their command, a claim, a move).
    Notice { text: &'a str },
    /// A lead from the website or a lead source (docs/leads.md), with what they wrote.
    WebLead {
        who: &'a str,
        listing: Option<&'a str>,
        source: Option<&'a str>,
        message: Option<&'a str>,
    },
}

/// What an agent may text back, at the end of an alert about a conversation (README.md "Agents
/// on their phones").
pub fn hint(alert: &AlertText<'_>) -> Option<&'static str> {
    match alert {
        AlertText::Offer { .. } => Some("Reply CLAIM to take it."),
        AlertText::Admin { .. } | AlertText::Notice { .. } => None,
        _ => Some(crate::domain::agent_text::COMMANDS),
    }
}

/// An alert about conversation `conversation` (its number, `#12`, lets the agent's texted
/// answer name it) with its link, the callback link and the commands the agent may text back.
pub fn text_about(
    brokerage: &str,
    conversation: i64,
    alert: &AlertText<'_>,
    link: &str,
    callback: Option<&str>,
) -> String {
    if let AlertText::Notice { text } = alert {
        return format!("{brokerage}: {text}");
    }
    let base = text_with_callback(
        &format!("{brokerage} #{conversation}"),
        alert,
        link,
        callback,
    );
    match hint(alert) {
        Some(h) => format!("{base} {h}"),
        None => base,
    }
}

/// The text of an alert to a person of `brokerage`, with `link` (the conversation, or the
/// dashboard) at the end, and the callback link (docs/calls.md) after it when there is one.
pub fn text_with_callback(
    brokerage: &str,
    alert: &AlertText<'_>,
    link: &str,
    callback: Option<&str>,
) -> String {
    let base = text(brokerage, alert, link);
    match callback {
        Some(url) => format!("{base} Call them back from the office line: {url}"),
        None => base,
    }
}

/// The text of an alert to a person of `brokerage`, with `link` (the conversation, or the
/// dashboard) at the end.
pub fn text(brokerage: &str, alert: &AlertText<'_>, link: &str) -> String {
    let body = match alert {
        AlertText::Reply {
            who,
            listing,
            body,
            media,
        } => match (body.trim().is_empty(), media) {
            (true, Some(m)) => format!("{who} replied{}: {m}", about(*listing)),
            (false, Some(m)) => {
                format!(
                    "{who} replied{}: \"{}\" {m}",
                    about(*listing),
                    preview(body)
                )
            }
            (_, None) => format!("{who} replied{}: \"{}\"", about(*listing), preview(body)),
        },
        AlertText::Callback { who, listing, why } => {
            format!("call back {who} ({why}){}", about(*listing))
        }
        AlertText::RepeatCall { who, listing } => {
            format!("{who} called again{} after our text", about(*listing))
        }
        AlertText::Escalation {
            who,
            minutes,
            assigned,
        } => {
            let to = match assigned {
                Some(a) => format!(" (assigned to {a})"),
                None => " (unassigned)".to_owned(),
            };
            format!("{who}'s reply has waited {minutes} min with no answer{to}")
        }
        AlertText::MissedCall { who, listing } => {
            format!("missed call from {who}{}", about(*listing))
        }
        AlertText::Voicemail {
            who,
            listing,
            secs,
            transcript,
        } => {
            let length = format!("{}:{:02}", secs / 60, secs % 60);
            match transcript.map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) => format!(
                    "voicemail ({length}) from {who}{}: \"{}\"",
                    about(*listing),
                    preview(t)
                ),
                None => format!("voicemail ({length}) from {who}{}", about(*listing)),
            }
        }
        AlertText::Admin { what } => (*what).to_owned(),
        AlertText::Offer { who, listing } => {
            format!(
                "new lead {who}{}, offered to you and others",
                about(*listing)
            )
        }
        AlertText::Notice { text } => return format!("{brokerage}: {text}"),
        AlertText::WebLead {
            who,
            listing,
            source,
            message,
        } => {
            let from = match source.map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => format!(" from {}", preview(s)),
                None => String::new(),
            };
            match message.map(str::trim).filter(|m| !m.is_empty()) {
                Some(m) => format!(
                    "new lead{from}: {who}{}: \"{}\"",
                    about(*listing),
                    preview(m)
                ),
                None => format!("new lead{from}: {who}{}", about(*listing)),
            }
        }
    };
    format!("{brokerage}: {body}. {link}")
}

/// What a configuration alert means, in words an admin acts on.
pub fn admin_reason(reason: &str, detail: Option<&str>) -> String {
    let code = detail.unwrap_or("");
    match (reason, code) {
        ("carrier_configuration", "21408") => {
            "the carrier refuses texts to this region (21408): enable it in Twilio's messaging geo permissions".to_owned()
        }
        ("carrier_configuration", "30034") => {
            "the sending number is not registered for A2P 10DLC (30034): texts are blocked until it is".to_owned()
        }
        ("carrier_configuration", c) if c.starts_with("http_40") || c == "401" || c == "403" || c == "404" => {
            format!("the carrier refused our credentials ({c}): check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        }
        ("carrier_configuration", c) => format!("the carrier reports a configuration problem ({c})"),
        ("carrier_filtered", c) => format!(
            "the carrier filtered a text as spam ({c}): review the templates"
        ),
        ("daily_recipient_limit", d) => format!(
            "a number reached its daily limit of new recipients ({d}); texts to new callers wait for tomorrow"
        ),
        ("webhook_paused", name) => format!(
            "the webhook {name} failed for a day and is paused (its events are kept): fix the receiver, then resume it on the Connections page"
        ),
        ("no_window", _) => "a text found no allowed window within 14 days (a long blackout) and was not sent".to_owned(),
        ("needs_review", _) => "a text may not have gone out: the carrier's list could not settle it".to_owned(),
        (other, "") => other.replace('_', " "),
        (other, d) => format!("{} ({d})", other.replace('_', " ")),
    }
}

/// Why a callback task was opened, in a few words, from the alert's detail
/// (`reason` or `reason:detail` of the task).
pub fn callback_why(detail: &str) -> String {
    let (reason, more) = detail.split_once(':').unwrap_or((detail, ""));
    match (reason, more) {
        ("line_type", "landline") => "landline".to_owned(),
        ("line_type", "tollFree") => "toll-free number".to_owned(),
        ("line_type", "") => "cannot take texts".to_owned(),
        ("line_type", other) => format!("{other} line, cannot take texts"),
        // Short: this also goes into an alert text to an agent's phone.
        ("cannot_receive", "30003") => "phone unreachable, texts bounced".to_owned(),
        ("cannot_receive", "30005") => "cannot take texts: unknown phone".to_owned(),
        ("cannot_receive", "30006" | "21614" | "21635") => {
            "cannot take texts: landline or unreachable".to_owned()
        }
        ("cannot_receive", _) => "cannot take texts".to_owned(),
        ("unclassified_call", _) => "the call's result was unclear".to_owned(),
        ("outside_us", _) => "a number outside the US".to_owned(),
        ("opted_out", _) => "opted out of texts".to_owned(),
        (other, _) => other.replace('_', " "),
    }
}

/// Whether an admin alert of this reason is texted to the admins (every one is shown on the
/// dashboard). The configuration alerts are; a problem with our own credentials is not (the
/// text could not go either).
pub fn admin_texted(reason: &str, detail: Option<&str>) -> bool {
    match reason {
        "carrier_configuration" => {
            !matches!(
                detail,
                Some("401" | "403" | "404" | "http_401" | "http_403" | "http_404")
            ) && !detail.is_some_and(|d| d.contains("TWILIO_ACCOUNT_SID"))
        }
        "carrier_filtered" | "daily_recipient_limit" | "no_window" | "webhook_paused" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_one_per_conversation_per_five_minutes_and_thirty_an_hour() {
        assert_eq!(limit(0, 0), Limit::Send);
        assert_eq!(limit(0, 29), Limit::Send);
        assert_eq!(limit(0, 30), Limit::Agent);
        assert_eq!(limit(1, 0), Limit::Conversation);
        assert_eq!(limit(1, 30), Limit::Conversation);
        assert_eq!(Limit::Agent.reason(), "alert_agent_limit");
    }

    #[test]
    fn a_preview_is_short_and_on_one_line() {
        assert_eq!(preview("Yes!"), "Yes!");
        assert_eq!(preview("  two\nlines  "), "two lines");
        let long = "Yes! Is the 3 bed on Main St still available? Could I see it Saturday?";
        let p = preview(long);
        assert_eq!(p, "Yes! Is the 3 bed on Main St still avail…");
        assert!(p.chars().count() <= PREVIEW_CHARS + 1);
        assert_eq!(preview(&"🏠".repeat(50)).chars().count(), PREVIEW_CHARS + 1);
    }

    #[test]
    fn alert_texts_mask_the_number_and_carry_the_link() {
        let who = who(None, "+16175550123");
        assert_eq!(who, "+1617***0123");
        let t = text(
            "Harbor Realty",
            &AlertText::Reply {
                who: &who,
                listing: Some("123 Main St"),
                body: "Yes! Is the 3 bed on Main St still available? Could I see it Saturday?",
                media: None,
            },
            "https://t.example/inbox/c/7",
        );
        assert_eq!(
            t,
            "Harbor Realty: +1617***0123 replied about 123 Main St: \"Yes! Is the 3 bed on Main St still avail…\". https://t.example/inbox/c/7"
        );
        assert!(!t.contains("6175550123"));
        assert_eq!(
            text(
                "Harbor Realty",
                &AlertText::Callback {
                    who: "Jordan (+1617***0124)",
                    listing: None,
                    why: "landline"
                },
                "L"
            ),
            "Harbor Realty: call back Jordan (+1617***0124) (landline). L"
        );
        assert_eq!(
            text(
                "Harbor Realty",
                &AlertText::Escalation {
                    who: "+1617***0123",
                    minutes: 10,
                    assigned: Some("Sam Rivera")
                },
                "L"
            ),
            "Harbor Realty: +1617***0123's reply has waited 10 min with no answer (assigned to Sam Rivera). L"
        );
        assert_eq!(
            super::who(Some(" Jordan "), "+16175550123"),
            "Jordan (+1617***0123)"
        );
    }

    #[test]
    fn callback_reasons_in_words() {
        assert_eq!(callback_why("line_type:landline"), "landline");
        assert_eq!(callback_why("line_type:tollFree"), "toll-free number");
        assert_eq!(
            callback_why("line_type:pager"),
            "pager line, cannot take texts"
        );
        assert_eq!(
            callback_why("cannot_receive:30006"),
            "cannot take texts: landline or unreachable"
        );
        assert_eq!(
            callback_why("unclassified_call:weird"),
            "the call's result was unclear"
        );
        assert_eq!(callback_why("outside_us"), "a number outside the US");
        assert_eq!(callback_why("opted_out"), "opted out of texts");
    }

    #[test]
    fn configuration_alerts_are_texted_but_not_broken_credentials() {
        assert!(admin_texted("carrier_configuration", Some("21408")));
        assert!(admin_texted("carrier_configuration", Some("30034")));
        assert!(admin_texted("carrier_filtered", Some("30007")));
        assert!(admin_texted(
            "daily_recipient_limit",
            Some("+1555***0100 2026-06-12")
        ));
        assert!(!admin_texted("carrier_configuration", Some("401")));
        assert!(!admin_texted(
            "carrier_configuration",
            Some("TWILIO_ACCOUNT_SID is not set")
        ));
        assert!(!admin_texted("needs_review", None));
        assert!(admin_reason("carrier_configuration", Some("30034")).contains("A2P 10DLC"));
        assert!(admin_reason("carrier_filtered", Some("30007")).contains("30007"));
    }

    #[test]
    fn call_side_alerts_preview_the_voicemail_and_carry_the_callback_link() {
        let vm = AlertText::Voicemail {
            who: "+1617***0123",
            listing: Some("123 Main St"),
            secs: 42,
            transcript: Some(
                "Hi, I saw the house on Main Street and would love a showing this weekend please",
            ),
        };
        assert_eq!(
            text("Harbor Realty", &vm, "https://t.example/inbox/c/1"),
            "Harbor Realty: voicemail (0:42) from +1617***0123 about 123 Main St: \"Hi, I saw the house on Main Street and w…\". https://t.example/inbox/c/1"
        );
        let waiting = AlertText::Voicemail {
            who: "Jordan (+1617***0123)",
            listing: None,
            secs: 75,
            transcript: None,
        };
        assert_eq!(
            text("Harbor Realty", &waiting, "L"),
            "Harbor Realty: voicemail (1:15) from Jordan (+1617***0123). L"
        );
        let missed = AlertText::MissedCall {
            who: "+1617***0123",
            listing: Some("123 Main St"),
        };
        assert_eq!(
            text_with_callback(
                "Harbor Realty",
                &missed,
                "L",
                Some("https://t.example/cb/abc")
            ),
            "Harbor Realty: missed call from +1617***0123 about 123 Main St. L Call them back from the office line: https://t.example/cb/abc"
        );
        assert_eq!(
            text_with_callback("Harbor Realty", &missed, "L", None),
            text("Harbor Realty", &missed, "L")
        );
    }

    #[test]
    fn alerts_about_a_conversation_name_it_and_say_what_to_text_back() {
        let reply = AlertText::Reply {
            who: "+1617***0123",
            listing: Some("123 Main St"),
            body: "Is it still available?",
            media: None,
        };
        assert_eq!(
            text_about("Harbor Realty", 12, &reply, "L", None),
            "Harbor Realty #12: +1617***0123 replied about 123 Main St: \"Is it still available?\". L Reply here to text the lead, or CLAIM, CLOSE, TAKE OVER, CALL BACK."
        );
        // A photo is named, alone or after the words.
        let photo = AlertText::Reply {
            who: "+1617***0123",
            listing: None,
            body: "",
            media: Some("[photo]"),
        };
        assert_eq!(
            text_about("Harbor Realty", 12, &photo, "L", None),
            "Harbor Realty #12: +1617***0123 replied: [photo]. L Reply here to text the lead, or CLAIM, CLOSE, TAKE OVER, CALL BACK."
        );
        let both = AlertText::Reply {
            who: "+1617***0123",
            listing: None,
            body: "This one?",
            media: Some("[2 photos]"),
        };
        assert!(
            text_about("Harbor Realty", 12, &both, "L", None)
                .contains("replied: \"This one?\" [2 photos]. L")
        );
        let offer = AlertText::Offer {
            who: "+1617***0123",
            listing: None,
        };
        assert_eq!(
            text_about("Harbor Realty", 3, &offer, "L", None),
            "Harbor Realty #3: new lead +1617***0123, offered to you and others. L Reply CLAIM to take it."
        );
        let notice = AlertText::Notice {
            text: "#3 +1617***0123 was claimed by Ava Chen.",
        };
        assert_eq!(
            text_about("Harbor Realty", 3, &notice, "L", None),
            "Harbor Realty: #3 +1617***0123 was claimed by Ava Chen."
        );
    }

    #[test]
    fn a_web_lead_says_where_it_came_from_and_previews_what_they_wrote() {
        let lead = AlertText::WebLead {
            who: "Alex Morgan (+1617***0123)",
            listing: Some("123 Main St"),
            source: Some("Zillow"),
            message: Some("Is it still available? We would love to see it this weekend."),
        };
        assert_eq!(
            text_about("Harbor Realty", 7, &lead, "L", None),
            "Harbor Realty #7: new lead from Zillow: Alex Morgan (+1617***0123) about 123 Main St: \"Is it still available? We would love to…\". L Reply here to text the lead, or CLAIM, CLOSE, TAKE OVER, CALL BACK."
        );
        let bare = AlertText::WebLead {
            who: "+1617***0123",
            listing: None,
            source: Some("  "),
            message: None,
        };
        assert_eq!(
            text("Harbor Realty", &bare, "L"),
            "Harbor Realty: new lead: +1617***0123. L"
        );
    }
}
