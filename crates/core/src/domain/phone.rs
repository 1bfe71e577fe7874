//! Phone numbers: the E.164 newtype, masking for logs, and the "possible number" check that
//! configured numbers must pass (README.md "The setup file").

use std::fmt;

/// A number in E.164 form (`+15555550101`). Built only by [`PhoneNumber::parse`].
///
/// Deliberately no `Display`: a caller has to choose [`PhoneNumber::as_e164`] (for Twilio and
/// SQL) or [`PhoneNumber::masked`] (for logs). `Debug` masks too, so `?number` in a log line
/// cannot leak a number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

/// Why a string is not an E.164 number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("must start with + and the country code (E.164, e.g. +15555550100)")]
    NoPlus,
    #[error("must contain only digits after the +")]
    NotDigits,
    #[error("the country code cannot start with 0")]
    LeadingZero,
    #[error("too short for an E.164 number")]
    TooShort,
    #[error("too long for an E.164 number (at most 15 digits)")]
    TooLong,
    #[error("not a possible number for its country (wrong length or unknown country code)")]
    NotPossible,
}

/// Fewest digits of any E.164 number in service (e.g. +290 and a 4-digit subscriber number).
const MIN_DIGITS: usize = 7;
const MAX_DIGITS: usize = 15;

impl PhoneNumber {
    /// Checks the E.164 form only: `+`, a non-zero first digit, 7 to 15 digits in all. Callers'
    /// `From` values go through this; anything else stays a raw string (docs/architecture.md step 1).
    pub fn parse(s: &str) -> Result<Self, PhoneError> {
        let digits = s.strip_prefix('+').ok_or(PhoneError::NoPlus)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::NotDigits);
        }
        if digits.starts_with('0') {
            return Err(PhoneError::LeadingZero);
        }
        if digits.len() < MIN_DIGITS {
            return Err(PhoneError::TooShort);
        }
        if digits.len() > MAX_DIGITS {
            return Err(PhoneError::TooLong);
        }
        Ok(PhoneNumber(s.to_owned()))
    }

    /// E.164 form and a *possible* number (libphonenumber `isPossibleNumber`: the national
    /// number's length is one of the lengths its country allows), not necessarily a valid
    /// one, so the fictional 555 numbers of examples and the demo pass. For configured
    /// numbers: brokerage numbers, agent phones, `office_phone`.
    pub fn parse_possible(s: &str) -> Result<Self, PhoneError> {
        let number = Self::parse(s)?;
        if is_possible(&number) {
            Ok(number)
        } else {
            Err(PhoneError::NotPossible)
        }
    }

    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// `+1555***0101`: the first 5 characters, `***`, the last 4 (docs/security.md, logging).
    pub fn masked(&self) -> MaskedPhone<'_> {
        MaskedPhone(&self.0)
    }

    /// True for +1 numbers (the North American Numbering Plan).
    pub fn is_nanp(&self) -> bool {
        self.0.starts_with("+1")
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.masked())
    }
}

/// A number shown in logs: `+1617***0123`.
pub struct MaskedPhone<'a>(&'a str);

impl fmt::Display for MaskedPhone<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(self.0))
    }
}

/// Masks any string that may hold a phone number or a caller id (`anonymous`, `client:alice`,
/// a forged `To`): 12 characters or more keep the first 5 and last 4 (an E.164 NANP number
/// shows its country and area code and its last 4 digits), 8 to 11 keep 3 and 2, shorter ones
/// show nothing.
pub fn mask(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let (head, tail) = match chars.len() {
        n if n >= 12 => (5, 4),
        8..=11 => (3, 2),
        _ => return "***".to_owned(),
    };
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[chars.len() - tail..].iter().collect();
    format!("{head}***{tail}")
}

/// A number as people read it: `(617) 555-0123` for a NANP number, else as given.
pub fn display(e164: &str) -> String {
    match e164.strip_prefix("+1") {
        Some(n) if n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()) => {
            format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..])
        }
        _ => e164.to_owned(),
    }
}

/// A number as a person typed it into a search box: E.164, or a US number with any spaces,
/// dashes, dots or parentheses (`617-555-0123`, `(617) 555 0123`, `1 617 555 0123`).
pub fn parse_typed(typed: &str) -> Option<PhoneNumber> {
    let t = typed.trim();
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if t.chars()
        .any(|c| !(c.is_ascii_digit() || " -.()+".contains(c)))
    {
        return None;
    }
    let e164 = if t.starts_with('+') {
        format!("+{digits}")
    } else if digits.len() == 10 {
        format!("+1{digits}")
    } else if digits.len() == 11 && digits.starts_with('1') {
        format!("+{digits}")
    } else {
        return None;
    };
    PhoneNumber::parse(&e164).ok()
}

fn is_possible(number: &PhoneNumber) -> bool {
    let Ok(parsed) = phonenumber::parse(None, number.as_e164()) else {
        return false;
    };
    let national_len = parsed.national().to_string().len();
    // Numbers the parser could not tie to one region of a shared country code (the 555
    // numbers within +1, for instance) are judged by the main region of that code: every
    // region of a code shares its possible lengths.
    let meta = parsed
        .metadata(&phonenumber::metadata::DATABASE)
        .or_else(|| {
            phonenumber::metadata::DATABASE
                .by_code(&parsed.code().value())
                .and_then(|regions| regions.into_iter().find(|m| m.is_main_country_for_code()))
        });
    let Some(meta) = meta else {
        return false;
    };
    // libphonenumber's general descriptor lists the union of the per-type possible lengths;
    // this crate's metadata leaves it empty, so build that union here. Local-only lengths (a
    // 7-digit US number) are not accepted: Twilio needs a number dialable from anywhere.
    let d = meta.descriptors();
    let per_type = [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ];
    std::iter::once(d.general())
        .chain(per_type.into_iter().flatten())
        .flat_map(|desc| desc.possible_length())
        .any(|l| usize::from(*l) == national_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_display_as_people_write_them() {
        assert_eq!(display("+16175550123"), "(617) 555-0123");
        assert_eq!(display("+442071838750"), "+442071838750");
        assert_eq!(display("anonymous"), "anonymous");
    }

    #[test]
    fn typed_numbers_are_understood() {
        for typed in [
            "+16175550123",
            "617-555-0123",
            "(617) 555-0123",
            "617.555.0123",
            "1 617 555 0123",
            " 6175550123 ",
        ] {
            assert_eq!(
                parse_typed(typed).map(|p| p.as_e164().to_owned()),
                Some("+16175550123".to_owned()),
                "{typed}"
            );
        }
        for typed in [
            "",
            "617555",
            "call 6175550123",
            "+1 617 555 0123 ext 5",
            "'; drop table",
        ] {
            assert!(parse_typed(typed).is_none(), "{typed}");
        }
    }

    #[test]
    fn parse_accepts_e164_and_refuses_the_rest() {
        for ok in [
            "+15555550100",
            "+16175550123",
            "+442071838750",
            "+2906123",
            "+123456789012345",
        ] {
            assert!(PhoneNumber::parse(ok).is_ok(), "{ok}");
        }
        let table = [
            ("anonymous", PhoneError::NoPlus),
            ("unknown", PhoneError::NoPlus),
            ("client:alice", PhoneError::NoPlus),
            ("16175550123", PhoneError::NoPlus),
            ("+1", PhoneError::TooShort),
            ("+", PhoneError::NotDigits),
            ("+1 (555) 555-0100", PhoneError::NotDigits),
            ("+1555555010O", PhoneError::NotDigits),
            ("+05555550100", PhoneError::LeadingZero),
            ("+1234567890123456", PhoneError::TooLong),
            ("+1555", PhoneError::TooShort),
            ("", PhoneError::NoPlus),
            ("+１５５５５５５０１００", PhoneError::NotDigits),
        ];
        for (input, err) in table {
            assert_eq!(PhoneNumber::parse(input), Err(err), "{input}");
        }
    }

    #[test]
    fn possible_accepts_fictional_555_numbers_and_real_ones() {
        for ok in [
            "+15555550100",
            "+15555550101",
            "+16175550123",
            "+442071838750",
            "+33142685300",
        ] {
            assert!(PhoneNumber::parse_possible(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn possible_refuses_wrong_lengths_and_unknown_country_codes() {
        for bad in [
            "+1555555010",
            "+155555501000",
            "+4420718387",
            "+999123456789",
            "+1555555",
        ] {
            assert_eq!(
                PhoneNumber::parse_possible(bad),
                Err(PhoneError::NotPossible),
                "{bad}"
            );
        }
    }

    #[test]
    fn masks_as_security_md_shows() {
        let n = PhoneNumber::parse("+15555550100").expect("valid");
        assert_eq!(n.masked().to_string(), "+1555***0100");
        assert_eq!(format!("{n:?}"), "+1555***0100");
        assert_eq!(mask("+16175550123"), "+1617***0123");
        assert_eq!(mask("anonymous"), "ano***us");
        assert_eq!(mask("+2906123"), "+29***23");
        assert_eq!(mask("client:alice"), "clien***lice");
        assert_eq!(mask("+1555"), "***");
        assert_eq!(mask(""), "***");
    }

    proptest! {
        #[test]
        fn masked_never_shows_the_middle_digits(n in "\\+1[2-9][0-9]{9}") {
            let p = PhoneNumber::parse(&n).expect("generated E.164");
            let m = p.masked().to_string();
            prop_assert_eq!(m, format!("{}***{}", &n[..5], &n[8..]));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = PhoneNumber::parse(&s);
            let _ = PhoneNumber::parse_possible(&s);
        }
    }
}
