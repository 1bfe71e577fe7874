//! The one error type of the HTTP layer. Bad input is answered where it is found (the guard,
//! `TwilioForm`); what reaches here is unexpected: a fixed 500 body, the cause logged once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::twilio_guard::with_outcome;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 500 with a fixed body; the cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::store::Error> for Error {
    fn from(e: crate::store::Error) -> Self {
        Error::Internal(e.into())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(e.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                with_outcome(
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
                    "error",
                )
            }
        }
    }
}
