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
    // A spool that cannot be written would lose what it is for (README.md "When the database
    // goes away").
    if !state.spool.is_writable() {
        tracing::warn!("readiness check: the spool cannot be written");
        return (StatusCode::SERVICE_UNAVAILABLE, "spool not writable\n");
    }
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
    let mut text = state.metrics.render();
    // The spool's (README.md "When the database goes away"), before the closing `# EOF`.
    let spool = &state.spool;
    let age = spool
        .oldest()
        .map_or(0, |at| (state.clock.now() - at).num_seconds().max(0));
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::SeqCst);
    let lines = format!(
        "# HELP textback_spool_records Webhooks waiting in this instance's spool for the database.\n\
         # TYPE textback_spool_records gauge\n\
         textback_spool_records {}\n\
         # HELP textback_spool_oldest_age_seconds How long the oldest spooled webhook has waited.\n\
         # TYPE textback_spool_oldest_age_seconds gauge\n\
         textback_spool_oldest_age_seconds {age}\n\
         # HELP textback_spool_writable Whether the last write to the spool went to disk.\n\
         # TYPE textback_spool_writable gauge\n\
         textback_spool_writable {}\n\
         # HELP textback_spool_replayed Spooled webhooks replayed, by outcome (applied, refused, corrupt).\n\
         # TYPE textback_spool_replayed counter\n\
         textback_spool_replayed_total{{outcome=\"applied\"}} {}\n\
         textback_spool_replayed_total{{outcome=\"refused\"}} {}\n\
         textback_spool_replayed_total{{outcome=\"corrupt\"}} {}\n\
         # HELP textback_db_primary_moves Times the pool followed the primary to another host of DATABASE_URL.\n\
         # TYPE textback_db_primary_moves counter\n\
         textback_db_primary_moves_total {}\n",
        spool.pending(),
        u8::from(spool.is_writable()),
        load(&spool.replayed_applied),
        load(&spool.replayed_skipped),
        load(&spool.corrupt),
        crate::store::failover::switches(),
    );
    match text.rfind("# EOF") {
        Some(at) => text.insert_str(at, &lines),
        None => text.push_str(&lines),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
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
