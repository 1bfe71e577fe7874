//! Durations in the setup file: `15m`, `30d`, `1h30m`; units `s`, `m`, `h`, `d`.

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("is empty")]
    Empty,
    #[error("`{0}` has no unit (use s, m, h or d, e.g. 15m)")]
    MissingUnit(String),
    #[error("`{0}` is not a duration (a number then s, m, h or d, e.g. 15m or 1h30m)")]
    Malformed(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// Parses into whole seconds. Whitespace around the value is not allowed inside it.
pub fn parse_secs(s: &str) -> Result<u64, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(|| DurationError::TooLarge(s.to_owned()))?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(DurationError::Malformed(s.to_owned())),
        };
        let n = number
            .take()
            .ok_or_else(|| DurationError::Malformed(s.to_owned()))?;
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| DurationError::TooLarge(s.to_owned()))?;
    }
    if number.is_some() {
        return Err(DurationError::MissingUnit(s.to_owned()));
    }
    Ok(total)
}

/// The shortest way to write `secs` with the same units (`90` → `1m30s`, `86400` → `1d`).
pub fn format_secs(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units_and_compounds() {
        let table = [
            ("0s", 0),
            ("20s", 20),
            ("15m", 900),
            ("2h", 7_200),
            ("30d", 2_592_000),
            ("1h30m", 5_400),
            ("1d12h", 129_600),
            ("90s", 90),
        ];
        for (input, secs) in table {
            assert_eq!(parse_secs(input), Ok(secs), "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        let table = [
            ("", DurationError::Empty),
            ("15", DurationError::MissingUnit("15".into())),
            ("1h30", DurationError::MissingUnit("1h30".into())),
            ("m", DurationError::Malformed("m".into())),
            ("15 m", DurationError::Malformed("15 m".into())),
            ("-5m", DurationError::Malformed("-5m".into())),
            ("1.5h", DurationError::Malformed("1.5h".into())),
            ("15min", DurationError::Malformed("15min".into())),
            ("3w", DurationError::Malformed("3w".into())),
            (
                "99999999999999999999d",
                DurationError::TooLarge("99999999999999999999d".into()),
            ),
            (
                "999999999999999999d",
                DurationError::TooLarge("999999999999999999d".into()),
            ),
        ];
        for (input, err) in table {
            assert_eq!(parse_secs(input), Err(err), "{input}");
        }
    }

    #[test]
    fn formats_shortest() {
        assert_eq!(format_secs(0), "0s");
        assert_eq!(format_secs(90), "1m30s");
        assert_eq!(format_secs(86_400), "1d");
        assert_eq!(format_secs(600), "10m");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 0u64..10_000_000_000) {
            prop_assert_eq!(parse_secs(&format_secs(secs)), Ok(secs));
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = parse_secs(&s);
        }
    }
}
