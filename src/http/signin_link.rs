//! `/s/{token}`: the sign-in link of an alert text (README.md "Agents on their phones"). For one
//! person and one conversation, single use, minutes long, worth nothing once the person is
//! removed from the setup file. Opening it (a GET, which phones' link previews also do) only
//! shows a button; its POST signs the person in (a new session, with the timeouts, CSRF and
//! cookie rules of docs/security.md §2) and opens the conversation.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;

use super::auth::{Cookies, Viewer, check_origin, start_session};
use super::{AppState, Error, Result};
use crate::context::tokens::{is_token, token_hash};
use crate::store::routing::{self as rows, SigninLink};

pub fn router() -> Router<AppState> {
    Router::new().route("/s/{token}", get(open).post(sign_in))
}

#[derive(Template)]
#[template(path = "signin.html")]
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

fn refusal(status: StatusCode, reason: &'static str, message: &str) -> Result<Response> {
    page(
        status,
        LinkPage {
            title: "This link does not sign you in".into(),
            message: message.to_owned(),
            ok: false,
            reason,
            action: None,
        },
    )
}

/// Why the link cannot sign anyone in now, if it cannot.
fn check(
    link: Option<&SigninLink>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(StatusCode, &'static str, &'static str)> {
    let Some(link) = link else {
        return Some((
            StatusCode::NOT_FOUND,
            "unknown",
            "This sign-in link is not valid.",
        ));
    };
    if !link.agent_active {
        return Some((
            StatusCode::GONE,
            "removed",
            "This sign-in link belongs to someone who no longer has access.",
        ));
    }
    if link.used_at.is_some() {
        return Some((
            StatusCode::GONE,
            "used",
            "This sign-in link was used already; it works once. Log in to open the conversation.",
        ));
    }
    if now >= link.expires_at {
        return Some((
            StatusCode::GONE,
            "expired",
            "This sign-in link has expired. Log in to open the conversation.",
        ));
    }
    None
}

/// `GET /s/{token}`: the person signed in already goes straight to the conversation; anyone
/// else sees a button. Changes nothing.
async fn open(
    State(state): State<AppState>,
    viewer: std::result::Result<Viewer, Error>,
    Path(token): Path<String>,
) -> Result<Response> {
    if !is_token(&token) {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown",
            "This sign-in link is not valid.",
        );
    }
    let mut conn = state.pool.acquire().await?;
    let link = rows::peek_signin_link(&mut conn, &token_hash(&token)).await?;
    drop(conn);
    if let (Ok(v), Some(l)) = (&viewer, &link) {
        if v.user_id == l.user_id && l.agent_active {
            return Ok(Redirect::to(&format!("/inbox/c/{}", l.conversation_id)).into_response());
        }
        return refusal(
            StatusCode::FORBIDDEN,
            "another_person",
            "This link is for someone else. Open the inbox to find the conversation.",
        );
    }
    if let Some((status, reason, message)) = check(link.as_ref(), state.clock.now()) {
        return refusal(status, reason, message);
    }
    page(
        StatusCode::OK,
        LinkPage {
            title: "Open the conversation".into(),
            message: "You are signed in for this conversation when you tap the button.".into(),
            ok: true,
            reason: "",
            action: Some(format!("/s/{token}")),
        },
    )
}

/// `POST /s/{token}`: uses the link (once) and signs its person in.
async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Result<Response> {
    check_origin(&headers, &state)?;
    if !is_token(&token) {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown",
            "This sign-in link is not valid.",
        );
    }
    let now = state.clock.now();
    let mut conn = state.pool.acquire().await?;
    let used = rows::use_signin_link(&mut conn, &token_hash(&token), now).await?;
    let (link, won) = match used {
        Some((link, won)) => (Some(link), won),
        None => (None, false),
    };
    match (&link, won) {
        (Some(l), true) if l.agent_active => {
            let jar = start_session(&mut conn, Cookies::of(&state), jar, l.user_id, now).await?;
            tracing::info!(user_id = l.user_id, "signed in by an alert's link");
            Ok((
                jar,
                Redirect::to(&format!("/inbox/c/{}", l.conversation_id)),
            )
                .into_response())
        }
        _ => {
            // Another use won the race, or the link is not usable: say why.
            let why = match (&link, won) {
                (Some(_), false)
                    if link
                        .as_ref()
                        .is_some_and(|l| l.used_at.is_some() && l.agent_active) =>
                {
                    Some((
                        StatusCode::GONE,
                        "used",
                        "This sign-in link was used already; it works once. Log in to open the conversation.",
                    ))
                }
                _ => check(link.as_ref(), now),
            };
            let (status, reason, message) = why.unwrap_or((
                StatusCode::GONE,
                "used",
                "This sign-in link was used already; it works once.",
            ));
            tracing::info!(reason, "a sign-in link refused");
            refusal(status, reason, message)
        }
    }
}
