//! `/healthz` (the process is up), `/readyz` (the database answers), `/metrics`.
//! None of them exposes personal data; keep `/metrics` private (README, "Operations").

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let ping = sqlx::query("select 1").execute(&state.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: the database did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer within 2 s");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `POST /twilio/ping`, behind the webhook guard: answers only a request signed for
/// `TEXTBACK_PUBLIC_URL` with an account's key, and changes nothing. `textback doctor` sends
/// one through the public address to prove that it reaches this server and that signatures
/// check out there (a proxy that rewrites the address fails here with 403, as Twilio would).
pub async fn ping() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (axum::http::StatusCode::OK, "textback: signature checked\n").into_response()
}
