//! The compliance gate (compliance.md §2): every text passes it, in the pre-send transaction,
//! and gets allow, defer until T, or skip with a rule and a reason code.
//!
//! This is the seam the pipeline calls. Implemented here: step 1, the recipient is usable
//! (R8: a US number of a valid shape; others skip `invalid_number` or `outside_us`), and step
//! 2, suppression (R1: skip `opted_out`). The compliance issue adds keywords, consent, the
//! frequency cap, daily recipients and quiet hours behind the same function.

use chrono::{DateTime, Utc};

use crate::domain::phone::PhoneNumber;

/// What is being sent (compliance.md §2 "Decision record" kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TextBack,
    FollowUp,
    Manual,
}

/// The facts the gate decides on, loaded in the pre-send transaction.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub kind: Kind,
    pub recipient: &'a PhoneNumber,
    /// The number is on the brokerage's suppression list (R1).
    pub is_suppressed: bool,
    /// The carrier or Lookup said the number is invalid (21211, `valid: false`).
    pub is_known_invalid: bool,
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
}

/// R8: is the recipient a US number of a valid shape?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    Us,
    OutsideUs,
    Invalid,
}

/// The places textback texts: the states, DC and the territories (compliance.md R8).
const US_REGIONS: &[&str] = &["US", "PR", "VI", "GU", "AS", "MP"];

/// R8's checks that need no Lookup: +1 numbers with a valid NPA (not `0XX`, `1XX` or `N11`)
/// and exchange (not `0XX`/`1XX`) are US unless libphonenumber places them in another NANP
/// country; an area code it does not know (a new one, or the fictional 555) counts as US and
/// gets the strictest quiet-hours profile (compliance issue). Other country codes are
/// `outside_us`.
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

/// compliance.md §2, steps 1 and 2 (the rest arrives with the compliance issue).
pub fn decide(input: &Input<'_>, _now: DateTime<Utc>) -> Decision {
    match usability(input.recipient) {
        Usability::Invalid => {
            return Decision::Skip {
                rule: "R8",
                reason: "invalid_number",
            };
        }
        Usability::OutsideUs => {
            return Decision::Skip {
                rule: "R8",
                reason: "outside_us",
            };
        }
        Usability::Us => {}
    }
    if input.is_known_invalid {
        return Decision::Skip {
            rule: "R8",
            reason: "invalid_number",
        };
    }
    if input.is_suppressed {
        return Decision::Skip {
            rule: "R1",
            reason: "opted_out",
        };
    }
    Decision::Allow {
        reason: "in_window",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).expect("E.164")
    }

    #[test]
    fn usability_of_security_md_rows_12a_and_13() {
        let table = [
            ("+16175550123", Usability::Us),
            ("+15555550123", Usability::Us),
            ("+17875550123", Usability::Us),
            ("+18005550123", Usability::Us),
            ("+266696687", Usability::OutsideUs),
            ("+442071838750", Usability::OutsideUs),
            ("+14165550123", Usability::OutsideUs),
            ("+12115550123", Usability::Invalid),
            ("+19115550123", Usability::Invalid),
            ("+10125550123", Usability::Invalid),
            ("+11125550123", Usability::Invalid),
            ("+16170550123", Usability::Invalid),
            ("+1617555012", Usability::Invalid),
        ];
        for (number, expected) in table {
            assert_eq!(usability(&p(number)), expected, "{number}");
        }
    }

    #[test]
    fn the_first_rule_that_applies_decides() {
        // The gate of this issue does not look at the time yet; any instant will do.
        let now = "2026-03-09T15:00:00Z"
            .parse::<DateTime<Utc>>()
            .unwrap_or_default();
        let lead = p("+16175550123");
        let input = |suppressed, invalid| Input {
            kind: Kind::TextBack,
            recipient: &lead,
            is_suppressed: suppressed,
            is_known_invalid: invalid,
        };
        assert_eq!(
            decide(&input(false, false), now),
            Decision::Allow {
                reason: "in_window"
            }
        );
        assert_eq!(
            decide(&input(true, false), now),
            Decision::Skip {
                rule: "R1",
                reason: "opted_out"
            }
        );
        assert_eq!(
            decide(&input(true, true), now),
            Decision::Skip {
                rule: "R8",
                reason: "invalid_number"
            }
        );
        let abroad = p("+442071838750");
        let i = Input {
            kind: Kind::TextBack,
            recipient: &abroad,
            is_suppressed: true,
            is_known_invalid: false,
        };
        assert_eq!(
            decide(&i, now),
            Decision::Skip {
                rule: "R8",
                reason: "outside_us"
            },
            "usability is checked first"
        );
    }
}
