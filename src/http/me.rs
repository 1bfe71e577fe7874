//! `/me`: the signed-in person's own page (issue 18 §2). They see their working hours (from the
//! setup file, read-only here) and whether new leads come to them now, in plain words, and set
//! themself available, away, or on vacation until a date, in two taps. Routing reads what they
//! set (`agent.availability`, `agent.back_on`) and skips them while they are not available.
//!
//! The form names no agent: it always changes the signed-in person's own row. It carries the
//! session's CSRF token like every other form (docs/security.md §2); a bad state or date is
//! refused with a 400 and the page again, and nothing is stored.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::{Posted, Viewer};
use super::pages::Layout;
use super::{AppState, Error, Result};
use crate::domain::routing::{self, Availability, Unavailable};
use crate::effects::routing::agent as routing_agent;
use crate::store::routing as rows;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me_page))
        .route("/me/availability", post(set_availability))
}

/// How far ahead a vacation may end: a year.
const MAX_DAYS_AHEAD: u64 = 365;

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    layout: Layout,
    name: String,
    /// "Working hours: 09:00–18:00 every day (America/New_York)", or "any hour".
    hours: String,
    /// `available`, `off_hours`, `away` or `vacation`: the page's `data-state` and colour.
    state: &'static str,
    /// The state in plain words.
    words: String,
    /// The button that is on: `available`, `away` or `vacation`.
    current: &'static str,
    /// The date field: the vacation's end when on vacation, else tomorrow.
    back_on: String,
    min: String,
    max: String,
    error: Option<String>,
}

/// What the person is, in the page's words: the state's code, the sentence, and which of the
/// three buttons is on. A vacation whose day has come is over by itself (routing's rule), so
/// the page says available.
fn state_words(
    now: DateTime<Utc>,
    tz: Tz,
    agent: &routing::Agent,
) -> (&'static str, String, &'static str) {
    match routing::status(now, tz, agent) {
        Ok(()) => (
            "available",
            "Available: new leads come to you".to_owned(),
            "available",
        ),
        Err(Unavailable::Away) => (
            "away",
            "Away: leads skip you until you switch back".to_owned(),
            "away",
        ),
        Err(Unavailable::Vacation { back_on }) => (
            "vacation",
            format!(
                "On vacation: back on {}. Leads skip you until then",
                day(back_on, now.with_timezone(&tz).date_naive())
            ),
            "vacation",
        ),
        Err(Unavailable::OffHours) => {
            let local = now.with_timezone(&tz).time();
            let start = agent.hours.map_or(NaiveTime::MIN, |(s, _)| s);
            let when = if local < start {
                clock(start)
            } else {
                format!("{} tomorrow", clock(start))
            };
            (
                "off_hours",
                format!("Outside your working hours: leads skip you until {when}"),
                "available",
            )
        }
    }
}

/// "Mon Dec 7"; with the year when it is not this year's: "Mon Jan 4, 2027".
fn day(date: NaiveDate, today: NaiveDate) -> String {
    if date.year() == today.year() {
        date.format("%a %b %-d").to_string()
    } else {
        date.format("%a %b %-d, %Y").to_string()
    }
}

fn clock(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

fn hours_words(hours: Option<(NaiveTime, NaiveTime)>, tz: Tz) -> String {
    match hours {
        Some((start, end)) => format!(
            "Working hours: {}\u{2013}{} every day ({})",
            clock(start),
            clock(end),
            tz.name()
        ),
        None => "Working hours: any hour".to_owned(),
    }
}

/// The first and last day a vacation may end on: tomorrow, and a year from today.
fn vacation_bounds(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    (
        today + Days::new(1),
        today
            .checked_add_days(Days::new(MAX_DAYS_AHEAD))
            .unwrap_or(today),
    )
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    error: Option<String>,
    typed: Option<NaiveDate>,
) -> Result<String> {
    let mut conn = state.pool.acquire().await?;
    let row = rows::agent(&mut conn, viewer.brokerage, viewer.agent_id)
        .await?
        .ok_or(Error::NotFound)?;
    drop(conn);
    let now = state.clock.now();
    let agent = routing_agent(&row);
    let (code, words, current) = state_words(now, viewer.tz, &agent);
    let today = now.with_timezone(&viewer.tz).date_naive();
    let (min, max) = vacation_bounds(today);
    let back_on = match (typed, agent.availability) {
        (Some(d), _) => d,
        (None, Availability::Vacation { back_on }) if current == "vacation" => back_on,
        _ => min,
    };
    Ok(MePage {
        layout: Layout::of(viewer, "me"),
        name: row.name,
        hours: hours_words(agent.hours, viewer.tz),
        state: code,
        words,
        current,
        back_on: back_on.to_string(),
        min: min.to_string(),
        max: max.to_string(),
        error,
    }
    .render()?)
}

/// `GET /me`.
async fn me_page(State(state): State<AppState>, viewer: Viewer) -> Result<Response> {
    Ok(Html(render(&state, &viewer, None, None).await?).into_response())
}

#[derive(Deserialize)]
struct AvailabilityForm {
    #[serde(default)]
    availability: String,
    #[serde(default)]
    back_on: String,
}

/// What the form asks for, checked against `today` (the brokerage's date): a known state, and
/// for a vacation the day they are back, after today and at most a year ahead. The refusal's
/// code (for the log) and words (for the person).
fn chosen(
    form: &AvailabilityForm,
    today: NaiveDate,
) -> std::result::Result<Availability, (&'static str, String)> {
    match form.availability.as_str() {
        "available" => Ok(Availability::Available),
        "away" => Ok(Availability::Away),
        "vacation" => {
            let typed = form.back_on.trim();
            let Ok(back_on) = NaiveDate::parse_from_str(typed, "%Y-%m-%d") else {
                return Err((
                    "no_date",
                    "Pick the day you are back from vacation; nothing was changed.".to_owned(),
                ));
            };
            let (first, last) = vacation_bounds(today);
            if back_on < first {
                return Err((
                    "not_after_today",
                    format!(
                        "The day you are back must be after today ({}); nothing was changed.",
                        day(today, today)
                    ),
                ));
            }
            if back_on > last {
                return Err((
                    "too_far",
                    format!(
                        "The day you are back can be at most {MAX_DAYS_AHEAD} days ahead ({} at the latest); nothing was changed.",
                        day(last, today)
                    ),
                ));
            }
            Ok(Availability::Vacation { back_on })
        }
        _ => Err((
            "unknown_state",
            "Choose Available, Away or On vacation; nothing was changed.".to_owned(),
        )),
    }
}

/// `POST /me/availability`: the signed-in person's own state, then back to `/me` (303).
async fn set_availability(
    State(state): State<AppState>,
    Posted { viewer, form }: Posted<AvailabilityForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let today = now.with_timezone(&viewer.tz).date_naive();
    let wanted = match chosen(&form, today) {
        Ok(a) => a,
        Err((reason, words)) => {
            tracing::info!(
                user_id = viewer.user_id,
                agent_id = viewer.agent_id,
                reason,
                "availability refused"
            );
            let typed = NaiveDate::parse_from_str(form.back_on.trim(), "%Y-%m-%d").ok();
            let page = render(&state, &viewer, Some(words), typed).await?;
            return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
        }
    };
    let back_on = match wanted {
        Availability::Vacation { back_on } => Some(back_on),
        Availability::Available | Availability::Away => None,
    };
    let mut conn = state.pool.acquire().await?;
    rows::set_availability(
        &mut conn,
        viewer.brokerage,
        viewer.agent_id,
        wanted.as_str(),
        back_on,
        now,
    )
    .await?;
    tracing::info!(
        user_id = viewer.user_id,
        agent_id = viewer.agent_id,
        availability = wanted.as_str(),
        back_on = back_on.map(|d| d.to_string()),
        "availability set"
    );
    Ok(Redirect::to("/me").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NY: Tz = chrono_tz::America::New_York;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn hm(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap_or_default()
    }

    fn agent(hours: Option<(&str, &str)>, availability: Availability) -> routing::Agent {
        routing::Agent {
            agent_id: 1,
            weight: 1,
            hours: hours.map(|(s, e)| (hm(s), hm(e))),
            availability,
            languages: Vec::new(),
        }
    }

    fn form(availability: &str, back_on: &str) -> AvailabilityForm {
        AvailabilityForm {
            availability: availability.to_owned(),
            back_on: back_on.to_owned(),
        }
    }

    #[test]
    fn the_state_in_plain_words() {
        // Friday 2026-06-12, 10:00 in New York.
        let now = at("2026-06-12T14:00:00Z");
        let nine_to_six = Some(("09:00", "18:00"));
        let cases = [
            (
                agent(None, Availability::Available),
                "available",
                "Available: new leads come to you",
                "available",
            ),
            (
                agent(nine_to_six, Availability::Away),
                "away",
                "Away: leads skip you until you switch back",
                "away",
            ),
            (
                agent(
                    None,
                    Availability::Vacation {
                        back_on: date("2026-12-07"),
                    },
                ),
                "vacation",
                "On vacation: back on Mon Dec 7. Leads skip you until then",
                "vacation",
            ),
            (
                agent(
                    None,
                    Availability::Vacation {
                        back_on: date("2027-01-04"),
                    },
                ),
                "vacation",
                "On vacation: back on Mon Jan 4, 2027. Leads skip you until then",
                "vacation",
            ),
            // The day they are back has come: the vacation is over by itself.
            (
                agent(
                    None,
                    Availability::Vacation {
                        back_on: date("2026-06-12"),
                    },
                ),
                "available",
                "Available: new leads come to you",
                "available",
            ),
            (
                agent(Some(("11:00", "18:00")), Availability::Available),
                "off_hours",
                "Outside your working hours: leads skip you until 11:00",
                "available",
            ),
            (
                agent(Some(("06:00", "09:30")), Availability::Available),
                "off_hours",
                "Outside your working hours: leads skip you until 06:00 tomorrow",
                "available",
            ),
        ];
        for (agent, code, words, current) in cases {
            let got = state_words(now, NY, &agent);
            assert_eq!(got, (code, words.to_owned(), current), "{agent:?}");
        }
    }

    #[test]
    fn working_hours_are_read_from_the_setup_file() {
        assert_eq!(
            hours_words(Some((hm("09:00"), hm("18:00"))), NY),
            "Working hours: 09:00\u{2013}18:00 every day (America/New_York)"
        );
        assert_eq!(hours_words(None, NY), "Working hours: any hour");
    }

    #[test]
    fn a_vacation_ends_after_today_and_within_a_year() {
        let today = date("2026-06-12");
        assert_eq!(
            chosen(&form("available", ""), today),
            Ok(Availability::Available)
        );
        // A date sent along with another state is not stored.
        assert_eq!(
            chosen(&form("away", "2026-06-20"), today),
            Ok(Availability::Away)
        );
        assert_eq!(
            chosen(&form("vacation", "2026-06-13"), today),
            Ok(Availability::Vacation {
                back_on: date("2026-06-13")
            })
        );
        assert_eq!(
            chosen(&form("vacation", "2027-06-12"), today),
            Ok(Availability::Vacation {
                back_on: date("2027-06-12")
            })
        );
        let refused = |f: AvailabilityForm| chosen(&f, today).map_err(|(code, _)| code);
        assert_eq!(
            refused(form("vacation", "2026-06-12")),
            Err("not_after_today")
        );
        assert_eq!(
            refused(form("vacation", "2026-06-01")),
            Err("not_after_today")
        );
        assert_eq!(refused(form("vacation", "2027-06-13")), Err("too_far"));
        assert_eq!(refused(form("vacation", "")), Err("no_date"));
        assert_eq!(refused(form("vacation", "06/20/2026")), Err("no_date"));
        assert_eq!(refused(form("vacation", "2026-02-30")), Err("no_date"));
        assert_eq!(refused(form("holiday", "2026-06-20")), Err("unknown_state"));
        assert_eq!(refused(form("", "")), Err("unknown_state"));
        assert_eq!(refused(form("Away", "")), Err("unknown_state"));
    }
}
