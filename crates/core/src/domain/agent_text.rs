//! Texts from an agent's phone to a brokerage number (README.md "Agents on their phones"): a
//! command or a reply to relay to a lead, and which conversation it means. Pure: the body and
//! the agent's open conversations in, what to do out.

use crate::domain::keywords::{self, Class};

/// What the agent asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `CLAIM`: take a lead offered to them (first to claim).
    Claim,
    /// `CLOSE`: close the conversation.
    Close,
    /// `TAKE OVER`: the conversation becomes theirs and its automation stops.
    TakeOver,
    /// `CALL BACK`: their phone rings, then the lead's, through the brokerage number.
    CallBack,
    /// `HELP` or `?`: the commands, in one text.
    Help,
    /// A compliance keyword (STOP, START, …): never relayed to a lead; the carrier acts on it
    /// for the agent's own phone.
    Keyword,
    /// Anything else: a reply for the lead, as written (trimmed).
    Reply(String),
    Empty,
}

impl Command {
    pub fn as_str(&self) -> &'static str {
        match self {
            Command::Claim => "claim",
            Command::Close => "close",
            Command::TakeOver => "take_over",
            Command::CallBack => "call_back",
            Command::Help => "help",
            Command::Keyword => "keyword",
            Command::Reply(_) => "reply",
            Command::Empty => "empty",
        }
    }

    /// Commands that act on a conversation (all but help, keywords and empty texts).
    pub fn needs_conversation(&self) -> bool {
        matches!(
            self,
            Command::Claim
                | Command::Close
                | Command::TakeOver
                | Command::CallBack
                | Command::Reply(_)
        )
    }
}

/// A parsed text: `#12` at the start names the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub conversation: Option<i64>,
    pub command: Command,
}

/// The words of a command: letters only, upper-cased, single spaces ("Take over!" → "TAKE OVER").
fn words(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric() && c != '?')
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads an agent's text (`opt_out_type`: the carrier's `OptOutType`, when it acted on a
/// keyword). Only a whole text that is a command is one ("Close to the station" is a reply);
/// the compliance keywords are never relayed.
pub fn parse(body: &str, opt_out_type: Option<&str>) -> Parsed {
    let printable = crate::domain::sms_text::printable(body);
    let mut rest = printable.trim();
    let mut conversation = None;
    if let Some(after) = rest.strip_prefix('#') {
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty()
            && let Ok(id) = digits.parse::<i64>()
        {
            conversation = Some(id);
            rest = after[digits.len()..]
                .trim_start_matches([':', ' ', ',', '-'])
                .trim();
        }
    }
    let command = match words(rest).as_str() {
        "" => Command::Empty,
        "CLAIM" | "CLAIM IT" | "MINE" => Command::Claim,
        "CLOSE" | "CLOSE IT" => Command::Close,
        "TAKE OVER" | "TAKEOVER" | "TAKE IT OVER" => Command::TakeOver,
        "CALL BACK" | "CALLBACK" | "CALL" | "CALL THEM" | "CALL THEM BACK" => Command::CallBack,
        "HELP" | "?" | "COMMANDS" => Command::Help,
        _ => match keywords::classify(rest, opt_out_type, true).class {
            Class::OptOut | Class::OptIn | Class::Help => Command::Keyword,
            _ => Command::Reply(rest.to_owned()),
        },
    };
    Parsed {
        conversation,
        command,
    }
}

/// Which conversation a text means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    One(i64),
    /// More than one could be meant: ask, send nothing.
    Ambiguous(Vec<i64>),
    /// None of the agent's.
    None,
}

/// `named`: the `#id` the text starts with; `open`: the conversations the agent was alerted
/// about from this number and may act on, most recent first. A named conversation must be one
/// of them.
pub fn which(named: Option<i64>, open: &[i64]) -> Which {
    match named {
        Some(id) if open.contains(&id) => Which::One(id),
        Some(_) => Which::None,
        None => match open {
            [] => Which::None,
            [one] => Which::One(*one),
            many => Which::Ambiguous(many.to_vec()),
        },
    }
}

/// The one-line question for an ambiguous text: each candidate as `#id who`.
pub fn question(candidates: &[(i64, String)]) -> String {
    let list: Vec<String> = candidates
        .iter()
        .take(4)
        .map(|(id, who)| format!("#{id} {who}"))
        .collect();
    let more = candidates.len().saturating_sub(4);
    let tail = if more > 0 {
        format!(" (+{more} more)")
    } else {
        String::new()
    };
    format!(
        "Which lead? Start your text with its number: {}{tail}. Nothing was sent.",
        list.join(", ")
    )
}

/// The commands, as the alert text and HELP list them.
pub const COMMANDS: &str = "Reply here to text the lead, or CLAIM, CLOSE, TAKE OVER, CALL BACK.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_whole_texts_in_any_case_with_any_punctuation() {
        let cases: &[(&str, Option<i64>, Command)] = &[
            ("claim", None, Command::Claim),
            ("  CLAIM!! ", None, Command::Claim),
            ("Claim it", None, Command::Claim),
            ("close", None, Command::Close),
            ("Take over", None, Command::TakeOver),
            ("take-over", None, Command::TakeOver),
            ("TAKEOVER.", None, Command::TakeOver),
            ("call back", None, Command::CallBack),
            ("Callback", None, Command::CallBack),
            ("?", None, Command::Help),
            ("help", None, Command::Help),
            ("#12 claim", Some(12), Command::Claim),
            ("#12: close", Some(12), Command::Close),
            (
                "#7 Sure, 3pm works",
                Some(7),
                Command::Reply("Sure, 3pm works".into()),
            ),
            (
                "Close to the station, yes",
                None,
                Command::Reply("Close to the station, yes".into()),
            ),
            (
                "I'll call back at 5",
                None,
                Command::Reply("I'll call back at 5".into()),
            ),
            (
                "Claim your spot at the open house!",
                None,
                Command::Reply("Claim your spot at the open house!".into()),
            ),
            ("#abc hi", None, Command::Reply("#abc hi".into())),
            ("", None, Command::Empty),
            ("   ", None, Command::Empty),
            ("#12", Some(12), Command::Empty),
        ];
        for (body, conv, want) in cases {
            let p = parse(body, None);
            assert_eq!((p.conversation, &p.command), (*conv, want), "{body:?}");
        }
    }

    #[test]
    fn a_compliance_keyword_is_never_a_reply_to_relay() {
        for body in ["STOP", "stop", "Unsubscribe", "START", "UNSTOP", "#4 STOP"] {
            assert_eq!(parse(body, None).command, Command::Keyword, "{body}");
        }
        assert_eq!(parse("whatever", Some("STOP")).command, Command::Keyword);
        {}
    }

    #[test]
    fn control_characters_never_reach_the_lead_or_hide_a_command() {
        assert_eq!(parse("claim\u{0}", None).command, Command::Claim);
        let Command::Reply(r) = parse("ok\u{7}\u{1b} see you", None).command else {
            panic!("a reply")
        };
        assert!(!r.chars().any(char::is_control), "{r:?}");
    }

    #[test]
    fn which_conversation_one_named_or_ambiguous() {
        assert_eq!(which(None, &[5]), Which::One(5));
        assert_eq!(which(None, &[]), Which::None);
        assert_eq!(which(None, &[5, 6]), Which::Ambiguous(vec![5, 6]));
        assert_eq!(which(Some(6), &[5, 6]), Which::One(6));
        // A conversation the agent was never alerted about is not theirs to name.
        assert_eq!(which(Some(9), &[5, 6]), Which::None);
    }

    #[test]
    fn the_question_is_one_line_and_lists_at_most_four() {
        let c: Vec<(i64, String)> = (1..=6).map(|i| (i, format!("+1617***012{i}"))).collect();
        let q = question(&c);
        assert!(!q.contains('\n'));
        assert!(q.contains("#1 +1617***0121") && q.contains("#4 ") && !q.contains("#5 "));
        assert!(q.ends_with("(+2 more). Nothing was sent."), "{q}");
    }
}
