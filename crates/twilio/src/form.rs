//! Strict `application/x-www-form-urlencoded` decoding for webhook bodies.
//!
//! The common decoders (`form_urlencoded`, `serde_urlencoded`) are lenient: they pass an
//! invalid escape such as `%ZZ` through literally and replace invalid UTF-8 with U+FFFD. A
//! webhook body that does not decode exactly is not something Twilio sent, and the signature
//! must be computed over exactly the values Twilio signed, so this decoder rejects instead
//! (docs/security.md §1.1 step 4; §3 rows 7 and 8).

use std::fmt;

/// One decoded `name=value` pair, in the order received.
pub type Pair = (String, String);

/// Why a body is not a well-formed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    BadEscape { offset: usize },
    /// The decoded bytes of a name or value are not UTF-8.
    InvalidUtf8 { offset: usize },
    /// An empty segment (`a=1&&b=2`), a pair without `=`, an empty name (`=x`) or a second
    /// `=` in one pair (`a=b=c`): Twilio encodes `=` inside values as `%3D`.
    BadPair { offset: usize },
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::BadEscape { offset } => write!(f, "invalid percent-escape at byte {offset}"),
            FormError::InvalidUtf8 { offset } => {
                write!(
                    f,
                    "invalid UTF-8 after decoding, in the pair at byte {offset}"
                )
            }
            FormError::BadPair { offset } => {
                write!(f, "malformed name=value pair at byte {offset}")
            }
        }
    }
}

impl std::error::Error for FormError {}

/// Decodes a whole body. An empty body is an empty list (no pairs).
pub fn decode(body: &[u8]) -> Result<Vec<Pair>, FormError> {
    let mut pairs = Vec::new();
    if body.is_empty() {
        return Ok(pairs);
    }
    let mut offset = 0;
    for segment in body.split(|b| *b == b'&') {
        let seg_offset = offset;
        offset += segment.len() + 1;
        let mut parts = segment.splitn(3, |b| *b == b'=');
        let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(FormError::BadPair { offset: seg_offset });
        };
        if name.is_empty() {
            return Err(FormError::BadPair { offset: seg_offset });
        }
        let value_offset = seg_offset + name.len() + 1;
        let name = decode_component(name, seg_offset)?;
        let value = decode_component(value, value_offset)?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

fn decode_component(raw: &[u8], offset: usize) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|b| hex_value(*b));
                let lo = raw.get(i + 2).and_then(|b| hex_value(*b));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(FormError::BadEscape { offset: offset + i });
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::InvalidUtf8 { offset })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Encodes pairs the way Twilio does (spaces as `+`, everything but unreserved characters
/// percent-escaped). Used by the fake carrier and the tests to build signed bodies.
pub fn encode(pairs: &[(impl AsRef<str>, impl AsRef<str>)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(k.as_ref(), &mut out);
        out.push('=');
        encode_component(v.as_ref(), &mut out);
    }
    out
}

fn encode_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(body: &str) -> Vec<(String, String)> {
        decode(body.as_bytes()).expect("decodes")
    }

    #[test]
    fn decodes_plus_and_escapes() {
        assert_eq!(
            ok("From=%2B16175550123&Body=Hi+there%21&ToZip="),
            vec![
                ("From".into(), "+16175550123".into()),
                ("Body".into(), "Hi there!".into()),
                ("ToZip".into(), "".into()),
            ]
        );
    }

    #[test]
    fn empty_body_has_no_pairs() {
        assert!(ok("").is_empty());
    }

    #[test]
    fn decodes_multibyte_utf8() {
        assert_eq!(ok("Body=%F0%9F%91%8D"), vec![("Body".into(), "👍".into())]);
    }

    #[test]
    fn rejects_what_security_md_lists() {
        type IsExpected = fn(&FormError) -> bool;
        let table: &[(&str, IsExpected)] = &[
            ("Body=%ZZ", |e| matches!(e, FormError::BadEscape { .. })),
            ("Body=%", |e| matches!(e, FormError::BadEscape { .. })),
            ("Body=%4", |e| matches!(e, FormError::BadEscape { .. })),
            ("Body=%FF%FE", |e| {
                matches!(e, FormError::InvalidUtf8 { .. })
            }),
            ("&&&", |e| matches!(e, FormError::BadPair { .. })),
            ("=", |e| matches!(e, FormError::BadPair { .. })),
            ("a=b=c", |e| matches!(e, FormError::BadPair { .. })),
            ("a", |e| matches!(e, FormError::BadPair { .. })),
            ("a=1&", |e| matches!(e, FormError::BadPair { .. })),
            ("%ZZ=1", |e| matches!(e, FormError::BadEscape { .. })),
        ];
        for (body, expected) in table {
            let err = decode(body.as_bytes()).expect_err(body);
            assert!(expected(&err), "{body}: got {err:?}");
        }
    }

    #[test]
    fn nul_escape_decodes_and_is_left_to_the_field_check() {
        // %00 is a valid escape; the control-character rule is applied after the signature.
        assert_eq!(ok("a=%00"), vec![("a".into(), "\0".into())]);
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(pairs in prop::collection::vec(("[A-Za-z][A-Za-z0-9]{0,8}", "\\PC{0,20}"), 0..6)) {
            let body = encode(&pairs);
            let decoded = decode(body.as_bytes()).expect("own encoding decodes");
            let expected: Vec<(String, String)> = pairs.into_iter().collect();
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&body);
        }
    }
}
