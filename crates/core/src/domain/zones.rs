//! Candidate time zones, state and country of a NANP number (docs/compliance.md R8, §6.1).
//!
//! The table is `fixtures/nanp_tz.tsv`, generated from libphonenumber by
//! `scripts/gen_nanp_tz.py` and embedded at compile time: a lookup needs no I/O, and a decision
//! record names the exact data it used by [`data_hash`]. An area code's row already holds the
//! union of its exchanges' zones, so the longest matching prefix is the whole answer: an exchange
//! without a row of its own gets every zone its area code spans, and quiet hours then hold in
//! each of them (R7).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono_tz::Tz;
use sha2::{Digest, Sha256};

const DATA: &str = include_str!("../../../../fixtures/nanp_tz.tsv");
const FILE: &str = "fixtures/nanp_tz.tsv";

/// R8's answer for a number without a row (a newer or non-geographic area code, or not `+1`):
/// the number could be anywhere in the fifty states, so every one of their zones must allow it.
pub const UNKNOWN_ZONES: [Tz; 8] = [
    Tz::America__New_York,
    Tz::America__Chicago,
    Tz::America__Denver,
    Tz::America__Phoenix,
    Tz::America__Los_Angeles,
    Tz::America__Anchorage,
    Tz::America__Adak,
    Tz::Pacific__Honolulu,
];

/// What the table says about one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneInfo {
    /// Candidate zones, never empty; the window must be open in every one (R7).
    pub zones: Vec<Tz>,
    /// USPS code, or PR/VI/GU/AS/MP; `None` = unknown (no row, or a row outside the US), so
    /// the caller applies the `strictest` profile (§6.2).
    pub state: Option<&'static str>,
    /// Region of the area code (`US`, `PR`, `CA`, ...); `None` when no row matched.
    pub country: Option<&'static str>,
    /// The matched prefix of the national number (3 to 6 digits); `None` when no row matched.
    pub prefix: Option<&'static str>,
}

impl ZoneInfo {
    fn unknown() -> Self {
        ZoneInfo {
            zones: UNKNOWN_ZONES.to_vec(),
            state: None,
            country: None,
            prefix: None,
        }
    }
}

struct Row {
    country: &'static str,
    state: Option<&'static str>,
    zones: Vec<Tz>,
}

type Table = HashMap<&'static str, Row>;

/// Parsed on first use; a broken table is kept as its error so that [`check`] can report it at
/// startup and [`lookup`] can fail safe instead of panicking.
static TABLE: LazyLock<Result<Table, String>> = LazyLock::new(|| parse(DATA));

static DATA_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut hash = hex::encode(Sha256::digest(DATA.as_bytes()));
    hash.truncate(12);
    hash
});

/// Zones, state and country of an E.164 number, by the longest prefix of its national number
/// (6, 5, 4, then 3 digits) that has a row. No row, a number not starting `+1`, or a table that
/// failed to parse all give the unknown answer: the eight US zones, no state, no country.
pub fn lookup(e164: &str) -> ZoneInfo {
    let (Some(national), Ok(table)) = (e164.strip_prefix("+1"), TABLE.as_ref()) else {
        return ZoneInfo::unknown();
    };
    [6, 5, 4, 3]
        .into_iter()
        .filter_map(|len| national.get(..len))
        .find_map(|prefix| table.get_key_value(prefix))
        .map_or_else(ZoneInfo::unknown, |(prefix, row)| ZoneInfo {
            zones: row.zones.clone(),
            state: row.state,
            country: Some(row.country),
            prefix: Some(prefix),
        })
}

/// First 12 hex digits of the SHA-256 of the embedded file, for decision records (§2).
pub fn data_hash() -> &'static str {
    &DATA_HASH
}

/// Whether the embedded table parses: every row well-formed, every zone known to `chrono-tz`,
/// every area-code row covering its longer rows' zones. The server calls it at startup so a
/// bad regeneration stops the server rather than quietly answering "unknown" for every number.
pub fn check() -> Result<(), String> {
    TABLE.as_ref().map(|_| ()).map_err(Clone::clone)
}

fn parse(data: &'static str) -> Result<Table, String> {
    let mut table = Table::new();
    for (index, line) in data.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |what: String| format!("{FILE} line {}: {what}", index + 1);
        let &[prefix, country, state, zones, source] =
            line.split('\t').collect::<Vec<_>>().as_slice()
        else {
            return Err(at(
                "want 5 tab-separated fields: prefix country state zones source".into(),
            ));
        };
        if !(3..=6).contains(&prefix.len()) || !is_digits(prefix) {
            return Err(at(format!("prefix {prefix:?} is not 3 to 6 digits")));
        }
        if !is_code(country) {
            return Err(at(format!("country {country:?} is not a region code")));
        }
        let state = match state {
            "-" if country == "US" => return Err(at("a US row needs a state".into())),
            "-" => None,
            code if is_code(code) => Some(code),
            other => return Err(at(format!("state {other:?} is neither a code nor -"))),
        };
        let zones = zones
            .split(',')
            .map(|name| {
                name.parse::<Tz>()
                    .map_err(|_| at(format!("unknown zone {name:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let is_source = matches!(source, "libphonenumber" | "union")
            || source
                .strip_prefix("overlay:")
                .is_some_and(|npa| npa.len() == 3 && is_digits(npa));
        if !is_source {
            return Err(at(format!("unknown source {source:?}")));
        }
        if table
            .insert(
                prefix,
                Row {
                    country,
                    state,
                    zones,
                },
            )
            .is_some()
        {
            return Err(at(format!("prefix {prefix} appears twice")));
        }
    }
    // invariant: an exchange without a row of its own gets every zone of its area code
    for (prefix, row) in &table {
        let covered = prefix
            .get(..3)
            .and_then(|npa| table.get(npa))
            .is_some_and(|area| row.zones.iter().all(|zone| area.zones.contains(zone)));
        if !covered {
            return Err(format!(
                "{FILE}: the area-code row of {prefix} lacks or does not cover it"
            ));
        }
    }
    if table.is_empty() {
        return Err(format!("{FILE}: no rows"));
    }
    Ok(table)
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn is_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Zone names sorted, so a test states a set regardless of the file's order.
    fn names(info: &ZoneInfo) -> Vec<&'static str> {
        let mut names: Vec<_> = info.zones.iter().map(|zone| zone.name()).collect();
        names.sort_unstable();
        names
    }

    fn assert_row(number: &str, zones: &[&str], state: &str, country: &str, prefix: &str) {
        let info = lookup(number);
        assert_eq!(names(&info), zones, "{number} zones");
        assert_eq!(info.state, Some(state), "{number} state");
        assert_eq!(info.country, Some(country), "{number} country");
        assert_eq!(info.prefix, Some(prefix), "{number} prefix");
    }

    fn assert_unknown(number: &str) {
        assert_eq!(lookup(number), ZoneInfo::unknown(), "{number}");
    }

    const CHICAGO_NEW_YORK: &[&str] = &["America/Chicago", "America/New_York"];

    #[test]
    fn embedded_table_passes_the_startup_check() {
        assert_eq!(check(), Ok(()));
    }

    #[test]
    fn data_hash_is_twelve_hex_digits() {
        let hash = data_hash();
        assert_eq!(hash.len(), 12);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    }

    /// docs/compliance.md §6.1, test table, row by row.
    #[test]
    fn spec_table_single_zone_area_codes() {
        assert_row("+16175550123", &["America/New_York"], "MA", "US", "617");
        // 310 has no row of its own in libphonenumber: made from its exchanges (step 4).
        assert_row("+13105550112", &["America/Los_Angeles"], "CA", "US", "3105");
        assert_eq!(lookup("+13100000000").prefix, Some("310"));
    }

    #[test]
    fn spec_table_florida_panhandle() {
        assert_row("+18504340142", &["America/Chicago"], "FL", "US", "85043");
        assert_row("+18502220142", CHICAGO_NEW_YORK, "FL", "US", "850");
    }

    #[test]
    fn spec_table_overlays_get_their_partners_zones() {
        assert_row("+14485550100", CHICAGO_NEW_YORK, "FL", "US", "448");
        assert_row("+19305550100", CHICAGO_NEW_YORK, "IN", "US", "930");
        assert_row("+13645550100", CHICAGO_NEW_YORK, "KY", "US", "364");
        let idaho = &["America/Boise", "America/Denver", "America/Los_Angeles"];
        assert_row("+19865550100", idaho, "ID", "US", "986");
    }

    #[test]
    fn spec_table_oregon() {
        let oregon = &["America/Denver", "America/Los_Angeles"];
        assert_row("+14585550100", oregon, "OR", "US", "458");
        assert_row("+15418890100", &["America/Denver"], "OR", "US", "541889");
        assert_row("+15415550100", oregon, "OR", "US", "541");
    }

    #[test]
    fn spec_table_arizona() {
        let navajo = &["America/Denver", "America/Phoenix"];
        assert_row("+19282830100", navajo, "AZ", "US", "928283");
        assert_row("+16025550100", &["America/Phoenix"], "AZ", "US", "602");
    }

    #[test]
    fn spec_table_idaho_hawaii_puerto_rico() {
        let boise = &["America/Boise", "America/Los_Angeles"];
        assert_row("+12085550100", boise, "ID", "US", "2085");
        assert_row("+18085550100", &["Pacific/Honolulu"], "HI", "US", "808");
        assert_row("+17875550100", &["America/Puerto_Rico"], "PR", "PR", "787");
    }

    #[test]
    fn spec_table_canada_has_a_country_but_no_state() {
        let info = lookup("+14165550100");
        assert_eq!(names(&info), ["America/Toronto"]);
        assert_eq!(
            (info.country, info.state, info.prefix),
            (Some("CA"), None, Some("416"))
        );
    }

    #[test]
    fn spec_table_numbers_without_a_row_are_unknown() {
        assert_unknown("+15555550100");
        assert_unknown("+18005550100");
        let info = lookup("+15555550100");
        let eight = [
            "America/Adak",
            "America/Anchorage",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
            "America/New_York",
            "America/Phoenix",
            "Pacific/Honolulu",
        ];
        assert_eq!(names(&info), eight);
    }

    /// The numbers of docs/compliance.md §5.5 and §5.6.
    #[test]
    fn quiet_hours_vectors_and_worked_example() {
        assert_row("+12125550100", &["America/New_York"], "NY", "US", "212");
        assert_row("+16025550100", &["America/Phoenix"], "AZ", "US", "602");
        assert_row("+13035550100", &["America/Denver"], "CO", "US", "303");
        assert_row(
            "+19282830100",
            &["America/Denver", "America/Phoenix"],
            "AZ",
            "US",
            "928283",
        );
        assert_row("+18085550100", &["Pacific/Honolulu"], "HI", "US", "808");
        assert_row("+17875550100", &["America/Puerto_Rico"], "PR", "PR", "787");
        assert_row("+15125550100", &["America/Chicago"], "TX", "US", "512");
        assert_row("+12055550100", &["America/Chicago"], "AL", "US", "205");
        assert_row("+14015550100", &["America/New_York"], "RI", "US", "401");
        assert_row("+15045550100", &["America/Chicago"], "LA", "US", "504");
        assert_unknown("+15555550100");
        assert_row("+18502220142", CHICAGO_NEW_YORK, "FL", "US", "850");
        assert_row("+18504340142", &["America/Chicago"], "FL", "US", "85043");
    }

    #[test]
    fn non_nanp_and_malformed_numbers_are_unknown() {
        for number in [
            "+442079460000",
            "16175550123",
            "+1",
            "+16",
            "+1 617 555 0123",
            "",
            "+1é17",
        ] {
            assert_unknown(number);
        }
    }

    #[test]
    fn broken_rows_are_reported_with_their_line() {
        let cases = [
            ("617\tUS\tMA\tAmerica/New_York\n", "5 tab-separated fields"),
            ("61\tUS\tMA\tAmerica/New_York\tunion\n", "not 3 to 6 digits"),
            ("617\tUS\t-\tAmerica/New_York\tunion\n", "needs a state"),
            ("617\tUS\tMA\tAmerica/Gotham\tunion\n", "unknown zone"),
            ("617\tUS\tMA\tAmerica/New_York\tguess\n", "unknown source"),
            (
                "617\tUS\tMA\tAmerica/New_York\tunion\n617\tUS\tMA\tAmerica/New_York\tunion\n",
                "twice",
            ),
            (
                "617\tUS\tMA\tAmerica/New_York\tunion\n6175\tUS\tMA\tAmerica/Chicago\tunion\n",
                "cover",
            ),
            ("# only a comment\n", "no rows"),
        ];
        for (data, message) in cases {
            let error = parse(data).err().expect("a broken table must not parse");
            assert!(error.contains(message), "{data:?}: {error}");
        }
    }

    proptest! {
        #[test]
        fn lookup_never_panics_and_always_has_a_zone(number in "\\+1[0-9]{10}") {
            let info = lookup(&number);
            prop_assert!(!info.zones.is_empty());
            prop_assert_eq!(info.prefix.is_some(), info.country.is_some());
        }

        #[test]
        fn lookup_survives_any_string(number in "\\PC*") {
            prop_assert!(!lookup(&number).zones.is_empty());
        }
    }
}
