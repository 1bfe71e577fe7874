//! A gate decision in plain words for the inbox ("held until 8:00 am Pacific: quiet hours, area
//! code 206"), from the decision record (docs/compliance.md §2).

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

/// A decision record as the inbox reads it.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// allow, defer, skip
    pub decision: &'a str,
    pub reason: &'a str,
    pub until: Option<DateTime<Utc>>,
    /// The recipient's candidate zones (IANA names), first one used for the time shown.
    pub zones: &'a [String],
    /// The recipient's number (E.164), for its area code.
    pub recipient: &'a str,
    pub cap_count: Option<i32>,
    pub cap_limit: Option<i32>,
}

/// A US zone's everyday name.
pub fn zone_name(zone: &str) -> &str {
    match zone {
        "America/New_York" => "Eastern",
        "America/Chicago" => "Central",
        "America/Denver" => "Mountain",
        "America/Phoenix" => "Arizona",
        "America/Los_Angeles" => "Pacific",
        "America/Anchorage" => "Alaska",
        "America/Adak" => "Hawaii-Aleutian",
        "Pacific/Honolulu" => "Hawaii",
        "America/Puerto_Rico" => "Atlantic",
        "Pacific/Guam" => "Chamorro",
        "Pacific/Pago_Pago" => "Samoa",
        other => other,
    }
}

/// `8:00 am` when `at` is within a day of `now` (the next 8:00 am there is), `Sat 8:00 am`
/// within a week, else `Jun 13, 8:00 am`; in `tz`.
pub fn local_time(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    let today = now.with_timezone(&tz).date_naive();
    let clock = local.format("%-I:%M %P").to_string();
    let days = (local.date_naive() - today).num_days();
    if at >= now && at - now < chrono::Duration::hours(24) {
        clock
    } else if (0..7).contains(&days) {
        format!("{} {clock}", weekday(local.weekday()))
    } else {
        format!("{} {}, {clock}", local.format("%b"), local.day())
    }
}

/// How soon `at` is, for something due within the hour ("in 20 s", "in 3 min"); `None` when it
/// is further out (then a clock time says more) or already due.
pub fn countdown(at: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let secs = (at - now).num_seconds();
    match secs {
        1..=90 => Some(format!("in {secs} s")),
        91..=3600 => Some(format!("in {} min", (secs + 30) / 60)),
        _ => None,
    }
}

/// When something happened, as a list or thread shows it, in `tz`: `10:03 am` today,
/// `Yesterday 4:10 pm`, `Mon 4:10 pm` within the week, `Jun 12, 4:10 pm` this year, else
/// `Jun 12, 2025`.
pub fn past_time(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    let today = now.with_timezone(&tz).date_naive();
    let clock = local.format("%-I:%M %P").to_string();
    let days = (today - local.date_naive()).num_days();
    match days {
        ..=0 => clock,
        1 => format!("Yesterday {clock}"),
        2..=6 => format!("{} {clock}", weekday(local.weekday())),
        _ if local.year() == today.year() => {
            format!("{} {}, {clock}", local.format("%b"), local.day())
        }
        _ => format!("{} {}, {}", local.format("%b"), local.day(), local.year()),
    }
}

fn weekday(w: chrono::Weekday) -> &'static str {
    match w {
        chrono::Weekday::Mon => "Mon",
        chrono::Weekday::Tue => "Tue",
        chrono::Weekday::Wed => "Wed",
        chrono::Weekday::Thu => "Thu",
        chrono::Weekday::Fri => "Fri",
        chrono::Weekday::Sat => "Sat",
        chrono::Weekday::Sun => "Sun",
    }
}

/// The area code of a NANP number (`+1206…` → `206`).
fn area_code(recipient: &str) -> Option<&str> {
    recipient.strip_prefix("+1").and_then(|r| r.get(..3))
}

fn reason_words(d: &Decision<'_>) -> String {
    let area = area_code(d.recipient)
        .map(|a| format!(", area code {a}"))
        .unwrap_or_default();
    match d.reason {
        "quiet_hours" => format!("quiet hours{area}"),
        "closed_day" => format!("no texts that day in the recipient's state{area}"),
        "blackout" => format!("a blackout in the recipient's state{area}"),
        "cap_reached" => match (d.cap_count, d.cap_limit) {
            (Some(c), Some(l)) => format!("{c} of {l} texts in 24 hours already sent"),
            _ => "the 24-hour text limit".to_owned(),
        },
        "daily_recipient_limit" => "the number's daily limit of new recipients".to_owned(),
        "opted_out" => "the contact opted out".to_owned(),
        "review_hold" => "a possible opt-out awaits a person's decision".to_owned(),
        "invalid_number" => "the number cannot take texts (invalid)".to_owned(),
        "outside_us" => "the number is outside the US".to_owned(),
        "line_type" => "the line cannot take texts (a callback task instead)".to_owned(),
        "carrier_answered" => "the carrier answered the keyword itself".to_owned(),
        "already_confirmed" => "the opt-out was already confirmed".to_owned(),
        "response_late" => "more than 5 minutes after the request".to_owned(),
        "sequence_ended" => "the follow-up sequence had ended".to_owned(),
        "no_consent_basis" => "the contact never called or texted".to_owned(),
        "inquiry_expired" => "the last call or text is over 3 months old".to_owned(),
        "no_written_consent" => "follow-ups need written consent".to_owned(),
        "no_window" => "no allowed time within 14 days".to_owned(),
        "gate_error" => "the rules could not be checked (nothing is sent then)".to_owned(),
        "in_window" => "inside the recipient's allowed hours".to_owned(),
        "live_conversation" => "a live conversation".to_owned(),
        "after_hours_send" => "the caller had just called (after-hours text-back)".to_owned(),
        "keyword_response" => "an answer to the contact's keyword".to_owned(),
        other => other.replace('_', " "),
    }
}

/// Why a text was skipped or held, in words, from its reason alone (a text back to the agent
/// who sent it from their phone).
pub fn why(reason: &str, recipient: &str) -> String {
    reason_words(&Decision {
        decision: "skip",
        reason,
        until: None,
        zones: &[],
        recipient,
        cap_count: None,
        cap_limit: None,
    })
}

/// The decision in one line, times in the recipient's (first) zone.
pub fn describe(d: &Decision<'_>, now: DateTime<Utc>) -> String {
    let why = reason_words(d);
    match d.decision {
        "defer" => {
            let zone = d.zones.first().map_or("America/New_York", String::as_str);
            let tz: Tz = zone.parse().unwrap_or(chrono_tz::America::New_York);
            match d.until {
                Some(until) => format!(
                    "held until {} {}: {why}",
                    local_time(until, now, tz),
                    zone_name(zone)
                ),
                None => format!("held: {why}"),
            }
        }
        "skip" => format!("not sent: {why}"),
        _ => format!("allowed: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn d<'a>(
        decision: &'a str,
        reason: &'a str,
        until: Option<DateTime<Utc>>,
        zones: &'a [String],
        to: &'a str,
    ) -> Decision<'a> {
        Decision {
            decision,
            reason,
            until,
            zones,
            recipient: to,
            cap_count: None,
            cap_limit: None,
        }
    }

    #[test]
    fn the_issue_example_reads_as_written() {
        let zones = vec!["America/Los_Angeles".to_owned()];
        // 23:30 Pacific, held to 08:00 Pacific the next day.
        let now = t("2026-06-13T06:30:00Z");
        let until = t("2026-06-13T15:00:00Z");
        assert_eq!(
            describe(
                &d("defer", "quiet_hours", Some(until), &zones, "+12065550100"),
                now
            ),
            "held until 8:00 am Pacific: quiet hours, area code 206"
        );
        // More than a day ahead, the weekday is named.
        let before = t("2026-06-12T14:00:00Z");
        assert_eq!(
            describe(
                &d("defer", "quiet_hours", Some(until), &zones, "+12065550100"),
                before
            ),
            "held until Sat 8:00 am Pacific: quiet hours, area code 206"
        );
        let far = t("2026-06-30T15:00:00Z");
        assert_eq!(
            describe(
                &d("defer", "blackout", Some(far), &zones, "+12065550100"),
                now
            ),
            "held until Jun 30, 8:00 am Pacific: a blackout in the recipient's state, area code 206"
        );
    }

    #[test]
    fn skips_and_allows_say_why() {
        let zones = vec!["America/New_York".to_owned()];
        let now = t("2026-06-12T14:00:00Z");
        assert_eq!(
            describe(&d("skip", "opted_out", None, &zones, "+16175550123"), now),
            "not sent: the contact opted out"
        );
        assert_eq!(
            describe(&d("allow", "in_window", None, &zones, "+16175550123"), now),
            "allowed: inside the recipient's allowed hours"
        );
        let mut capped = d("skip", "cap_reached", None, &zones, "+16175550123");
        capped.cap_count = Some(3);
        capped.cap_limit = Some(3);
        assert_eq!(
            describe(&capped, now),
            "not sent: 3 of 3 texts in 24 hours already sent"
        );
        assert_eq!(
            describe(
                &d("skip", "something_new", None, &zones, "+16175550123"),
                now
            ),
            "not sent: something new"
        );
    }

    #[test]
    fn past_times_read_like_a_phone_shows_them() {
        let ny = chrono_tz::America::New_York;
        let now = t("2026-06-12T18:00:00Z"); // Fri 2:00 pm
        assert_eq!(past_time(t("2026-06-12T14:03:00Z"), now, ny), "10:03 am");
        assert_eq!(
            past_time(t("2026-06-11T20:10:00Z"), now, ny),
            "Yesterday 4:10 pm"
        );
        assert_eq!(past_time(t("2026-06-08T20:10:00Z"), now, ny), "Mon 4:10 pm");
        assert_eq!(
            past_time(t("2026-05-02T20:10:00Z"), now, ny),
            "May 2, 4:10 pm"
        );
        assert_eq!(past_time(t("2025-12-02T20:10:00Z"), now, ny), "Dec 2, 2025");
        // A time just after now (clocks a little apart) reads as today.
        assert_eq!(past_time(t("2026-06-12T18:00:01Z"), now, ny), "2:00 pm");
    }

    #[test]
    fn every_us_zone_has_an_everyday_name() {
        for (zone, name) in [
            ("America/New_York", "Eastern"),
            ("America/Chicago", "Central"),
            ("America/Denver", "Mountain"),
            ("America/Phoenix", "Arizona"),
            ("America/Los_Angeles", "Pacific"),
            ("America/Anchorage", "Alaska"),
            ("America/Adak", "Hawaii-Aleutian"),
            ("Pacific/Honolulu", "Hawaii"),
        ] {
            assert_eq!(zone_name(zone), name);
        }
    }

    #[test]
    fn a_countdown_for_what_is_due_within_the_hour() {
        let now: DateTime<Utc> = "2026-06-12T14:00:00Z".parse().expect("instant");
        let at = |secs: i64| now + chrono::Duration::seconds(secs);
        assert_eq!(countdown(at(20), now).as_deref(), Some("in 20 s"));
        assert_eq!(countdown(at(90), now).as_deref(), Some("in 90 s"));
        assert_eq!(countdown(at(150), now).as_deref(), Some("in 3 min"));
        assert_eq!(countdown(at(3600), now).as_deref(), Some("in 60 min"));
        assert_eq!(countdown(at(3601), now), None);
        assert_eq!(countdown(at(0), now), None);
        assert_eq!(countdown(at(-5), now), None);
    }
}
