//! The call side's decisions (docs/calls.md): whether a callback to a lead may be placed now
//! (the call rule), what the agent hears, and what each carrier signal means for the callback.
//! Pure: the webhook handlers and the `call_back` job record what these return.

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::domain::dial::{self, DialOutcome};
use crate::domain::gate::Usability;
use crate::domain::quiet_hours::{self, Blackout, Profile};
use crate::domain::zones::ZoneInfo;

/// How long the link in an alert text places a call.
pub const LINK_TTL_SECS: i64 = 2 * 60 * 60;

/// How long the lead's phone rings once the agent pressed 1.
pub const LEAD_RING_SECS: u32 = 30;

/// Who asked for the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A person clicked "Call back" in the inbox.
    Inbox,
    /// A person opened the link of an alert text and confirmed.
    Link,
    /// textback itself, right after a miss (`callback = "auto"`).
    Auto,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Inbox => "inbox",
            Origin::Link => "link",
            Origin::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        match s {
            "inbox" => Some(Origin::Inbox),
            "link" => Some(Origin::Link),
            "auto" => Some(Origin::Auto),
            _ => None,
        }
    }

    pub fn is_person(self) -> bool {
        self != Origin::Auto
    }
}

/// An office's `hours = "HH:MM-HH:MM"` (24-hour, opening before closing, the same day).
pub fn parse_hours(s: &str) -> Result<(NaiveTime, NaiveTime), &'static str> {
    const SHAPE: &str = "must be like \"09:00-18:00\" (24-hour, opening before closing)";
    let (open, close) = s.trim().split_once('-').ok_or(SHAPE)?;
    let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| SHAPE);
    let (open, close) = (time(open)?, time(close)?);
    if open >= close {
        return Err(SHAPE);
    }
    Ok((open, close))
}

/// Whether an office with `hours` is open at `now` in `tz` (no hours: always).
pub fn office_open(now: DateTime<Utc>, tz: Tz, hours: Option<(NaiveTime, NaiveTime)>) -> bool {
    hours.is_none_or(|(open, close)| {
        let local = now.with_timezone(&tz).time();
        open <= local && local < close
    })
}

/// What is known of the lead when a callback is asked for.
#[derive(Debug, Clone)]
pub struct RuleInput<'a> {
    pub origin: Origin,
    pub usability: Usability,
    /// The contact was deleted from the inbox.
    pub deleted: bool,
    /// Why the number is on the suppression list, if it is (`import` is the brokerage's
    /// do-not-call list; the others are text opt-outs: `keyword`, `carrier`, `review`, `agent`).
    pub suppression_source: Option<&'a str>,
    /// The contact is on review hold (a possible opt-out a person has not decided).
    pub review_hold: bool,
    /// The number's office is inside its `hours` (always, when it names none).
    pub office_open: bool,
    pub zone: &'a ZoneInfo,
    pub profile: &'a Profile,
    pub blackouts: &'a [Blackout],
}

/// The call rule's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRule {
    Allow,
    /// Refused: `reason` is a fixed code, `until` when the calling window opens again (for
    /// the words shown).
    Refuse {
        reason: &'static str,
        until: Option<DateTime<Utc>>,
    },
}

impl CallRule {
    /// The refusal in words a person acts on.
    pub fn words(&self) -> String {
        match self {
            CallRule::Allow => "allowed".to_owned(),
            CallRule::Refuse { reason, until } => {
                let base = match *reason {
                    "deleted" => "the contact was deleted",
                    "invalid_number" => "the number is not a valid US number",
                    "outside_us" => "the number is outside the US",
                    "do_not_call" => "the number is on the brokerage's do-not-call list",
                    "opted_out" => {
                        "the lead opted out of texts; only a person may call them back, not the automation"
                    }
                    "review_hold" => {
                        "a possible opt-out awaits a decision; only a person may call them back"
                    }
                    "calling_window" => "it is outside the lead's calling hours",
                    "office_closed" => "the office is closed (its hours in the setup file)",
                    "blackout" => "a declared blackout is in force for the lead's state",
                    other => other,
                };
                match until {
                    Some(t) => format!("{base} (they open at {} UTC)", t.format("%H:%M")),
                    None => base.to_owned(),
                }
            }
        }
    }
}

/// The call rule (README.md "Compliance in brief", docs/calls.md "The call rule"):
///
/// 1. a deleted contact, an invalid or non-US number: refused;
/// 2. the brokerage's do-not-call list (`import`): refused, whoever asks;
/// 3. a text opt-out (STOP, a carrier's 21610, a person's "do not text") or a review hold:
///    refused for the automation; a person may still return the lead's call (the lead asked
///    not to be texted, and called the brokerage themselves);
/// 4. an office's `hours`, when the setup file names them: the automation calls agents only
///    while their office is open;
/// 5. the calling window: the same window as texts (8 am to 9 pm in the lead's local time,
///    narrowed by the state's rules, holidays and blackouts), for every callback.
pub fn rule(input: &RuleInput<'_>, now: DateTime<Utc>) -> CallRule {
    let refuse = |reason| CallRule::Refuse {
        reason,
        until: None,
    };
    if input.deleted {
        return refuse("deleted");
    }
    match input.usability {
        Usability::Invalid => return refuse("invalid_number"),
        Usability::OutsideUs => return refuse("outside_us"),
        Usability::Us => {}
    }
    match input.suppression_source {
        Some("import") => return refuse("do_not_call"),
        Some(_) if !input.origin.is_person() => return refuse("opted_out"),
        _ => {}
    }
    if input.review_hold && !input.origin.is_person() {
        return refuse("review_hold");
    }
    if !input.office_open && !input.origin.is_person() {
        return refuse("office_closed");
    }
    match quiet_hours::window_at(now, &input.zone.zones, input.profile, input.blackouts) {
        quiet_hours::Window::Open { .. } => CallRule::Allow,
        quiet_hours::Window::Closed { reason, .. } => CallRule::Refuse {
            reason: if reason == "blackout" {
                "blackout"
            } else {
                "calling_window"
            },
            until: quiet_hours::next_allowed(
                now,
                &input.zone.zones,
                input.profile,
                input.blackouts,
                chrono::TimeDelta::days(14),
            ),
        },
    }
}

/// What the agent hears when they pick up, before pressing 1.
pub fn agent_prompt(
    origin: Origin,
    brokerage: &str,
    name: Option<&str>,
    listing: Option<&str>,
) -> String {
    let about = listing
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!(" about {l}"))
        .unwrap_or_default();
    let who = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("a caller");
    match origin {
        Origin::Auto => {
            format!("Missed call from {who}{about}. Press 1 to call them back now.")
        }
        Origin::Inbox | Origin::Link => {
            format!("{brokerage} callback to {who}{about}. Press 1 to connect.")
        }
    }
}

/// How a callback ended (`callback.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The lead answered and was bridged to the agent.
    Connected,
    LeadBusy,
    LeadNoAnswer,
    LeadFailed,
    /// The agent's phone was not answered (busy, no answer, failed, cancelled).
    AgentNoAnswer,
    /// The agent picked up and did not press 1 (or pressed another key).
    AgentDeclined,
    /// The agent pressed 1 but no bridge followed (the lead's dial never ran: our answer to
    /// the 1 was lost, the agent hung up first).
    NotBridged,
    /// The call rule refused it when the job ran.
    Refused,
    /// The carrier refused the create, or has no record of it: no call was placed.
    NotPlaced,
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Connected => "connected",
            Ended::LeadBusy => "lead_busy",
            Ended::LeadNoAnswer => "lead_no_answer",
            Ended::LeadFailed => "lead_failed",
            Ended::AgentNoAnswer => "agent_no_answer",
            Ended::AgentDeclined => "agent_declined",
            Ended::NotBridged => "not_bridged",
            Ended::Refused => "refused",
            Ended::NotPlaced => "not_placed",
        }
    }

    pub fn parse(s: &str) -> Option<Ended> {
        [
            Ended::Connected,
            Ended::LeadBusy,
            Ended::LeadNoAnswer,
            Ended::LeadFailed,
            Ended::AgentNoAnswer,
            Ended::AgentDeclined,
            Ended::NotBridged,
            Ended::Refused,
            Ended::NotPlaced,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }

    /// The thread's words for it.
    pub fn words(self) -> &'static str {
        match self {
            Ended::Connected => "connected",
            Ended::LeadBusy => "the lead's line was busy",
            Ended::LeadNoAnswer => "the lead did not answer",
            Ended::LeadFailed => "the lead's number could not be reached",
            Ended::AgentNoAnswer => "the agent did not answer",
            Ended::AgentDeclined => "the agent did not press 1",
            Ended::NotBridged => "the agent pressed 1 but the lead was never dialled",
            Ended::Refused => "not placed: the call rule refused it",
            Ended::NotPlaced => "not placed: the carrier did not take the call",
        }
    }

    /// An automatic callback goes on to the next agent after these.
    pub fn tries_next_agent(self) -> bool {
        matches!(self, Ended::AgentNoAnswer | Ended::AgentDeclined)
    }
}

/// The lead's leg: the `<Dial action>` of the bridge, by the same table as an incoming call's
/// (docs/twilio.md §1.6).
pub fn bridge_result(dial_call_status: &str, dial_bridged: Option<&str>) -> Ended {
    match dial::classify(dial::parse_bridged(dial_bridged), dial_call_status) {
        DialOutcome::Answered => Ended::Connected,
        _ => match dial_call_status.trim().to_ascii_lowercase().as_str() {
            "busy" => Ended::LeadBusy,
            "no-answer" | "canceled" | "completed" | "answered" => Ended::LeadNoAnswer,
            _ => Ended::LeadFailed,
        },
    }
}

/// Where a callback is, as far as the agent's leg goes (`callback.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Not yet asked of the carrier, or the create's answer is not known yet.
    Placing,
    /// The carrier has the call; the agent's phone rings.
    Ringing,
    /// The agent picked up and hears the prompt.
    Answered,
    /// The agent pressed 1; the lead is being dialled.
    Dialing,
}

impl Stage {
    pub fn from_state(state: &str) -> Option<Stage> {
        match state {
            "queued" | "creating" | "unknown" => Some(Stage::Placing),
            "ringing" => Some(Stage::Ringing),
            "answered" => Some(Stage::Answered),
            "dialing" => Some(Stage::Dialing),
            _ => None,
        }
    }
}

/// The agent's leg ended (its final status callback, or the carrier's record of the call when
/// the job settles it) before any bridge result: what that means. `None` for a status that is
/// not final.
pub fn leg_ended(stage: Stage, call_status: &str) -> Option<Ended> {
    let status = call_status.trim().to_ascii_lowercase();
    let final_status = matches!(
        status.as_str(),
        "completed" | "busy" | "no-answer" | "failed" | "canceled"
    );
    if !final_status {
        return None;
    }
    Some(match stage {
        // Never picked up: whatever the status says, the agent was not reached.
        Stage::Placing | Stage::Ringing => match status.as_str() {
            "completed" => Ended::AgentDeclined,
            _ => Ended::AgentNoAnswer,
        },
        Stage::Answered => Ended::AgentDeclined,
        Stage::Dialing => Ended::NotBridged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::zones;
    use chrono::TimeZone;

    fn profiles() -> &'static quiet_hours::Profiles {
        quiet_hours::profiles().expect("the embedded windows load")
    }

    fn input<'a>(zone: &'a ZoneInfo, origin: Origin) -> RuleInput<'a> {
        RuleInput {
            origin,
            usability: Usability::Us,
            deleted: false,
            suppression_source: None,
            review_hold: false,
            office_open: true,
            zone,
            profile: profiles().get(zone.state),
            blackouts: &[],
        }
    }

    /// A Wednesday, 14:00 in Boston (June: UTC−4).
    fn afternoon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 10, 18, 0, 0).unwrap()
    }

    #[test]
    fn the_rule_table() {
        let boston = zones::lookup("+16175550123");
        let night = Utc.with_ymd_and_hms(2026, 6, 11, 3, 0, 0).unwrap(); // 23:00 Boston
        type Case = (
            &'static str,
            fn(&mut RuleInput<'_>),
            Origin,
            DateTime<Utc>,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "a person, in the window",
                |_| {},
                Origin::Inbox,
                afternoon(),
                None,
            ),
            (
                "the automation, in the window",
                |_| {},
                Origin::Auto,
                afternoon(),
                None,
            ),
            (
                "deleted",
                |i| i.deleted = true,
                Origin::Inbox,
                afternoon(),
                Some("deleted"),
            ),
            (
                "invalid",
                |i| i.usability = Usability::Invalid,
                Origin::Inbox,
                afternoon(),
                Some("invalid_number"),
            ),
            (
                "outside the US",
                |i| i.usability = Usability::OutsideUs,
                Origin::Link,
                afternoon(),
                Some("outside_us"),
            ),
            (
                "do-not-call, a person",
                |i| i.suppression_source = Some("import"),
                Origin::Inbox,
                afternoon(),
                Some("do_not_call"),
            ),
            (
                "do-not-call, the automation",
                |i| i.suppression_source = Some("import"),
                Origin::Auto,
                afternoon(),
                Some("do_not_call"),
            ),
            (
                "STOP, a person",
                |i| i.suppression_source = Some("keyword"),
                Origin::Inbox,
                afternoon(),
                None,
            ),
            (
                "STOP, by link",
                |i| i.suppression_source = Some("keyword"),
                Origin::Link,
                afternoon(),
                None,
            ),
            (
                "STOP, the automation",
                |i| i.suppression_source = Some("keyword"),
                Origin::Auto,
                afternoon(),
                Some("opted_out"),
            ),
            (
                "carrier opt-out, the automation",
                |i| i.suppression_source = Some("carrier"),
                Origin::Auto,
                afternoon(),
                Some("opted_out"),
            ),
            (
                "review hold, a person",
                |i| i.review_hold = true,
                Origin::Inbox,
                afternoon(),
                None,
            ),
            (
                "review hold, the automation",
                |i| i.review_hold = true,
                Origin::Auto,
                afternoon(),
                Some("review_hold"),
            ),
            (
                "night, a person",
                |_| {},
                Origin::Inbox,
                night,
                Some("calling_window"),
            ),
            (
                "night, the automation",
                |_| {},
                Origin::Auto,
                night,
                Some("calling_window"),
            ),
            (
                "deleted wins over night",
                |i| i.deleted = true,
                Origin::Auto,
                night,
                Some("deleted"),
            ),
        ];
        for (name, tweak, origin, now, want) in cases {
            let mut i = input(&boston, origin);
            tweak(&mut i);
            let got = rule(&i, now);
            match (want, &got) {
                (None, CallRule::Allow) => {}
                (Some(w), CallRule::Refuse { reason, .. }) if *reason == w => {}
                _ => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_refusal_for_the_hour_says_when_it_opens() {
        let boston = zones::lookup("+16175550123");
        let night = Utc.with_ymd_and_hms(2026, 6, 11, 3, 0, 0).unwrap();
        let got = rule(&input(&boston, Origin::Inbox), night);
        let CallRule::Refuse {
            until: Some(until), ..
        } = got
        else {
            panic!("refused with a time: {got:?}");
        };
        assert!(until > night && until - night < chrono::TimeDelta::hours(12));
        assert_eq!(rule(&input(&boston, Origin::Inbox), until), CallRule::Allow);
        assert!(got.words().contains("calling hours"));
    }

    #[test]
    fn a_blackout_refuses_a_call_too() {
        let boston = zones::lookup("+16175550123");
        let blackouts = [Blackout {
            states: vec!["MA".into()],
            from: afternoon() - chrono::TimeDelta::hours(1),
            until: afternoon() + chrono::TimeDelta::hours(1),
            reason: "storm".into(),
        }];
        let mut i = input(&boston, Origin::Inbox);
        i.blackouts = &blackouts;
        assert!(matches!(
            rule(&i, afternoon()),
            CallRule::Refuse {
                reason: "blackout",
                ..
            }
        ));
    }

    #[test]
    fn prompts_name_the_brokerage_the_caller_and_the_listing() {
        assert_eq!(
            agent_prompt(Origin::Inbox, "Harbor Realty", None, Some("123 Main St")),
            "Harbor Realty callback to a caller about 123 Main St. Press 1 to connect."
        );
        assert_eq!(
            agent_prompt(Origin::Link, "Harbor Realty", Some("Jordan"), None),
            "Harbor Realty callback to Jordan. Press 1 to connect."
        );
        assert_eq!(
            agent_prompt(
                Origin::Auto,
                "Harbor Realty",
                Some("  "),
                Some("123 Main St")
            ),
            "Missed call from a caller about 123 Main St. Press 1 to call them back now."
        );
    }

    #[test]
    fn bridge_results_follow_the_dial_table() {
        let table = [
            ("completed", Some("true"), Ended::Connected),
            ("completed", None, Ended::Connected),
            ("answered", Some("true"), Ended::Connected),
            ("busy", Some("false"), Ended::LeadBusy),
            ("no-answer", Some("false"), Ended::LeadNoAnswer),
            ("no-answer", None, Ended::LeadNoAnswer),
            ("failed", None, Ended::LeadFailed),
            ("canceled", Some("false"), Ended::LeadNoAnswer),
            // A voicemail that picked up and was not bridged is not a conversation.
            ("completed", Some("false"), Ended::LeadNoAnswer),
            ("something-new", None, Ended::LeadFailed),
        ];
        for (status, bridged, want) in table {
            assert_eq!(bridge_result(status, bridged), want, "{status} {bridged:?}");
        }
    }

    #[test]
    fn a_leg_that_ended_early_says_who_did_not_act() {
        let table = [
            (Stage::Placing, "no-answer", Some(Ended::AgentNoAnswer)),
            (Stage::Ringing, "busy", Some(Ended::AgentNoAnswer)),
            (Stage::Ringing, "failed", Some(Ended::AgentNoAnswer)),
            (Stage::Ringing, "canceled", Some(Ended::AgentNoAnswer)),
            (Stage::Ringing, "completed", Some(Ended::AgentDeclined)),
            (Stage::Answered, "completed", Some(Ended::AgentDeclined)),
            (Stage::Dialing, "completed", Some(Ended::NotBridged)),
            (Stage::Ringing, "ringing", None),
            (Stage::Answered, "in-progress", None),
            (Stage::Dialing, "COMPLETED", Some(Ended::NotBridged)),
        ];
        for (stage, status, want) in table {
            assert_eq!(leg_ended(stage, status), want, "{stage:?} {status}");
        }
        for e in [Ended::AgentNoAnswer, Ended::AgentDeclined] {
            assert!(e.tries_next_agent());
        }
        for e in [
            Ended::Connected,
            Ended::LeadBusy,
            Ended::NotBridged,
            Ended::Refused,
        ] {
            assert!(!e.tries_next_agent());
        }
        for e in [
            Ended::Connected,
            Ended::LeadBusy,
            Ended::LeadNoAnswer,
            Ended::LeadFailed,
            Ended::AgentNoAnswer,
            Ended::AgentDeclined,
            Ended::NotBridged,
            Ended::Refused,
            Ended::NotPlaced,
        ] {
            assert_eq!(Ended::parse(e.as_str()), Some(e));
        }
        assert_eq!(Stage::from_state("ended"), None);
        assert_eq!(Origin::parse("auto"), Some(Origin::Auto));
    }

    #[test]
    fn office_hours_parse_and_open() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(parse_hours("09:00-18:00"), Ok((t(9, 0), t(18, 0))));
        assert_eq!(parse_hours(" 8:30 - 17:45 "), Ok((t(8, 30), t(17, 45))));
        for bad in [
            "18:00-09:00",
            "09:00-09:00",
            "9-17",
            "09:00",
            "25:00-26:00",
            "",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad}");
        }
        let ny = chrono_tz::America::New_York;
        let hours = Some((t(9, 0), t(18, 0)));
        // 14:00 in New York (June, UTC−4); 08:59; 18:00 (closed at the closing minute).
        assert!(office_open(afternoon(), ny, hours));
        assert!(!office_open(
            Utc.with_ymd_and_hms(2026, 6, 10, 12, 59, 0).unwrap(),
            ny,
            hours
        ));
        assert!(!office_open(
            Utc.with_ymd_and_hms(2026, 6, 10, 22, 0, 0).unwrap(),
            ny,
            hours
        ));
        assert!(office_open(
            Utc.with_ymd_and_hms(2026, 6, 10, 3, 0, 0).unwrap(),
            ny,
            None
        ));
    }
}
