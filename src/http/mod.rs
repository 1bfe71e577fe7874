//! The HTTP side: Twilio webhooks (behind one signature guard) and the operational endpoints.

pub mod api;
pub mod auth;
pub mod callback_link;
pub mod connections;
pub mod dashboard;
pub mod error;
pub mod forms;
pub mod inbox;
pub mod live;
pub mod me;
pub mod media;
pub mod ops;
pub mod pages;
pub mod signin_link;
pub mod spool_replay;
pub mod spooled;
pub mod twilio_calls;
pub mod twilio_guard;
pub mod twilio_sms;
pub mod twilio_voice;

use axum::Router;
use axum::middleware;
use axum::routing::any;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub(crate) use crate::context::AppState;

pub use error::{Error, Result};

/// A TwiML answer (`text/xml; charset=utf-8`).
pub(crate) fn twiml_response(body: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::twilio::twiml::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

/// 403 for a webhook signed with another account's key than the account of the brokerage that
/// owns the number: a webhook of one brokerage's account cannot act on another's numbers
/// (docs/security.md "Accounts and keys"). `signed_by` is the account whose key checked the
/// signature (never the body's `AccountSid`). `None` when it may go on.
pub(crate) fn foreign_account(
    state: &AppState,
    brokerage_account: Option<&str>,
    signed_by: Option<&str>,
) -> Option<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let expected = state.expected_account(brokerage_account);
    if signed_by == expected {
        return None;
    }
    tracing::warn!(
        expected = expected.unwrap_or("(the deployment's)"),
        signed_by = signed_by.unwrap_or("(the deployment's)"),
        "refused a signed webhook whose key is not of the account of the number's brokerage"
    );
    Some(twilio_guard::with_outcome(
        (
            axum::http::StatusCode::FORBIDDEN,
            "forbidden: signed for another account than the one of the brokerage that owns this number\n",
        )
            .into_response(),
        "foreign_account",
    ))
}

/// Status callbacks get 200 with an empty body (docs/security.md §1.1).
pub(crate) fn empty_ok() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    axum::http::StatusCode::OK.into_response()
}

/// The carrier's webhooks, without their guard: the router below puts the signature guard in
/// front of them, and the spool's replay (`spool_replay`) calls them with what the guard
/// verified when the webhook arrived.
pub fn twilio_routes() -> Router<AppState> {
    // Every route takes any method: the guard answers 405 itself, so that a wrong method is
    // counted like every other rejection.
    Router::new()
        .route("/twilio/voice", any(twilio_voice::voice_incoming))
        .route("/twilio/voice/dial", any(twilio_voice::voice_dial_result))
        .route("/twilio/voice/status", any(twilio_voice::voice_status))
        .route("/twilio/voice/screen", any(twilio_voice::voice_screen))
        .route(
            "/twilio/voice/screen/answer",
            any(twilio_voice::voice_screen_answer),
        )
        .route(
            "/twilio/voice/callback",
            any(twilio_calls::callback_answered),
        )
        .route(
            "/twilio/voice/callback/press",
            any(twilio_calls::callback_press),
        )
        .route(
            "/twilio/voice/callback/dial",
            any(twilio_calls::callback_dial),
        )
        .route(
            "/twilio/voice/callback/status",
            any(twilio_calls::callback_status),
        )
        .route("/twilio/voice/voicemail", any(twilio_calls::voicemail_done))
        .route(
            "/twilio/voice/recording",
            any(twilio_calls::recording_status),
        )
        .route(
            "/twilio/voice/transcription",
            any(twilio_calls::transcription),
        )
        .route("/twilio/sms", any(twilio_sms::sms_inbound))
        // `textback doctor` signs a request to itself through the public URL (README.md
        // "Running it for real").
        .route("/twilio/ping", any(ops::ping))
        .route("/twilio/sms/status", any(twilio_sms::sms_status))
}

pub fn router(state: AppState) -> Router {
    let twilio = twilio_routes().route_layer(middleware::from_fn_with_state(
        state.clone(),
        twilio_guard::guard,
    ));

    // The people's pages: logins, the inbox, the dashboard, their assets. Every response
    // gets the security headers (docs/security.md §2).
    let people = Router::new()
        .route(
            "/login",
            axum::routing::get(auth::login_form).post(auth::login),
        )
        .route("/logout", axum::routing::post(auth::logout))
        .merge(inbox::router())
        .merge(me::router())
        .merge(media::router())
        .merge(callback_link::router())
        .merge(signin_link::router())
        .merge(dashboard::router())
        .merge(connections::router())
        .merge(forms::router())
        .merge(pages::router());

    Router::new()
        .merge(twilio)
        .merge(people)
        .merge(ops::router())
        .merge(api::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            pages::security_headers,
        ))
        // Logs method, the route's pattern and status; never bodies, and never a path's own
        // values (a token of `/media/{token}`, `/s/{token}` or `/cb/{token}`; docs/security.md §2).
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let route = request
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("(no route)", |m| m.as_str());
                    tracing::info_span!("request", method = %request.method(), route)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}
