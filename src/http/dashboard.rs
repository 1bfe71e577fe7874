//! `/dashboard`: the recovery funnel for managers and admins (DESIGN.md "People-facing pages";
//! issue 6 §5), by period, number, office and agent, with its CSV export and the admins'
//! configuration-alert banner. Agents get 403; a manager sees their office only.

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
use crate::domain::funnel::{self, CHART_H, CHART_W, HourBar, Period, duration_words, percent};
use crate::domain::phone::display;
use crate::store::dashboard::{self, FunnelRow, Names, ReplyRow, Slice};
use crate::store::inbox;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard_page))
        .route("/dashboard/export.csv", get(export))
        .route("/dashboard/alerts/{id}/dismiss", post(dismiss))
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

pub struct Tab {
    key: &'static str,
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

pub struct Line {
    label: String,
    count: i64,
}

pub struct VariantView {
    n: i32,
    text: String,
    sent: i64,
    replied: i64,
    rate: String,
}

pub struct GroupRowView {
    name: String,
    missed: i64,
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
    rows: Vec<GroupRowView>,
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
    periods: Vec<Tab>,
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
    variants: Vec<VariantView>,
    bars: Vec<HourBar>,
    chart_w: u32,
    chart_h: u32,
    groups: Vec<GroupTable>,
    export_query: String,
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
        "no_window" => "no allowed time within 14 days".into(),
        "gate_error" => "rules could not be checked".into(),
        other => other.replace('_', " "),
    }
}

fn group_name(names: &Names, row_kind: &str, id: Option<i64>) -> String {
    match (row_kind, id) {
        ("number", Some(id)) => names
            .numbers
            .iter()
            .find(|(n, _, _, _)| *n == id)
            .map(|(_, e164, listing, _)| match listing {
                Some(l) => format!("{} ({l})", display(e164)),
                None => display(e164),
            })
            .unwrap_or_else(|| format!("number {id}")),
        ("office", Some(id)) => names
            .offices
            .iter()
            .find(|(o, _)| *o == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| format!("office {id}")),
        ("agent", Some(id)) => names
            .agents
            .iter()
            .find(|(a, _, _)| *a == id)
            .map(|(_, name, _)| name.clone())
            .unwrap_or_else(|| format!("agent {id}")),
        ("agent", None) => "Unassigned".into(),
        _ => "All".into(),
    }
}

/// Everything the page and the export show, read in one place.
struct Data {
    funnel: Vec<FunnelRow>,
    replies: Vec<ReplyRow>,
    delivery: dashboard::DeliveryRow,
    suppressed: Vec<(String, i64)>,
    variants: Vec<dashboard::VariantRow>,
    hours: ([i64; 24], [i64; 24]),
    templates: Vec<String>,
}

async fn read(state: &AppState, viewer: &Viewer, a: &Asked) -> Result<Data> {
    let mut conn = state.pool.acquire().await?;
    let b = viewer.brokerage;
    Ok(Data {
        funnel: dashboard::funnel(&mut conn, b, a.from, a.until, a.slice).await?,
        replies: dashboard::reply_times(&mut conn, b, a.from, a.until, a.slice).await?,
        delivery: dashboard::delivery(&mut conn, b, a.from, a.until, a.slice).await?,
        suppressed: dashboard::suppressed_by_reason(&mut conn, b, a.from, a.until, a.slice).await?,
        variants: dashboard::variants(&mut conn, b, a.from, a.until, a.slice).await?,
        hours: dashboard::by_hour(&mut conn, b, a.from, a.until, a.slice, viewer.tz.name()).await?,
        templates: dashboard::templates(&mut conn, b).await?,
    })
}

fn reply_of<'a>(rows: &'a [ReplyRow], kind: &str, id: Option<i64>) -> Option<&'a ReplyRow> {
    rows.iter()
        .find(|r| r.group_kind == kind && r.group_id == id)
}

fn query_string(a: &Asked) -> String {
    let mut q = format!("period={}", a.period.key());
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
    let all = data
        .funnel
        .iter()
        .find(|r| r.group_kind == "all")
        .cloned()
        .unwrap_or_default();
    let replies_all = reply_of(&data.replies, "all", None);
    let stages = vec![
        Stage {
            label: "Missed calls",
            count: all.missed_calls,
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
        ("Suppressed by the rules (below)", all.suppressed),
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
    for (kind, title) in [
        ("number", "By number"),
        ("office", "By office"),
        ("agent", "By agent"),
    ] {
        let mut rows: Vec<GroupRowView> = data
            .funnel
            .iter()
            .filter(|r| r.group_kind == kind)
            .map(|r| {
                let rep = reply_of(&data.replies, kind, r.group_id);
                GroupRowView {
                    name: group_name(&names, kind, r.group_id),
                    missed: r.missed_calls,
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
        if !rows.is_empty() {
            groups.push(GroupTable { title, rows });
        }
    }
    let banner = {
        let mut conn = state.pool.acquire().await?;
        inbox::banner(&mut conn, viewer.brokerage).await?
    };
    let office_fixed = viewer
        .scope()
        .dashboard_office()
        .map(|_| viewer.office_name.clone());
    let page = DashboardPage {
        layout: Layout::of(&viewer, "dashboard"),
        csrf: viewer.csrf.clone(),
        periods: Period::ALL
            .into_iter()
            .map(|p| Tab {
                key: p.key(),
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
        variants: data
            .variants
            .iter()
            .map(|v| VariantView {
                n: v.variant + 1,
                text: usize::try_from(v.variant)
                    .ok()
                    .and_then(|i| data.templates.get(i))
                    .cloned()
                    .unwrap_or_else(|| "(a variant no longer in the setup file)".into()),
                sent: v.sent,
                replied: v.replied,
                rate: percent(v.replied, v.sent),
            })
            .collect(),
        bars: funnel::hour_chart(&data.hours.0, &data.hours.1),
        chart_w: CHART_W,
        chart_h: CHART_H,
        groups,
        export_query: query_string(&a),
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
    let order = |k: &str| match k {
        "all" => 0,
        "number" => 1,
        "office" => 2,
        _ => 3,
    };
    let mut rows: Vec<&FunnelRow> = data.funnel.iter().collect();
    rows.sort_by_key(|r| (order(&r.group_kind), r.group_id));
    let secs = |v: Option<f64>| v.map(|s| format!("{s:.0}")).unwrap_or_default();
    for r in rows {
        let rep = reply_of(&data.replies, &r.group_kind, r.group_id);
        out.write_record([
            a.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            a.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            r.group_kind.clone(),
            group_name(&names, &r.group_kind, r.group_id),
            r.missed_calls.to_string(),
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
