//! The brokerage setup file (README.md "The setup file"): parsing and validation.
//!
//! Pure: text in, a validated [`SetupFile`] or every [`Problem`] with its line out. Applying it
//! to the database is `store::setup::apply`, in one transaction.
//!
//! Beyond types and ranges, the content of the texts is checked here: automated templates name
//! the brokerage and fit 320 characters with the longest sample values and the opt-out line
//! (docs/compliance.md R10), hold no price and no blocked term, nor do listings (R11), and the help
//! text names the brokerage, says STOP and gives a number or a link (R6). What is allowed but
//! costly (over 160 characters, characters outside GSM-7) is a warning: the file still applies,
//! with [`SetupFile::warnings`] for `setup apply` to print.
//!
//! The file is walked as a spanned TOML tree rather than deserialized with serde, so that one
//! wrong value does not hide the others: every problem in the file is reported at once, and an
//! unknown key (a typo such as `dealy_secs`) is an error instead of being silently ignored.

mod sections;
pub mod twilio;

use std::fmt;
use std::ops::Range;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::domain::content;
use crate::domain::duration;
use crate::domain::phone::PhoneNumber;
use crate::domain::sms_text;
use crate::domain::template::{Field, Template};

/// Files larger than this are refused before parsing (docs/security.md §3 row 33).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// One thing wrong with the file; also the shape of a warning ([`SetupFile::warnings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line; 0 when the problem concerns the file as a whole.
    pub line: usize,
    /// Where in the file, e.g. `[[agents]] #2 phone` or `[text_back] delay_secs`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (0, true) => write!(f, "{}", self.message),
            (0, false) => write!(f, "{}: {}", self.key, self.message),
            (line, true) => write!(f, "line {line}: {}", self.message),
            (line, false) => write!(f, "line {line}: {}: {}", self.key, self.message),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Manager,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterHours {
    Defer,
    Send,
}

impl AfterHours {
    pub fn as_str(self) -> &'static str {
        match self {
            AfterHours::Defer => "defer",
            AfterHours::Send => "send",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetupFile {
    pub brokerage: Brokerage,
    pub offices: Vec<Office>,
    pub agents: Vec<Agent>,
    pub numbers: Vec<Number>,
    pub text_back: TextBack,
    pub follow_ups: Vec<FollowUp>,
    /// `[lead_text] template`: the variants that answer a web lead (docs/leads.md); `None`:
    /// the text-back's.
    pub lead_text: Option<Vec<String>>,
    /// `[lead_text] template_es`.
    pub lead_text_es: Option<Vec<String>>,
    pub inbox: Inbox,
    pub compliance: Compliance,
    /// `[[saved_replies]]`: snippets agents choose in one tap (README.md "Agents on their
    /// phones"), in file order.
    pub saved_replies: Vec<SavedReply>,
    /// `[[forms]]`: hosted lead forms, in file order.
    pub forms: Vec<WebForm>,
    /// `[twilio]`: the brokerage's own Twilio account, when it is not the deployment's.
    pub twilio: Option<twilio::TwilioAccount>,
    /// `[[webhooks]]`: signed outbound webhooks (docs/webhooks.md), in file order.
    pub webhooks: Vec<Webhook>,
    /// `[follow_up_boss]`: the brokerage's Follow Up Boss account (docs/webhooks.md).
    pub follow_up_boss: Option<FollowUpBoss>,
    /// What is allowed but costly, sorted by line: a template that renders over 160
    /// characters or with a character outside GSM-7 (docs/compliance.md R10). The file applies;
    /// `setup apply` prints these on stderr.
    pub warnings: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Brokerage {
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    /// `language = "en" | "es"` [en]: what a caller whose language is not known yet is texted
    /// in (README.md "Not built yet").
    pub language: crate::domain::language::Language,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Office {
    pub slug: String,
    pub name: String,
    /// `hours = "09:00-18:00"`: when the office takes automatic callbacks (README.md "The call
    /// side"), every day, in the brokerage's time zone. `None`: at any hour the lead's calling
    /// window allows.
    pub hours: Option<(chrono::NaiveTime, chrono::NaiveTime)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// Lower-cased: the identity of an agent within a brokerage.
    pub email: String,
    pub name: String,
    pub phone: PhoneNumber,
    pub office: String,
    pub role: Role,
    /// `hours = "09:00-18:00"`: when routing gives them leads (README.md "Routing"), every
    /// day, in the brokerage's time zone. `None`: any hour.
    pub hours: Option<(chrono::NaiveTime, chrono::NaiveTime)>,
    /// `weight = 0..=10` (default 1): their turns in a round robin's cycle; 0 takes none.
    pub weight: u8,
    /// `languages = ["en", "es"]` [en]: a lead writing in one of them is offered to them first.
    pub languages: Vec<crate::domain::language::Language>,
}

/// A saved reply: a name for the picker and a template (its fields filled when chosen).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedReply {
    pub name: String,
    pub text: String,
}

/// A hosted lead form (`[[forms]]`, docs/leads.md): `/f/{brokerage}/{slug}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebForm {
    pub slug: String,
    /// The page's heading; default "Text with {brokerage}".
    pub title: Option<String>,
    /// The consent wording beside the unticked box, stored exactly as shown.
    pub consent: String,
    /// Which of the file's numbers the lead hears from; default: the first.
    pub number: Option<PhoneNumber>,
    pub listing: Option<String>,
    /// Sites that may show the form in an iframe (`https://harbor.example`); none: no site.
    pub frame_origins: Vec<String>,
}

/// A webhook subscription (`[[webhooks]]`, docs/webhooks.md): where textback posts the events
/// it lists, signed with the secret the server reads from `secret`.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Unique in the file: the subscription's identity across applies.
    pub name: String,
    pub url: String,
    /// Event names, sorted, without duplicates (`*` expanded to every event).
    pub events: Vec<String>,
    pub secret: twilio::SecretSource,
    /// `allow_private_addresses = true`: the URL may reach this machine or its private network
    /// (a receiver beside the server); else such addresses are refused when delivering.
    pub allow_private_addresses: bool,
}

/// `[follow_up_boss]` (docs/webhooks.md "Follow Up Boss").
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpBoss {
    pub api_key: twilio::SecretSource,
    /// FUB's registered system name and key (`X-System`, `X-System-Key`), needed to log texts.
    pub system: String,
    pub system_key: Option<twilio::SecretSource>,
    /// The API's base URL; default `https://api.followupboss.com`.
    pub url: String,
    pub allow_private_addresses: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub number: PhoneNumber,
    pub office: String,
    pub listing: Option<String>,
    /// Agent emails, lower-cased, in ring order; the first is a new conversation's agent.
    pub ring: Vec<String>,
    pub ring_timeout_secs: u32,
    pub screen: bool,
    pub missed_message: Option<String>,
    /// `callback = "off" | "offer" | "auto"` (README.md "The call side").
    pub callback: CallbackMode,
    /// `voicemail = true`: a caller the agents missed may leave a message.
    pub voicemail: bool,
    /// `routing = "all" | "round_robin" | "first_to_claim"` (README.md "Routing").
    pub routing: crate::domain::routing::Mode,
    /// `claim_timeout`: how long a first-to-claim offer waits before it falls back.
    pub claim_timeout_secs: u32,
    /// Line of the `number` key, for problems found when applying (the number belongs to
    /// another brokerage).
    pub line: usize,
}

/// What a number does for a callback right after a miss (README.md "The call side").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallbackMode {
    /// Nothing automatic; the inbox's "Call back" still works.
    #[default]
    Off,
    /// The agents' alert about the miss carries a callback link.
    Offer,
    /// The number's agents are called one at a time, in ring order, the moment the miss is
    /// recorded; the first to press 1 is bridged to the caller.
    Auto,
}

impl CallbackMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackMode::Off => "off",
            CallbackMode::Offer => "offer",
            CallbackMode::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> Option<CallbackMode> {
        match s {
            "off" => Some(CallbackMode::Off),
            "offer" => Some(CallbackMode::Offer),
            "auto" => Some(CallbackMode::Auto),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextBack {
    pub delay_secs: u32,
    pub caller_name_lookup: bool,
    pub lookup_max_age_secs: u64,
    pub after_hours: AfterHours,
    /// Template variants (one or more), as written; each parses.
    pub templates: Vec<String>,
    /// `template_es`: the Spanish variants, for a lead whose language is Spanish.
    pub templates_es: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub after_secs: u64,
    pub templates: Vec<String>,
    pub templates_es: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inbox {
    pub escalate_after_secs: u64,
}

/// `[compliance]` and `[[blackouts]]` (docs/compliance.md §7), stored as applied; the gate reads
/// them (compliance issue).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compliance {
    pub cap_24h: u8,
    pub carrier_answers_keywords: bool,
    pub link_domains: Vec<String>,
    pub help_text: Option<String>,
    /// `help_text_es`: the help text for a lead whose language is Spanish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help_text_es: Option<String>,
    /// `opt_out_text`, `opt_in_text` and their `_es`: a brokerage's own confirmations
    /// (docs/compliance.md §4.5); absent, the defaults of [`crate::domain::compliance_text`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_out_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_out_text_es: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_in_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_in_text_es: Option<String>,
    #[serde(serialize_with = "serialize_phone")]
    pub office_phone: Option<PhoneNumber>,
    pub followups_need_written_consent: bool,
    pub daily_unique_recipients: u32,
    pub blackouts: Vec<Blackout>,
}

/// docs/compliance.md §7's defaults (the store reads a setting missing from an older row as these).
impl Default for Compliance {
    fn default() -> Self {
        Compliance {
            cap_24h: 3,
            carrier_answers_keywords: true,
            link_domains: Vec::new(),
            help_text: None,
            help_text_es: None,
            opt_out_text: None,
            opt_out_text_es: None,
            opt_in_text: None,
            opt_in_text_es: None,
            office_phone: None,
            followups_need_written_consent: false,
            daily_unique_recipients: 200,
            blackouts: Vec::new(),
        }
    }
}

fn serialize_phone<S: serde::Serializer>(p: &Option<PhoneNumber>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_some(p.as_e164()),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blackout {
    pub states: Vec<String>,
    pub from: DateTime<FixedOffset>,
    pub until: DateTime<FixedOffset>,
    pub reason: String,
}

/// Reads and validates a setup file given as bytes (size and UTF-8 are checked here).
pub fn parse_bytes(bytes: &[u8]) -> Result<SetupFile, Vec<Problem>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(vec![Problem {
            line: 0,
            key: String::new(),
            message: "the file is larger than 1 MiB, the limit for setup files".to_owned(),
        }]);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        vec![Problem {
            line,
            key: String::new(),
            message: "the file is not valid UTF-8".to_owned(),
        }]
    })?;
    parse(text)
}

/// Validates a setup file. Every problem is returned, sorted by line.
pub fn parse(text: &str) -> Result<SetupFile, Vec<Problem>> {
    let mut cx = Cx::new(text);
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            let line = e.span().map_or(0, |s| cx.line(&s));
            cx.problems.push(Problem {
                line,
                key: String::new(),
                message: format!("TOML: {}", e.message().trim()),
            });
        }
        return Err(cx.finish_problems());
    }
    let root_span = root.span();
    let root = root.into_inner();
    let file = sections::read_file(&mut cx, &root, root_span);
    match file {
        Some(mut file) if cx.problems.is_empty() => {
            cx.warnings.sort_by_key(|w| w.line);
            file.warnings = cx.warnings;
            Ok(file)
        }
        _ => Err(cx.finish_problems()),
    }
}

struct Cx {
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Cx {
    fn new(text: &str) -> Cx {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Cx {
            line_starts,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn line(&self, span: &Range<usize>) -> usize {
        match self.line_starts.binary_search(&span.start) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn err(&mut self, span: &Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let line = self.line(span);
        self.problems.push(Problem {
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, span: &Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let line = self.line(span);
        self.warnings.push(Problem {
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    fn finish_problems(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| p.line);
        self.problems
    }
}

type Value<'i> = toml::Spanned<DeValue<'i>>;

/// Reads the keys of one table, reporting wrong types and, at the end, unknown keys.
struct TableReader<'a, 'i> {
    /// How problems name this table: `[brokerage]`, `[[agents]] #2`.
    name: String,
    table: &'a DeTable<'i>,
    span: Range<usize>,
    known: Vec<&'static str>,
}

impl<'a, 'i> TableReader<'a, 'i> {
    fn new(name: impl Into<String>, table: &'a DeTable<'i>, span: Range<usize>) -> Self {
        TableReader {
            name: name.into(),
            table,
            span,
            known: Vec::new(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{} {key}", self.name)
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value<'i>> {
        self.known.push(key);
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    fn missing(&self, cx: &mut Cx, key: &'static str) {
        cx.err(&self.span, self.key(key), "is required");
    }

    fn string(&mut self, cx: &mut Cx, key: &'static str) -> Option<(String, Range<usize>)> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => self.clean(cx, key, s, v.span()),
            other => {
                cx.err(
                    &v.span(),
                    self.key(key),
                    format!("must be a string, not {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A string value with no control character but tab and line breaks: a `\u0000` escape
    /// would otherwise reach PostgreSQL (which refuses NUL in text) and end `setup apply` with a
    /// database error instead of the file's line (docs/security.md §3); the others would reach a
    /// lead's phone.
    fn clean(
        &self,
        cx: &mut Cx,
        key: &'static str,
        s: &str,
        span: Range<usize>,
    ) -> Option<(String, Range<usize>)> {
        match s
            .chars()
            .find(|c| crate::domain::sms_text::is_stray_control(*c))
        {
            Some(c) => {
                cx.err(
                    &span,
                    self.key(key),
                    format!(
                        "holds a control character (U+{:04X}); remove it",
                        u32::from(c)
                    ),
                );
                None
            }
            None => Some((s.to_string(), span)),
        }
    }

    /// A required, non-blank string.
    fn req_string(&mut self, cx: &mut Cx, key: &'static str) -> Option<(String, Range<usize>)> {
        let present = self.table.iter().any(|(k, _)| k.get_ref().as_ref() == key);
        let v = self.string(cx, key);
        match v {
            Some((s, span)) if s.trim().is_empty() => {
                cx.err(&span, self.key(key), "must not be empty");
                None
            }
            Some(v) => Some(v),
            None => {
                if !present {
                    self.missing(cx, key);
                }
                None
            }
        }
    }

    /// An optional non-blank string.
    fn opt_string(&mut self, cx: &mut Cx, key: &'static str) -> Option<(String, Range<usize>)> {
        let (s, span) = self.string(cx, key)?;
        if s.trim().is_empty() {
            cx.err(
                &span,
                self.key(key),
                "must not be empty (leave the key out instead)",
            );
            return None;
        }
        Some((s, span))
    }

    fn int(
        &mut self,
        cx: &mut Cx,
        key: &'static str,
        range: Range<i64>,
    ) -> Option<(i64, Range<usize>)> {
        let v = self.get(key)?;
        let DeValue::Integer(i) = v.get_ref() else {
            cx.err(
                &v.span(),
                self.key(key),
                format!("must be a whole number, not {}", v.get_ref().type_str()),
            );
            return None;
        };
        let parsed = i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok();
        match parsed {
            Some(n) if range.contains(&n) => Some((n, v.span())),
            _ => {
                cx.err(
                    &v.span(),
                    self.key(key),
                    format!(
                        "is {}; it must be between {} and {}",
                        i.as_str(),
                        range.start,
                        range.end - 1
                    ),
                );
                None
            }
        }
    }

    fn bool(&mut self, cx: &mut Cx, key: &'static str) -> Option<bool> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                cx.err(
                    &v.span(),
                    self.key(key),
                    format!("must be true or false, not {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A duration string (`15m`) within `[min, max]` seconds.
    fn duration(&mut self, cx: &mut Cx, key: &'static str, min: u64, max: u64) -> Option<u64> {
        self.duration_at(cx, key, min, max).map(|(secs, _)| secs)
    }

    fn duration_at(
        &mut self,
        cx: &mut Cx,
        key: &'static str,
        min: u64,
        max: u64,
    ) -> Option<(u64, Range<usize>)> {
        let (s, span) = self.string(cx, key)?;
        match duration::parse_secs(&s) {
            Ok(secs) if (min..=max).contains(&secs) => Some((secs, span)),
            Ok(_) => {
                cx.err(
                    &span,
                    self.key(key),
                    format!(
                        "is {s}; it must be between {} and {}",
                        duration::format_secs(min),
                        duration::format_secs(max)
                    ),
                );
                None
            }
            Err(e) => {
                cx.err(&span, self.key(key), e.to_string());
                None
            }
        }
    }

    fn strings(&mut self, cx: &mut Cx, key: &'static str) -> Option<Vec<(String, Range<usize>)>> {
        let v = self.get(key)?;
        self.string_list(cx, key, v)
    }

    fn string_list(
        &self,
        cx: &mut Cx,
        key: &'static str,
        v: &Value<'_>,
    ) -> Option<Vec<(String, Range<usize>)>> {
        let DeValue::Array(items) = v.get_ref() else {
            cx.err(
                &v.span(),
                self.key(key),
                format!("must be a list of strings, not {}", v.get_ref().type_str()),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => match self.clean(cx, key, s, item.span()) {
                    Some(clean) => out.push(clean),
                    None => ok = false,
                },
                other => {
                    cx.err(
                        &item.span(),
                        self.key(key),
                        format!("must hold only strings, not {}", other.type_str()),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A template: a string, or a non-empty list of variants.
    fn templates(&mut self, cx: &mut Cx, key: &'static str) -> Option<Vec<(String, Range<usize>)>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![self.clean(cx, key, s, v.span())?]),
            DeValue::Array(_) => {
                let list = self.string_list(cx, key, v)?;
                if list.is_empty() {
                    cx.err(&v.span(), self.key(key), "must hold at least one template");
                    return None;
                }
                Some(list)
            }
            other => {
                cx.err(
                    &v.span(),
                    self.key(key),
                    format!(
                        "must be a string or a list of strings, not {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn finish(self, cx: &mut Cx) {
        for (k, v) in self.table.iter() {
            let name = k.get_ref().as_ref();
            if !self.known.contains(&name) {
                let known = self.known.join(", ");
                cx.err(
                    &v.span(),
                    self.key(name),
                    format!("unknown key (this table takes: {known})"),
                );
            }
        }
    }
}

/// An optional `[table]` of the root.
fn sub_table<'a, 'i>(
    cx: &mut Cx,
    root: &mut TableReader<'a, 'i>,
    key: &'static str,
) -> Option<TableReader<'a, 'i>> {
    let v = root.get(key)?;
    match v.get_ref() {
        DeValue::Table(t) => Some(TableReader::new(format!("[{key}]"), t, v.span())),
        other => {
            cx.err(
                &v.span(),
                format!("[{key}]"),
                format!("must be a table, not {}", other.type_str()),
            );
            None
        }
    }
}

/// An optional `[[array]]` of tables of the root.
fn table_array<'a, 'i>(
    cx: &mut Cx,
    root: &mut TableReader<'a, 'i>,
    key: &'static str,
) -> Vec<TableReader<'a, 'i>> {
    let Some(v) = root.get(key) else {
        return Vec::new();
    };
    let DeValue::Array(items) = v.get_ref() else {
        cx.err(
            &v.span(),
            format!("[[{key}]]"),
            format!(
                "must be an array of tables ([[{key}]]), not {}",
                v.get_ref().type_str()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.get_ref() {
            DeValue::Table(t) => out.push(TableReader::new(
                format!("[[{key}]] #{}", i + 1),
                t,
                item.span(),
            )),
            other => cx.err(
                &item.span(),
                format!("[[{key}]] #{}", i + 1),
                format!("must be a table, not {}", other.type_str()),
            ),
        }
    }
    out
}

fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',' || c == ';')
        && !domain.contains('@')
        && s.len() <= 254
}

fn phone(
    cx: &mut Cx,
    t: &TableReader<'_, '_>,
    key: &'static str,
    value: Option<(String, Range<usize>)>,
) -> Option<PhoneNumber> {
    let (s, span) = value?;
    match PhoneNumber::parse_possible(&s) {
        Ok(p) => Some(p),
        Err(e) => {
            cx.err(
                &span,
                t.key(key),
                format!("`{s}` is not a usable number: {e}"),
            );
            None
        }
    }
}

/// A template's variants: each must parse; link checks come later, once `link_domains` is known.
fn templates(
    cx: &mut Cx,
    t: &TableReader<'_, '_>,
    key: &'static str,
    list: Vec<(String, Range<usize>)>,
) -> Option<Vec<(String, Range<usize>)>> {
    let mut ok = true;
    for (i, (src, span)) in list.iter().enumerate() {
        if src.trim().is_empty() {
            cx.err(span, t.key(key), "a template must not be empty");
            ok = false;
            continue;
        }
        if let Err(e) = Template::parse(src) {
            let which = if list.len() > 1 {
                format!(" (variant {})", i + 1)
            } else {
                String::new()
            };
            cx.err(span, t.key(key), format!("{e}{which}"));
            ok = false;
        }
    }
    ok.then_some(list)
}

/// A required RFC 3339 instant with offset, as a TOML datetime or a string.
fn instant(
    cx: &mut Cx,
    b: &mut TableReader<'_, '_>,
    key: &'static str,
) -> Option<DateTime<FixedOffset>> {
    let Some(v) = b.get(key) else {
        b.missing(cx, key);
        return None;
    };
    let text = match v.get_ref() {
        DeValue::String(s) => s.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        other => {
            cx.err(
                &v.span(),
                b.key(key),
                format!(
                    "must be a date and time with offset, not {}",
                    other.type_str()
                ),
            );
            return None;
        }
    };
    match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => Some(t),
        Err(_) => {
            cx.err(
                &v.span(),
                b.key(key),
                format!(
                    "`{text}` is not an RFC 3339 time with offset (e.g. 2026-08-29T00:00:00-05:00)"
                ),
            );
            None
        }
    }
}

/// `[twilio]`: `account_sid`, and where the server reads the secrets: the auth token from
/// exactly one of `auth_token_env` / `auth_token_file`, shared webhook keys from at most one
/// of `webhook_keys_env` / `webhook_keys_file`. A secret written into the file itself is
/// refused (docs/security.md "Accounts and keys").
fn read_twilio(cx: &mut Cx, t: &mut TableReader<'_, '_>) -> Option<twilio::TwilioAccount> {
    use twilio::{TwilioAccount, is_account_sid};
    refuse_secrets(cx, t, &["auth_token", "webhook_keys", "api_key_secret"]);
    let sid = t.req_string(cx, "account_sid");
    let sid = match sid {
        Some((sid, span)) if !is_account_sid(sid.trim()) => {
            cx.err(
                &span,
                t.key("account_sid"),
                "must be AC followed by 32 hex digits",
            );
            None
        }
        Some((sid, _)) => Some(sid.trim().to_owned()),
        None => None,
    };
    let token = secret_source(cx, t, "auth_token_env", "auth_token_file");
    let keys = secret_source(cx, t, "webhook_keys_env", "webhook_keys_file");
    let token = match token {
        Ok(Some(token)) => Some(token),
        Ok(None) => {
            cx.err(
                &t.span,
                t.key("auth_token_env"),
                "is required (or auth_token_file): where the server reads this account's auth token",
            );
            None
        }
        Err(()) => None,
    };
    Some(TwilioAccount {
        account_sid: sid?,
        auth_token: token?,
        webhook_keys: keys.ok()?,
    })
}

/// A secret written into the file itself (`auth_token = …`) is a problem: the file names where
/// the server reads it, `{secret}_env` or `{secret}_file`.
fn refuse_secrets(cx: &mut Cx, t: &mut TableReader<'_, '_>, secrets: &[&'static str]) {
    for &secret in secrets {
        if let Some(v) = t.get(secret) {
            cx.err(
                &v.span(),
                t.key(secret),
                format!(
                    "a secret never goes in the setup file: name where the server reads it with {secret}_env (an environment variable) or {secret}_file (a file)"
                ),
            );
        }
    }
}

/// Where a secret is read from, as `{env}` (an environment variable's name) or `{file}` (an
/// absolute path): `Ok(None)` when neither is given, `Err` (reported) when both or a bad one.
fn secret_source(
    cx: &mut Cx,
    t: &mut TableReader<'_, '_>,
    env: &'static str,
    file: &'static str,
) -> Result<Option<twilio::SecretSource>, ()> {
    use twilio::{SecretSource, is_env_name};
    let from_env = t.opt_string(cx, env);
    let from_file = t.opt_string(cx, file);
    match (from_env, from_file) {
        (Some((_, span)), Some(_)) => {
            cx.err(&span, t.key(env), format!("give {env} or {file}, not both"));
            Err(())
        }
        (Some((name, span)), None) => {
            let name = name.trim().to_owned();
            if is_env_name(&name) {
                Ok(Some(SecretSource::Env(name)))
            } else {
                cx.err(
                    &span,
                    t.key(env),
                    format!("`{name}` is not an environment variable name (upper-case letters, digits and _)"),
                );
                Err(())
            }
        }
        (None, Some((path, span))) => {
            let path = std::path::PathBuf::from(path.trim());
            if path.is_absolute() {
                Ok(Some(SecretSource::File(path)))
            } else {
                cx.err(&span, t.key(file), "must be an absolute path");
                Err(())
            }
        }
        (None, None) => Ok(None),
    }
}

/// The first name R10's length check renders a template with (docs/compliance.md R10).
pub const SAMPLE_FIRST_NAME: &str = "Alexandria";
/// The brokerage number as a template shows it (`{number}`, national format), 14 characters.
pub const SAMPLE_NUMBER: &str = "(555) 555-0100";
/// Over this many characters, rendered with the longest sample values and the opt-out line, a
/// template fails apply (docs/compliance.md R10).
pub const MAX_TEXT_CHARS: usize = 320;
/// Over this many, it warns: the text is split into segments, each billed.
pub const ONE_SEGMENT_CHARS: usize = 160;

/// One variant of an automated template (text-back or follow-up).
struct Automated {
    key: String,
    /// ` (variant 2)` when the template is a list, else empty.
    which: String,
    source: String,
    span: Range<usize>,
    /// The text-back is the first message to a caller (R10's `{brokerage}: ` prefix rule).
    first_message: bool,
    /// Rendered with this language's opt-out line.
    language: crate::domain::language::Language,
}

impl Automated {
    fn variants(
        key: String,
        list: &[(String, Range<usize>)],
        first_message: bool,
        language: crate::domain::language::Language,
    ) -> impl Iterator<Item = Automated> + '_ {
        let many = list.len() > 1;
        list.iter()
            .enumerate()
            .map(move |(i, (source, span))| Automated {
                key: key.clone(),
                which: if many {
                    format!(" (variant {})", i + 1)
                } else {
                    String::new()
                },
                source: source.clone(),
                span: span.clone(),
                first_message,
                language,
            })
    }
}

/// A value of the file that templates insert: a listing, an agent's or an office's name.
struct Inserted {
    /// `Listing`, `AgentName` (also for `{agent_first_name}`) or `Office`.
    field: Field,
    key: String,
    value: String,
    span: Range<usize>,
}

/// R10's longest sample values: the file's longest agent first name, agent name, office name
/// and listing, the brokerage name, [`SAMPLE_FIRST_NAME`] and [`SAMPLE_NUMBER`].
struct Samples<'a> {
    brokerage: Option<&'a str>,
    agent_first_name: Option<&'a str>,
    agent_name: Option<&'a str>,
    office: Option<&'a str>,
    listing: Option<&'a str>,
    /// Some number has no listing (or none has): `{listing|…}` may render its fallback.
    listing_may_be_missing: bool,
}

fn longest<'a>(values: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    values.fold(None, |best, v| match best {
        Some(b) if b.chars().count() >= v.chars().count() => Some(b),
        _ => Some(v),
    })
}

impl<'a> Samples<'a> {
    fn new(brokerage: Option<&'a str>, inserted: &'a [Inserted], lacks_listing: bool) -> Self {
        let of = |field: Field| {
            inserted
                .iter()
                .filter(move |v| v.field == field)
                .map(|v| v.value.as_str())
        };
        let listing = longest(of(Field::Listing));
        Samples {
            brokerage,
            agent_first_name: longest(
                of(Field::AgentName).filter_map(|n| n.split_whitespace().next()),
            ),
            agent_name: longest(of(Field::AgentName)),
            office: longest(of(Field::Office)),
            listing,
            listing_may_be_missing: lacks_listing || listing.is_none(),
        }
    }

    /// The template rendered as R10 sends it ([`sms_text::identify`]) with every combination
    /// of the sample values and the fallbacks of fields that may be empty (the caller's first
    /// name; the listing when a number has none). The longest is first.
    fn renderings(
        &self,
        template: &Template,
        first_message: bool,
        language: crate::domain::language::Language,
    ) -> Vec<String> {
        let listings: &[Option<&str>] = if self.listing_may_be_missing {
            &[self.listing, None]
        } else {
            &[self.listing]
        };
        let mut out: Vec<String> = Vec::new();
        for first_name in [Some(SAMPLE_FIRST_NAME), None] {
            for listing in listings {
                let body = template.render(|f| match f {
                    Field::Brokerage => self.brokerage,
                    Field::Office => self.office,
                    Field::AgentFirstName => self.agent_first_name,
                    Field::AgentName => self.agent_name,
                    Field::Listing => *listing,
                    Field::Number => Some(SAMPLE_NUMBER),
                    Field::FirstName => first_name,
                });
                out.push(sms_text::identify_in(
                    &body,
                    self.brokerage.unwrap_or_default(),
                    first_message,
                    language,
                ));
            }
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.chars().count()));
        out
    }
}

/// `’` (U+2019), `…` (U+2026)
fn describe_chars(chars: &[char]) -> String {
    chars
        .iter()
        .map(|c| format!("`{c}` (U+{:04X})", u32::from(*c)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// R11 for the values templates insert: a listing holds no price and no blocked term; and a
/// warning when an inserted value has characters outside GSM-7 (R10).
fn check_inserted(cx: &mut Cx, value: &Inserted, automated: &[Automated]) {
    if value.field == Field::Listing {
        for price in content::prices(&value.value) {
            cx.err(
                &value.span,
                value.key.clone(),
                format!("holds a price (`{price}`); listings go into automated texts, which may not mention prices (compliance.md R11)"),
            );
        }
        for term in content::blocked_terms(&value.value) {
            cx.err(
                &value.span,
                value.key.clone(),
                format!("holds the blocked term `{term}`; listings go into automated texts, which may not use it (compliance.md R11, fixtures/blocked_terms.txt)"),
            );
        }
    }
    // The part of the value a template inserts, and the field that inserts it.
    let uses = |field: Field| {
        automated
            .iter()
            .any(|t| Template::parse(&t.source).is_ok_and(|tpl| tpl.fields().any(|f| f == field)))
    };
    let (shown, field) = match value.field {
        Field::AgentName if uses(Field::AgentName) => (value.value.as_str(), "agent_name"),
        Field::AgentName if uses(Field::AgentFirstName) => (
            value.value.split_whitespace().next().unwrap_or_default(),
            "agent_first_name",
        ),
        Field::Listing if uses(Field::Listing) => (value.value.as_str(), "listing"),
        Field::Office if uses(Field::Office) => (value.value.as_str(), "office"),
        _ => return,
    };
    let odd = sms_text::non_gsm7_chars(shown);
    if !odd.is_empty() {
        cx.warn(
            &value.span,
            value.key.clone(),
            format!(
                "has {} outside GSM-7: {}; a text that inserts it ({{{field}}}) goes as UCS-2, 70 characters a segment instead of 160 (compliance.md R10)",
                if odd.len() == 1 { "a character" } else { "characters" },
                describe_chars(&odd)
            ),
        );
    }
}

/// R10 and R11 for one variant of an automated template.
fn check_automated(cx: &mut Cx, t: &Automated, samples: &Samples<'_>) {
    let which = &t.which;
    // R11: no price, no blocked term (the fallbacks are in the source too).
    for price in content::prices(&t.source) {
        cx.err(
            &t.span,
            t.key.clone(),
            format!("holds a price (`{price}`){which}; automated texts may not mention prices (compliance.md R11)"),
        );
    }
    for term in content::blocked_terms(&t.source) {
        cx.err(
            &t.span,
            t.key.clone(),
            format!("holds the blocked term `{term}`{which}; automated texts may not use it (compliance.md R11, fixtures/blocked_terms.txt)"),
        );
    }
    // R10: the brokerage is named; length and encoding with the longest sample values.
    let (Ok(template), Some(name)) = (Template::parse(&t.source), samples.brokerage) else {
        return;
    };
    if !template.fields().any(|f| f == Field::Brokerage) && !t.source.contains(name) {
        cx.err(
            &t.span,
            t.key.clone(),
            format!("names neither `{{brokerage}}` nor `{name}`{which}; every automated text must name the brokerage (compliance.md R10)"),
        );
    }
    let renderings = samples.renderings(&template, t.first_message, t.language);
    let Some(longest) = renderings.first() else {
        return;
    };
    let chars = longest.chars().count();
    let segments = sms_text::segments(longest);
    if chars > MAX_TEXT_CHARS {
        cx.err(
            &t.span,
            t.key.clone(),
            format!("renders to {chars} characters with the longest sample values and the opt-out line{which}; the limit is {MAX_TEXT_CHARS} (compliance.md R10): {longest:?}"),
        );
    } else if chars > ONE_SEGMENT_CHARS {
        cx.warn(
            &t.span,
            t.key.clone(),
            format!("renders to {chars} characters ({}) with the longest sample values and the opt-out line{which}; over {ONE_SEGMENT_CHARS} a text is split into segments, each billed (compliance.md R10): {longest:?}", plural(segments, "segment", "segments")),
        );
    }
    let mut odd: Vec<char> = Vec::new();
    for body in &renderings {
        for c in sms_text::non_gsm7_chars(body) {
            if !odd.contains(&c) {
                odd.push(c);
            }
        }
    }
    if !odd.is_empty() {
        cx.warn(
            &t.span,
            t.key.clone(),
            format!(
                "renders with {} outside GSM-7{which}: {}; the text goes as UCS-2, 70 characters a segment instead of 160 ({} with the longest sample values) (compliance.md R10)",
                if odd.len() == 1 { "a character" } else { "characters" },
                describe_chars(&odd),
                plural(segments, "segment", "segments"),
            ),
        );
    }
}

/// A brokerage's own compliance text (docs/compliance.md §4.5), held to the rules its default
/// keeps.
fn check_compliance_text(
    cx: &mut Cx,
    which: crate::domain::compliance_text::Which,
    language: crate::domain::language::Language,
    text: &str,
    span: &Range<usize>,
    brokerage: Option<&str>,
) {
    let key = format!("[compliance] {}", which.key(language));
    for problem in crate::domain::compliance_text::problems(which, language, text, brokerage) {
        cx.err(span, key.clone(), problem);
    }
}

#[cfg(test)]
mod tests;
