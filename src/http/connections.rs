//! `/connections`: the admins' page of the brokerage's outbound webhooks and Follow Up Boss
//! (docs/webhooks.md "The delivery log"): each subscription's state (active, failing since,
//! paused with a Resume button), and the latest deliveries with their attempts, the receiver's
//! last answer and "Send again".

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::{Posted, Viewer};
use super::inbox::parse_id;
use super::pages::Layout;
use super::{AppState, Error, Result};
use crate::domain::access::Role;
use crate::store::webhooks as rows;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connections", get(page))
        .route("/connections/deliveries/{id}/send-again", post(send_again))
        .route("/connections/subscriptions/{id}/resume", post(resume))
}

/// The deliveries the page lists.
const SHOWN: i64 = 100;

struct SubscriptionRow {
    id: i64,
    name: String,
    what: &'static str,
    url: String,
    events: String,
    /// `active`, `failing` or `paused`: the badge's class.
    state: &'static str,
    words: String,
    pending: i64,
    held: i64,
    failed: i64,
}

struct DeliveryRow {
    id: i64,
    subscription: String,
    event: String,
    webhook_id: String,
    conversation: Option<i64>,
    state: String,
    attempts: i32,
    when: String,
    answer: String,
    next: String,
    can_send_again: bool,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    layout: Layout,
    subscriptions: Vec<SubscriptionRow>,
    deliveries: Vec<DeliveryRow>,
    filter: String,
}

#[derive(Deserialize, Default)]
struct Filter {
    state: Option<String>,
}

fn admin(viewer: &Viewer) -> Result<()> {
    if viewer.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "Only admins see the brokerage's connections.",
        ))
    }
}

fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%b %-d %H:%M:%S").to_string()
}

/// `GET /connections[?state=failed]`.
async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filter): Query<Filter>,
) -> Result<Response> {
    admin(&viewer)?;
    let only = filter.state.as_deref().filter(|s| {
        matches!(
            *s,
            "pending" | "delivering" | "delivered" | "failed" | "held"
        )
    });
    let mut conn = state.pool.acquire().await?;
    let subs = rows::subscriptions(&mut conn, viewer.brokerage).await?;
    let log = rows::log(&mut conn, viewer.brokerage, only, SHOWN).await?;
    drop(conn);
    let tz = viewer.tz;
    let subscriptions = subs
        .into_iter()
        .map(|s| {
            let (badge, words) = match (s.state.as_str(), s.failing_since) {
                ("paused", _) => (
                    "paused",
                    format!(
                        "Paused on {}: it failed for a day. Its events are kept; Resume sends them in order.",
                        s.paused_at.map(|t| local(t, tz)).unwrap_or_default()
                    ),
                ),
                (_, Some(since)) => (
                    "failing",
                    format!("Failing since {}; tried again on a schedule, paused after a day.", local(since, tz)),
                ),
                _ => (
                    "active",
                    match s.last_success_at {
                        Some(t) => format!("Working: last delivered {}.", local(t, tz)),
                        None => "Active: nothing delivered yet.".to_owned(),
                    },
                ),
            };
            SubscriptionRow {
                id: s.subscription_id,
                name: s.name,
                what: if s.kind == "follow_up_boss" { "Follow Up Boss" } else { "Webhook" },
                url: s.url,
                events: s.events.join(", "),
                state: badge,
                words,
                pending: s.pending,
                held: s.held,
                failed: s.failed,
            }
        })
        .collect();
    let deliveries = log
        .into_iter()
        .map(|d| {
            let answer = match (
                d.last_status,
                d.last_answer.as_deref(),
                d.last_error.as_deref(),
            ) {
                (None, _, None) => String::new(),
                (Some(s), a, e) => {
                    let mut out = format!("HTTP {s}");
                    if let Some(a) = a {
                        out.push_str(": ");
                        out.push_str(a);
                    }
                    if let Some(e) = e {
                        out.push_str(" (");
                        out.push_str(e);
                        out.push(')');
                    }
                    out
                }
                (None, _, Some(e)) => e.to_owned(),
            };
            let next = match d.state.as_str() {
                "pending" if d.attempts > 0 => format!("next try {}", local(d.run_at, tz)),
                "failed" => d.reason.clone().unwrap_or_default().replace('_', " "),
                "held" => "held while paused".to_owned(),
                _ => String::new(),
            };
            DeliveryRow {
                id: d.delivery_id,
                subscription: d.subscription,
                event: d.event_type,
                webhook_id: d.public_id,
                conversation: d.conversation_id,
                can_send_again: matches!(d.state.as_str(), "delivered" | "failed"),
                state: d.state,
                attempts: d.attempts,
                when: local(d.last_attempt_at.unwrap_or(d.event_at), tz),
                answer,
                next,
            }
        })
        .collect();
    Ok(Html(
        ConnectionsPage {
            layout: Layout::of(&viewer, "connections"),
            subscriptions,
            deliveries,
            filter: only.unwrap_or("").to_owned(),
        }
        .render()?,
    )
    .into_response())
}

#[derive(Deserialize)]
struct Nothing {}

/// What an admin's button does.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// The same event (same `webhook-id`) queued again, now.
    SendAgain,
    /// A paused subscription active again, its held events due now.
    Resume,
}

/// `POST /connections/deliveries/{id}/send-again`.
async fn send_again(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    act(&state, &viewer, &id, Action::SendAgain).await
}

/// `POST /connections/subscriptions/{id}/resume`.
async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    act(&state, &viewer, &id, Action::Resume).await
}

/// An admin's action on one row of their brokerage (another's is not found), then back to
/// the page (303).
async fn act(state: &AppState, viewer: &Viewer, id: &str, action: Action) -> Result<Response> {
    admin(viewer)?;
    let id = parse_id(id)?;
    let mut conn = state.pool.acquire().await?;
    let now = state.clock.now();
    let done = match action {
        Action::SendAgain => rows::send_again(&mut conn, viewer.brokerage, id, now).await?,
        Action::Resume => rows::resume(&mut conn, viewer.brokerage, id, now).await?,
    };
    if !done {
        return Err(Error::NotFound);
    }
    tracing::info!(id, ?action, by = %viewer.user_id, "connections: done");
    Ok(Redirect::to("/connections").into_response())
}
