//! The HTTP side: Twilio webhooks (behind one signature guard) and the operational endpoints.

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod inbox;
pub mod live;
pub mod ops;
pub mod pages;
pub mod twilio_guard;
pub mod twilio_sms;
pub mod twilio_voice;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::any;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::scheduler::Timing;
use crate::twilio::client::TwilioClient;

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

/// Status callbacks get 200 with an empty body (security.md §1.1).
pub(crate) fn empty_ok() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    axum::http::StatusCode::OK.into_response()
}

/// What every handler and job shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub twilio: TwilioClient,
    pub timing: Timing,
    /// Live inbox updates: the process's notification listener.
    pub live: Arc<live::Hub>,
    /// Set when the server begins to shut down: long-lived responses (live updates) end.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    auth_token: Arc<SecretString>,
}

impl AppState {
    pub fn new(
        pool: PgPool,
        config: Config,
        auth_token: SecretString,
        clock: SharedClock,
        timing: Timing,
    ) -> AppState {
        let twilio = TwilioClient::new(
            config.twilio.api_base.clone(),
            config.twilio.lookup_base.clone(),
            config.twilio.account_sid.clone(),
            auth_token.clone(),
            timing.send,
        );
        AppState {
            pool,
            config: Arc::new(config),
            clock,
            metrics: Arc::new(Metrics::default()),
            twilio,
            timing,
            live: Arc::new(live::Hub::default()),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            auth_token: Arc::new(auth_token),
        }
    }

    /// The key of webhook signatures.
    pub fn auth_token(&self) -> &[u8] {
        self.auth_token.expose_secret().as_bytes()
    }
}

pub fn router(state: AppState) -> Router {
    // Every route takes any method: the guard answers 405 itself, so that a wrong method is
    // counted like every other rejection.
    let twilio = Router::new()
        .route("/twilio/voice", any(twilio_voice::voice_incoming))
        .route("/twilio/voice/dial", any(twilio_voice::voice_dial_result))
        .route("/twilio/voice/status", any(twilio_voice::voice_status))
        .route("/twilio/voice/screen", any(twilio_voice::voice_screen))
        .route(
            "/twilio/voice/screen/answer",
            any(twilio_voice::voice_screen_answer),
        )
        .route("/twilio/sms", any(twilio_sms::sms_inbound))
        .route("/twilio/sms/status", any(twilio_sms::sms_status))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            twilio_guard::guard,
        ));

    // The people's pages: logins, the inbox, the dashboard, their assets. Every response
    // gets the security headers (security.md §2).
    let people = Router::new()
        .route(
            "/login",
            axum::routing::get(auth::login_form).post(auth::login),
        )
        .route("/logout", axum::routing::post(auth::logout))
        .merge(inbox::router())
        .merge(dashboard::router())
        .merge(pages::router());

    Router::new()
        .merge(twilio)
        .merge(people)
        .merge(ops::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            pages::security_headers,
        ))
        // Logs method, path and status; never bodies, and our paths carry no personal data.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}
