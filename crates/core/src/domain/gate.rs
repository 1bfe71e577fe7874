//! The compliance gate (docs/compliance.md §2): every text to a lead passes it, in the pre-send
//! transaction, and gets allow, defer until T, or skip with a rule and a reason code, plus the
//! facts it used (zones, windows, cap, consent basis) for the decision record.
//!
//! Checks run in the order of docs/compliance.md §2; the first that applies decides:
//!
//! 1. recipient usable (R8);
//! 2. suppression and review hold (R1, R3);
//! 3. keyword responses (R4–R6);
//! 4. scope and consent (R12);
//! 5. frequency cap (R9);
//! 6. daily unique recipients (R15);
//! 7. the window (R7) and blackouts.

use chrono::{DateTime, Duration, Months, Utc};

use crate::domain::phone::PhoneNumber;
use crate::domain::quiet_hours::{self, Blackout, Profile, Window, ZoneWindow};
use crate::domain::zones::ZoneInfo;

/// What is being sent (the kinds of docs/compliance.md §2). Agent alerts are not gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TextBack,
    /// The text that answers a lead from the website or a lead source (docs/leads.md).
    LeadText,
    FollowUp,
    Manual,
    OptOutAck,
    OptInAck,
    Help,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TextBack => "text_back",
            Kind::LeadText => "lead_text",
            Kind::FollowUp => "follow_up",
            Kind::Manual => "manual",
            Kind::OptOutAck => "opt_out_ack",
            Kind::OptInAck => "opt_in_ack",
            Kind::Help => "help",
        }
    }

    pub fn is_keyword_response(self) -> bool {
        matches!(self, Kind::OptOutAck | Kind::OptInAck | Kind::Help)
    }

    /// Composed by the server (R15 limits these, R7's window always applies to them).
    pub fn is_automated(self) -> bool {
        matches!(self, Kind::TextBack | Kind::LeadText | Kind::FollowUp)
    }
}

/// The latest inbound interaction: the consent basis of R12 (docs/compliance.md §2 step 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    pub at: DateTime<Utc>,
    /// `inquiry_call` or `inbound_text`.
    pub basis: &'static str,
    /// The `CallSid` or `MessageSid`.
    pub evidence: String,
}

/// The keyword an R4–R6 response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeywordFacts {
    pub received_at: DateTime<Utc>,
    /// Twilio answered it itself (`OptOutType`, or a carrier-exact body with
    /// `carrier_answers_keywords = true`).
    pub carrier_answered: bool,
    /// R4: the number was suppressed already when the opt-out arrived.
    pub already_confirmed: bool,
}

/// R15: the sending number's recipients of the brokerage's local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daily {
    pub recipients_today: u32,
    pub limit: u32,
    pub contact_already_today: bool,
    /// The next local midnight in the brokerage's zone.
    pub next_midnight: DateTime<Utc>,
}

/// The facts the gate decides on, loaded in the pre-send transaction.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub kind: Kind,
    pub recipient: &'a PhoneNumber,
    pub zone: &'a ZoneInfo,
    pub profile: &'a Profile,
    pub blackouts: &'a [Blackout],
    /// What is known of the number before anything is paid for (R8, R1, R3).
    pub number: NumberFlags,
    /// For keyword responses only.
    pub keyword: Option<KeywordFacts>,
    /// The latest inbound call or text (R12).
    pub inquiry: Option<Inquiry>,
    pub written_consent: bool,
    pub followups_need_written_consent: bool,
    /// The contact texted a non-keyword text within 24 h (manual messages: R7, R9).
    pub live_conversation: bool,
    /// Pre-send commit times of the contact's counted messages (R9), any order; older ones
    /// than 24 h are ignored.
    pub counted: &'a [DateTime<Utc>],
    /// The brokerage's `cap_24h` (R9); the state's cap is applied here too.
    pub cap_24h: u32,
    pub daily: Option<Daily>,
    /// `[text_back] after_hours = "send"`, and when the missed call ended (R7).
    pub after_hours_send: bool,
    pub call_ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        reason: &'static str,
    },
    Defer {
        until: DateTime<Utc>,
        rule: &'static str,
        reason: &'static str,
    },
    Skip {
        rule: &'static str,
        reason: &'static str,
    },
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Defer { .. } => "defer",
            Decision::Skip { .. } => "skip",
        }
    }

    /// The rule as recorded for a text of `kind`: a keyword response is allowed under its own
    /// rule (R4 the opt-out confirmation, R5 the opt-in confirmation, R6 the help text), the
    /// other allows under R7.
    pub fn rule_for(&self, kind: Kind) -> &'static str {
        match self {
            Decision::Allow { reason } => match (*reason, kind) {
                ("keyword_response", Kind::OptInAck) => "R5",
                ("keyword_response", Kind::Help) => "R6",
                ("keyword_response", _) => "R4",
                ("live_conversation" | "after_hours_send" | "in_window", _) => "R7",
                _ => "",
            },
            Decision::Defer { rule, .. } | Decision::Skip { rule, .. } => rule,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Decision::Allow { reason }
            | Decision::Defer { reason, .. }
            | Decision::Skip { reason, .. } => reason,
        }
    }
}

/// What the decision record keeps besides the decision (docs/compliance.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub zones: Vec<String>,
    pub state: String,
    pub country: Option<String>,
    pub windows: Vec<String>,
    pub cap_count: Option<u32>,
    pub cap_limit: Option<u32>,
    pub basis: Option<&'static str>,
    pub basis_evidence: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub facts: Facts,
}

/// R7: a deferral further out than this (a long blackout) ends the job instead.
pub const MAX_DEFERRAL_DAYS: i64 = 14;
/// R4, R6: keyword responses go within this time of the keyword or never.
pub const KEYWORD_RESPONSE_WITHIN: Duration = Duration::minutes(5);
/// R7 `after_hours = "send"`: only for a call that ended at most this long ago.
pub const AFTER_HOURS_SEND_WITHIN: Duration = Duration::minutes(15);
/// R12: the inquiry window.
pub const INQUIRY_MONTHS: u32 = 3;

/// R8: is the recipient a US number of a valid shape?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    Us,
    OutsideUs,
    Invalid,
}

/// The places textback texts: the states, DC and the territories (docs/compliance.md R8).
const US_REGIONS: &[&str] = &["US", "PR", "VI", "GU", "AS", "MP"];

/// R8's checks that need no Lookup: +1 numbers with a valid NPA (not `0XX`, `1XX` or `N11`)
/// and exchange (not `0XX`/`1XX`) are US unless libphonenumber places them in another NANP
/// country; an area code it does not know (a new one, or the fictional 555) counts as US and
/// gets the strictest quiet-hours profile. Other country codes are `outside_us`.
pub fn usability(number: &PhoneNumber) -> Usability {
    let Some(national) = number.as_e164().strip_prefix("+1") else {
        return Usability::OutsideUs;
    };
    let digits = national.as_bytes();
    if digits.len() != 10 {
        return Usability::Invalid;
    }
    let npa_bad = matches!(digits[0], b'0' | b'1') || (digits[1] == b'1' && digits[2] == b'1');
    let exchange_bad = matches!(digits[3], b'0' | b'1');
    if npa_bad || exchange_bad {
        return Usability::Invalid;
    }
    let region = phonenumber::parse(None, number.as_e164())
        .ok()
        .and_then(|p| p.country().id())
        .map(|id| format!("{id:?}"));
    match region {
        Some(r) if !US_REGIONS.contains(&r.as_str()) => Usability::OutsideUs,
        _ => Usability::Us,
    }
}

fn skip(rule: &'static str, reason: &'static str) -> Decision {
    Decision::Skip { rule, reason }
}

/// What is on record about a number (docs/compliance.md §2 steps 1 and 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumberFlags {
    /// The carrier or Lookup said the number is invalid (21211, `valid: false`).
    pub is_known_invalid: bool,
    /// The carrier said the number cannot take texts (21614, 21635, 30005, 30006) and no
    /// inbound text has proved otherwise since: automated texts skip it (`cannot_receive`,
    /// R8); a person may still choose to write (the inbox warns and offers the call first).
    pub cannot_receive: bool,
    /// The number is on the brokerage's suppression list (R1).
    pub is_suppressed: bool,
    /// The contact is on review hold (R3).
    pub review_hold: bool,
}

/// docs/compliance.md §2, steps 1 and 2 only: what the text-back checks before it pays for Lookup
/// (an automated text: a number known unable to take texts is skipped too).
pub fn free_checks(recipient: &PhoneNumber, flags: NumberFlags) -> Option<Decision> {
    match usability(recipient) {
        Usability::Invalid => return Some(skip("R8", "invalid_number")),
        Usability::OutsideUs => return Some(skip("R8", "outside_us")),
        Usability::Us => {}
    }
    if flags.is_known_invalid {
        return Some(skip("R8", "invalid_number"));
    }
    if flags.is_suppressed {
        return Some(skip("R1", "opted_out"));
    }
    if flags.review_hold {
        return Some(skip("R3", "review_hold"));
    }
    if flags.cannot_receive {
        return Some(skip("R8", "cannot_receive"));
    }
    None
}

/// The whole gate (docs/compliance.md §2).
pub fn decide(input: &Input<'_>, now: DateTime<Utc>) -> Verdict {
    let mut facts = Facts {
        zones: input
            .zone
            .zones
            .iter()
            .map(|z| z.name().to_owned())
            .collect(),
        state: input.profile.key().to_owned(),
        country: input.zone.country.map(str::to_owned),
        ..Facts::default()
    };
    if let Some(q) = &input.inquiry {
        facts.basis = Some(q.basis);
        facts.basis_evidence = Some(q.evidence.clone());
    }
    let decision = decide_inner(input, now, &mut facts);
    Verdict { decision, facts }
}

fn decide_inner(input: &Input<'_>, now: DateTime<Utc>, facts: &mut Facts) -> Decision {
    let kind = input.kind;
    // 1. Usable recipient (R8); 2. suppression (R1) and review hold (R3): only the opt-out
    // confirmation passes the second.
    let blocks = kind != Kind::OptOutAck;
    let flags = NumberFlags {
        is_known_invalid: input.number.is_known_invalid,
        cannot_receive: kind.is_automated() && input.number.cannot_receive,
        is_suppressed: blocks && input.number.is_suppressed,
        review_hold: blocks && input.number.review_hold,
    };
    if let Some(d) = free_checks(input.recipient, flags) {
        return d;
    }
    // 3. Keyword responses (R4–R6): exempt from consent, cap and window.
    if kind.is_keyword_response() {
        let rule = match kind {
            Kind::OptOutAck => "R4",
            Kind::OptInAck => "R5",
            _ => "R6",
        };
        let Some(k) = input.keyword else {
            return skip(rule, "gate_error");
        };
        facts.basis = Some("keyword_request");
        if k.carrier_answered {
            return skip(rule, "carrier_answered");
        }
        if kind == Kind::OptOutAck && k.already_confirmed {
            return skip(rule, "already_confirmed");
        }
        if now - k.received_at > KEYWORD_RESPONSE_WITHIN {
            return skip(rule, "response_late");
        }
        return Decision::Allow {
            reason: "keyword_response",
        };
    }
    // 4. Scope and consent (R12).
    if !input.written_consent {
        let Some(inquiry) = &input.inquiry else {
            return skip("R12", "no_consent_basis");
        };
        let expires = inquiry
            .at
            .checked_add_months(Months::new(INQUIRY_MONTHS))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now > expires {
            return skip("R12", "inquiry_expired");
        }
        if kind == Kind::FollowUp && input.followups_need_written_consent {
            return skip("R12", "no_written_consent");
        }
    } else {
        facts.basis = Some("written_consent");
    }
    // A manual message in a live conversation: an answer to the lead, not counted, any hour.
    if kind == Kind::Manual && input.live_conversation {
        facts.basis = Some("inbound_text");
        return Decision::Allow {
            reason: "live_conversation",
        };
    }
    // 5. Frequency cap (R9).
    let cap = input
        .profile
        .cap_24h()
        .map_or(input.cap_24h, |c| c.min(input.cap_24h))
        .max(1);
    let mut recent: Vec<DateTime<Utc>> = input
        .counted
        .iter()
        .copied()
        .filter(|t| *t > now - Duration::hours(24) && *t <= now)
        .collect();
    recent.sort();
    let count = u32::try_from(recent.len()).unwrap_or(u32::MAX);
    facts.cap_count = Some(count);
    facts.cap_limit = Some(cap);
    let mut earliest = now;
    let mut wait_reason: Option<(&'static str, &'static str)> = None;
    if count >= cap {
        if kind == Kind::TextBack {
            return skip("R9", "cap_reached");
        }
        // The cap frees when enough counted messages are 24 h old.
        let freeing = recent.len() - cap as usize;
        earliest = recent[freeing] + Duration::hours(24);
        wait_reason = Some(("R9", "cap_reached"));
    }
    // 6. Daily unique recipients per sending number (R15; automated messages only).
    if kind.is_automated()
        && let Some(d) = input.daily
        && d.recipients_today >= d.limit
        && !d.contact_already_today
        && d.next_midnight > earliest
    {
        earliest = d.next_midnight;
        wait_reason = Some(("R15", "daily_recipient_limit"));
    }
    // 7. The window (R7, R8) and blackouts.
    let zones = &input.zone.zones;
    if earliest <= now {
        match quiet_hours::window_at(now, zones, input.profile, input.blackouts) {
            Window::Open { windows } => {
                facts.windows = describe(&windows);
                return Decision::Allow {
                    reason: "in_window",
                };
            }
            Window::Closed { reason, windows } => {
                facts.windows = describe(&windows);
                let recent_call = input
                    .call_ended_at
                    .is_some_and(|ended| now - ended <= AFTER_HOURS_SEND_WITHIN && ended <= now);
                if kind == Kind::TextBack
                    && input.after_hours_send
                    && recent_call
                    && reason != "blackout"
                {
                    facts.basis = Some("reply_to_own_call");
                    return Decision::Allow {
                        reason: "after_hours_send",
                    };
                }
                wait_reason = Some(("R7", reason));
            }
        }
    }
    let horizon = Duration::days(MAX_DEFERRAL_DAYS) - (earliest - now).max(Duration::zero());
    if horizon < Duration::zero() {
        return skip("R7", "no_window");
    }
    match quiet_hours::next_allowed(earliest, zones, input.profile, input.blackouts, horizon) {
        Some(until) => {
            if facts.windows.is_empty()
                && let Window::Open { windows } | Window::Closed { windows, .. } =
                    quiet_hours::window_at(now, zones, input.profile, input.blackouts)
            {
                facts.windows = describe(&windows);
            }
            let (rule, reason) = wait_reason.unwrap_or(("R7", "quiet_hours"));
            if until <= now {
                // The window is open after all (only reached if E == now).
                return Decision::Allow {
                    reason: "in_window",
                };
            }
            Decision::Defer {
                until,
                rule,
                reason,
            }
        }
        None => skip("R7", "no_window"),
    }
}

fn describe(windows: &[ZoneWindow]) -> Vec<String> {
    windows.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests;
