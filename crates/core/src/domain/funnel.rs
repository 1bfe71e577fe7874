//! The recovery dashboard's arithmetic (docs/inbox.md): periods in the
//! brokerage's zone, rates, durations in words, and the hour-of-day chart's geometry. The
//! counting itself is SQL (`store::dashboard`).

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::language::Language;

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

    /// How many calendar days the period covers.
    pub fn days(self) -> i64 {
        match self {
            Period::Today => 1,
            Period::Week => 7,
            Period::Month => 30,
        }
    }

    /// Calendar days in the brokerage's zone: today since local midnight; 7 days and 30
    /// days end today and start at the local midnight 6 or 29 days earlier.
    pub fn start(self, now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let day = now.with_timezone(&tz).date_naive() - Duration::days(self.days() - 1);
        midnight(day, tz).unwrap_or(now)
    }

    /// The start of the period before this one (as many days, ending where this starts).
    pub fn previous_start(self, now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let day = now.with_timezone(&tz).date_naive() - Duration::days(2 * self.days() - 1);
        midnight(day, tz).unwrap_or(now)
    }
}

/// The first instant of local `day` in `tz`. Midnight may not exist (a DST change at 00:00 in
/// some zones): the earliest instant of that local day is then the first valid one after it.
fn midnight(day: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    let midnight = day.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight).earliest() {
        Some(t) => Some(t.with_timezone(&Utc)),
        None => tz
            .from_local_datetime(&(midnight + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// One day of the trend chart: this period's leads and texts on that day, and the previous
/// period's on the day as many days into it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendDay {
    pub day: NaiveDate,
    pub leads: i64,
    pub texted: i64,
    pub previous_leads: i64,
    pub previous_texted: i64,
    /// "Jun 12"
    pub label: String,
    pub x: u32,
    pub leads_y: u32,
    pub leads_h: u32,
    pub previous_y: u32,
    pub previous_h: u32,
    pub show_label: bool,
}

pub const TREND_W: u32 = 720;
pub const TREND_H: u32 = 160;

/// The days of a period starting on local day `first` (`days` of them), from per-day counts
/// `(local day, leads, texted)` covering this period and the one before, scaled to the busiest
/// day of either.
pub fn trend(counts: &[(NaiveDate, i64, i64)], first: NaiveDate, days: i64) -> Vec<TrendDay> {
    let count = |d: NaiveDate| -> (i64, i64) {
        counts
            .iter()
            .find(|(day, _, _)| *day == d)
            .map_or((0, 0), |(_, l, t)| (*l, *t))
    };
    let max = (0..days)
        .flat_map(|i| {
            let d = first + Duration::days(i);
            [count(d).0, count(d - Duration::days(days)).0]
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = TREND_H - TOP - 20;
    let height = |v: i64| -> u32 {
        let v = u64::try_from(v.max(0)).unwrap_or(u64::MAX);
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        u32::try_from(v.saturating_mul(u64::from(plot)) / max).unwrap_or(plot)
    };
    let n = u32::try_from(days.max(1)).unwrap_or(1);
    let step = TREND_W / n;
    (0..days)
        .map(|i| {
            let day = first + Duration::days(i);
            let (leads, texted) = count(day);
            let (previous_leads, previous_texted) = count(day - Duration::days(days));
            let (lh, ph) = (height(leads), height(previous_leads));
            let base = TOP + plot;
            let i = u32::try_from(i).unwrap_or(0);
            TrendDay {
                day,
                leads,
                texted,
                previous_leads,
                previous_texted,
                label: day.format("%b %-d").to_string(),
                x: i * step,
                leads_y: base - lh,
                leads_h: lh,
                previous_y: base - ph,
                previous_h: ph,
                show_label: days <= 7 || i % 5 == 0,
            }
        })
        .collect()
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

/// One missed-call lead as the funnel counts it (a row of the `lead` table).
#[derive(Debug, Clone, PartialEq)]
pub struct LeadFact {
    pub number_id: i64,
    pub office_id: i64,
    pub agent_id: Option<i64>,
    /// The text-back job's state and reason.
    pub state: String,
    pub reason: Option<String>,
    pub replied: bool,
    pub human_replied: bool,
    pub answered: bool,
    /// Local hour of the miss, 0–23.
    pub hour: u32,
    /// The template variant of a text-back that went out.
    pub variant: Option<i32>,
    /// Missed call → carrier accepted the text, in seconds, for a lead texted.
    pub text_secs: Option<f64>,
    /// The lead's language (theirs, else the brokerage's default).
    pub language: Language,
}

/// The funnel's counts for one group of leads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub leads: i64,
    pub texted: i64,
    pub maybe_texted: i64,
    pub suppressed: i64,
    pub landline: i64,
    pub reconnected: i64,
    pub wrote_first: i64,
    pub cancelled_other: i64,
    pub pending: i64,
    pub failed: i64,
    pub replied: i64,
    pub human_replied: i64,
    pub answered: i64,
    pub median_text_secs: Option<f64>,
    /// Missed calls: by number and office; `None` by agent (a miss has no agent until it is a
    /// lead), hour and variant.
    pub missed_calls: Option<i64>,
}

impl Tally {
    fn add(&mut self, f: &LeadFact) {
        self.leads += 1;
        let reason = f.reason.as_deref().unwrap_or("");
        match f.state.as_str() {
            "sent" => self.texted += 1,
            "needs_review" => self.maybe_texted += 1,
            "skipped" if reason == "line_type" => self.landline += 1,
            "skipped" => self.suppressed += 1,
            "cancelled" if reason == "answered_call" => self.reconnected += 1,
            "cancelled" if reason == "inbound_text" => self.wrote_first += 1,
            "cancelled" => self.cancelled_other += 1,
            "scheduled" | "running" | "reconciling" => self.pending += 1,
            "dead" => self.failed += 1,
            _ => {}
        }
        self.replied += i64::from(f.replied);
        self.human_replied += i64::from(f.human_replied);
        self.answered += i64::from(f.answered);
    }
}

/// The median as PostgreSQL's `percentile_cont(0.5)` computes it: the middle value, or the
/// mean of the two middle ones.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mid = n / 2;
    Some(if n % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Which group a row of the funnel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    All,
    Number(i64),
    Office(i64),
    /// `None`: leads of unassigned conversations.
    Agent(Option<i64>),
    Hour(u32),
    /// The English text-back's variants (a Spanish text's variant is of other templates).
    Variant(i32),
    Language(Language),
}

/// The funnel of `facts`: the whole slice, and by number, office, agent, hour, language and
/// variant (leads texted in English only).
pub fn tally(facts: &[LeadFact]) -> std::collections::BTreeMap<Group, Tally> {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<Group, (Tally, Vec<f64>)> = BTreeMap::new();
    groups.insert(Group::All, Default::default());
    for f in facts {
        let mut keys = vec![
            Group::All,
            Group::Number(f.number_id),
            Group::Office(f.office_id),
            Group::Agent(f.agent_id),
            Group::Hour(f.hour),
            Group::Language(f.language),
        ];
        if f.text_secs.is_some() && f.language == Language::En {
            keys.push(Group::Variant(f.variant.unwrap_or(0)));
        }
        for key in keys {
            let (t, secs) = groups.entry(key).or_default();
            t.add(f);
            if let Some(s) = f.text_secs {
                secs.push(s);
            }
        }
    }
    groups
        .into_iter()
        .map(|(k, (mut t, secs))| {
            t.median_text_secs = median(secs);
            (k, t)
        })
        .collect()
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

    fn fact(number: i64, agent: Option<i64>, state: &str, reason: Option<&str>) -> LeadFact {
        LeadFact {
            number_id: number,
            office_id: number * 10,
            agent_id: agent,
            state: state.to_owned(),
            reason: reason.map(str::to_owned),
            replied: false,
            human_replied: false,
            answered: false,
            hour: 10,
            variant: None,
            text_secs: None,
            language: Language::En,
        }
    }

    #[test]
    fn every_lead_lands_in_one_outcome_and_its_groups() {
        let mut texted = fact(1, Some(7), "sent", None);
        texted.text_secs = Some(20.0);
        texted.replied = true;
        texted.human_replied = true;
        texted.variant = Some(1);
        let mut texted2 = fact(2, None, "sent", None);
        texted2.text_secs = Some(30.0);
        texted2.hour = 14;
        let mut spanish = fact(2, None, "sent", None);
        spanish.text_secs = Some(30.0);
        spanish.variant = Some(0);
        spanish.replied = true;
        spanish.language = Language::Es;
        let mut reconnected = fact(1, Some(7), "cancelled", Some("answered_call"));
        reconnected.answered = true;
        let facts = vec![
            texted,
            texted2,
            reconnected,
            fact(1, Some(7), "skipped", Some("line_type")),
            fact(1, Some(7), "skipped", Some("opted_out")),
            fact(2, None, "cancelled", Some("inbound_text")),
            fact(2, None, "cancelled", Some("agent_takeover")),
            fact(2, None, "scheduled", None),
            fact(2, None, "dead", Some("21211")),
            fact(2, None, "needs_review", None),
            spanish,
        ];
        let t = tally(&facts);
        let all = &t[&Group::All];
        assert_eq!(
            (
                all.leads,
                all.texted,
                all.landline,
                all.suppressed,
                all.reconnected,
                all.wrote_first
            ),
            (11, 3, 1, 1, 1, 1)
        );
        assert_eq!(
            (
                all.cancelled_other,
                all.pending,
                all.failed,
                all.maybe_texted
            ),
            (1, 1, 1, 1)
        );
        let outcomes = all.texted
            + all.landline
            + all.suppressed
            + all.reconnected
            + all.wrote_first
            + all.cancelled_other
            + all.pending
            + all.failed
            + all.maybe_texted;
        assert_eq!(outcomes, all.leads, "each lead in exactly one outcome");
        assert_eq!((all.replied, all.human_replied, all.answered), (2, 1, 1));
        assert_eq!(all.median_text_secs, Some(30.0));
        assert_eq!(t[&Group::Number(1)].leads, 4);
        assert_eq!(t[&Group::Office(20)].leads, 7);
        assert_eq!(t[&Group::Agent(Some(7))].leads, 4);
        assert_eq!(t[&Group::Agent(None)].leads, 7);
        assert_eq!(
            (t[&Group::Hour(10)].leads, t[&Group::Hour(14)].leads),
            (10, 1)
        );
        let es = &t[&Group::Language(Language::Es)];
        assert_eq!((es.leads, es.texted, es.replied), (1, 1, 1));
        assert_eq!(t[&Group::Language(Language::En)].leads, 10);
        assert_eq!(t[&Group::Variant(1)].leads, 1);
        assert_eq!(
            (t[&Group::Variant(0)].leads, t[&Group::Variant(0)].replied),
            (1, 0)
        );
        assert!(!t.contains_key(&Group::Variant(2)));
        // Nothing at all: the whole slice is there, with zeros.
        assert_eq!(tally(&[])[&Group::All], Tally::default());
    }

    #[test]
    fn medians_are_percentile_cont() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
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

    #[test]
    fn the_trend_puts_each_day_beside_the_same_day_of_the_period_before() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let counts = [
            (d("2026-06-05"), 2, 1), // the previous period's 2nd day
            (d("2026-06-12"), 4, 3), // this period's 2nd day
            (d("2026-06-17"), 1, 1), // this period's last day
        ];
        let days = trend(&counts, d("2026-06-11"), 7);
        assert_eq!(days.len(), 7);
        assert_eq!((days[1].leads, days[1].texted), (4, 3));
        assert_eq!((days[1].previous_leads, days[1].previous_texted), (2, 1));
        assert_eq!(days[6].leads, 1);
        assert_eq!(days[0].leads + days[0].previous_leads, 0);
        assert_eq!(
            days[1].leads_h,
            TREND_H - TOP - 20,
            "the busiest day fills the plot"
        );
        assert_eq!(days[1].previous_h, (TREND_H - TOP - 20) / 2);
        assert_eq!(days[1].label, "Jun 12");
        let tz: Tz = "America/New_York".parse().expect("zone");
        let now: DateTime<Utc> = "2026-06-17T15:00:00Z".parse().expect("now");
        assert_eq!(
            Period::Week.previous_start(now, tz),
            "2026-06-04T04:00:00Z".parse::<DateTime<Utc>>().expect("t")
        );
        assert_eq!(
            Period::Week.start(now, tz),
            "2026-06-11T04:00:00Z".parse::<DateTime<Utc>>().expect("t")
        );
    }
}
