//! The do-not-call list's CSV (README.md "The command line"; docs/compliance.md R1, R13):
//! columns `phone,reason,source,at`, header row required; `export` adds `who`. Import is
//! all-or-nothing: every rejected row is reported with its line, and nothing is applied.

use chrono::{DateTime, Utc};

use crate::domain::phone::PhoneNumber;

/// The most rows one import takes (a brokerage's own list, not the national registry).
pub const MAX_ROWS: usize = 100_000;

pub const HEADER: [&str; 4] = ["phone", "reason", "source", "at"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub phone: PhoneNumber,
    pub reason: String,
    pub source: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line in the file (0: the file as a whole).
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}", self.message),
            l => write!(f, "line {l}: {}", self.message),
        }
    }
}

/// Parses and validates the whole file. `now` fills an empty `at`; an `at` in the future is
/// refused (a request cannot come from tomorrow). A number listed twice keeps its first row.
pub fn parse(text: &str, now: DateTime<Utc>) -> Result<Vec<Row>, Vec<Rejected>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rejected = Vec::new();
    match reader.headers() {
        Ok(h) => {
            let names: Vec<String> = h.iter().map(|c| c.to_ascii_lowercase()).collect();
            if names != HEADER {
                return Err(vec![Rejected {
                    line: 1,
                    message: format!(
                        "the header must be `{}`, found `{}`",
                        HEADER.join(","),
                        names.join(",")
                    ),
                }]);
            }
        }
        Err(e) => {
            return Err(vec![Rejected {
                line: 1,
                message: format!("unreadable header: {e}"),
            }]);
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                rejected.push(Rejected {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if rows.len() + rejected.len() >= MAX_ROWS {
            rejected.push(Rejected {
                line,
                message: format!("more than {MAX_ROWS} rows; split the file"),
            });
            break;
        }
        if record.len() != HEADER.len() {
            rejected.push(Rejected {
                line,
                message: format!("{} columns, expected {}", record.len(), HEADER.len()),
            });
            continue;
        }
        let phone = match PhoneNumber::parse(&record[0]) {
            Ok(p) => p,
            Err(e) => {
                rejected.push(Rejected {
                    line,
                    message: format!("phone `{}`: {e}", &record[0]),
                });
                continue;
            }
        };
        let at = match &record[3] {
            "" => now,
            s => match DateTime::parse_from_rfc3339(s) {
                Ok(t) if t.with_timezone(&Utc) <= now => t.with_timezone(&Utc),
                Ok(_) => {
                    rejected.push(Rejected {
                        line,
                        message: format!("at `{s}` is in the future"),
                    });
                    continue;
                }
                Err(_) => {
                    rejected.push(Rejected {
                        line,
                        message: format!(
                            "at `{s}` is not an RFC 3339 time (e.g. 2026-11-02T15:04:05Z)"
                        ),
                    });
                    continue;
                }
            },
        };
        let too_long = |s: &str| s.chars().count() > 500;
        if too_long(&record[1]) || too_long(&record[2]) {
            rejected.push(Rejected {
                line,
                message: "reason and source are at most 500 characters".into(),
            });
            continue;
        }
        if !seen.insert(phone.clone()) {
            continue;
        }
        rows.push(Row {
            line,
            phone,
            reason: record[1].to_owned(),
            source: match &record[2] {
                "" => "import".to_owned(),
                s => s.to_owned(),
            },
            at,
        });
    }
    if rejected.is_empty() {
        Ok(rows)
    } else {
        Err(rejected)
    }
}

/// One row of the do-not-text list as it is exported (`dnc export`, the dashboard's CSV):
/// `phone,reason,source,at,who`.
pub struct Exported<'a> {
    pub phone: &'a str,
    pub reason: Option<&'a str>,
    pub source: &'a str,
    pub at: DateTime<Utc>,
    pub who: Option<&'a str>,
}

/// A free-text cell made safe to open in a spreadsheet: one that would start a formula
/// (`=`, `+`, `-`, `@`, tab, CR) gets a leading `'` (OWASP's CSV injection advice).
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// The list as CSV (RFC 4180), with its header row. `for_spreadsheets`: the free-text cells
/// (reason, source, who) are made [`spreadsheet_safe`]; the command line's export keeps them
/// exactly as stored, so it can be imported again. Times are RFC 3339 in `tz` (the
/// brokerage's zone) with the offset, which `import` reads back as the same instant.
pub fn export<'a>(
    rows: impl IntoIterator<Item = Exported<'a>>,
    for_spreadsheets: bool,
    tz: chrono_tz::Tz,
) -> Result<Vec<u8>, csv::Error> {
    let text = |s: &'a str| {
        if for_spreadsheets {
            spreadsheet_safe(s)
        } else {
            std::borrow::Cow::Borrowed(s)
        }
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["phone", "reason", "source", "at", "who"])?;
    for r in rows {
        out.write_record([
            r.phone,
            &text(r.reason.unwrap_or("")),
            &text(r.source),
            &r.at
                .with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            &text(r.who.unwrap_or("")),
        ])?;
    }
    out.into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().expect("instant")
    }

    #[test]
    fn a_good_file_parses_with_defaults() {
        let rows = parse(
            "phone,reason,source,at\n+16175550123,asked on the phone,front desk,2026-11-02T15:04:05Z\n\"+16175550124\",\"moved, no longer interested\",,\n\n",
            now(),
        )
        .expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].phone.as_e164(), "+16175550123");
        assert_eq!(rows[0].source, "front desk");
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[1].reason, "moved, no longer interested");
        assert_eq!(rows[1].source, "import");
        assert_eq!(rows[1].at, now());
    }

    #[test]
    fn every_bad_row_is_reported_and_nothing_is_returned() {
        let err = parse(
            "phone,reason,source,at\n617-555-0123,x,y,\n+16175550123,x,y,yesterday\n+16175550125,x,y,2027-01-01T00:00:00Z\n+16175550126,x\n+16175550127,ok,ok,\n",
            now(),
        )
        .expect_err("invalid");
        let lines: Vec<u64> = err.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5], "{err:?}");
        assert!(err[0].to_string().contains("617-555-0123"));
        assert!(err[2].message.contains("future"));
    }

    #[test]
    fn the_header_is_required() {
        let err = parse("+16175550123,x,y,\n", now()).expect_err("no header");
        assert_eq!(err[0].line, 1);
        assert!(err[0].message.contains("phone,reason,source,at"));
        assert!(
            parse("Phone,Reason,Source,At\n", now())
                .expect("case-insensitive")
                .is_empty()
        );
    }

    #[test]
    fn duplicates_keep_the_first_row() {
        let rows = parse(
            "phone,reason,source,at\n+16175550123,first,a,\n+16175550123,second,b,\n",
            now(),
        )
        .expect("valid");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].reason, "first");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,400}") {
            let _ = parse(&format!("phone,reason,source,at\n{text}"), now());
            let _ = parse(&text, now());
        }
    }

    #[test]
    fn web_exports_defuse_formulas_in_free_text() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("-2+3"), "'-2+3");
        assert_eq!(spreadsheet_safe("asked by phone"), "asked by phone");
        let at = DateTime::parse_from_rfc3339("2026-06-12T14:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let row = || Exported {
            phone: "+16175550123",
            reason: Some("=cmd|' /C calc'!A0"),
            source: "import",
            at,
            who: Some("import:list.csv"),
        };
        let web = String::from_utf8(
            export([row()], true, chrono_tz::America::New_York).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert!(web.contains("+16175550123,'=cmd"), "{web}");
        let cli = String::from_utf8(
            export([row()], false, chrono_tz::America::New_York).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert!(cli.contains("+16175550123,=cmd"), "{cli}");
        assert!(
            cli.contains(",2026-06-12T10:00:00-04:00,"),
            "the brokerage's local time with its offset: {cli}"
        );
    }
}
