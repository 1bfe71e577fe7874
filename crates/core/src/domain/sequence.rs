//! The follow-up sequence's times (docs/compliance.md R15, docs/architecture.md step 7) and the brokerage's
//! local day (R15's daily recipients). Pure: the caller passes `now` and the random draw.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// R15: at most 10 % of `after`, and at most 10 minutes.
const MAX_JITTER: Duration = Duration::minutes(10);

/// When a step is due: `after` from the text-back's acceptance, plus a jitter of up to 10 % of
/// `after` (at most 10 minutes, never earlier than `after`), so steps armed together do not
/// leave as one burst. `draw` is uniform in [0, 1).
pub fn step_due(accepted_at: DateTime<Utc>, after_secs: u64, draw: f64) -> DateTime<Utc> {
    let after = Duration::seconds(i64::try_from(after_secs).unwrap_or(i64::MAX / 1000));
    let span = (after / 10).min(MAX_JITTER);
    let draw = if draw.is_finite() {
        draw.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let jitter_ms = (span.num_milliseconds() as f64 * draw) as i64;
    accepted_at + after + Duration::milliseconds(jitter_ms)
}

/// The local day containing `now` in `tz`: its first instant and the next day's first
/// instant (a day may be 23 or 25 hours long; a midnight skipped by DST starts at the first
/// valid instant).
pub fn local_day(now: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let start_of = |d: chrono::NaiveDate| {
        let mut t = d.and_time(NaiveTime::MIN);
        // A zone whose midnight is skipped (e.g. America/Havana) starts the day later.
        for _ in 0..4 {
            if let Some(x) = tz.from_local_datetime(&t).earliest() {
                return x.with_timezone(&Utc);
            }
            t += Duration::minutes(30);
        }
        t.and_utc()
    };
    let tomorrow = today.succ_opt().unwrap_or(today);
    (start_of(today), start_of(tomorrow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("instant")
    }

    #[test]
    fn jitter_is_at_most_ten_percent_and_ten_minutes_never_early() {
        let base = t("2026-06-12T12:00:00Z");
        // 15 minutes: up to 90 s.
        assert_eq!(step_due(base, 900, 0.0), t("2026-06-12T12:15:00Z"));
        assert_eq!(step_due(base, 900, 0.5), t("2026-06-12T12:15:45Z"));
        assert!(step_due(base, 900, 0.999_999) < t("2026-06-12T12:16:30Z"));
        // A day: 10 % would be 2.4 h; capped at 10 minutes.
        assert!(step_due(base, 86_400, 0.999_999) < t("2026-06-13T12:10:00Z"));
        assert!(step_due(base, 86_400, 0.999_999) > t("2026-06-13T12:09:59Z"));
        // Garbage draws cannot move a step earlier or far later.
        assert_eq!(step_due(base, 900, -3.0), t("2026-06-12T12:15:00Z"));
        assert_eq!(step_due(base, 900, f64::NAN), t("2026-06-12T12:15:00Z"));
        assert_eq!(step_due(base, 900, 7.0), t("2026-06-12T12:16:30Z"));
    }

    #[test]
    fn local_days_follow_the_zone_across_dst() {
        let ny: Tz = chrono_tz::America::New_York;
        assert_eq!(
            local_day(t("2026-06-12T03:59:00Z"), ny),
            (t("2026-06-11T04:00:00Z"), t("2026-06-12T04:00:00Z"))
        );
        assert_eq!(
            local_day(t("2026-06-12T04:00:00Z"), ny),
            (t("2026-06-12T04:00:00Z"), t("2026-06-13T04:00:00Z"))
        );
        // Spring forward: Sunday 2026-03-08 is 23 hours long.
        assert_eq!(
            local_day(t("2026-03-08T12:00:00Z"), ny),
            (t("2026-03-08T05:00:00Z"), t("2026-03-09T04:00:00Z"))
        );
        // Fall back: Sunday 2026-11-01 is 25 hours long.
        assert_eq!(
            local_day(t("2026-11-01T12:00:00Z"), ny),
            (t("2026-11-01T04:00:00Z"), t("2026-11-02T05:00:00Z"))
        );
    }

    proptest::proptest! {
        #[test]
        fn steps_are_never_early_nor_more_than_ten_minutes_late(after in 1u64..(89 * 86_400), draw in 0.0f64..1.0) {
            let base = t("2026-06-12T12:00:00Z");
            let due = step_due(base, after, draw);
            let on_time = base + Duration::seconds(after as i64);
            proptest::prop_assert!(due >= on_time);
            proptest::prop_assert!(due - on_time <= Duration::minutes(10));
            proptest::prop_assert!((due - on_time).num_milliseconds() <= after as i64 * 100);
        }
    }
}
