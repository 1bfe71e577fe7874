//! The JSON bodies the fake answers with, field for field as in `fixtures/twilio/*.json`
//! (docs/twilio.md §3.2, §4, §5, §8), and the small formatting rules they need (RFC 2822 dates,
//! NANP national format, SMS segment counting).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{FakeCall, FakeMessage};
use textback_core::domain::phone::{PhoneError, PhoneNumber};

pub(crate) const API_VERSION: &str = "2010-04-01";

/// Twilio's date format in REST bodies and webhooks: `Sun, 22 Nov 2026 18:04:05 +0000`.
pub(crate) fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// Twilio's error body (docs/twilio.md §8): `{code, message, more_info, status}`.
pub(crate) fn error_body(http: u16, code: u32, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": http,
    })
}

/// The message text Twilio uses for the codes the fake produces (texts of the fixtures where
/// there is one; docs/twilio.md §3.6 otherwise). `to` fills the codes whose text names the number.
pub(crate) fn error_message(code: u32, to: &str) -> String {
    match code {
        20003 => "Authenticate".to_owned(),
        20429 => "Too Many Requests".to_owned(),
        20500 => "Internal Server Error".to_owned(),
        20503 => "Service Unavailable".to_owned(),
        21211 => format!("The 'To' number {to} is not a valid phone number."),
        21408 => format!(
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
        ),
        21602 => "Message body is required.".to_owned(),
        21603 => "A 'From' phone number is required.".to_owned(),
        21604 => "A 'To' phone number is required.".to_owned(),
        21610 => "Attempt to send to unsubscribed recipient".to_owned(),
        21614 => format!("'To' number {to} is not a valid mobile number"),
        21617 => "The concatenated message body exceeds the 1600 character limit.".to_owned(),
        21635 => format!("'To' number {to} cannot be a landline"),
        _ => format!("Error {code}"),
    }
}

/// `/2010-04-01/Accounts/{account}/Messages/{sid}.json`.
pub(crate) fn message_uri(account_sid: &str, sid: &str) -> String {
    format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json")
}

/// The Message resource, with exactly the keys of `message-create-201.json`.
pub(crate) fn message_json(m: &FakeMessage) -> Value {
    let media = format!(
        "/{API_VERSION}/Accounts/{}/Messages/{}/Media.json",
        m.account_sid, m.sid
    );
    json!({
        "account_sid": m.account_sid,
        "api_version": API_VERSION,
        "body": m.body,
        "date_created": rfc2822(m.date_created),
        "date_sent": m.date_sent.map(rfc2822),
        "date_updated": rfc2822(m.date_updated),
        "direction": "outbound-api",
        "error_code": m.error_code,
        // Real resources mostly carry null here even with an error code; nothing reads it.
        "error_message": Value::Null,
        "from": m.from,
        "messaging_service_sid": m.messaging_service_sid,
        "num_media": m.num_media.to_string(),
        "num_segments": m.num_segments.to_string(),
        // Filled in later by the real carrier; the fixtures show the values at creation.
        "price": Value::Null,
        "price_unit": Value::Null,
        "sid": m.sid,
        "status": m.status,
        "subresource_uris": { "media": media },
        "to": m.to,
        "uri": message_uri(&m.account_sid, &m.sid),
    })
}

/// The Call resource, with exactly the keys of `call-create-201.json`.
pub(crate) fn call_json(c: &FakeCall, account_sid: &str) -> Value {
    let base = format!("/{API_VERSION}/Accounts/{account_sid}/Calls/{}", c.sid);
    let sub = |name: &str| format!("{base}/{name}.json");
    json!({
        "account_sid": account_sid,
        "answered_by": Value::Null,
        "api_version": API_VERSION,
        "caller_name": Value::Null,
        "date_created": rfc2822(c.date_created),
        "date_updated": rfc2822(c.date_created),
        "direction": "outbound-api",
        "duration": Value::Null,
        "end_time": Value::Null,
        "forwarded_from": Value::Null,
        "from": c.from,
        "from_formatted": formatted(&c.from),
        "group_sid": Value::Null,
        "parent_call_sid": Value::Null,
        "phone_number_sid": c.phone_number_sid,
        "price": Value::Null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": c.sid,
        "start_time": Value::Null,
        "status": c.status,
        "subresource_uris": {
            "notifications": sub("Notifications"),
            "recordings": sub("Recordings"),
            "payments": sub("Payments"),
            "events": sub("Events"),
            "siprec": sub("Siprec"),
            "streams": sub("Streams"),
            "transcriptions": sub("Transcriptions"),
            "user_defined_message_subscriptions": sub("UserDefinedMessageSubscriptions"),
            "user_defined_messages": sub("UserDefinedMessages"),
        },
        "to": c.to,
        "to_formatted": formatted(&c.to),
        "trunk_sid": Value::Null,
        "uri": format!("{base}.json"),
    })
}

/// `(617) 555-0123` for a +1 number with 10 digits, the input unchanged otherwise.
fn formatted(number: &str) -> String {
    nanp_national(number).unwrap_or_else(|| number.to_owned())
}

fn nanp_national(number: &str) -> Option<String> {
    let d = number.strip_prefix("+1")?;
    if d.len() != 10 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..]))
}

/// What Lookup knows about one number, as the fake was told.
pub(crate) struct LookupFacts<'a> {
    /// The number as it arrived in the path (percent-decoded).
    pub number: &'a str,
    /// Comma-separated `Fields` query value.
    pub fields: &'a str,
    pub marked_invalid: bool,
    pub line_type: &'a str,
    /// (`caller_name`, `caller_type`).
    pub caller_name: Option<(&'a str, &'a str)>,
    /// Where the `url` field points: the fake's own base URL.
    pub base_url: &'a str,
}

struct Valid {
    calling_code: String,
    country: Option<String>,
    national: String,
}

/// Validity as Lookup v2 reports it. +1 numbers must have exactly 10 digits after the 1 (so
/// `lookup-v2-invalid.json`'s `+161755501234` is `TOO_LONG`); other countries need a
/// *possible* number (libphonenumber lengths). `set_lookup_invalid` numbers are
/// `INVALID_BUT_POSSIBLE`.
fn validity(number: &str, marked_invalid: bool) -> Result<Valid, &'static str> {
    let parsed = PhoneNumber::parse(number).map_err(|e| match e {
        PhoneError::TooLong => "TOO_LONG",
        PhoneError::TooShort => "TOO_SHORT",
        PhoneError::LeadingZero => "INVALID_COUNTRY_CODE",
        _ => "NOT_A_NUMBER",
    })?;
    if let Some(rest) = number.strip_prefix("+1") {
        if rest.len() > 10 {
            return Err("TOO_LONG");
        }
        if rest.len() < 10 {
            return Err("TOO_SHORT");
        }
        if marked_invalid {
            return Err("INVALID_BUT_POSSIBLE");
        }
        return Ok(Valid {
            calling_code: "1".to_owned(),
            country: Some("US".to_owned()),
            national: nanp_national(number).unwrap_or_else(|| number.to_owned()),
        });
    }
    if PhoneNumber::parse_possible(parsed.as_e164()).is_err() {
        return Err("INVALID_LENGTH");
    }
    if marked_invalid {
        return Err("INVALID_BUT_POSSIBLE");
    }
    let pn = phonenumber::parse(None, number).map_err(|_| "NOT_A_NUMBER")?;
    Ok(Valid {
        calling_code: pn.code().value().to_string(),
        country: pn.country().id().map(|id| id.as_ref().to_owned()),
        national: pn.format().mode(phonenumber::Mode::National).to_string(),
    })
}

/// The Lookup v2 body, with exactly the keys of `lookup-v2-*.json`. Packages that were not
/// requested are null; an invalid number gets null country/format fields and no packages.
pub(crate) fn lookup_json(f: &LookupFacts<'_>) -> Value {
    let url = format!("{}/v2/PhoneNumbers/{}", f.base_url, f.number);
    let requested: Vec<&str> = f.fields.split(',').map(str::trim).collect();
    let wants = |name: &str| requested.contains(&name);
    let valid = match validity(f.number, f.marked_invalid) {
        Ok(v) => v,
        Err(reason) => {
            return json!({
                "calling_country_code": Value::Null,
                "country_code": Value::Null,
                "phone_number": f.number,
                "national_format": Value::Null,
                "valid": false,
                "validation_errors": [reason],
                "caller_name": Value::Null,
                "sim_swap": Value::Null,
                "call_forwarding": Value::Null,
                "line_status": Value::Null,
                "line_type_intelligence": Value::Null,
                "identity_match": Value::Null,
                "reassigned_number": Value::Null,
                "sms_pumping_risk": Value::Null,
                "phone_number_quality_score": Value::Null,
                "pre_fill": Value::Null,
                "url": url,
            });
        }
    };
    let us = valid.country.as_deref() == Some("US");
    let line_type = wants("line_type_intelligence").then(|| line_type_json(f.line_type));
    let caller_name = wants("caller_name").then(|| match (us, f.caller_name) {
        (true, Some((name, caller_type))) => {
            json!({ "caller_name": name, "caller_type": caller_type, "error_code": Value::Null })
        }
        (true, None) => {
            json!({ "caller_name": Value::Null, "caller_type": Value::Null, "error_code": Value::Null })
        }
        // CNAM is US-only; elsewhere the package reports 60600 (docs/twilio.md §4).
        (false, _) => {
            json!({ "caller_name": Value::Null, "caller_type": Value::Null, "error_code": 60600 })
        }
    });
    json!({
        "calling_country_code": valid.calling_code,
        "country_code": valid.country,
        "phone_number": f.number,
        "national_format": valid.national,
        "valid": true,
        "validation_errors": Value::Null,
        "caller_name": caller_name,
        "sim_swap": Value::Null,
        "call_forwarding": Value::Null,
        "line_status": Value::Null,
        "line_type_intelligence": line_type,
        "identity_match": Value::Null,
        "reassigned_number": Value::Null,
        "sms_pumping_risk": Value::Null,
        "phone_number_quality_score": Value::Null,
        "pre_fill": Value::Null,
        "url": url,
    })
}

/// `line_type_intelligence` for a type. Mobile gets the mobile fixture's MCC/MNC/carrier,
/// `nonFixedVoip` the docs example's; landline and `fixedVoip` a carrier name but null MCC/MNC
/// (MNC is "only returned for mobile numbers"); the types docs/twilio.md §4 lists with null carrier
/// fields (and any type the fake does not know) get nulls.
fn line_type_json(line_type: &str) -> Value {
    let (mcc, mnc, carrier): (Option<&str>, Option<&str>, Option<&str>) = match line_type {
        "mobile" => (Some("310"), Some("260"), Some("T-Mobile USA, Inc.")),
        "nonFixedVoip" => (Some("240"), Some("38"), Some("Twilio - SMS/MMS-SVR")),
        "landline" => (None, None, Some("Verizon New England, Inc.")),
        "fixedVoip" => (None, None, Some("Comcast Phone of Massachusetts, LLC")),
        _ => (None, None, None),
    };
    json!({
        "error_code": Value::Null,
        "mobile_country_code": mcc,
        "mobile_network_code": mnc,
        "carrier_name": carrier,
        "type": line_type,
    })
}

/// GSM-7 basic character set (one septet each), docs/twilio.md §7.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM-7 extension table (escape + char: two septets each).
const GSM7_EXTENDED: &str = "\x0c^{}\\[~]|€";

/// Segments of an SMS body as Twilio counts them (docs/twilio.md §7): GSM-7 when every character
/// is in the basic or extension table (160 septets in one segment, 153 per segment when
/// concatenated), UCS-2 otherwise (70 UTF-16 units, 67 when concatenated). An empty body is
/// one segment. (Twilio's calculator also avoids splitting an escape pair across segments;
/// the fake does not, which can undercount by one in rare edge cases.)
pub(crate) fn num_segments(body: &str) -> u32 {
    let septets: Option<usize> = body.chars().try_fold(0usize, |n, c| {
        if GSM7_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM7_EXTENDED.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    });
    let (units, single, multi) = match septets {
        Some(n) => (n, 160, 153),
        None => (body.encode_utf16().count(), 70, 67),
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    u32::try_from(segments).unwrap_or(u32::MAX)
}

/// An `IncomingPhoneNumber` resource, with the fields Twilio's JSON has for the settings.
pub(crate) fn number_json(n: &super::FakeNumber) -> Value {
    json!({
        "account_sid": n.account_sid,
        "sid": n.sid,
        "phone_number": n.phone_number,
        "friendly_name": n.phone_number,
        "voice_url": n.voice_url,
        "voice_method": n.voice_method,
        "sms_url": n.sms_url.clone().unwrap_or_default(),
        "sms_method": n.sms_method,
        "status_callback": n.status_callback.clone().unwrap_or_default(),
        "status_callback_method": n.status_callback_method,
        "voice_application_sid": n.voice_application_sid.clone().unwrap_or_default(),
        "sms_application_sid": n.sms_application_sid.clone().unwrap_or_default(),
        "trunk_sid": null,
        "status": "in-use",
        "uri": format!("/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{}.json", n.account_sid, n.sid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_twilios_calculator_vectors() {
        let digits = |n: usize| "1".repeat(n);
        assert_eq!(num_segments(&format!("{{{}", digits(158))), 1);
        assert_eq!(num_segments(&format!("{{{}", digits(159))), 2);
        assert_eq!(num_segments(&format!("😜{}", digits(68))), 1);
        assert_eq!(num_segments(&format!("😜{}", digits(69))), 2);
        assert_eq!(num_segments(""), 1);
        assert_eq!(num_segments(&"a".repeat(160)), 1);
        assert_eq!(num_segments(&"a".repeat(161)), 2);
        assert_eq!(num_segments(&"a".repeat(306)), 2);
        assert_eq!(num_segments(&"a".repeat(307)), 3);
        // One curly quote switches the whole message to UCS-2.
        assert_eq!(num_segments(&format!("’{}", "a".repeat(70))), 2);
    }

    #[test]
    fn the_fixture_text_back_is_one_segment() {
        let body = "Hi Jordan, this is Sam at Harbor Realty. Sorry we missed your call about 123 Main St. How can we help? Reply STOP to opt out.";
        assert_eq!(num_segments(body), 1);
    }

    #[test]
    fn dates_are_rfc_2822_gmt() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T18:04:05Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(rfc2822(t), "Sun, 22 Nov 2026 18:04:05 +0000");
    }

    proptest::proptest! {
        /// Whatever arrives in a Lookup path or a `Body`, the fake answers instead of panicking.
        #[test]
        fn lookup_and_segments_never_panic(number in "\\PC{0,24}", digits in "\\+[0-9]{0,20}") {
            for n in [number.as_str(), digits.as_str()] {
                for marked_invalid in [false, true] {
                    let v = lookup_json(&LookupFacts {
                        number: n,
                        fields: "line_type_intelligence,caller_name",
                        marked_invalid,
                        line_type: "mobile",
                        caller_name: Some(("X", "CONSUMER")),
                        base_url: "http://127.0.0.1:1",
                    });
                    proptest::prop_assert!(v.get("valid").is_some_and(Value::is_boolean));
                }
            }
            proptest::prop_assert!(num_segments(&number) >= 1);
        }
    }

    #[test]
    fn lookup_validity() {
        assert!(validity("+16175550123", false).is_ok());
        assert_eq!(validity("+161755501234", false).err(), Some("TOO_LONG"));
        assert_eq!(validity("+1617555012", false).err(), Some("TOO_SHORT"));
        assert_eq!(validity("6175550123", false).err(), Some("NOT_A_NUMBER"));
        assert_eq!(
            validity("+16175550123", true).err(),
            Some("INVALID_BUT_POSSIBLE")
        );
        let uk = validity("+442071838750", false).expect("a London number is valid");
        assert_eq!(uk.calling_code, "44");
        assert_eq!(uk.country.as_deref(), Some("GB"));
    }
}
