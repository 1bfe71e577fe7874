//! The one error type of the HTTP layer. Bad webhook input is answered where it is found (the
//! guard, `TwilioForm`); pages answer their refusals with these variants, each a plain page
//! that names no internals (docs/security.md §2 "errors").

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::twilio_guard::with_outcome;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 500 with a fixed body; the cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// 404: not found, or another brokerage's or office's (the same page, so nothing of it is
    /// confirmed).
    #[error("not found")]
    NotFound,
    /// 403: the role may not do this, or a form without its CSRF token or from another site.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 400 with a message for the person.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No valid session: 303 to `/login`.
    #[error("login required")]
    LoginRequired,
    /// 429 with `Retry-After`.
    #[error("too many requests")]
    TooMany { retry_after: u64 },
    /// 503: the database cannot be reached (a webhook is then spooled by its guard).
    #[error("the database is unavailable: {0}")]
    Unavailable(anyhow::Error),
}

/// Marks a response answered 503 because the database could not be reached: the webhook guard
/// spools such a webhook instead (README.md "When the database goes away").
#[derive(Debug, Clone, Copy)]
pub struct DbUnavailable;

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        match e {
            crate::store::Error::NotFound => Error::NotFound,
            e if e.is_unavailable() => Error::Unavailable(e.into()),
            e => Error::Internal(e.into()),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            Error::Unavailable(e.into())
        } else {
            Error::Internal(e.into())
        }
    }
}

impl From<askama::Error> for Error {
    fn from(e: askama::Error) -> Self {
        Error::Internal(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = ErrorPage { title, message }
        .render()
        .unwrap_or_else(|_| title.to_owned());
    (status, Html(body)).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Unavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "the database is unavailable");
                let mut r = with_outcome(
                    (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response(),
                    "db_unavailable",
                );
                r.extensions_mut().insert(DbUnavailable);
                r
            }
            Error::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                with_outcome(
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
                    "error",
                )
            }
            Error::NotFound => page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it is not yours to see.",
            ),
            Error::Forbidden(why) => {
                tracing::warn!(why, "access denied");
                page(StatusCode::FORBIDDEN, "Not allowed", why)
            }
            Error::BadRequest(message) => page(StatusCode::BAD_REQUEST, "Cannot do that", &message),
            Error::LoginRequired => Redirect::to("/login").into_response(),
            Error::TooMany { retry_after } => {
                let mut r = page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts",
                    &format!(
                        "Too many attempts. Try again in {}.",
                        crate::domain::funnel::duration_words(Some(retry_after as f64))
                    ),
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
        }
    }
}
