//! The HTTP side: Twilio webhooks (behind one signature guard) and the operational endpoints.

pub mod accounts;
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
use secrecy::SecretString;
use sqlx::PgPool;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::scheduler::Timing;
use crate::store::BrokerageId;
use crate::twilio::client::TwilioClient;
use crate::twilio::credentials::{self, Credentials};
use crate::twilio::signature;

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
    /// The brokerages' own accounts, for the webhook guard.
    accounts: Arc<accounts::AccountCache>,
}

/// A key that may have signed a webhook, and whose it is.
pub struct WebhookKey {
    pub algorithm: signature::Algorithm,
    pub secret: SecretString,
    /// The account SID the key belongs to; `None`: the deployment's, when `TWILIO_ACCOUNT_SID`
    /// is not set.
    pub account: Option<String>,
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
            accounts: Arc::default(),
        }
    }

    /// The credentials the brokerage's REST calls use: its own account's (`[twilio]`, the
    /// token read now from where the file says), else the deployment's. The inner error says why
    /// no account can be used (for the job's reason and the admins' alert; never a secret); the
    /// outer one is a database that could not be read (the job tries again).
    pub async fn credentials(
        &self,
        brokerage: BrokerageId,
    ) -> crate::store::Result<Result<Credentials, String>> {
        let account = {
            let mut conn = self.pool.acquire().await?;
            crate::store::brokerages::twilio_account(&mut conn, brokerage).await?
        };
        Ok(match account {
            Some(account) => credentials::read_secret(&account.auth_token, &self.config.twilio.env)
                .map(|auth_token| Credentials {
                    account_sid: account.account_sid.clone(),
                    auth_token,
                })
                .map_err(|why| {
                    format!(
                        "the auth token of account {} cannot be read: {why}",
                        account.account_sid
                    )
                }),
            None => match &self.config.twilio.account_sid {
                Some(sid) => Ok(Credentials {
                    account_sid: sid.clone(),
                    auth_token: (*self.auth_token).clone(),
                }),
                None => Err("TWILIO_ACCOUNT_SID is not set".to_owned()),
            },
        })
    }

    /// The keys that may have signed a webhook naming `account_sid` (its `AccountSid`), each
    /// with its algorithm and the account it belongs to: the auth token (HMAC-SHA1), or, when
    /// Twilio signed with a shared key (`settings`), that key's secret. The account is the
    /// brokerage's that names it, else the deployment's. The error is the reason the request
    /// is refused, for the log.
    pub async fn webhook_keys(
        &self,
        account_sid: Option<&str>,
        settings: Option<&signature::Settings>,
    ) -> Result<Vec<WebhookKey>, String> {
        let env = &self.config.twilio.env;
        let accounts = match account_sid {
            Some(sid) => self.accounts.by_sid(&self.pool, sid).await,
            None => Vec::new(),
        };
        let deployment = |algorithm, secret| WebhookKey {
            algorithm,
            secret,
            account: self.config.twilio.account_sid.clone(),
        };
        let Some(settings) = settings else {
            if accounts.is_empty() {
                return Ok(vec![deployment(
                    signature::Algorithm::HmacSha1,
                    (*self.auth_token).clone(),
                )]);
            }
            let mut keys = Vec::new();
            let mut why = Vec::new();
            for a in &accounts {
                match credentials::read_secret(&a.auth_token, env) {
                    Ok(secret) => keys.push(WebhookKey {
                        algorithm: signature::Algorithm::HmacSha1,
                        secret,
                        account: Some(a.account_sid.clone()),
                    }),
                    Err(e) => why.push(format!("the auth token of account {}: {e}", a.account_sid)),
                }
            }
            return if keys.is_empty() {
                Err(why.join("; "))
            } else {
                Ok(keys)
            };
        };
        let algorithm = settings.algorithm.clone().map_err(|name| {
            format!("signed with algorithm {name}, which this version does not support (HMAC_SHA1, HMAC_SHA256)")
        })?;
        let Some(key_id) = settings.key.as_deref() else {
            return Err("X-Twilio-Webhooks-Signature-Settings names no key".to_owned());
        };
        let not_configured = |whose: &str, how: &str| {
            format!(
                "signed with the shared key {key_id} ({}), which is not configured for {whose}: {how}",
                algorithm.as_str()
            )
        };
        if accounts.is_empty() {
            return match credentials::find_key(&self.config.twilio.webhook_keys, key_id) {
                Some(secret) => Ok(vec![deployment(algorithm, secret.clone())]),
                None => Err(not_configured(
                    "the deployment's account",
                    "add KEY_ID=SECRET to TWILIO_WEBHOOK_KEYS",
                )),
            };
        }
        let mut keys = Vec::new();
        for a in &accounts {
            let Some(source) = &a.webhook_keys else {
                continue;
            };
            match credentials::read_keys(source, env) {
                Ok(list) => {
                    if let Some(secret) = credentials::find_key(&list, key_id) {
                        keys.push(WebhookKey {
                            algorithm,
                            secret: secret.clone(),
                            account: Some(a.account_sid.clone()),
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(account = %a.account_sid, error = %e, "the account's webhook keys cannot be read")
                }
            }
        }
        if keys.is_empty() {
            let sid = account_sid.unwrap_or_default();
            return Err(not_configured(
                &format!("account {sid}"),
                "add KEY_ID=SECRET to what the setup file's [twilio] webhook_keys_env or webhook_keys_file names",
            ));
        }
        Ok(keys)
    }

    /// The brokerages whose own account's secrets this process cannot read, with why.
    pub async fn unreadable_accounts(&self) -> crate::store::Result<Vec<(String, String)>> {
        let mut conn = self.pool.acquire().await?;
        let accounts = crate::store::brokerages::all_twilio_accounts(&mut conn).await?;
        let env = &self.config.twilio.env;
        Ok(accounts
            .into_iter()
            .flat_map(|(slug, a)| {
                let token = credentials::read_secret(&a.auth_token, env)
                    .err()
                    .map(|why| {
                        (
                            slug.clone(),
                            format!("auth token of {}: {why}", a.account_sid),
                        )
                    });
                let keys = a.webhook_keys.as_ref().and_then(|k| {
                    credentials::read_keys(k, env).err().map(|why| {
                        (
                            slug.clone(),
                            format!("webhook keys of {}: {why}", a.account_sid),
                        )
                    })
                });
                token.into_iter().chain(keys)
            })
            .collect())
    }

    /// The account a brokerage's webhooks must come from: its own (`[twilio] account_sid`),
    /// else the deployment's `TWILIO_ACCOUNT_SID` (`None` when that is not set: not checked).
    pub fn expected_account<'a>(&'a self, brokerage_account: Option<&'a str>) -> Option<&'a str> {
        brokerage_account.or(self.config.twilio.account_sid.as_deref())
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
