//! `/cb/{token}`: the callback link of an alert text (docs/calls.md "The link"). For one agent
//! and one lead, single use, expiring. Opening it (a GET, which phones' link previews also do)
//! only shows what it would do; the button's POST places the call to that agent's phone. A link
//! used twice, by another signed-in person, after it expired, or to a deleted contact answers a
//! clear page and places no call.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::auth::Viewer;
use super::{AppState, Error, Result};
use crate::context::tokens::{is_token, token_hash};
use crate::domain::callback::Origin;
use crate::domain::phone::mask;
use crate::effects::callbacks::{self as effects, Ask, Asked};
use crate::store::callbacks;

pub fn router() -> Router<AppState> {
    Router::new().route("/cb/{token}", get(open).post(place))
}

#[derive(Template)]
#[template(path = "callback.html")]
struct LinkPage {
    title: String,
    message: String,
    ok: bool,
    reason: &'static str,
    action: Option<String>,
}

fn page(status: StatusCode, page: LinkPage) -> Result<Response> {
    let html = page.render().map_err(|e| Error::Internal(e.into()))?;
    Ok((status, Html(html)).into_response())
}

fn refusal(status: StatusCode, reason: &'static str, message: String) -> Result<Response> {
    page(
        status,
        LinkPage {
            title: "No call placed".into(),
            message,
            ok: false,
            reason,
            action: None,
        },
    )
}

/// Why the link cannot place a call now, if it cannot.
fn check(
    link: Option<&callbacks::LinkRow>,
    viewer: Option<&Viewer>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(StatusCode, &'static str, String)> {
    let Some(link) = link else {
        return Some((
            StatusCode::NOT_FOUND,
            "unknown",
            "This callback link is not valid.".into(),
        ));
    };
    if let Some(used) = link.used_at {
        return Some((
            StatusCode::GONE,
            "used",
            format!(
                "This link was used already ({} UTC); it places one call only. Open the conversation in the inbox to call again.",
                used.format("%H:%M")
            ),
        ));
    }
    if now >= link.expires_at {
        return Some((
            StatusCode::GONE,
            "expired",
            "This link has expired. Open the conversation in the inbox to call back.".into(),
        ));
    }
    if let Some(v) = viewer
        && (v.brokerage != link.brokerage_id || v.agent_id != link.agent_id)
    {
        return Some((
            StatusCode::FORBIDDEN,
            "another_agent",
            format!(
                "This link is {}'s: it rings only their phone. Open the conversation in the inbox to call back yourself.",
                link.agent_name
            ),
        ));
    }
    if link.deleted {
        return Some((
            StatusCode::GONE,
            "deleted",
            "The contact was deleted; no call can be placed.".into(),
        ));
    }
    None
}

fn who(link: &callbacks::LinkRow) -> String {
    let about = link
        .listing
        .as_deref()
        .map(|l| format!(" about {l}"))
        .unwrap_or_default();
    match link
        .contact_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(n) => format!("{n} ({}){about}", mask(&link.contact_phone)),
        None => format!("{}{about}", mask(&link.contact_phone)),
    }
}

/// `GET /cb/{token}`: what the link would do, and the button. Changes nothing.
async fn open(
    State(state): State<AppState>,
    viewer: std::result::Result<Viewer, Error>,
    Path(token): Path<String>,
) -> Result<Response> {
    if !is_token(&token) {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown",
            "This callback link is not valid.".into(),
        );
    }
    let mut conn = state.pool.acquire().await?;
    let link = callbacks::link(&mut conn, &token_hash(&token), false).await?;
    drop(conn);
    if let Some((status, reason, message)) =
        check(link.as_ref(), viewer.as_ref().ok(), state.clock.now())
    {
        return refusal(status, reason, message);
    }
    let Some(link) = link else {
        return Err(Error::NotFound);
    };
    page(
        StatusCode::OK,
        LinkPage {
            title: format!("Call back {}", who(&link)),
            message: format!(
                "{}: textback calls your phone ({}'s) from the office line, then connects you to the lead.",
                link.brokerage_name, link.agent_name
            ),
            ok: true,
            reason: "",
            action: Some(format!("/cb/{token}")),
        },
    )
}

/// `POST /cb/{token}`: places the call (once).
async fn place(
    State(state): State<AppState>,
    viewer: std::result::Result<Viewer, Error>,
    headers: axum::http::HeaderMap,
    Path(token): Path<String>,
) -> Result<Response> {
    // A form of our own page only (docs/security.md §2 CSRF): browsers say where it came from.
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none")
    {
        return Err(Error::Forbidden("the form must come from this site"));
    }
    if !is_token(&token) {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown",
            "This callback link is not valid.".into(),
        );
    }
    let hash = token_hash(&token);
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let link = callbacks::link(&mut tx, &hash, true).await?;
    if let Some((status, reason, message)) = check(link.as_ref(), viewer.as_ref().ok(), now) {
        tracing::info!(reason, "a callback link refused");
        return refusal(status, reason, message);
    }
    let Some(link) = link else {
        return Err(Error::NotFound);
    };
    let asked = effects::ask(
        &mut tx,
        link.brokerage_id,
        &Ask {
            contact_id: link.contact_id,
            number_id: link.number_id,
            origin: Origin::Link,
            requested_by: Some(link.agent_id),
            agent_id: link.agent_id,
            remaining: Vec::new(),
            call_id: link.call_id,
        },
        now,
    )
    .await?;
    let response = match &asked {
        Asked::Queued { callback_id } => {
            callbacks::use_link(&mut tx, &hash, Some(*callback_id), now).await?;
            page(
                StatusCode::OK,
                LinkPage {
                    title: "Calling your phone".into(),
                    message: format!(
                        "Answer the call from the office line and press 1 to be connected to {}.",
                        who(&link)
                    ),
                    ok: true,
                    reason: "queued",
                    action: None,
                },
            )
        }
        Asked::AlreadyLive => refusal(
            StatusCode::CONFLICT,
            "callback_live",
            "A callback to this lead is already under way; no second call was placed.".into(),
        ),
        Asked::Refused { words, .. } => refusal(
            StatusCode::CONFLICT,
            "call_rule",
            format!("No call was placed: {words}."),
        ),
    };
    tx.commit().await?;
    tracing::info!(brokerage = link.brokerage_id.0, asked = ?asked, "a callback link was used");
    response
}
