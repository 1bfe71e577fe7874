//! `/dashboard`: the recovery funnel for managers and admins (docs/inbox.md
//! "The dashboard"), by period, number, office and agent, with its CSV export and the admins'
//! configuration-alert banner; then the calls answered and missed, speed to lead, and claims
//! and reassignments (README.md "Routing"). Agents get 403; a manager sees their office only.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::auth::{Posted, Viewer};
use super::inbox::parse_id;
use super::pages::Layout;
use super::{AppState, Error, Result};
use crate::domain::alerts::admin_reason;
use crate::domain::decision_text::past_time;
use crate::domain::funnel::{
    self, CHART_H, CHART_W, Group, HourBar, Period, Tally, duration_words, percent,
};
use crate::domain::language::Language;
use crate::domain::phone::display;
use crate::store::dashboard::{
    self, AgentCallRow, CallRateRow, Names, ReplyRow, RoutingRow, Slice, SpeedRow, WebLeadRow,
};
use crate::store::inbox;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard_page))
        .route("/dashboard/export.csv", get(export))
        .route("/dashboard/alerts/{id}/dismiss", post(dismiss))
        .route("/dashboard/suppressions.csv", get(suppressions))
}

#[derive(Debug, Deserialize, Default)]
pub struct DashQuery {
    period: Option<String>,
    office: Option<String>,
    number: Option<String>,
    agent: Option<String>,
}

/// The slice asked for, checked against the brokerage's own offices, numbers and agents (an id
/// that is not the brokerage's is a 404) and the person's role (a manager sees their office).
struct Asked {
    period: Period,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
}

fn optional_id(raw: &Option<String>) -> Result<Option<i64>> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse_id(s).map(Some),
    }
}

fn asked(state: &AppState, viewer: &Viewer, q: &DashQuery, names: &Names) -> Result<Asked> {
    if !viewer.role.sees_dashboard() {
        return Err(Error::Forbidden(
            "The dashboard is for managers and admins.",
        ));
    }
    let period = q
        .period
        .as_deref()
        .map_or(Some(Period::Today), Period::parse)
        .ok_or(Error::NotFound)?;
    let mut office = optional_id(&q.office)?;
    let number = optional_id(&q.number)?;
    let agent = optional_id(&q.agent)?;
    if let Some(own) = viewer.scope().dashboard_office() {
        if office.is_some_and(|o| o != own) {
            return Err(Error::NotFound);
        }
        office = Some(own);
    }
    let known_office = |o: i64| names.offices.iter().any(|(id, _)| *id == o);
    if office.is_some_and(|o| !known_office(o))
        || number.is_some_and(|n| {
            !names
                .numbers
                .iter()
                .any(|(id, _, _, o)| *id == n && office.is_none_or(|x| x == *o))
        })
        || agent.is_some_and(|a| !names.agents.iter().any(|(id, _, _)| *id == a))
    {
        return Err(Error::NotFound);
    }
    let now = state.clock.now();
    Ok(Asked {
        period,
        from: period.start(now, viewer.tz),
        until: now,
        slice: Slice {
            office_id: office,
            number_id: number,
            agent_id: agent,
        },
    })
}

pub struct PeriodLink {
    query: String,
    label: &'static str,
    on: bool,
}

pub struct Choice {
    id: i64,
    label: String,
    on: bool,
}

pub struct Stage {
    label: &'static str,
    count: i64,
    pct: String,
    of: &'static str,
}

impl Stage {
    /// The share is shown in green only when it is not zero.
    fn pct_class(&self) -> &'static str {
        if self.count > 0 { "pct" } else { "pct zero" }
    }
}

pub struct Line {
    label: String,
    count: i64,
}

pub struct VariantView {
    n: i64,
    text: String,
    sent: i64,
    replied: i64,
    rate: String,
}

pub struct GroupRowView {
    name: String,
    /// "–" for an agent: a miss has no agent until it is a lead.
    missed: String,
    leads: i64,
    texted: i64,
    replied: i64,
    human: i64,
    answered: i64,
    median_text: String,
    median_reply: String,
}

pub struct GroupTable {
    title: &'static str,
    column: &'static str,
    rows: Vec<GroupRowView>,
}

/// A number's calls: answered and missed, of all with an outcome.
pub struct CallRateView {
    name: String,
    calls: i64,
    answered: i64,
    missed: i64,
    answer_rate: String,
    missed_rate: String,
}

/// An agent's calls: the ones that rang them (with a known answerer), and the ones they took.
pub struct AgentCallView {
    name: String,
    rang: i64,
    answered: i64,
    rate: String,
}

pub struct SpeedView {
    name: String,
    alerted: i64,
    answered: i64,
    median: String,
    p90: String,
}

pub struct RoutingView {
    name: String,
    routed: i64,
    offered: i64,
    claimed: i64,
    median_claim: String,
    moved_away: i64,
    moved_to: i64,
}

pub struct BannerView {
    id: i64,
    text: String,
    when: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    csrf: String,
    periods: Vec<PeriodLink>,
    period_key: &'static str,
    period_label: &'static str,
    offices: Vec<Choice>,
    numbers: Vec<Choice>,
    agents: Vec<Choice>,
    office_fixed: Option<String>,
    banner: Vec<BannerView>,
    can_dismiss: bool,
    stages: Vec<Stage>,
    not_texted: Vec<Line>,
    median_text: String,
    median_reply: String,
    waiting: i64,
    escalated: i64,
    delivery_rate: String,
    delivered: i64,
    sent: i64,
    opt_out_rate: String,
    opted_out: i64,
    recipients: i64,
    suppressed: Vec<Line>,
    /// Follow-ups are switched off by a rule textback cannot satisfy yet (docs/compliance.md R12).
    follow_ups_off: Option<&'static str>,
    variants: Vec<VariantView>,
    bars: Vec<HourBar>,
    /// Leads per day beside the previous period's (7 and 30 days).
    trend: Vec<funnel::TrendDay>,
    trend_w: u32,
    trend_h: u32,
    days: i64,
    zone_name: String,
    chart_w: u32,
    chart_h: u32,
    groups: Vec<GroupTable>,
    export_query: String,
    /// The slice's calls, then by number (the missed-call rate first: what a brokerage asks).
    calls: CallRateView,
    call_rates: Vec<CallRateView>,
    agent_calls: Vec<AgentCallView>,
    /// Calls that rang several agents of a number that does not screen: who answered is unknown.
    unknown_answerer: i64,
    speed: Vec<SpeedView>,
    routing: Vec<RoutingView>,
    /// Offers nobody claimed in time; leads handed to the managers.
    timed_out: i64,
    to_managers: i64,
    /// Leads from the website and lead sources, by source, and their total (none: no web lead).
    web_leads: Vec<WebLeadView>,
    web_total: Option<WebLeadView>,
}

fn reason_words(reason: &str) -> String {
    match reason {
        "opted_out" => "opted out".into(),
        "review_hold" => "possible opt-out awaiting review".into(),
        "cap_reached" => "3 texts in 24 hours already".into(),
        "invalid_number" => "invalid number".into(),
        "outside_us" => "outside the US".into(),
        "line_type" => "landline or other line that cannot take texts".into(),
        "inquiry_expired" => "last contact over 3 months ago".into(),
        "no_consent_basis" => "never called or texted".into(),
        "carrier_answered" => "the carrier answered the keyword".into(),
        "already_confirmed" => "opt-out already confirmed".into(),
        "response_late" => "keyword answer would be late".into(),
        "sequence_ended" => "follow-ups ended".into(),
        "no_written_consent" => "follow-up needs written consent, and none is on record".into(),
        "cannot_receive" => "the carrier said the number cannot take texts".into(),
        "no_window" => "no allowed time within 14 days".into(),
        "gate_error" => "rules could not be checked".into(),
        other => other.replace('_', " "),
    }
}

fn group_name(names: &Names, group: Group) -> String {
    match group {
        Group::Number(id) => names
            .numbers
            .iter()
            .find(|(n, _, _, _)| *n == id)
            .map(|(_, e164, listing, _)| match listing {
                Some(l) => format!("{} ({l})", display(e164)),
                None => display(e164),
            })
            .unwrap_or_else(|| format!("number {id}")),
        Group::Office(id) => names
            .offices
            .iter()
            .find(|(o, _)| *o == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| format!("office {id}")),
        Group::Agent(Some(id)) => names
            .agents
            .iter()
            .find(|(a, _, _)| *a == id)
            .map(|(_, name, _)| name.clone())
            .unwrap_or_else(|| format!("agent {id}")),
        Group::Agent(None) => "Unassigned".into(),
        Group::Hour(h) => format!("{h}:00"),
        Group::Variant(v) => format!("variant {}", v + 1),
        Group::Language(l) => l.name().to_owned(),
        Group::All => "All".into(),
    }
}

/// `group`'s kind and id as the reply-time rows (and the CSV) name them.
fn group_key(group: Group) -> (&'static str, Option<i64>) {
    match group {
        Group::All => ("all", None),
        Group::Number(id) => ("number", Some(id)),
        Group::Office(id) => ("office", Some(id)),
        Group::Agent(id) => ("agent", id),
        Group::Hour(h) => ("hour", Some(i64::from(h))),
        Group::Variant(v) => ("variant", Some(i64::from(v))),
        Group::Language(l) => ("language", Some(i64::from(l == Language::Es))),
    }
}

/// Everything the page and the export show, read in one place.
struct Data {
    funnel: std::collections::BTreeMap<Group, Tally>,
    replies: Vec<ReplyRow>,
    delivery: dashboard::DeliveryRow,
    suppressed: Vec<(String, i64)>,
    templates: Vec<String>,
    /// Leads and texted per local day over this period and the one before (none for Today).
    by_day: Vec<(chrono::NaiveDate, i64, i64)>,
    call_rates: Vec<CallRateRow>,
    agent_calls: Vec<AgentCallRow>,
    speed: Vec<SpeedRow>,
    routing: Vec<RoutingRow>,
    /// Leads from the website and lead sources, by source (docs/leads.md).
    web_leads: Vec<WebLeadRow>,
}

impl Data {
    fn all(&self) -> Tally {
        self.funnel.get(&Group::All).cloned().unwrap_or_default()
    }

    fn reply(&self, group: Group) -> Option<&ReplyRow> {
        let (kind, id) = group_key(group);
        self.replies
            .iter()
            .find(|r| r.group_kind == kind && r.group_id == id)
    }
}

/// The page's queries on two connections at once: the leads, then the calls and routing per
/// agent, on one; the rest in turn on the other. PostgreSQL runs the two on separate cores
/// (measured on 2 cores: the 30-day page's wall time about halves), and a dashboard never holds
/// more than two of the pool's connections, which the webhooks share.
async fn read(state: &AppState, viewer: &Viewer, a: &Asked) -> Result<Data> {
    let b = viewer.brokerage;
    let zone = viewer.tz.name();
    let pool = &state.pool;
    let ((facts, people), (missed, replies, delivery, suppressed, templates, by_day, web_leads)) =
        tokio::try_join!(
            async {
                let mut c = pool.acquire().await?;
                Ok::<_, crate::store::Error>((
                    dashboard::lead_facts(&mut c, b, a.from, a.until, a.slice, zone).await?,
                    (
                        dashboard::call_rates(&mut c, b, a.from, a.until, a.slice).await?,
                        dashboard::agent_call_rates(&mut c, b, a.from, a.until, a.slice).await?,
                        dashboard::speed_to_lead(&mut c, b, a.from, a.until, a.slice).await?,
                        dashboard::routing(&mut c, b, a.from, a.until, a.slice).await?,
                    ),
                ))
            },
            async {
                let mut c = pool.acquire().await?;
                Ok::<_, crate::store::Error>((
                    dashboard::missed_calls(&mut c, b, a.from, a.until, a.slice).await?,
                    dashboard::reply_times(&mut c, b, a.from, a.until, a.slice).await?,
                    dashboard::delivery(&mut c, b, a.from, a.until, a.slice).await?,
                    dashboard::suppressed_by_reason(&mut c, b, a.from, a.until, a.slice).await?,
                    dashboard::templates(&mut c, b).await?,
                    if a.period == Period::Today {
                        Vec::new()
                    } else {
                        let before = a.period.previous_start(a.until, viewer.tz);
                        dashboard::leads_by_day(&mut c, b, before, a.until, a.slice, zone).await?
                    },
                    dashboard::web_leads(&mut c, b, a.from, a.until, a.slice).await?,
                ))
            },
        )?;
    let (call_rates, agent_calls, speed, routing) = people;
    let mut funnel = funnel::tally(&facts);
    for (group, count) in missed {
        funnel.entry(group).or_default().missed_calls = Some(count);
    }
    for (group, t) in funnel.iter_mut() {
        if matches!(group, Group::All | Group::Number(_) | Group::Office(_)) {
            t.missed_calls.get_or_insert(0);
        }
    }
    Ok(Data {
        funnel,
        replies,
        delivery,
        suppressed,
        templates,
        by_day,
        call_rates,
        agent_calls,
        speed,
        routing,
        web_leads,
    })
}

/// A row of "Leads from the website": a source, or the total.
pub struct WebLeadView {
    pub name: String,
    pub received: i64,
    pub texted: i64,
    pub replied: i64,
    pub answered: i64,
    pub reply_rate: String,
}

/// The web leads' rows (busiest source first) and their total; none when there were none.
fn web_lead_views(data: &Data) -> (Vec<WebLeadView>, Option<WebLeadView>) {
    let view = |name: String, r: &WebLeadRow| WebLeadView {
        name,
        received: r.received,
        texted: r.texted,
        replied: r.replied,
        answered: r.answered,
        reply_rate: percent(r.replied, r.texted),
    };
    let total = data
        .web_leads
        .iter()
        .find(|r| r.source.is_none())
        .filter(|r| r.received > 0)
        .map(|r| view("All".to_owned(), r));
    let mut rows: Vec<WebLeadView> = data
        .web_leads
        .iter()
        .filter_map(|r| r.source.clone().map(|s| view(s, r)))
        .collect();
    rows.sort_by(|x, y| y.received.cmp(&x.received).then(x.name.cmp(&y.name)));
    (rows, total)
}

/// The calls, speed to lead and routing sections, as the page shows them: per number and per
/// agent, the busiest first.
struct People {
    calls: CallRateView,
    call_rates: Vec<CallRateView>,
    agent_calls: Vec<AgentCallView>,
    unknown_answerer: i64,
    speed: Vec<SpeedView>,
    routing: Vec<RoutingView>,
    timed_out: i64,
    to_managers: i64,
}

impl People {
    fn of(names: &Names, data: &Data) -> People {
        let agent = |id: i64| group_name(names, Group::Agent(Some(id)));
        let rate = |name: String, r: &CallRateRow| CallRateView {
            name,
            calls: r.calls,
            answered: r.answered,
            missed: r.missed,
            answer_rate: percent(r.answered, r.calls),
            missed_rate: percent(r.missed, r.calls),
        };
        let total = data
            .call_rates
            .iter()
            .find(|r| r.number_id.is_none())
            .cloned()
            .unwrap_or_default();
        let mut call_rates: Vec<CallRateView> = data
            .call_rates
            .iter()
            .filter_map(|r| {
                r.number_id
                    .map(|n| rate(group_name(names, Group::Number(n)), r))
            })
            .collect();
        call_rates.sort_by(|x, y| y.calls.cmp(&x.calls).then(x.name.cmp(&y.name)));
        let mut agent_calls: Vec<AgentCallView> = data
            .agent_calls
            .iter()
            .filter(|r| r.rang > 0)
            .filter_map(|r| {
                r.agent_id.map(|id| AgentCallView {
                    name: agent(id),
                    rang: r.rang,
                    answered: r.answered,
                    rate: percent(r.answered, r.rang),
                })
            })
            .collect();
        agent_calls.sort_by(|x, y| y.rang.cmp(&x.rang).then(x.name.cmp(&y.name)));
        let mut speed: Vec<SpeedView> = data
            .speed
            .iter()
            .map(|r| SpeedView {
                name: agent(r.agent_id),
                alerted: r.alerted,
                answered: r.answered,
                median: duration_words(r.median_secs),
                p90: duration_words(r.p90_secs),
            })
            .collect();
        speed.sort_by(|x, y| y.alerted.cmp(&x.alerted).then(x.name.cmp(&y.name)));
        let whole = data.routing.iter().find(|r| r.whole);
        let mut routing: Vec<RoutingView> = data
            .routing
            .iter()
            .filter(|r| {
                !r.whole && r.routed + r.offered + r.claimed + r.moved_away + r.moved_to > 0
            })
            .filter_map(|r| {
                r.agent_id.map(|id| RoutingView {
                    name: agent(id),
                    routed: r.routed,
                    offered: r.offered,
                    claimed: r.claimed,
                    median_claim: duration_words(r.median_claim_secs),
                    moved_away: r.moved_away,
                    moved_to: r.moved_to,
                })
            })
            .collect();
        routing.sort_by(|x, y| {
            (y.routed + y.claimed)
                .cmp(&(x.routed + x.claimed))
                .then(x.name.cmp(&y.name))
        });
        People {
            calls: rate("All".to_owned(), &total),
            call_rates,
            agent_calls,
            unknown_answerer: data
                .agent_calls
                .iter()
                .find(|r| r.agent_id.is_none())
                .map_or(0, |r| r.unknown),
            speed,
            routing,
            timed_out: whole.map_or(0, |r| r.timed_out),
            to_managers: whole.map_or(0, |r| r.to_managers),
        }
    }
}

fn query_string(a: &Asked) -> String {
    query_for(a, a.period)
}

/// The same slice (office, number, agent) over `period`: the period links keep the filters.
fn query_for(a: &Asked, period: Period) -> String {
    let mut q = format!("period={}", period.key());
    for (k, v) in [
        ("office", a.slice.office_id),
        ("number", a.slice.number_id),
        ("agent", a.slice.agent_id),
    ] {
        if let Some(v) = v {
            q.push_str(&format!("&{k}={v}"));
        }
    }
    q
}

/// `GET /dashboard`.
async fn dashboard_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<DashQuery>,
) -> Result<Html<String>> {
    let names = {
        let mut conn = state.pool.acquire().await?;
        dashboard::names(&mut conn, viewer.brokerage).await?
    };
    let a = asked(&state, &viewer, &q, &names)?;
    let data = read(&state, &viewer, &a).await?;
    let now = state.clock.now();
    let all = data.all();
    let replies_all = data.reply(Group::All);
    let stages = vec![
        Stage {
            label: "Missed calls",
            count: all.missed_calls.unwrap_or(0),
            pct: String::new(),
            of: "",
        },
        Stage {
            label: "Missed-call leads",
            count: all.leads,
            pct: String::new(),
            of: "one per caller and episode",
        },
        Stage {
            label: "Texted back",
            count: all.texted,
            pct: percent(all.texted, all.leads),
            of: "of leads",
        },
        Stage {
            label: "Replied",
            count: all.replied,
            pct: percent(all.replied, all.texted),
            of: "of those texted",
        },
        Stage {
            label: "First human reply",
            count: all.human_replied,
            pct: percent(all.human_replied, all.replied),
            of: "of those who replied",
        },
        Stage {
            label: "Call connected",
            count: all.answered,
            pct: percent(all.answered, all.leads),
            of: "of leads",
        },
    ];
    let mut not_texted = Vec::new();
    for (label, count) in [
        ("Held back by the rules", all.suppressed),
        ("Landline: callback task", all.landline),
        ("Caller reconnected first", all.reconnected),
        ("Caller texted first", all.wrote_first),
        ("Stopped otherwise", all.cancelled_other),
        ("Waiting to go", all.pending),
        ("May not have gone out (review)", all.maybe_texted),
        ("Could not be sent", all.failed),
    ] {
        if count > 0 {
            not_texted.push(Line {
                label: label.to_owned(),
                count,
            });
        }
    }
    let mut groups = Vec::new();
    for (kind, title, column) in [
        ("number", "By number", "Number"),
        ("office", "By office", "Office"),
        ("agent", "By agent", "Agent"),
        ("language", "By language", "Language"),
    ] {
        let mut rows: Vec<GroupRowView> = data
            .funnel
            .iter()
            .filter(|(g, _)| group_key(**g).0 == kind)
            .map(|(g, r)| {
                let rep = data.reply(*g);
                GroupRowView {
                    name: group_name(&names, *g),
                    missed: r
                        .missed_calls
                        .map_or_else(|| "–".to_owned(), |m| m.to_string()),
                    leads: r.leads,
                    texted: r.texted,
                    replied: r.replied,
                    human: r.human_replied,
                    answered: r.answered,
                    median_text: duration_words(r.median_text_secs),
                    median_reply: duration_words(rep.and_then(|x| x.median_secs)),
                }
            })
            .collect();
        rows.sort_by(|x, y| y.leads.cmp(&x.leads).then(x.name.cmp(&y.name)));
        // A brokerage whose leads all write one language needs no table of one row.
        if kind == "language" && rows.len() < 2 {
            continue;
        }
        if !rows.is_empty() {
            groups.push(GroupTable {
                title,
                column,
                rows,
            });
        }
    }
    // Configuration alerts are the admins' (a manager's view is their office's).
    let banner = if viewer.role.dismisses_alerts() {
        let mut conn = state.pool.acquire().await?;
        inbox::banner(&mut conn, viewer.brokerage).await?
    } else {
        Vec::new()
    };
    let office_fixed = viewer
        .scope()
        .dashboard_office()
        .map(|_| viewer.office_name.clone());
    let follow_ups_off = {
        let mut conn = state.pool.acquire().await?;
        let rules = crate::store::gate::brokerage_rules(&mut conn, viewer.brokerage).await?;
        let steps = crate::store::brokerages::follow_up_steps(&mut conn, viewer.brokerage).await?;
        (rules.compliance.followups_need_written_consent && !steps.is_empty()).then_some(
            "Follow-ups go only to callers whose written consent is on record (followups_need_written_consent = true): a lead sent through the lead API brings it; a caller who only called or texted gets none. Set it to false to send them to callers who called or texted in the last three months.",
        )
    };
    let people = People::of(&names, &data);
    let (web_leads, web_total) = web_lead_views(&data);
    let page = DashboardPage {
        layout: Layout::of(&viewer, "dashboard"),
        csrf: viewer.csrf.clone(),
        periods: Period::ALL
            .into_iter()
            .map(|p| PeriodLink {
                query: query_for(&a, p),
                label: p.label(),
                on: p == a.period,
            })
            .collect(),
        period_key: a.period.key(),
        period_label: a.period.label(),
        offices: names
            .offices
            .iter()
            .map(|(id, name)| Choice {
                id: *id,
                label: name.clone(),
                on: a.slice.office_id == Some(*id),
            })
            .collect(),
        numbers: names
            .numbers
            .iter()
            .filter(|(_, _, _, o)| a.slice.office_id.is_none_or(|x| x == *o))
            .map(|(id, e164, listing, _)| Choice {
                id: *id,
                label: match listing {
                    Some(l) => format!("{} ({l})", display(e164)),
                    None => display(e164),
                },
                on: a.slice.number_id == Some(*id),
            })
            .collect(),
        agents: names
            .agents
            .iter()
            .filter(|(_, _, o)| a.slice.office_id.is_none_or(|x| x == *o))
            .map(|(id, name, _)| Choice {
                id: *id,
                label: name.clone(),
                on: a.slice.agent_id == Some(*id),
            })
            .collect(),
        office_fixed,
        banner: banner
            .into_iter()
            .map(|b| BannerView {
                id: b.alert_id,
                text: admin_reason(&b.reason, b.detail.as_deref()),
                when: past_time(b.created_at, now, viewer.tz),
            })
            .collect(),
        can_dismiss: viewer.role.dismisses_alerts(),
        stages,
        not_texted,
        median_text: duration_words(all.median_text_secs),
        median_reply: duration_words(replies_all.and_then(|r| r.median_secs)),
        waiting: replies_all.map_or(0, |r| r.waiting),
        escalated: replies_all.map_or(0, |r| r.escalated),
        delivery_rate: percent(data.delivery.delivered, data.delivery.sent),
        delivered: data.delivery.delivered,
        sent: data.delivery.sent,
        opt_out_rate: percent(data.delivery.opted_out, data.delivery.recipients),
        opted_out: data.delivery.opted_out,
        recipients: data.delivery.recipients,
        suppressed: data
            .suppressed
            .iter()
            .map(|(r, c)| Line {
                label: reason_words(r),
                count: *c,
            })
            .collect(),
        follow_ups_off,
        variants: data
            .funnel
            .iter()
            .filter_map(|(g, t)| match g {
                Group::Variant(n) => Some(VariantView {
                    n: i64::from(*n) + 1,
                    text: usize::try_from(*n)
                        .ok()
                        .and_then(|i| data.templates.get(i))
                        .map(
                            |source| match crate::domain::template::Template::parse(source) {
                                Ok(t) => t.preview(&viewer.brokerage_name),
                                Err(_) => source.clone(),
                            },
                        )
                        .unwrap_or_else(|| "(a variant no longer in the setup file)".into()),
                    sent: t.leads,
                    replied: t.replied,
                    rate: percent(t.replied, t.leads),
                }),
                _ => None,
            })
            .collect(),
        bars: {
            let mut missed = [0i64; 24];
            let mut texted = [0i64; 24];
            for (g, t) in &data.funnel {
                if let Group::Hour(h) = g
                    && let Some(slot) = usize::try_from(*h).ok().filter(|h| *h < 24)
                {
                    missed[slot] = t.leads;
                    texted[slot] = t.texted;
                }
            }
            funnel::hour_chart(&missed, &texted)
        },
        trend: if a.period == Period::Today {
            Vec::new()
        } else {
            funnel::trend(
                &data.by_day,
                a.from.with_timezone(&viewer.tz).date_naive(),
                a.period.days(),
            )
        },
        trend_w: funnel::TREND_W,
        trend_h: funnel::TREND_H,
        days: a.period.days(),
        zone_name: crate::domain::decision_text::zone_name(viewer.tz.name()).to_owned(),
        chart_w: CHART_W,
        chart_h: CHART_H,
        groups,
        export_query: query_string(&a),
        calls: people.calls,
        call_rates: people.call_rates,
        agent_calls: people.agent_calls,
        unknown_answerer: people.unknown_answerer,
        speed: people.speed,
        routing: people.routing,
        timed_out: people.timed_out,
        to_managers: people.to_managers,
        web_leads,
        web_total,
    };
    Ok(Html(page.render()?))
}

/// `GET /dashboard/export.csv`: the funnel rows of the page (the whole slice, then by number,
/// office and agent). Aggregates only: no phone number or message in it.
async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<DashQuery>,
) -> Result<Response> {
    let names = {
        let mut conn = state.pool.acquire().await?;
        dashboard::names(&mut conn, viewer.brokerage).await?
    };
    let a = asked(&state, &viewer, &q, &names)?;
    let data = read(&state, &viewer, &a).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "period_start",
        "period_end",
        "group",
        "name",
        "missed_calls",
        "leads",
        "texted",
        "suppressed",
        "landline_tasks",
        "reconnected",
        "texted_first",
        "replied",
        "first_human_reply",
        "call_connected",
        "median_missed_to_text_secs",
        "median_reply_to_human_secs",
        "replies_waiting",
    ];
    let fail = |e: csv::Error| Error::Internal(e.into());
    out.write_record(header).map_err(fail)?;
    // The whole slice, then by number, office, agent and language (the groups' order).
    let rows = data.funnel.iter().filter(|(g, _)| {
        matches!(
            g,
            Group::All | Group::Number(_) | Group::Office(_) | Group::Agent(_) | Group::Language(_)
        )
    });
    let secs = |v: Option<f64>| v.map(|s| format!("{s:.0}")).unwrap_or_default();
    for (g, r) in rows {
        let rep = data.reply(*g);
        out.write_record([
            // In the brokerage's zone, with the offset: what a manager reads the day by.
            a.from
                .with_timezone(&viewer.tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            a.until
                .with_timezone(&viewer.tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            group_key(*g).0.to_owned(),
            group_name(&names, *g),
            r.missed_calls.map(|m| m.to_string()).unwrap_or_default(),
            r.leads.to_string(),
            r.texted.to_string(),
            r.suppressed.to_string(),
            r.landline.to_string(),
            r.reconnected.to_string(),
            r.wrote_first.to_string(),
            r.replied.to_string(),
            r.human_replied.to_string(),
            r.answered.to_string(),
            secs(r.median_text_secs),
            secs(rep.and_then(|x| x.median_secs)),
            rep.map_or(0, |x| x.waiting).to_string(),
        ])
        .map_err(fail)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| Error::Internal(anyhow::anyhow!("csv: {e}")))?;
    let file = format!(
        "attachment; filename=\"textback-funnel-{}.csv\"",
        a.period.key()
    );
    tracing::info!(user_id = viewer.user_id, "funnel exported");
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, file),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /dashboard/suppressions.csv`: the brokerage's do-not-text list with who, when and why
/// (docs/compliance.md R13: for managers and admins; the same columns as `textback dnc export`).
async fn suppressions(State(state): State<AppState>, viewer: Viewer) -> Result<Response> {
    if !viewer.role.sees_dashboard() {
        return Err(Error::Forbidden(
            "The do-not-text list is for managers and admins.",
        ));
    }
    let list = {
        let mut conn = state.pool.acquire().await?;
        crate::store::suppressions::list(&mut conn, viewer.brokerage).await?
    };
    let bytes = crate::domain::dnc::export(list.iter().map(|s| s.exported()), true, viewer.tz)
        .map_err(|e| Error::Internal(e.into()))?;
    tracing::info!(
        user_id = viewer.user_id,
        rows = list.len(),
        "do-not-text list exported"
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"textback-do-not-text.csv\"",
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
struct Nothing {}

/// `POST /dashboard/alerts/{id}/dismiss`: an admin has dealt with a configuration alert.
async fn dismiss(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    if !viewer.role.dismisses_alerts() {
        return Err(Error::Forbidden(
            "Only admins dismiss configuration alerts.",
        ));
    }
    let id = parse_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    if !inbox::dismiss_alert(
        &mut conn,
        viewer.brokerage,
        id,
        &viewer.email,
        state.clock.now(),
    )
    .await?
    {
        return Err(Error::NotFound);
    }
    Ok(Redirect::to("/dashboard").into_response())
}
