//! The recovery dashboard's arithmetic (DESIGN.md "People-facing pages"): periods in the
//! brokerage's zone, rates, durations in words, and the hour-of-day chart's geometry. The
//! counting itself is SQL (`store::dashboard`).

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Today,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Today, Period::Week, Period::Month];

    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "today" => Some(Period::Today),
            "7d" => Some(Period::Week),
            "30d" => Some(Period::Month),
            _ => None,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Period::Today => "today",
            Period::Week => "7d",
            Period::Month => "30d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Period::Today => "Today",
            Period::Week => "7 days",
            Period::Month => "30 days",
        }
    }

    /// Calendar days in the brokerage's zone: today since local midnight; 7 days and 30
    /// days end today and start at the local midnight 6 or 29 days earlier.
    pub fn start(self, now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let back = match self {
            Period::Today => 0,
            Period::Week => 6,
            Period::Month => 29,
        };
        let day = now.with_timezone(&tz).date_naive() - Duration::days(back);
        let midnight = day.and_time(NaiveTime::MIN);
        // Midnight may not exist (a DST change at 00:00 in some zones): the earliest instant
        // of that local day is then the first valid one after it.
        match tz.from_local_datetime(&midnight).earliest() {
            Some(t) => t.with_timezone(&Utc),
            None => tz
                .from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
                .map_or(now, |t| t.with_timezone(&Utc)),
        }
    }
}

/// `part` of `whole` as a whole percentage ("42 %"), or "–" when there is no whole.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "–".to_owned()
    } else {
        let p = (part as f64) * 100.0 / (whole as f64);
        format!("{} %", p.round() as i64)
    }
}

/// A duration as a person reads it: `21 s`, `4 min 5 s`, `2 h 10 min`, `3 d 4 h`; "–" for none.
pub fn duration_words(secs: Option<f64>) -> String {
    let Some(secs) = secs.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "–".to_owned();
    };
    let s = secs.round() as i64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => {
            let (m, r) = (s / 60, s % 60);
            if r == 0 {
                format!("{m} min")
            } else {
                format!("{m} min {r} s")
            }
        }
        3600..=86_399 => {
            let (h, m) = (s / 3600, (s % 3600) / 60);
            if m == 0 {
                format!("{h} h")
            } else {
                format!("{h} h {m} min")
            }
        }
        _ => {
            let (d, h) = (s / 86_400, (s % 86_400) / 3600);
            if h == 0 {
                format!("{d} d")
            } else {
                format!("{d} d {h} h")
            }
        }
    }
}

/// One hour's bars of the chart: missed calls, and of them the ones that got a text.
#[derive(Debug, Clone, PartialEq)]
pub struct HourBar {
    pub hour: u32,
    pub x: u32,
    pub missed_y: u32,
    pub missed_h: u32,
    pub texted_y: u32,
    pub texted_h: u32,
    pub missed: i64,
    pub texted: i64,
    /// "9 am"
    pub label: String,
    pub show_label: bool,
}

pub const CHART_W: u32 = 720;
pub const CHART_H: u32 = 160;
const BAR_W: u32 = 24;
const STEP: u32 = 30;
const TOP: u32 = 8;

/// Bars for 24 hours (local hours of the brokerage), scaled to the busiest hour.
pub fn hour_chart(missed: &[i64; 24], texted: &[i64; 24]) -> Vec<HourBar> {
    let max = missed
        .iter()
        .chain(texted.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = CHART_H - TOP - 20;
    let height = |v: i64| -> u32 {
        let v = u32::try_from(v.max(0)).unwrap_or(u32::MAX);
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        ((u64::from(v) * u64::from(plot)) / u64::from(max)) as u32
    };
    (0u32..24)
        .map(|h| {
            let i = h as usize;
            let m = missed.get(i).copied().unwrap_or(0);
            let t = texted.get(i).copied().unwrap_or(0);
            let (mh, th) = (height(m), height(t));
            let base = TOP + plot;
            HourBar {
                hour: h,
                x: h * STEP + (STEP - BAR_W) / 2,
                missed_y: base - mh,
                missed_h: mh,
                texted_y: base - th,
                texted_h: th,
                missed: m,
                texted: t,
                label: match h {
                    0 => "12 am".to_owned(),
                    12 => "12 pm".to_owned(),
                    1..=11 => format!("{h} am"),
                    _ => format!("{} pm", h - 12),
                },
                show_label: h % 3 == 0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn periods_are_local_calendar_days() {
        let ny = chrono_tz::America::New_York;
        let now = t("2026-06-12T14:00:00Z"); // 10:00 EDT
        assert_eq!(Period::Today.start(now, ny), t("2026-06-12T04:00:00Z"));
        assert_eq!(Period::Week.start(now, ny), t("2026-06-06T04:00:00Z"));
        assert_eq!(Period::Month.start(now, ny), t("2026-05-14T04:00:00Z"));
        // 01:00 UTC is still the evening before in New York.
        assert_eq!(
            Period::Today.start(t("2026-06-13T01:00:00Z"), ny),
            t("2026-06-12T04:00:00Z")
        );
        // Across the autumn change: 7 days back from Nov 3 starts at EDT midnight.
        assert_eq!(
            Period::Week.start(t("2026-11-03T15:00:00Z"), ny),
            t("2026-10-28T04:00:00Z")
        );
        for p in Period::ALL {
            assert_eq!(Period::parse(p.key()), Some(p));
        }
        assert_eq!(Period::parse("1y"), None);
    }

    #[test]
    fn a_midnight_that_does_not_exist_starts_the_day_an_hour_later() {
        // Santiago skips 00:00–01:00 when DST starts (2026-09-06).
        let scl: Tz = "America/Santiago".parse().unwrap_or(chrono_tz::UTC);
        let start = Period::Today.start(t("2026-09-06T15:00:00Z"), scl);
        assert_eq!(
            start.with_timezone(&scl).format("%H:%M").to_string(),
            "01:00"
        );
    }

    #[test]
    fn percentages_and_durations_read_naturally() {
        assert_eq!(percent(1, 3), "33 %");
        assert_eq!(percent(2, 3), "67 %");
        assert_eq!(percent(0, 0), "–");
        assert_eq!(duration_words(Some(21.4)), "21 s");
        assert_eq!(duration_words(Some(245.0)), "4 min 5 s");
        assert_eq!(duration_words(Some(600.0)), "10 min");
        assert_eq!(duration_words(Some(7800.0)), "2 h 10 min");
        assert_eq!(duration_words(Some(100_000.0)), "1 d 3 h");
        assert_eq!(duration_words(None), "–");
        assert_eq!(duration_words(Some(f64::NAN)), "–");
    }

    #[test]
    fn the_chart_scales_to_the_busiest_hour() {
        let mut missed = [0i64; 24];
        let mut texted = [0i64; 24];
        missed[10] = 4;
        texted[10] = 3;
        missed[14] = 2;
        let bars = hour_chart(&missed, &texted);
        assert_eq!(bars.len(), 24);
        let ten = &bars[10];
        assert_eq!(ten.missed_h, CHART_H - 28);
        assert_eq!(ten.texted_h, (CHART_H - 28) * 3 / 4);
        assert_eq!(ten.missed_y + ten.missed_h, ten.texted_y + ten.texted_h);
        assert_eq!(bars[14].missed_h, (CHART_H - 28) / 2);
        assert_eq!(bars[0].missed_h, 0);
        assert_eq!(bars[0].label, "12 am");
        assert_eq!(bars[13].label, "1 pm");
        assert!(bars.iter().all(|b| b.x + 24 <= CHART_W));
        // Nothing at all: flat, no division by zero.
        assert!(
            hour_chart(&[0; 24], &[0; 24])
                .iter()
                .all(|b| b.missed_h == 0)
        );
    }
}
