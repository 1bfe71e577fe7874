//! Quiet hours (docs/compliance.md R7, §5.1–§5.4, §6.2): the calling-window profiles of
//! `fixtures/state_windows.toml`, the window test and the deferral to the first allowed instant.
//!
//! Pure: no I/O, no clock. Every function takes the instant it reasons about. Offsets come from
//! `chrono-tz` (never the host zoneinfo nor the brokerage's `time_zone`), and deferrals are built
//! from local dates, never by adding 24 hours in UTC.
//!
//! A [`Profile`] is already the intersection of `[federal]` with the state's table (or, for the
//! `strictest` profile, with every state's table), so the window of a local date is one lookup.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

/// The committed data file, embedded at build time.
const DATA: &str = include_str!("../../../../fixtures/state_windows.toml");

/// The window ends this much early: a margin for the carrier's clock (§5.1).
const END_MARGIN_SECS: i64 = 120;

/// [`next_allowed`] never looks further ahead than this, whatever horizon it is given.
const MAX_HORIZON_DAYS: i64 = 400;

// The eight US zones of R8 (a number whose zones are unknown). `window_at` and
// `next_allowed` also use them when given no zone at all (failing safe).
use super::zones::UNKNOWN_ZONES as US_ZONES;

/// USPS codes textback texts (R8): the states, DC and the territories. A table in the data file
/// must use one of them; a code without a table gets `[federal]` alone.
const KNOWN_STATES: [&str; 56] = [
    "AK", "AL", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "GU", "HI", "IA", "ID",
    "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MP", "MS", "MT", "NC", "ND",
    "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "PR", "RI", "SC", "SD", "TN", "TX",
    "UT", "VA", "VI", "VT", "WA", "WI", "WV", "WY",
];

/// Is `code` (upper case) the USPS code of a state, DC or a territory textback texts?
pub fn is_known_state(code: &str) -> bool {
    KNOWN_STATES.contains(&code)
}

// ---------------------------------------------------------------------------------------------
// Holidays (§5.3)

#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Month, day; on a weekend also the Friday before and the Monday after.
    Fixed(u32, u32),
    /// Month, weekday, n (1-based) within the month.
    Nth(u32, Weekday, u8),
    /// The last such weekday of the month.
    Last(u32, Weekday),
    /// The day after the 4th Thursday of November.
    AfterThanksgiving,
    /// Days from Easter Sunday (anonymous Gregorian algorithm).
    Easter(i64),
}

/// Every holiday id of §5.3; a profile keeps indices into this table.
const HOLIDAYS: [(&str, Rule); 21] = [
    ("new_years_day", Rule::Fixed(1, 1)),
    ("battle_of_new_orleans", Rule::Fixed(1, 8)),
    ("mlk_day", Rule::Nth(1, Weekday::Mon, 3)),
    ("robert_e_lee_day", Rule::Fixed(1, 19)),
    ("washington_birthday", Rule::Nth(2, Weekday::Mon, 3)),
    ("mardi_gras", Rule::Easter(-47)),
    ("good_friday", Rule::Easter(-2)),
    ("confederate_memorial_day", Rule::Nth(4, Weekday::Mon, 4)),
    ("ri_independence_day", Rule::Fixed(5, 4)),
    ("memorial_day", Rule::Last(5, Weekday::Mon)),
    ("jefferson_davis_birthday", Rule::Nth(6, Weekday::Mon, 1)),
    ("juneteenth", Rule::Fixed(6, 19)),
    ("independence_day", Rule::Fixed(7, 4)),
    ("victory_day", Rule::Nth(8, Weekday::Mon, 2)),
    ("labor_day", Rule::Nth(9, Weekday::Mon, 1)),
    ("columbus_day", Rule::Nth(10, Weekday::Mon, 2)),
    ("veterans_day", Rule::Fixed(11, 11)),
    ("thanksgiving_day", Rule::Nth(11, Weekday::Thu, 4)),
    ("day_after_thanksgiving", Rule::AfterThanksgiving),
    ("rosa_parks_day", Rule::Fixed(12, 1)),
    ("christmas_day", Rule::Fixed(12, 25)),
];

fn holiday_index(id: &str) -> Option<usize> {
    HOLIDAYS.iter().position(|(name, _)| *name == id)
}

fn add_days(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    date.checked_add_signed(TimeDelta::try_days(days)?)
}

/// Easter Sunday of `year` (anonymous Gregorian algorithm, Meeus/Jones/Butcher).
fn easter(year: i32) -> Option<NaiveDate> {
    let y = year;
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(y, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// How a holiday closes a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observance {
    /// The holiday's own date.
    Actual,
    /// The Friday before or the Monday after a fixed-date holiday falling on a weekend.
    Observed,
}

/// Does holiday rule `rule` close the local date `date`?
fn holiday_on(rule: Rule, date: NaiveDate) -> Option<Observance> {
    let year = date.year();
    let hit = |d: Option<NaiveDate>| (d == Some(date)).then_some(Observance::Actual);
    match rule {
        Rule::Fixed(month, day) => {
            // The observed Friday of 1 January lies in the previous year (Sat 2028-01-01 closes
            // Fri 2027-12-31), so the neighbouring years' dates are checked too.
            let mut observed = None;
            for y in [year - 1, year, year + 1] {
                let Some(h) = NaiveDate::from_ymd_opt(y, month, day) else {
                    continue;
                };
                if h == date {
                    return Some(Observance::Actual);
                }
                let (friday, monday) = match h.weekday() {
                    Weekday::Sat => (add_days(h, -1), add_days(h, 2)),
                    Weekday::Sun => (add_days(h, -2), add_days(h, 1)),
                    _ => continue,
                };
                if friday == Some(date) || monday == Some(date) {
                    observed = Some(Observance::Observed);
                }
            }
            observed
        }
        Rule::Nth(month, weekday, n) => hit(NaiveDate::from_weekday_of_month_opt(
            year, month, weekday, n,
        )),
        Rule::Last(month, weekday) => hit(NaiveDate::from_weekday_of_month_opt(
            year, month, weekday, 5,
        )
        .or_else(|| NaiveDate::from_weekday_of_month_opt(year, month, weekday, 4))),
        Rule::AfterThanksgiving => {
            hit(
                NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Thu, 4)
                    .and_then(|d| add_days(d, 1)),
            )
        }
        Rule::Easter(offset) => hit(easter(year).and_then(|d| add_days(d, offset))),
    }
}

// ---------------------------------------------------------------------------------------------
// Profiles (§6.2)

/// A half-open local window [start, end).
type Span = (NaiveTime, NaiveTime);

/// The intersection of two day windows; an empty intersection closes the day.
fn meet(a: Option<Span>, b: Option<Span>) -> Option<Span> {
    let ((s1, e1), (s2, e2)) = (a?, b?);
    let (s, e) = (s1.max(s2), e1.min(e2));
    (s < e).then_some((s, e))
}

/// One calling-window profile: `[federal]` intersected with a state's table, `[federal]` alone,
/// or the derived `strictest` profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    key: String,
    table: String,
    weekday: Option<Span>,
    saturday: Option<Span>,
    sunday: Option<Span>,
    /// Indices into `HOLIDAYS`, sorted, without duplicates.
    holidays: Vec<usize>,
    cap_24h: Option<u32>,
}

/// Why a local day has the window it has (internal; rendered into [`ZoneWindow::why`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Weekday,
    Saturday,
    Sunday,
    Holiday(usize),
    Observed(usize),
}

impl Why {
    fn render(self) -> String {
        match self {
            Why::Weekday => "weekday".to_owned(),
            Why::Saturday => "saturday".to_owned(),
            Why::Sunday => "sunday".to_owned(),
            Why::Holiday(i) => HOLIDAYS[i].0.to_owned(),
            Why::Observed(i) => format!("{} observed", HOLIDAYS[i].0),
        }
    }
}

impl Profile {
    /// What the decision record calls the state: the USPS code (`"MA"`, also `"NY"` for a known
    /// state without a table), `"strictest"`, or `"federal"` for [`Profiles::federal`].
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The data-file table(s) applied: the state's code when it has a table, `"federal"` when
    /// `[federal]` alone applies, `"strictest"` for the derived profile.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The state's frequency cap (R9): `None` when the data says `"none"`.
    pub fn cap_24h(&self) -> Option<u32> {
        self.cap_24h
    }

    /// The window [start, end) on a non-holiday `day` of the week (federal included; the 2-minute
    /// margin not applied); `None` when that day is closed.
    pub fn hours(&self, day: Weekday) -> Option<(NaiveTime, NaiveTime)> {
        match day {
            Weekday::Sat => self.saturday,
            Weekday::Sun => self.sunday,
            _ => self.weekday,
        }
    }

    /// The holiday ids (§5.3) that close this profile's days, in §5.3 order.
    pub fn holidays(&self) -> Vec<&'static str> {
        self.holidays.iter().map(|&i| HOLIDAYS[i].0).collect()
    }

    fn is_strictest(&self) -> bool {
        self.table == "strictest"
    }

    /// The window of a local date and why: holidays first, then the Saturday/Sunday rule.
    fn day_window(&self, date: NaiveDate) -> (Option<Span>, Why) {
        let mut observed = None;
        for &i in &self.holidays {
            match holiday_on(HOLIDAYS[i].1, date) {
                Some(Observance::Actual) => return (None, Why::Holiday(i)),
                Some(Observance::Observed) => observed = observed.or(Some(i)),
                None => {}
            }
        }
        if let Some(i) = observed {
            return (None, Why::Observed(i));
        }
        match date.weekday() {
            Weekday::Sat => (self.saturday, Why::Saturday),
            Weekday::Sun => (self.sunday, Why::Sunday),
            _ => (self.weekday, Why::Weekday),
        }
    }

    /// `self` ∩ `other`: later starts, earlier ends, closed days and holidays of both, the
    /// smaller cap.
    fn intersect(&self, other: &Profile, key: &str, table: &str) -> Profile {
        let mut holidays: Vec<usize> = self
            .holidays
            .iter()
            .chain(&other.holidays)
            .copied()
            .collect();
        holidays.sort_unstable();
        holidays.dedup();
        let cap_24h = match (self.cap_24h, other.cap_24h) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Profile {
            key: key.to_owned(),
            table: table.to_owned(),
            weekday: meet(self.weekday, other.weekday),
            saturday: meet(self.saturday, other.saturday),
            sunday: meet(self.sunday, other.sunday),
            holidays,
            cap_24h,
        }
    }
}

/// Every profile of one data file: `[federal]`, each known state (its table ∩ federal, or
/// federal alone), and the derived `strictest` profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profiles {
    federal: Profile,
    strictest: Profile,
    states: BTreeMap<&'static str, Profile>,
}

impl Profiles {
    /// The profile for a recipient state (USPS code, any ASCII case). `None` (state unknown) and
    /// a code textback does not know give `strictest`; a known code without a table (NY, PR, VI,
    /// GU, AS, MP …) gives `[federal]` alone, keyed by its code.
    pub fn get(&self, state: Option<&str>) -> &Profile {
        state
            .and_then(|s| self.states.get(s.to_ascii_uppercase().as_str()))
            .unwrap_or(&self.strictest)
    }

    /// `[federal]` alone (key `"federal"`).
    pub fn federal(&self) -> &Profile {
        &self.federal
    }

    /// The derived profile for numbers whose state is unknown (key `"strictest"`).
    pub fn strictest(&self) -> &Profile {
        &self.strictest
    }
}

/// Why the data file was refused; every variant names the offending table, field or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("state_windows.toml is not valid TOML: {0}")]
    Toml(String),
    #[error("state_windows.toml: schema_version must be 1, found {0}")]
    SchemaVersion(String),
    #[error("state_windows.toml: unknown top-level key `{0}`")]
    UnknownKey(String),
    #[error(
        "state_windows.toml: unknown state `[{0}]` (not a USPS code of a state, DC or territory)"
    )]
    UnknownState(String),
    #[error("state_windows.toml: `{0}` must be a table")]
    NotATable(String),
    #[error("state_windows.toml: the [federal] table is missing")]
    MissingFederal,
    #[error("state_windows.toml [{table}]: unknown field `{field}`")]
    UnknownField { table: String, field: String },
    #[error("state_windows.toml [{table}]: missing field `{field}`")]
    MissingField { table: String, field: String },
    #[error("state_windows.toml [{table}] holidays: unknown holiday id `{id}`")]
    UnknownHoliday { table: String, id: String },
    #[error("state_windows.toml [{table}] {field}: {value} is not {expected}")]
    BadValue {
        table: String,
        field: String,
        value: String,
        expected: &'static str,
    },
}

const REQUIRED_FIELDS: [&str; 8] = [
    "name",
    "start",
    "end",
    "sunday",
    "holidays",
    "cap_24h",
    "confidence",
    "source",
];
const OPTIONAL_FIELDS: [&str; 6] = [
    "saturday",
    "holidays_confidence",
    "also",
    "cite",
    "note",
    "emergency_ban",
];
const CONFIDENCE: [&str; 3] = ["verified", "practitioner", "unverified"];

/// Parses `"HH:MM"` (two digits each, 00:00–23:59).
fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![b[0], b[1], b[3], b[4]].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |x: u8, y: u8| u32::from(x - b'0') * 10 + u32::from(y - b'0');
    NaiveTime::from_hms_opt(num(b[0], b[1]), num(b[3], b[4]), 0)
}

/// Parses `"HH:MM-HH:MM"` with start < end.
fn parse_span(s: &str) -> Option<Span> {
    let (a, b) = s.split_once('-')?;
    let (start, end) = (parse_hhmm(a)?, parse_hhmm(b)?);
    (start < end).then_some((start, end))
}

/// One table of the data file, checked field by field.
struct TableReader<'a> {
    name: &'a str,
    table: &'a toml::Table,
}

impl TableReader<'_> {
    fn bad(&self, field: &str, value: &toml::Value, expected: &'static str) -> LoadError {
        LoadError::BadValue {
            table: self.name.to_owned(),
            field: field.to_owned(),
            value: value.to_string(),
            expected,
        }
    }

    fn required(&self, field: &str) -> Result<&toml::Value, LoadError> {
        self.table
            .get(field)
            .ok_or_else(|| LoadError::MissingField {
                table: self.name.to_owned(),
                field: field.to_owned(),
            })
    }

    fn string(&self, field: &str, value: &toml::Value) -> Result<(), LoadError> {
        value
            .as_str()
            .map(|_| ())
            .ok_or_else(|| self.bad(field, value, "a string"))
    }

    fn time(&self, field: &str) -> Result<NaiveTime, LoadError> {
        let value = self.required(field)?;
        value
            .as_str()
            .and_then(parse_hhmm)
            .ok_or_else(|| self.bad(field, value, "a time \"HH:MM\""))
    }

    fn check_fields(&self) -> Result<(), LoadError> {
        for (field, value) in self.table {
            match field.as_str() {
                "name" | "source" | "cite" | "note" => self.string(field, value)?,
                "confidence" | "holidays_confidence" => {
                    if !value.as_str().is_some_and(|s| CONFIDENCE.contains(&s)) {
                        return Err(self.bad(
                            field,
                            value,
                            "\"verified\", \"practitioner\" or \"unverified\"",
                        ));
                    }
                }
                "also" => {
                    let ok = value
                        .as_array()
                        .is_some_and(|a| a.iter().all(|v| v.as_str().is_some()));
                    if !ok {
                        return Err(self.bad(field, value, "a list of strings"));
                    }
                }
                "emergency_ban" => {
                    if value.as_bool().is_none() {
                        return Err(self.bad(field, value, "true or false"));
                    }
                }
                // Read by `profile`.
                f if REQUIRED_FIELDS.contains(&f) || OPTIONAL_FIELDS.contains(&f) => {}
                _ => {
                    return Err(LoadError::UnknownField {
                        table: self.name.to_owned(),
                        field: field.clone(),
                    });
                }
            }
        }
        REQUIRED_FIELDS
            .iter()
            .try_for_each(|f| self.required(f).map(|_| ()))
    }

    /// The table as a profile of its own (not yet intersected with federal).
    fn profile(&self, key: &str, table: &str) -> Result<Profile, LoadError> {
        self.check_fields()?;
        let start = self.time("start")?;
        let end = self.time("end")?;
        if start >= end {
            return Err(self.bad("end", self.required("end")?, "a time after start"));
        }
        let weekday = Some((start, end));
        let saturday = match self.table.get("saturday") {
            None => weekday,
            Some(v) => match v.as_str() {
                Some("none") => None,
                Some(s) => Some(parse_span(s).ok_or_else(|| {
                    self.bad(
                        "saturday",
                        v,
                        "\"none\" or \"HH:MM-HH:MM\" with start < end",
                    )
                })?),
                None => return Err(self.bad("saturday", v, "a string")),
            },
        };
        let sunday_value = self.required("sunday")?;
        let sunday = match sunday_value.as_str() {
            Some("allowed") => weekday,
            Some("none") => None,
            Some(s) => Some(parse_span(s).ok_or_else(|| {
                self.bad(
                    "sunday",
                    sunday_value,
                    "\"allowed\", \"none\" or \"HH:MM-HH:MM\" with start < end",
                )
            })?),
            None => return Err(self.bad("sunday", sunday_value, "a string")),
        };
        let holidays_value = self.required("holidays")?;
        let mut holidays = Vec::new();
        match holidays_value {
            toml::Value::String(s) if s == "none" => {}
            toml::Value::Array(ids) => {
                for id in ids {
                    let Some(id) = id.as_str() else {
                        return Err(self.bad("holidays", id, "a holiday id string"));
                    };
                    let index = holiday_index(id).ok_or_else(|| LoadError::UnknownHoliday {
                        table: self.name.to_owned(),
                        id: id.to_owned(),
                    })?;
                    holidays.push(index);
                }
            }
            other => return Err(self.bad("holidays", other, "\"none\" or a list of holiday ids")),
        }
        holidays.sort_unstable();
        holidays.dedup();
        let cap_value = self.required("cap_24h")?;
        let cap_24h = match cap_value {
            toml::Value::String(s) if s == "none" => None,
            toml::Value::Integer(n) => {
                Some(u32::try_from(*n).ok().filter(|&n| n >= 1).ok_or_else(|| {
                    self.bad("cap_24h", cap_value, "\"none\" or a whole number ≥ 1")
                })?)
            }
            other => return Err(self.bad("cap_24h", other, "\"none\" or a whole number ≥ 1")),
        };
        Ok(Profile {
            key: key.to_owned(),
            table: table.to_owned(),
            weekday,
            saturday,
            sunday,
            holidays,
            cap_24h,
        })
    }
}

/// Parses and validates a state-windows file (§6.2) and derives every profile, `strictest`
/// included (latest start, earliest end, intersection of Saturday windows, Sunday closed if any
/// state closes it, union of holidays, smallest cap; always ∩ federal).
pub fn load(text: &str) -> Result<Profiles, LoadError> {
    let root: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| LoadError::Toml(e.to_string()))?;
    let mut federal = None;
    let mut tables: Vec<(&'static str, Profile)> = Vec::new();
    for (key, value) in &root {
        if key == "schema_version" {
            if value.as_integer() != Some(1) {
                return Err(LoadError::SchemaVersion(value.to_string()));
            }
            continue;
        }
        let Some(table) = value.as_table() else {
            return Err(LoadError::UnknownKey(key.clone()));
        };
        let reader = TableReader { name: key, table };
        if key == "federal" {
            federal = Some(reader.profile("federal", "federal")?);
            continue;
        }
        let Some(code) = KNOWN_STATES.iter().find(|c| **c == key.as_str()) else {
            return Err(LoadError::UnknownState(key.clone()));
        };
        tables.push((code, reader.profile(code, code)?));
    }
    let federal = federal.ok_or(LoadError::MissingFederal)?;
    let mut strictest = Profile {
        key: "strictest".to_owned(),
        table: "strictest".to_owned(),
        ..federal.clone()
    };
    let mut states = BTreeMap::new();
    for code in KNOWN_STATES {
        let profile = Profile {
            key: code.to_owned(),
            table: "federal".to_owned(),
            ..federal.clone()
        };
        states.insert(code, profile);
    }
    for (code, own) in tables {
        strictest = strictest.intersect(&own, "strictest", "strictest");
        states.insert(code, federal.intersect(&own, code, code));
    }
    Ok(Profiles {
        federal,
        strictest,
        states,
    })
}

static PROFILES: LazyLock<Result<Profiles, LoadError>> = LazyLock::new(|| load(DATA));

static DATA_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut hash = hex::encode(Sha256::digest(DATA.as_bytes()));
    hash.truncate(12);
    hash
});

/// The embedded `fixtures/state_windows.toml`, parsed once. A test loads it, so an error here
/// means a build from an unchecked data edit; the gate then fails closed (`gate_error`).
pub fn profiles() -> Result<&'static Profiles, &'static LoadError> {
    PROFILES.as_ref()
}

/// The first 12 hex digits of the SHA-256 of the embedded data file (the decision record's
/// `data` field).
pub fn data_hash() -> &'static str {
    &DATA_HASH
}

// ---------------------------------------------------------------------------------------------
// Window test (§5.1), blackouts (§5.4), deferral (§5.2)

/// A declared blackout (setup file `[[blackouts]]`, §5.4): closes `states` (USPS codes, any
/// ASCII case) over [from, until), and a closed message defers to `until` (reason `blackout`).
/// It applies to the profile whose [`Profile::key`] is one of `states`; the `strictest` profile
/// (state unknown, so it could be any) gets **every** blackout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blackout {
    pub states: Vec<String>,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub reason: String,
}

impl Blackout {
    /// A blackout applies to a profile keyed by one of its states; the `strictest` profile (the
    /// state is unknown, so it could be any) gets every blackout.
    fn applies_to(&self, profile: &Profile) -> bool {
        profile.is_strictest()
            || self
                .states
                .iter()
                .any(|s| s.eq_ignore_ascii_case(profile.key()))
    }

    fn active_at(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.until
    }
}

/// One zone's side of a window decision, as the decision record shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneWindow {
    pub zone: Tz,
    /// Local date and time in `zone` at the instant tested.
    pub local: NaiveDateTime,
    /// The local day's window [start, end) (before the 2-minute margin); `None` when the day is
    /// closed or a blackout applies.
    pub window: Option<(NaiveTime, NaiveTime)>,
    /// `weekday`, `saturday` or `sunday` (the rule that gave the window or closed the day), a
    /// holiday id, `<holiday id> observed`, or `blackout: <reason>`.
    pub why: String,
}

impl fmt::Display for ZoneWindow {
    /// `New_York 2026-06-12 Fri 08:00-20:00 (08:30)`, `Chicago 2026-07-04 Sat closed:
    /// independence_day (07:30)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.zone.name();
        let short = name.rsplit('/').next().unwrap_or(name);
        write!(f, "{short} {}", self.local.format("%Y-%m-%d %a "))?;
        match self.window {
            Some((start, end)) => write!(f, "{}-{}", start.format("%H:%M"), end.format("%H:%M"))?,
            None => write!(f, "closed: {}", self.why)?,
        }
        write!(f, " ({})", self.local.format("%H:%M"))
    }
}

/// The outcome of the window test at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// Every zone is inside its window and no blackout applies.
    Open { windows: Vec<ZoneWindow> },
    /// `reason`: `"blackout"` when a blackout applies (it wins over the others), else
    /// `"closed_day"` when some zone's local day is closed entirely (holiday, observed holiday,
    /// Saturday/Sunday `none`), else `"quiet_hours"`.
    Closed {
        reason: &'static str,
        windows: Vec<ZoneWindow>,
    },
}

impl Window {
    pub fn is_open(&self) -> bool {
        matches!(self, Window::Open { .. })
    }

    /// The per-zone windows, in the order of the zones given.
    pub fn windows(&self) -> &[ZoneWindow] {
        match self {
            Window::Open { windows } | Window::Closed { windows, .. } => windows,
        }
    }
}

fn zones_or_all(zones: &[Tz]) -> &[Tz] {
    if zones.is_empty() { &US_ZONES } else { zones }
}

/// start ≤ h < end − 2 min.
fn inside(h: NaiveTime, (start, end): Span) -> bool {
    let secs = |t: NaiveTime| i64::from(t.num_seconds_from_midnight());
    secs(h) >= secs(start) && secs(h) + END_MARGIN_SECS < secs(end)
}

struct ZoneEval {
    local: NaiveDateTime,
    window: Option<Span>,
    why: Why,
    open: bool,
}

fn eval_zone(zone: Tz, t: DateTime<Utc>, profile: &Profile) -> ZoneEval {
    let local = t.with_timezone(&zone).naive_local();
    let (window, why) = profile.day_window(local.date());
    let open = window.is_some_and(|w| inside(local.time(), w));
    ZoneEval {
        local,
        window,
        why,
        open,
    }
}

/// The applicable blackout active at `t` that lasts longest.
fn active_blackout<'a>(
    t: DateTime<Utc>,
    profile: &Profile,
    blackouts: &'a [Blackout],
) -> Option<&'a Blackout> {
    blackouts
        .iter()
        .filter(|b| b.applies_to(profile) && b.active_at(t))
        .max_by_key(|b| b.until)
}

/// The cheap form of [`window_at`] used while searching.
fn allowed(t: DateTime<Utc>, zones: &[Tz], profile: &Profile, blackouts: &[Blackout]) -> bool {
    active_blackout(t, profile, blackouts).is_none()
        && zones.iter().all(|&z| eval_zone(z, t, profile).open)
}

/// The window test (§5.1) at instant `t`: open iff no applicable blackout is active and, in
/// **every** zone, the local day's window (federal ∩ profile, holidays, Saturday/Sunday rule) is
/// open and start ≤ local time < end − 2 minutes. Blackouts apply when their `states` contain
/// the profile's key; for the `strictest` profile (state unknown) every blackout applies.
/// Empty `zones` means the eight US zones of R8.
pub fn window_at(
    t: DateTime<Utc>,
    zones: &[Tz],
    profile: &Profile,
    blackouts: &[Blackout],
) -> Window {
    let zones = zones_or_all(zones);
    let evals: Vec<(Tz, ZoneEval)> = zones
        .iter()
        .map(|&z| (z, eval_zone(z, t, profile)))
        .collect();
    if let Some(blackout) = active_blackout(t, profile, blackouts) {
        let windows = evals
            .into_iter()
            .map(|(zone, e)| ZoneWindow {
                zone,
                local: e.local,
                window: None,
                why: format!("blackout: {}", blackout.reason),
            })
            .collect();
        return Window::Closed {
            reason: "blackout",
            windows,
        };
    }
    let all_open = evals.iter().all(|(_, e)| e.open);
    let day_closed = evals.iter().any(|(_, e)| e.window.is_none());
    let windows = evals
        .into_iter()
        .map(|(zone, e)| ZoneWindow {
            zone,
            local: e.local,
            window: e.window,
            why: e.why.render(),
        })
        .collect();
    if all_open {
        Window::Open { windows }
    } else {
        let reason = if day_closed {
            "closed_day"
        } else {
            "quiet_hours"
        };
        Window::Closed { reason, windows }
    }
}

fn local_time_at(zone: Tz, unix_secs: i64) -> Option<NaiveDateTime> {
    Some(
        DateTime::from_timestamp(unix_secs, 0)?
            .with_timezone(&zone)
            .naive_local(),
    )
}

/// The first instant whose local time in `zone` is ≥ `local`, for a `local` inside a DST gap:
/// the transition instant itself (e.g. 02:30 on a spring-forward day → 03:00 EDT).
fn gap_end(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let minute = TimeDelta::try_minutes(1)?;
    let mut later = local;
    let mut mapped = None;
    for _ in 0..(48 * 60) {
        later = later.checked_add_signed(minute)?;
        if let Some(t) = zone.from_local_datetime(&later).earliest() {
            mapped = Some(t.timestamp());
            break;
        }
    }
    // local(lo) < `local` ≤ local(hi); local time is monotone in between.
    let mut hi = mapped?;
    let mut lo = hi - (later - local).num_seconds() - 1;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local_time_at(zone, mid)? >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

/// Every instant whose local time in `zone` is `local`: one, both mappings of a repeated hour
/// (earliest first), or for a skipped hour the first valid instant after it.
fn instants_of(zone: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        LocalResult::None => gap_end(zone, local).into_iter().collect(),
    }
}

/// The instants in [lo, hi] at which `zone`'s UTC offset changes (to the second), assuming at
/// most one change per 6 hours.
fn transitions(zone: Tz, lo: DateTime<Utc>, hi: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    const STEP: i64 = 6 * 3600;
    let offset = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .map(|t| zone.offset_from_utc_datetime(&t.naive_utc()).fix())
    };
    let mut found = Vec::new();
    let (mut at, end) = (lo.timestamp(), hi.timestamp());
    while at < end {
        let next = (at + STEP).min(end);
        let (before, after) = (offset(at), offset(next));
        if before != after {
            let (mut a, mut b) = (at, next);
            while b - a > 1 {
                let mid = a + (b - a) / 2;
                if offset(mid) == before {
                    a = mid
                } else {
                    b = mid
                }
            }
            found.extend(DateTime::from_timestamp(b, 0));
        }
        at = next;
    }
    found
}

/// The deferral (§5.2): the first instant T ≥ `from` at which [`window_at`] is open (pass
/// `from` = max(now, E)); `None` when there is none in [from, from + horizon] (the gate uses
/// 14 days and then skips `no_window`). The horizon is clamped to 0–400 days.
///
/// T is `from` itself, a zone's window start on some local date (built from the local date and
/// start time through `chrono-tz`: a start inside a skipped hour maps to the first valid
/// instant after it, a repeated hour's earliest mapping comes first), a DST transition, or an
/// applicable blackout's `until`; each candidate is checked with the full window test, earliest
/// first. Blackouts apply as in [`window_at`] (every blackout for `strictest`).
pub fn next_allowed(
    from: DateTime<Utc>,
    zones: &[Tz],
    profile: &Profile,
    blackouts: &[Blackout],
    horizon: TimeDelta,
) -> Option<DateTime<Utc>> {
    let zones = zones_or_all(zones);
    let max = TimeDelta::try_days(MAX_HORIZON_DAYS)?;
    let limit = from.checked_add_signed(horizon.clamp(TimeDelta::zero(), max))?;
    if allowed(from, zones, profile, blackouts) {
        return Some(from);
    }
    let mut candidates: Vec<DateTime<Utc>> = blackouts
        .iter()
        .filter(|b| b.applies_to(profile))
        .map(|b| b.until)
        .collect();
    for &zone in zones {
        candidates.extend(transitions(zone, from, limit));
        let first = add_days(from.with_timezone(&zone).date_naive(), -1)?;
        let last = add_days(limit.with_timezone(&zone).date_naive(), 1)?;
        for date in first.iter_days().take_while(|d| *d <= last) {
            if let (Some((start, _)), _) = profile.day_window(date) {
                candidates.extend(instants_of(zone, date.and_time(start)));
            }
        }
    }
    candidates.retain(|&c| from < c && c <= limit);
    candidates.sort_unstable();
    candidates.dedup();
    candidates
        .into_iter()
        .find(|&c| allowed(c, zones, profile, blackouts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use chrono_tz::America::{Chicago, Denver, New_York, Phoenix, Puerto_Rico};
    use chrono_tz::Pacific::Honolulu;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("RFC 3339 instant")
            .with_timezone(&Utc)
    }

    fn hm(s: &str) -> NaiveTime {
        parse_hhmm(s).expect("HH:MM")
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn data() -> &'static Profiles {
        profiles().expect("the committed state_windows.toml loads")
    }

    fn state(code: &str) -> &'static Profile {
        data().get(Some(code))
    }

    const DAYS14: TimeDelta = TimeDelta::days(14);

    /// Asserts §5.5 "defer → `to`": closed at `now` with `reason`, next allowed = `to`.
    fn assert_defer(now: &str, zones: &[Tz], p: &Profile, reason: &str, to: &str) {
        let w = window_at(utc(now), zones, p, &[]);
        match &w {
            Window::Closed { reason: r, .. } => assert_eq!(*r, reason, "reason at {now}"),
            Window::Open { .. } => panic!("{now} should be closed for {}", p.key()),
        }
        assert_eq!(
            next_allowed(utc(now), zones, p, &[], DAYS14),
            Some(utc(to)),
            "deferral from {now} for {}",
            p.key()
        );
    }

    fn assert_allow(now: &str, zones: &[Tz], p: &Profile) {
        assert!(
            window_at(utc(now), zones, p, &[]).is_open(),
            "{now} should be open for {}",
            p.key()
        );
        assert_eq!(
            next_allowed(utc(now), zones, p, &[], DAYS14),
            Some(utc(now))
        );
    }

    // --- data and profiles -------------------------------------------------------------------

    #[test]
    fn embedded_data_loads_and_hashes() {
        let p = data();
        assert_eq!(p.federal().key(), "federal");
        let hash = data_hash();
        assert_eq!(hash.len(), 12);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let full = hex::encode(Sha256::digest(DATA.as_bytes()));
        assert!(full.starts_with(hash));
    }

    #[test]
    fn strictest_profile_values() {
        let s = data().strictest();
        assert_eq!(s.key(), "strictest");
        assert_eq!(s.table(), "strictest");
        assert_eq!(s.hours(Weekday::Wed), Some((hm("10:00"), hm("18:00"))));
        assert_eq!(s.hours(Weekday::Sat), Some((hm("10:00"), hm("17:00"))));
        assert_eq!(s.hours(Weekday::Sun), None);
        assert_eq!(s.cap_24h(), Some(3));
        // Union of every state's holidays: all 21 ids appear in some row.
        let ids = s.holidays();
        assert_eq!(ids.len(), HOLIDAYS.len());
        assert!(ids.contains(&"victory_day") && ids.contains(&"rosa_parks_day"));
        assert!(ids.contains(&"good_friday") && ids.contains(&"day_after_thanksgiving"));
        assert_eq!(data().get(None), s);
        assert_eq!(data().get(Some("ZZ")), s);
        assert_eq!(data().get(Some("-")), s);
    }

    #[test]
    fn state_profiles_are_intersected_with_federal() {
        let ma = state("MA");
        assert_eq!((ma.key(), ma.table()), ("MA", "MA"));
        assert_eq!(ma.hours(Weekday::Mon), Some((hm("08:00"), hm("20:00"))));
        assert_eq!(ma.hours(Weekday::Sun), Some((hm("08:00"), hm("20:00"))));
        assert_eq!(ma.cap_24h(), None);
        let ri = state("RI");
        assert_eq!(ri.hours(Weekday::Fri), Some((hm("09:00"), hm("18:00"))));
        assert_eq!(ri.hours(Weekday::Sat), Some((hm("10:00"), hm("17:00"))));
        assert_eq!(ri.hours(Weekday::Sun), None);
        let tx = state("TX");
        assert_eq!(tx.hours(Weekday::Sun), Some((hm("12:00"), hm("21:00"))));
        assert_eq!(tx.hours(Weekday::Sat), Some((hm("09:00"), hm("21:00"))));
        assert_eq!(
            state("KY").hours(Weekday::Tue),
            Some((hm("10:00"), hm("21:00")))
        );
        for code in ["FL", "MD", "OK"] {
            assert_eq!(state(code).cap_24h(), Some(3), "{code}");
        }
        assert_eq!(state("LA").holidays().len(), 13);
        // Known states without a table: federal alone, keyed by their code.
        for code in ["NY", "PR", "VI", "GU", "AS", "MP", "HI", "AZ", "CO", "DC"] {
            let p = state(code);
            assert_eq!((p.key(), p.table()), (code, "federal"));
            assert_eq!(p.hours(Weekday::Sun), Some((hm("08:00"), hm("21:00"))));
            assert!(p.holidays().is_empty());
            assert_eq!(p.cap_24h(), None);
        }
        assert_eq!(data().get(Some("ma")).key(), "MA");
    }

    // --- load errors -------------------------------------------------------------------------

    const FEDERAL: &str = "[federal]\nname = \"F\"\nstart = \"08:00\"\nend = \"21:00\"\n\
        sunday = \"allowed\"\nholidays = \"none\"\ncap_24h = \"none\"\n\
        confidence = \"verified\"\nsource = \"s\"\n";

    fn table(code: &str, extra: &str) -> String {
        format!(
            "[{code}]\nname = \"X\"\nstart = \"09:00\"\nend = \"20:00\"\nsunday = \"allowed\"\n\
             holidays = \"none\"\ncap_24h = \"none\"\nconfidence = \"unverified\"\n\
             source = \"s\"\n{extra}"
        )
    }

    fn bad(field: &str, value: &str, expected: &'static str, t: &str) -> LoadError {
        LoadError::BadValue {
            table: t.to_owned(),
            field: field.to_owned(),
            value: value.to_owned(),
            expected,
        }
    }

    #[test]
    fn load_accepts_a_minimal_file() {
        let p = load(&format!("schema_version = 1\n{FEDERAL}{}", table("MA", ""))).expect("ok");
        assert_eq!(
            p.get(Some("MA")).hours(Weekday::Mon),
            Some((hm("09:00"), hm("20:00")))
        );
        assert!(load(FEDERAL).is_ok(), "schema_version is optional");
    }

    #[test]
    fn load_errors_name_the_problem() {
        let with = |rest: &str| load(&format!("{FEDERAL}{rest}"));
        assert_eq!(
            load(&format!("schema_version = 2\n{FEDERAL}")),
            Err(LoadError::SchemaVersion("2".to_owned()))
        );
        assert_eq!(
            load(&format!("schema_version = \"1\"\n{FEDERAL}")),
            Err(LoadError::SchemaVersion("\"1\"".to_owned()))
        );
        assert_eq!(
            load(&format!("version = 1\n{FEDERAL}")),
            Err(LoadError::UnknownKey("version".to_owned()))
        );
        assert_eq!(
            with(&table("ZZ", "")),
            Err(LoadError::UnknownState("ZZ".to_owned()))
        );
        assert_eq!(
            with(&table("ma", "")),
            Err(LoadError::UnknownState("ma".to_owned()))
        );
        assert_eq!(
            with(&table("MA", "curfew = \"22:00\"\n")),
            Err(LoadError::UnknownField {
                table: "MA".to_owned(),
                field: "curfew".to_owned()
            })
        );
        let holidays = table("MA", "").replace(
            "holidays = \"none\"",
            "holidays = [\"christmas_day\", \"festivus\"]",
        );
        assert_eq!(
            with(&holidays),
            Err(LoadError::UnknownHoliday {
                table: "MA".to_owned(),
                id: "festivus".to_owned()
            })
        );
        let start = table("MA", "").replace("\"09:00\"", "\"9:00\"");
        assert_eq!(
            with(&start),
            Err(bad("start", "\"9:00\"", "a time \"HH:MM\"", "MA"))
        );
        let end = table("MA", "").replace("\"20:00\"", "\"24:00\"");
        assert_eq!(
            with(&end),
            Err(bad("end", "\"24:00\"", "a time \"HH:MM\"", "MA"))
        );
        let backwards = table("MA", "").replace("\"20:00\"", "\"08:00\"");
        assert_eq!(
            with(&backwards),
            Err(bad("end", "\"08:00\"", "a time after start", "MA"))
        );
        let sat = table("MA", "saturday = \"10:00-9:00\"\n");
        assert!(
            matches!(with(&sat), Err(LoadError::BadValue { field, .. }) if field == "saturday")
        );
        let sun = table("MA", "").replace("sunday = \"allowed\"", "sunday = \"closed\"");
        assert!(matches!(with(&sun), Err(LoadError::BadValue { field, .. }) if field == "sunday"));
        let cap = table("MA", "").replace("cap_24h = \"none\"", "cap_24h = 0");
        assert!(matches!(with(&cap), Err(LoadError::BadValue { field, .. }) if field == "cap_24h"));
        let conf = table("MA", "").replace("\"unverified\"", "\"likely\"");
        assert!(
            matches!(with(&conf), Err(LoadError::BadValue { field, .. }) if field == "confidence")
        );
        let missing = table("MA", "").replace("sunday = \"allowed\"\n", "");
        assert_eq!(
            with(&missing),
            Err(LoadError::MissingField {
                table: "MA".to_owned(),
                field: "sunday".to_owned()
            })
        );
        assert_eq!(load(&table("MA", "")), Err(LoadError::MissingFederal));
        assert_eq!(
            load("MA = 3\n"),
            Err(LoadError::UnknownKey("MA".to_owned()))
        );
        assert!(matches!(load("[federal"), Err(LoadError::Toml(_))));
        // The message names the culprit.
        let msg = with(&table("MA", "curfew = 1\n"))
            .expect_err("error")
            .to_string();
        assert!(msg.contains("[MA]") && msg.contains("curfew"), "{msg}");
    }

    // --- holidays (§5.3) ---------------------------------------------------------------------

    /// The dates of calendar year `year` that holiday `id` closes (own and observed dates).
    fn closed_dates(id: &str, year: i32) -> Vec<String> {
        let rule = HOLIDAYS[holiday_index(id).expect("id")].1;
        ymd(year, 1, 1)
            .iter_days()
            .take_while(|d| d.year() == year)
            .filter(|&d| holiday_on(rule, d).is_some())
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn easter_dates() {
        assert_eq!(easter(2026), Some(ymd(2026, 4, 5)));
        assert_eq!(easter(2027), Some(ymd(2027, 3, 28)));
        assert_eq!(easter(2028), Some(ymd(2028, 4, 16)));
        assert_eq!(easter(2019), Some(ymd(2019, 4, 21)));
        assert_eq!(easter(2038), Some(ymd(2038, 4, 25)));
    }

    #[test]
    fn holiday_dates_2026_to_2028() {
        // Per id: the dates it closes in 2026, 2027 and 2028 ("|" between years).
        let cases = [
            // Fixed dates, with the weekend observance (Friday before and Monday after).
            (
                "new_years_day",
                "2026-01-01 | 2027-01-01 2027-12-31 | 2028-01-01 2028-01-03",
            ),
            (
                "battle_of_new_orleans",
                "2026-01-08 | 2027-01-08 | 2028-01-07 2028-01-08 2028-01-10",
            ),
            ("robert_e_lee_day", "2026-01-19 | 2027-01-19 | 2028-01-19"),
            (
                "ri_independence_day",
                "2026-05-04 | 2027-05-04 | 2028-05-04",
            ),
            (
                "juneteenth",
                "2026-06-19 | 2027-06-18 2027-06-19 2027-06-21 | 2028-06-19",
            ),
            (
                "independence_day",
                "2026-07-03 2026-07-04 2026-07-06 | 2027-07-02 2027-07-04 2027-07-05 | 2028-07-04",
            ),
            (
                "veterans_day",
                "2026-11-11 | 2027-11-11 | 2028-11-10 2028-11-11 2028-11-13",
            ),
            ("rosa_parks_day", "2026-12-01 | 2027-12-01 | 2028-12-01"),
            (
                "christmas_day",
                "2026-12-25 | 2027-12-24 2027-12-25 2027-12-27 | 2028-12-25",
            ),
            // Weekday rules.
            ("mlk_day", "2026-01-19 | 2027-01-18 | 2028-01-17"),
            (
                "washington_birthday",
                "2026-02-16 | 2027-02-15 | 2028-02-21",
            ),
            (
                "confederate_memorial_day",
                "2026-04-27 | 2027-04-26 | 2028-04-24",
            ),
            ("memorial_day", "2026-05-25 | 2027-05-31 | 2028-05-29"),
            (
                "jefferson_davis_birthday",
                "2026-06-01 | 2027-06-07 | 2028-06-05",
            ),
            ("victory_day", "2026-08-10 | 2027-08-09 | 2028-08-14"),
            ("labor_day", "2026-09-07 | 2027-09-06 | 2028-09-04"),
            ("columbus_day", "2026-10-12 | 2027-10-11 | 2028-10-09"),
            ("thanksgiving_day", "2026-11-26 | 2027-11-25 | 2028-11-23"),
            (
                "day_after_thanksgiving",
                "2026-11-27 | 2027-11-26 | 2028-11-24",
            ),
            // Easter-based (Easter: 2026-04-05, 2027-03-28, 2028-04-16).
            ("mardi_gras", "2026-02-17 | 2027-02-09 | 2028-02-29"),
            ("good_friday", "2026-04-03 | 2027-03-26 | 2028-04-14"),
        ];
        assert_eq!(cases.len(), HOLIDAYS.len());
        for (id, years) in cases {
            for (year, expected) in (2026..=2028).zip(years.split('|')) {
                let expected: Vec<&str> = expected.split_whitespace().collect();
                assert_eq!(closed_dates(id, year), expected, "{id} {year}");
            }
        }
    }

    #[test]
    fn new_year_on_saturday_closes_the_friday_before_across_the_year_end() {
        // Sat 2028-01-01: AL, MS and RI close Fri 2027-12-31 (and Mon 2028-01-03).
        for code in ["AL", "MS", "RI", "LA"] {
            let p = state(code);
            assert_eq!(
                p.day_window(ymd(2027, 12, 31)),
                (None, Why::Observed(0)),
                "{code}"
            );
            assert_eq!(
                p.day_window(ymd(2028, 1, 3)),
                (None, Why::Observed(0)),
                "{code}"
            );
        }
        // Fri 2027-12-31 10:00 CST in Alabama: closed all day; next is Tue 2028-01-04 08:00 CST
        // (Sat holiday, Sun none, Mon observed).
        let t = utc("2027-12-31T16:00:00Z");
        let w = window_at(t, &[Chicago], state("AL"), &[]);
        assert!(matches!(
            w,
            Window::Closed {
                reason: "closed_day",
                ..
            }
        ));
        assert_eq!(
            w.windows()[0].to_string(),
            "Chicago 2027-12-31 Fri closed: new_years_day observed (10:00)"
        );
        assert_eq!(
            next_allowed(t, &[Chicago], state("AL"), &[], DAYS14),
            Some(utc("2028-01-04T14:00:00Z"))
        );
        // A state without the holiday is open.
        assert!(window_at(t, &[Chicago], state("MA"), &[]).is_open());
    }

    // --- §5.5 test vectors -------------------------------------------------------------------

    #[test]
    fn v1_212_spring_forward() {
        let ny = state("NY");
        // Sat 21:30 EST, and Sun 03:30 EDT after the skipped hour: Sun 08:00 EDT = 12:00Z.
        assert_defer(
            "2026-03-08T02:30:00Z",
            &[New_York],
            ny,
            "quiet_hours",
            "2026-03-08T12:00:00Z",
        );
        assert_defer(
            "2026-03-08T07:30:00Z",
            &[New_York],
            ny,
            "quiet_hours",
            "2026-03-08T12:00:00Z",
        );
    }

    #[test]
    fn v2_212_fall_back() {
        let ny = state("NY");
        for now in [
            "2026-11-01T01:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:30:00Z",
        ] {
            assert_defer(now, &[New_York], ny, "quiet_hours", "2026-11-01T13:00:00Z");
        }
    }

    #[test]
    fn v3_602_phoenix_and_303_denver() {
        assert_defer(
            "2026-07-15T14:30:00Z",
            &[Phoenix],
            state("AZ"),
            "quiet_hours",
            "2026-07-15T15:00:00Z",
        );
        assert_allow("2026-07-15T14:30:00Z", &[Denver], state("CO"));
    }

    #[test]
    fn v4_928_283_denver_and_phoenix_margin() {
        let zones = [Denver, Phoenix];
        assert_allow("2026-07-16T02:57:00Z", &zones, state("AZ"));
        assert_defer(
            "2026-07-16T02:59:00Z",
            &zones,
            state("AZ"),
            "quiet_hours",
            "2026-07-16T15:00:00Z",
        );
    }

    #[test]
    fn v5_808_honolulu_and_787_puerto_rico() {
        assert_defer(
            "2026-07-15T17:59:00Z",
            &[Honolulu],
            state("HI"),
            "quiet_hours",
            "2026-07-15T18:00:00Z",
        );
        assert_defer(
            "2026-01-14T11:59:00Z",
            &[Puerto_Rico],
            state("PR"),
            "quiet_hours",
            "2026-01-14T12:00:00Z",
        );
    }

    #[test]
    fn v6_512_texas_sunday() {
        assert_defer(
            "2026-06-14T15:00:00Z",
            &[Chicago],
            state("TX"),
            "quiet_hours",
            "2026-06-14T17:00:00Z",
        );
    }

    #[test]
    fn v7_205_alabama_and_401_rhode_island_independence_day() {
        let now = "2026-07-03T15:00:00Z";
        assert_defer(
            now,
            &[Chicago],
            state("AL"),
            "closed_day",
            "2026-07-07T13:00:00Z",
        );
        assert_defer(
            now,
            &[New_York],
            state("RI"),
            "closed_day",
            "2026-07-07T13:00:00Z",
        );
        let w = window_at(utc(now), &[Chicago], state("AL"), &[]);
        assert_eq!(
            w.windows()[0].to_string(),
            "Chicago 2026-07-03 Fri closed: independence_day observed (10:00)"
        );
        let sat = window_at(utc("2026-07-04T12:30:00Z"), &[Chicago], state("AL"), &[]);
        assert_eq!(
            sat.windows()[0].to_string(),
            "Chicago 2026-07-04 Sat closed: independence_day (07:30)"
        );
        let sun = window_at(utc("2026-07-05T15:00:00Z"), &[New_York], state("RI"), &[]);
        assert_eq!(
            sun.windows()[0].to_string(),
            "New_York 2026-07-05 Sun closed: sunday (11:00)"
        );
        let mon = window_at(utc("2026-07-06T15:00:00Z"), &[New_York], state("RI"), &[]);
        assert_eq!(mon.windows()[0].why, "independence_day observed");
    }

    #[test]
    fn v8_504_louisiana_mardi_gras() {
        assert_defer(
            "2026-02-17T16:00:00Z",
            &[Chicago],
            state("LA"),
            "closed_day",
            "2026-02-18T14:00:00Z",
        );
        let w = window_at(utc("2026-02-17T16:00:00Z"), &[Chicago], state("LA"), &[]);
        assert_eq!(w.windows()[0].why, "mardi_gras");
    }

    #[test]
    fn v9_555_unknown_strictest() {
        let s = data().get(None);
        for (now, first, last) in [
            (
                "2026-07-15T12:00:00Z",
                "2026-07-15T20:00:00Z",
                "2026-07-15T21:57:00Z",
            ),
            (
                "2026-01-14T12:00:00Z",
                "2026-01-14T20:00:00Z",
                "2026-01-14T22:57:00Z",
            ),
        ] {
            assert_defer(now, &US_ZONES, s, "quiet_hours", first);
            assert!(window_at(utc(last), &US_ZONES, s, &[]).is_open(), "{last}");
            let after = utc(last) + Duration::minutes(1);
            assert!(!window_at(after, &US_ZONES, s, &[]).is_open(), "{after}");
            assert!(!window_at(utc(first) - Duration::seconds(1), &US_ZONES, s, &[]).is_open());
        }
        // Empty zones count as all eight.
        assert_eq!(
            next_allowed(utc("2026-07-15T12:00:00Z"), &[], s, &[], DAYS14),
            Some(utc("2026-07-15T20:00:00Z"))
        );
    }

    #[test]
    fn v10_212_after_hours_defer() {
        // `after_hours = "send"` is the gate's decision; with "defer" the window defers to 12:00Z.
        assert_defer(
            "2026-03-08T02:30:00Z",
            &[New_York],
            state("NY"),
            "quiet_hours",
            "2026-03-08T12:00:00Z",
        );
    }

    // --- §5.6 worked example -----------------------------------------------------------------

    #[test]
    fn worked_example_850() {
        let fl = state("FL");
        let zones = [Chicago, New_York];
        let w = window_at(utc("2026-06-12T12:30:20Z"), &zones, fl, &[]);
        let Window::Closed { reason, windows } = &w else {
            panic!("12:30:20Z is 07:30 CDT: closed");
        };
        assert_eq!(*reason, "quiet_hours");
        let shown: Vec<String> = windows.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "Chicago 2026-06-12 Fri 08:00-20:00 (07:30)",
                "New_York 2026-06-12 Fri 08:00-20:00 (08:30)"
            ]
        );
        assert_eq!(
            next_allowed(utc("2026-06-12T12:30:20Z"), &zones, fl, &[], DAYS14),
            Some(utc("2026-06-12T13:00:00Z"))
        );
        assert_allow("2026-06-12T23:57:00Z", &zones, fl);
        assert_defer(
            "2026-06-12T23:59:00Z",
            &zones,
            fl,
            "quiet_hours",
            "2026-06-13T13:00:00Z",
        );
        // Pensacola, Central only: 00:30Z is 19:30 CDT.
        assert_allow("2026-06-13T00:30:00Z", &[Chicago], fl);
    }

    // --- blackouts (§5.4) --------------------------------------------------------------------

    fn blackout(states: &[&str], from: &str, until: &str) -> Blackout {
        Blackout {
            states: states.iter().map(|s| (*s).to_owned()).collect(),
            from: utc(from),
            until: utc(until),
            reason: "Louisiana state of emergency".to_owned(),
        }
    }

    #[test]
    fn blackout_defers_to_until_then_the_window() {
        let b = [blackout(
            &["LA"],
            "2026-08-29T00:00:00-05:00",
            "2026-09-06T00:00:00-05:00",
        )];
        let now = utc("2026-08-31T15:00:00Z"); // Mon 10:00 CDT
        let w = window_at(now, &[Chicago], state("LA"), &b);
        assert!(matches!(
            w,
            Window::Closed {
                reason: "blackout",
                ..
            }
        ));
        assert_eq!(
            w.windows()[0].to_string(),
            "Chicago 2026-08-31 Mon closed: blackout: Louisiana state of emergency (10:00)"
        );
        // until = Sun 2026-09-06 00:00 CDT; Sunday is closed in LA and Mon 09-07 is Labor Day:
        // Tue 08:00 CDT.
        assert_eq!(
            next_allowed(now, &[Chicago], state("LA"), &b, DAYS14),
            Some(utc("2026-09-08T13:00:00Z"))
        );
        // Other states are not affected; the strictest profile gets every blackout.
        assert!(window_at(now, &[Chicago], state("MS"), &b).is_open());
        let s = data().strictest();
        let t = utc("2026-09-02T21:00:00Z");
        assert!(matches!(
            window_at(t, &US_ZONES, s, &b),
            Window::Closed {
                reason: "blackout",
                ..
            }
        ));
        assert!(window_at(t, &US_ZONES, s, &[]).is_open());
        // A blackout ending inside the window defers exactly to `until`.
        let short = [blackout(
            &["fl"],
            "2026-06-12T10:00:00Z",
            "2026-06-12T15:07:00Z",
        )];
        assert_eq!(
            next_allowed(
                utc("2026-06-12T14:00:00Z"),
                &[Chicago],
                state("FL"),
                &short,
                DAYS14
            ),
            Some(utc("2026-06-12T15:07:00Z"))
        );
        // Half-open: open at `until`, closed at `from`.
        assert!(window_at(utc("2026-06-12T15:07:00Z"), &[Chicago], state("FL"), &short).is_open());
        let late = [blackout(
            &["FL"],
            "2026-06-12T15:07:00Z",
            "2026-06-12T16:00:00Z",
        )];
        assert!(!window_at(utc("2026-06-12T15:07:00Z"), &[Chicago], state("FL"), &late).is_open());
        assert!(window_at(utc("2026-06-12T15:06:59Z"), &[Chicago], state("FL"), &late).is_open());
    }

    #[test]
    fn blackout_longer_than_the_horizon_gives_none() {
        let now = utc("2026-08-31T15:00:00Z");
        let b = [blackout(
            &["MA"],
            "2026-08-30T00:00:00Z",
            "2026-09-15T00:00:00Z",
        )];
        assert_eq!(
            next_allowed(now, &[New_York], state("MA"), &b, DAYS14),
            None
        );
        assert_eq!(
            next_allowed(now, &[New_York], state("MA"), &b, TimeDelta::days(20)),
            Some(utc("2026-09-15T12:00:00Z"))
        );
        // Exactly 14 days out is still within the horizon.
        let edge = [blackout(
            &["MA"],
            "2026-08-30T00:00:00Z",
            "2026-09-14T15:00:00Z",
        )];
        assert_eq!(
            next_allowed(now, &[New_York], state("MA"), &edge, DAYS14),
            Some(utc("2026-09-14T15:00:00Z"))
        );
    }

    // --- DST edges with synthetic windows ----------------------------------------------------

    fn federal_only(start: &str, end: &str) -> Profile {
        let text = FEDERAL
            .replace("\"08:00\"", &format!("\"{start}\""))
            .replace("\"21:00\"", &format!("\"{end}\""));
        load(&text).expect("synthetic").federal().clone()
    }

    #[test]
    fn start_in_a_skipped_hour_maps_to_the_first_valid_instant() {
        let p = federal_only("02:30", "05:00");
        // 2026-03-08: 02:00 EST → 03:00 EDT at 07:00Z.
        assert_eq!(
            next_allowed(utc("2026-03-08T06:00:00Z"), &[New_York], &p, &[], DAYS14),
            Some(utc("2026-03-08T07:00:00Z"))
        );
        assert_eq!(
            gap_end(New_York, ymd(2026, 3, 8).and_time(hm("02:30"))),
            Some(utc("2026-03-08T07:00:00Z"))
        );
        // A window entirely inside the gap has no instant that day.
        let q = federal_only("02:10", "02:50");
        assert_eq!(
            next_allowed(utc("2026-03-08T06:00:00Z"), &[New_York], &q, &[], DAYS14),
            Some(utc("2026-03-09T06:10:00Z"))
        );
    }

    #[test]
    fn start_in_a_repeated_hour_takes_the_earliest_mapping() {
        // 2026-11-01: 01:00–02:00 happens twice (EDT 05:00Z–06:00Z, then EST 06:00Z–07:00Z).
        let p = federal_only("01:30", "04:00");
        assert_eq!(
            next_allowed(utc("2026-11-01T04:00:00Z"), &[New_York], &p, &[], DAYS14),
            Some(utc("2026-11-01T05:30:00Z"))
        );
        // A window inside the repeated hour opens twice: the second opening is found too.
        let q = federal_only("01:30", "01:50");
        assert_eq!(
            next_allowed(utc("2026-11-01T05:50:00Z"), &[New_York], &q, &[], DAYS14),
            Some(utc("2026-11-01T06:30:00Z"))
        );
        // A window the fall-back jumps back into opens at the transition itself.
        let r = federal_only("00:30", "01:40");
        assert!(!window_at(utc("2026-11-01T05:59:00Z"), &[New_York], &r, &[]).is_open());
        assert_eq!(
            next_allowed(utc("2026-11-01T05:45:00Z"), &[New_York], &r, &[], DAYS14),
            Some(utc("2026-11-01T06:00:00Z"))
        );
    }

    #[test]
    fn closed_day_versus_quiet_hours() {
        // Sunday in Rhode Island: closed_day even at 11:00; a weekday at 07:00: quiet_hours.
        let ri = state("RI");
        assert!(matches!(
            window_at(utc("2026-06-14T15:00:00Z"), &[New_York], ri, &[]),
            Window::Closed {
                reason: "closed_day",
                ..
            }
        ));
        assert!(matches!(
            window_at(utc("2026-06-15T11:00:00Z"), &[New_York], ri, &[]),
            Window::Closed {
                reason: "quiet_hours",
                ..
            }
        ));
        // Two zones straddling midnight: Saturday in New York, Friday in Honolulu.
        let w = window_at(utc("2026-06-13T04:30:00Z"), &[New_York, Honolulu], ri, &[]);
        assert!(matches!(
            w,
            Window::Closed {
                reason: "quiet_hours",
                ..
            }
        ));
        assert_eq!(
            w.windows()[1].to_string(),
            "Honolulu 2026-06-12 Fri 09:00-18:00 (18:30)"
        );
    }

    #[test]
    fn horizon_is_clamped() {
        let ny = state("NY");
        let now = utc("2026-03-08T02:30:00Z");
        assert_eq!(
            next_allowed(now, &[New_York], ny, &[], TimeDelta::zero()),
            None
        );
        assert_eq!(
            next_allowed(now, &[New_York], ny, &[], TimeDelta::days(-3)),
            None
        );
        assert_eq!(
            next_allowed(now, &[New_York], ny, &[], TimeDelta::MAX),
            Some(utc("2026-03-08T12:00:00Z"))
        );
    }

    // --- properties --------------------------------------------------------------------------

    const QUARTER: i64 = 15 * 60;

    /// A random federal table: quarter-hour window, Saturday/Sunday rule, holidays, so that
    /// windows also cross DST transitions.
    fn synthetic(start_q: u32, len_q: u32, sat: u8, sun: u8, holidays: u32) -> Profile {
        let q = |n: u32| format!("{:02}:{:02}", n / 4, n % 4 * 15);
        let end_q = (start_q + len_q).min(95);
        let rule = |r: u8, base: &str| match r {
            0 => base.to_owned(),
            1 => "none".to_owned(),
            _ => format!(
                "{}-{}",
                q(start_q.saturating_sub(4)),
                q(end_q.saturating_sub(2).max(start_q.saturating_sub(4) + 1))
            ),
        };
        let ids: Vec<String> = HOLIDAYS
            .iter()
            .enumerate()
            .filter(|(i, _)| holidays & (1 << i) != 0)
            .map(|(_, (id, _))| format!("\"{id}\""))
            .collect();
        let mut text = format!(
            "[federal]\nname = \"F\"\nstart = \"{}\"\nend = \"{}\"\nsunday = \"{}\"\n\
             holidays = [{}]\ncap_24h = \"none\"\nconfidence = \"verified\"\nsource = \"s\"\n",
            q(start_q),
            q(end_q),
            rule(sun, "allowed"),
            ids.join(", ")
        );
        if sat != 0 {
            text.push_str(&format!("saturday = \"{}\"\n", rule(sat, "")));
        }
        load(&text)
            .expect("synthetic profile loads")
            .federal()
            .clone()
    }

    fn real_profiles() -> Vec<&'static Profile> {
        let p = data();
        let mut all = vec![p.federal(), p.strictest()];
        all.extend(
            [
                "AL", "CT", "FL", "KY", "LA", "MA", "MD", "MI", "MN", "MS", "NM", "NV", "OK", "RI",
                "TX", "VA", "WA", "NY",
            ]
            .map(state),
        );
        all
    }

    fn check_first_allowed(
        t: DateTime<Utc>,
        zones: &[Tz],
        p: &Profile,
        blackouts: &[Blackout],
    ) -> Result<(), TestCaseError> {
        let found = next_allowed(t, zones, p, blackouts, DAYS14);
        // Every boundary (window starts, DST transitions, blackouts) is on a quarter hour in
        // these inputs, so a quarter-hour grid sees every allowed interval.
        let grid_start = (t.timestamp() + QUARTER - 1).div_euclid(QUARTER) * QUARTER;
        let stop = found
            .unwrap_or(t + DAYS14 + Duration::seconds(1))
            .timestamp();
        let mut at = grid_start;
        while at < stop {
            let x = DateTime::from_timestamp(at, 0).expect("instant");
            prop_assert!(
                !allowed(x, zones, p, blackouts),
                "{x} is open but next_allowed({t}) = {found:?}"
            );
            at += QUARTER;
        }
        match found {
            Some(found) => {
                prop_assert!(found >= t && found <= t + DAYS14);
                prop_assert!(
                    window_at(found, zones, p, blackouts).is_open(),
                    "{found} not open"
                );
                if found != t {
                    let before = found - Duration::minutes(1);
                    prop_assert!(
                        !window_at(before, zones, p, blackouts).is_open(),
                        "{before} open, T = {found}"
                    );
                    prop_assert!(!window_at(t, zones, p, blackouts).is_open());
                }
            }
            None => prop_assert!(!window_at(t, zones, p, blackouts).is_open()),
        }
        Ok(())
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let lo = utc("2026-01-01T00:00:00Z").timestamp();
        let hi = utc("2029-01-01T00:00:00Z").timestamp();
        (lo..hi).prop_map(|s| DateTime::from_timestamp(s, 0).expect("instant"))
    }

    fn zone_set() -> impl Strategy<Value = Vec<Tz>> {
        (1u16..256).prop_map(|mask| {
            US_ZONES
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, z)| *z)
                .collect()
        })
    }

    /// 0–2 blackouts on quarter hours near `t`, for the profile's state or another one.
    fn blackouts_near(t: DateTime<Utc>, spec: &[(bool, i64, i64)], key: &str) -> Vec<Blackout> {
        let base = t.timestamp().div_euclid(QUARTER) * QUARTER;
        spec.iter()
            .map(|&(ours, start_q, len_q)| Blackout {
                states: vec![if ours {
                    key.to_owned()
                } else {
                    "ZZ".to_owned()
                }],
                from: DateTime::from_timestamp(base + start_q * QUARTER, 0).expect("from"),
                until: DateTime::from_timestamp(base + (start_q + len_q) * QUARTER, 0)
                    .expect("until"),
                reason: "test".to_owned(),
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn next_allowed_is_the_first_open_instant_real_profiles(
            t in instant(),
            zones in zone_set(),
            pick in 0usize..20,
            spec in proptest::collection::vec((any::<bool>(), -200i64..1000, 1i64..500), 0..3),
        ) {
            let all = real_profiles();
            let p = all[pick % all.len()];
            let blackouts = blackouts_near(t, &spec, p.key());
            check_first_allowed(t, &zones, p, &blackouts)?;
        }

        #[test]
        fn next_allowed_is_the_first_open_instant_synthetic_profiles(
            t in instant(),
            zones in zone_set(),
            start_q in 0u32..92,
            len_q in 2u32..60,
            sat in 0u8..3,
            sun in 0u8..3,
            holidays in any::<u32>(),
            spec in proptest::collection::vec((any::<bool>(), -200i64..1000, 1i64..500), 0..3),
        ) {
            let p = synthetic(start_q, len_q, sat, sun, holidays);
            let blackouts = blackouts_near(t, &spec, p.key());
            check_first_allowed(t, &zones, &p, &blackouts)?;
        }

        #[test]
        fn window_at_agrees_with_the_fast_test(t in instant(), zones in zone_set(), pick in 0usize..20) {
            let all = real_profiles();
            let p = all[pick % all.len()];
            prop_assert_eq!(window_at(t, &zones, p, &[]).is_open(), allowed(t, &zones, p, &[]));
        }
    }
}
