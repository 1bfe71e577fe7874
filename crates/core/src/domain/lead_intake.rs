//! A lead sent to `POST /api/v1/leads` (docs/leads.md): the body read field by field, so
//! that whatever is wrong is named by its field (`consent.url`, `phone`), never echoed back.
//! Pure: the body's bytes and `now` in, a lead or the first problem out.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::domain::gate::{Usability, usability};
use crate::domain::phone::{PhoneNumber, parse_typed};

/// The fields of a lead, in the order docs/leads.md lists them.
pub const FIELDS: &[&str] = &[
    "phone", "name", "source", "listing", "message", "number", "consent",
];
pub const CONSENT_FIELDS: &[&str] = &["text", "url", "at", "ip"];

/// Longest accepted values, in characters.
pub const PHONE_MAX: usize = 40;
pub const NAME_MAX: usize = 100;
pub const SOURCE_MAX: usize = 60;
pub const LISTING_MAX: usize = 200;
pub const MESSAGE_MAX: usize = 2000;
pub const CONSENT_TEXT_MAX: usize = 2000;
pub const URL_MAX: usize = 2000;
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// A consent given in the future by more than this is refused (clocks drift a little).
pub const CONSENT_FUTURE_SLACK_SECS: i64 = 300;

/// The consent the lead gave, exactly as they saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub text: String,
    pub url: String,
    pub at: DateTime<Utc>,
    pub ip: IpAddr,
}

/// A lead whose every field is valid. `number` is still to be found among the brokerage's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub phone: PhoneNumber,
    pub name: Option<String>,
    pub source: Option<String>,
    pub listing: Option<String>,
    pub message: Option<String>,
    pub number: Option<PhoneNumber>,
    pub consent: Consent,
}

/// What is wrong, and with which field (`body` for the whole of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Reads the body of a lead.
pub fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Lead, FieldError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad(
            "body",
            format!("is not JSON (line {}, column {})", e.line(), e.column()),
        )
    })?;
    let Value::Object(map) = value else {
        return Err(bad("body", "must be a JSON object"));
    };
    only(&map, FIELDS, "")?;
    let phone = lead_phone(short(required_str(&map, "phone", "")?, "phone")?).ok_or_else(|| {
        bad(
            "phone",
            "is not a phone number textback can text: give E.164 (+16175550123) or a US number ((617) 555-0123)",
        )
    })?;
    let name = text(&map, "name", "", NAME_MAX, false)?;
    let source = text(&map, "source", "", SOURCE_MAX, false)?;
    let listing = text(&map, "listing", "", LISTING_MAX, false)?;
    let message = text(&map, "message", "", MESSAGE_MAX, true)?;
    let number = match optional_str(&map, "number", "")? {
        None => None,
        Some(raw) => Some(parse_typed(short(raw, "number")?).ok_or_else(|| {
            bad(
                "number",
                "is not a phone number: give one of the brokerage's numbers in E.164 (+15555550100)",
            )
        })?),
    };
    let consent = match map.get("consent") {
        None | Some(Value::Null) => {
            return Err(bad(
                "consent",
                "is required: the consent the lead gave to be texted (text, url, at, ip)",
            ));
        }
        Some(Value::Object(c)) => consent(c, now)?,
        Some(_) => return Err(bad("consent", "must be an object (text, url, at, ip)")),
    };
    Ok(Lead {
        phone,
        name,
        source,
        listing,
        message,
        number,
        consent,
    })
}

fn consent(c: &Map<String, Value>, now: DateTime<Utc>) -> Result<Consent, FieldError> {
    only(c, CONSENT_FIELDS, "consent.")?;
    let text = text(c, "text", "consent.", CONSENT_TEXT_MAX, true)?.ok_or_else(|| {
        bad(
            "consent.text",
            "is required: the consent wording exactly as the lead saw it",
        )
    })?;
    let url_raw = required_str(c, "url", "consent.")?;
    if url_raw.chars().count() > URL_MAX {
        return Err(bad(
            "consent.url",
            format!("is longer than {URL_MAX} characters"),
        ));
    }
    let url = url_raw.trim();
    if !web_url(url) {
        return Err(bad(
            "consent.url",
            "must be the http(s) address of the page where the lead gave consent",
        ));
    }
    let at_raw = required_str(c, "at", "consent.")?;
    let at = DateTime::parse_from_rfc3339(at_raw.trim())
        .map_err(|_| {
            bad(
                "consent.at",
                "must be a time in RFC 3339 with its offset (2026-06-12T14:02:00Z)",
            )
        })?
        .with_timezone(&Utc);
    if at > now + Duration::seconds(CONSENT_FUTURE_SLACK_SECS) {
        return Err(bad("consent.at", "is in the future"));
    }
    let ip_raw = required_str(c, "ip", "consent.")?;
    let ip: IpAddr = ip_raw.trim().parse().map_err(|_| {
        bad(
            "consent.ip",
            "must be the IPv4 or IPv6 address the consent came from",
        )
    })?;
    Ok(Consent {
        text,
        url: url.to_owned(),
        at,
        ip,
    })
}

/// A number the API accepts for a lead: E.164 or a US number as people write it, possible
/// for its country, and not a number no one can have (N11, a 0 or 1 area code).
pub fn lead_phone(raw: &str) -> Option<PhoneNumber> {
    let typed = parse_typed(raw)?;
    let possible = PhoneNumber::parse_possible(typed.as_e164()).ok()?;
    (usability(&possible) != Usability::Invalid).then_some(possible)
}

/// Whether a lead's own `listing` may go into an automated text as `{listing}` (docs/leads.md):
/// whoever sends a lead chooses it, so it must hold nothing R11 refuses in a template (a link,
/// a bare domain such as `bit.ly/x`, a price, an address to write to). Otherwise the text says
/// the number's listing instead.
pub fn insertable_listing(listing: &str) -> bool {
    let domain_like = listing.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        match w.rsplit_once('.') {
            Some((head, tld)) => {
                !head.is_empty()
                    && tld.len() >= 2
                    && tld.chars().all(|c| c.is_ascii_alphabetic())
                    && !head.chars().all(|c| c.is_ascii_digit())
            }
            None => false,
        }
    }) || listing.contains('/');
    !listing.trim().is_empty()
        && listing.chars().count() <= 80
        && !crate::domain::links::has_link(listing)
        && !domain_like
        && crate::domain::content::prices(listing).is_empty()
        && !listing.contains('@')
}

/// Whether the first word of a lead's `name` may greet them as `{first_name}`: letters (any
/// script), with hyphens, apostrophes and dots, at most 30 characters. Else the template's
/// fallback ("there") greets them.
pub fn insertable_first_name(first: &str) -> bool {
    let n = first.chars().count();
    (1..=30).contains(&n)
        && first.chars().any(char::is_alphabetic)
        && first
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '.' | '’'))
}

/// An `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub fn idempotency_key(raw: &[u8]) -> Result<&str, FieldError> {
    let key = std::str::from_utf8(raw)
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_MAX)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()));
    key.ok_or_else(|| {
        bad(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"),
        )
    })
}

/// The longest phone number as written (`PHONE_MAX`), spaces and all.
fn short<'a>(raw: &'a str, field: &str) -> Result<&'a str, FieldError> {
    if raw.chars().count() > PHONE_MAX {
        return Err(bad(field, format!("is longer than {PHONE_MAX} characters")));
    }
    Ok(raw)
}

fn web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

fn only(map: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), FieldError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => {
            // The name is the client's: shown only when it is short and printable.
            let shown = if unknown.chars().count() <= 40 && !unknown.chars().any(char::is_control) {
                format!("{prefix}{unknown}")
            } else {
                format!("{prefix}(a field)")
            };
            Err(bad(
                &shown,
                format!("is not a field here; the fields are {}", known.join(", ")),
            ))
        }
        None => Ok(()),
    }
}

fn required_str<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<&'a str, FieldError> {
    optional_str(map, key, prefix)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| bad(&format!("{prefix}{key}"), "is required"))
}

fn optional_str<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<Option<&'a str>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(&format!("{prefix}{key}"), "must be a string")),
    }
}

/// An optional text: trimmed, empty as absent, at most `max` characters, no control
/// characters (but line breaks and tabs where `lines`).
fn text(
    map: &Map<String, Value>,
    key: &str,
    prefix: &str,
    max: usize,
    lines: bool,
) -> Result<Option<String>, FieldError> {
    let field = format!("{prefix}{key}");
    let Some(raw) = optional_str(map, key, prefix)? else {
        return Ok(None);
    };
    // The length as sent, spaces included: what the API description promises.
    if raw.chars().count() > max {
        return Err(bad(&field, format!("is longer than {max} characters")));
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let allowed = |c: char| !c.is_control() || (lines && matches!(c, '\n' | '\r' | '\t'));
    if !trimmed.chars().all(allowed) {
        return Err(bad(&field, "must not contain control characters"));
    }
    Ok(Some(trimmed.to_owned()))
}

#[cfg(test)]
mod tests;
