use super::*;

use chrono::TimeZone;
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 12, 14, 5, 0)
        .single()
        .unwrap_or_default()
}

fn good() -> Value {
    json!({
        "phone": "+16175550123",
        "name": "Alex Morgan",
        "source": "Zillow",
        "listing": "123 Main St",
        "message": "Is it still available?\nThanks",
        "number": "+15555550100",
        "consent": {
            "text": "I agree to receive texts from Harbor Realty about my inquiry. Reply STOP to opt out.",
            "url": "https://harbor.example/listings/123-main",
            "at": "2026-06-12T14:02:00Z",
            "ip": "203.0.113.9"
        }
    })
}

fn with(path: &[&str], value: Value) -> Vec<u8> {
    let mut v = good();
    let mut at = &mut v;
    for (i, key) in path.iter().enumerate() {
        let Value::Object(map) = at else {
            panic!("not an object at {key}")
        };
        if i + 1 == path.len() {
            if value == Value::Null {
                map.remove(*key);
            } else {
                map.insert((*key).to_owned(), value.clone());
            }
            break;
        }
        at = map.get_mut(*key).expect("the path exists");
    }
    serde_json::to_vec(&v).expect("json")
}

fn field_of(body: &[u8]) -> String {
    match parse(body, now()) {
        Ok(lead) => panic!("accepted: {lead:?}"),
        Err(e) => e.field,
    }
}

#[test]
fn a_complete_lead_reads_back_as_given_trimmed() {
    let lead = parse(&serde_json::to_vec(&good()).expect("json"), now()).expect("valid");
    assert_eq!(lead.phone.as_e164(), "+16175550123");
    assert_eq!(lead.name.as_deref(), Some("Alex Morgan"));
    assert_eq!(lead.source.as_deref(), Some("Zillow"));
    assert_eq!(lead.listing.as_deref(), Some("123 Main St"));
    assert_eq!(
        lead.message.as_deref(),
        Some("Is it still available?\nThanks")
    );
    assert_eq!(
        lead.number.as_ref().map(PhoneNumber::as_e164),
        Some("+15555550100")
    );
    assert_eq!(lead.consent.url, "https://harbor.example/listings/123-main");
    assert_eq!(
        lead.consent.at,
        Utc.with_ymd_and_hms(2026, 6, 12, 14, 2, 0)
            .single()
            .unwrap_or_default()
    );
    assert_eq!(lead.consent.ip.to_string(), "203.0.113.9");
}

#[test]
fn only_phone_and_consent_are_required() {
    let body = json!({
        "phone": "(617) 555-0123",
        "consent": { "text": "Yes, text me.", "url": "http://x.example", "at": "2026-06-12T10:02:00-04:00", "ip": "2001:db8::1" }
    });
    let lead = parse(&serde_json::to_vec(&body).expect("json"), now()).expect("valid");
    assert_eq!(lead.phone.as_e164(), "+16175550123");
    assert_eq!((lead.name, lead.number), (None, None));
    assert_eq!(
        lead.consent.at,
        Utc.with_ymd_and_hms(2026, 6, 12, 14, 2, 0)
            .single()
            .unwrap_or_default()
    );
}

#[test]
fn phones_as_people_write_them() {
    let table = [
        ("+16175550123", Some("+16175550123")),
        ("617-555-0123", Some("+16175550123")),
        ("(617) 555 0123", Some("+16175550123")),
        ("1 617 555 0123", Some("+16175550123")),
        ("617.555.0123", Some("+16175550123")),
        ("+442071838750", Some("+442071838750")),
        ("555-0123", None),        // local only
        ("+1 911 555 0123", None), // N11 area code
        ("+12115550123", None),
        ("+10175550123", None), // area code starting with 0
        ("6175550123x12", None),
        ("call me", None),
        ("+1617555012", None),       // too short
        ("+4420718387501234", None), // too long
        ("", None),
    ];
    for (raw, want) in table {
        assert_eq!(
            lead_phone(raw).as_ref().map(PhoneNumber::as_e164),
            want,
            "{raw:?}"
        );
    }
}

#[test]
fn every_bad_field_is_named() {
    let long = |n: usize| Value::String("x".repeat(n));
    let table: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "body"),
        (b"".to_vec(), "body"),
        (b"[1, 2]".to_vec(), "body"),
        (b"\"phone\"".to_vec(), "body"),
        (with(&["phone"], Value::Null), "phone"),
        (with(&["phone"], json!("")), "phone"),
        (with(&["phone"], json!(6175550123_i64)), "phone"),
        (with(&["phone"], json!("+19115550123")), "phone"),
        (with(&["name"], json!(["Alex"])), "name"),
        (with(&["name"], long(NAME_MAX + 1)), "name"),
        (with(&["name"], json!("Alex\u{7}")), "name"),
        (with(&["name"], json!("Alex\nMorgan")), "name"),
        (with(&["source"], long(SOURCE_MAX + 1)), "source"),
        (with(&["listing"], long(LISTING_MAX + 1)), "listing"),
        (with(&["message"], long(MESSAGE_MAX + 1)), "message"),
        (with(&["message"], json!("hi\u{0}")), "message"),
        (with(&["number"], json!("main line")), "number"),
        (with(&["number"], json!(1)), "number"),
        (with(&["consent"], Value::Null), "consent"),
        (with(&["consent"], json!("yes")), "consent"),
        (with(&["consent"], json!(true)), "consent"),
        (with(&["consent", "text"], Value::Null), "consent.text"),
        (with(&["consent", "text"], json!("   ")), "consent.text"),
        (
            with(&["consent", "text"], long(CONSENT_TEXT_MAX + 1)),
            "consent.text",
        ),
        (with(&["consent", "url"], Value::Null), "consent.url"),
        (
            with(&["consent", "url"], json!("harbor.example/form")),
            "consent.url",
        ),
        (
            with(&["consent", "url"], json!("javascript:alert(1)")),
            "consent.url",
        ),
        (with(&["consent", "url"], json!("https://")), "consent.url"),
        (
            with(&["consent", "url"], json!("https://a.example/ b")),
            "consent.url",
        ),
        (
            with(
                &["consent", "url"],
                Value::String(format!("https://a.example/{}", "p".repeat(URL_MAX))),
            ),
            "consent.url",
        ),
        (with(&["consent", "at"], Value::Null), "consent.at"),
        (with(&["consent", "at"], json!("yesterday")), "consent.at"),
        (
            with(&["consent", "at"], json!("2026-06-12 14:02:00")),
            "consent.at",
        ),
        (
            with(&["consent", "at"], json!("2026-06-12T15:00:00Z")),
            "consent.at",
        ),
        (with(&["consent", "ip"], Value::Null), "consent.ip"),
        (with(&["consent", "ip"], json!("203.0.113")), "consent.ip"),
        (with(&["consent", "ip"], json!("localhost")), "consent.ip"),
        (with(&["consent", "ip"], json!(203)), "consent.ip"),
        (
            with(&["phone_number"], json!("+16175550123")),
            "phone_number",
        ),
        (with(&["consent", "when"], json!("now")), "consent.when"),
        (with(&["x".repeat(80).as_str()], json!(1)), "(a field)"),
    ];
    for (body, field) in table {
        assert_eq!(field_of(&body), field, "{}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn a_consent_a_few_minutes_ahead_is_a_clock_drift_not_an_error() {
    let at = (now() + Duration::seconds(CONSENT_FUTURE_SLACK_SECS)).to_rfc3339();
    assert!(parse(&with(&["consent", "at"], json!(at)), now()).is_ok());
    let at = (now() + Duration::seconds(CONSENT_FUTURE_SLACK_SECS + 1)).to_rfc3339();
    assert!(parse(&with(&["consent", "at"], json!(at)), now()).is_err());
}

#[test]
fn blanks_are_absent_and_an_error_never_repeats_the_value() {
    let lead = parse(&with(&["name"], json!("   ")), now()).expect("valid");
    assert_eq!(lead.name, None);
    let secret = "+19115550199";
    let e = parse(&with(&["phone"], json!(secret)), now()).expect_err("refused");
    assert!(!e.message.contains(secret), "{}", e.message);
    let e = parse(b"{\"phone\": \"+1617", now()).expect_err("refused");
    assert!(!e.message.contains("+1617"), "{}", e.message);
}

#[test]
fn idempotency_keys() {
    assert_eq!(idempotency_key(b"order-123_abc"), Ok("order-123_abc"));
    assert_eq!(
        idempotency_key(&[b'k'; IDEMPOTENCY_KEY_MAX]).map(str::len),
        Ok(IDEMPOTENCY_KEY_MAX)
    );
    for bad in [
        &b""[..],
        b"has space",
        b"tab\there",
        &[b'k'; IDEMPOTENCY_KEY_MAX + 1],
        "é".as_bytes(),
        &[0xff, 0xfe],
    ] {
        assert_eq!(
            idempotency_key(bad).map_err(|e| e.field),
            Err("Idempotency-Key".to_owned()),
            "{bad:?}"
        );
    }
}

proptest::proptest! {
    /// Whatever the body, the parser answers (never panics), and a refusal names a field.
    #[test]
    fn any_body_gets_an_answer(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        if let Err(e) = parse(&body, now()) {
            proptest::prop_assert!(!e.field.is_empty());
        }
    }

    /// Any JSON object of strings gets an answer too, and an accepted one has a usable phone.
    #[test]
    fn any_object_gets_an_answer(
        keys in proptest::collection::vec("[a-z_.]{1,12}", 0..6),
        values in proptest::collection::vec(".{0,30}", 0..6),
    ) {
        let map: Map<String, Value> = keys.into_iter().zip(values).map(|(k, v)| (k, Value::String(v))).collect();
        let body = serde_json::to_vec(&Value::Object(map)).unwrap_or_default();
        if let Ok(lead) = parse(&body, now()) {
            proptest::prop_assert!(lead_phone(lead.phone.as_e164()).is_some());
        }
    }
}

#[test]
fn lengths_count_as_sent_spaces_included() {
    let padded = format!("  {}  ", "x".repeat(NAME_MAX - 2));
    assert_eq!(field_of(&with(&["name"], json!(padded))), "name");
    let spaced = format!("+1 617 555 0123{}", " ".repeat(PHONE_MAX));
    assert_eq!(field_of(&with(&["phone"], json!(spaced))), "phone");
    assert_eq!(field_of(&with(&["number"], json!(spaced))), "number");
}

/// Issue 19's review: what a lead sends goes into a text from the brokerage's number only when
/// it holds nothing R11 refuses; otherwise the number's listing and the "there" fallback do.
#[test]
fn only_plain_listings_and_names_go_into_a_text() {
    for ok in [
        "123 Main St",
        "9 Ocean Ave, Unit 4B",
        "The blue house on Elm St.",
        "Lot 12",
    ] {
        assert!(insertable_listing(ok), "{ok}");
    }
    for bad in [
        "bit.ly/x",
        "see harbor-deals.com",
        "https://x.example",
        "www.example.org",
        "123 Main St for $499,000",
        "write to a@b.co",
        "a/b",
        "",
        &"x".repeat(81),
    ] {
        assert!(!insertable_listing(bad), "{bad}");
    }
    for ok in ["Alex", "Jean-Luc", "O'Brien", "José", "Zoë", "李", "St."] {
        assert!(insertable_first_name(ok), "{ok}");
    }
    for bad in ["bit.ly/x", "$5", "x@y", "", "A1", &"a".repeat(31), "..."] {
        assert!(!insertable_first_name(bad), "{bad}");
    }
}
