//! What every handler and job shares (`AppState`) and the timing they run by: outside the
//! web layer, so that the HTTP side and the scheduler both use it and neither uses the other
//! (docs/architecture.md).

mod accounts;
mod timing;
pub mod tokens;

use std::sync::Arc;

use secrecy::SecretString;
use sqlx::PgPool;

pub use accounts::WebhookKey;
pub use timing::Timing;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::live;
use crate::metrics::Metrics;
use crate::twilio::client::TwilioClient;

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
    /// `POST /api/v1/leads`: requests per API key (docs/leads.md).
    pub api_limiter: Arc<governor::DefaultKeyedRateLimiter<i64>>,
    /// The hosted lead forms: submissions per client address (docs/leads.md).
    pub form_limiter: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// The outbound webhooks' and Follow Up Boss's HTTP clients (docs/webhooks.md).
    pub outbound: crate::effects::webhooks::Outbound,
    auth_token: Arc<SecretString>,
    /// The brokerages' own accounts, for the webhook guard.
    accounts: Arc<accounts::AccountCache>,
    /// Webhooks waiting for the database (README.md "When the database goes away").
    pub spool: Arc<crate::spool::Spool>,
    /// The numbers as last read: who an incoming call rings while the database is away.
    pub numbers: Arc<std::sync::RwLock<crate::store::numbers::Snapshot>>,
}

/// The lead API's requests per key (docs/leads.md): bursts of `burst` (30:
/// `Timing::api_burst`), then one a second (60 a minute), counted in memory by each process.
pub fn api_quota(burst: u32) -> governor::Quota {
    use std::num::NonZeroU32;
    governor::Quota::per_second(NonZeroU32::MIN)
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// The hosted lead forms' submissions per client address (docs/leads.md): 5 at once, then one
/// every 2 minutes (30 an hour), counted in memory by each process.
pub fn form_quota() -> governor::Quota {
    use std::num::NonZeroU32;
    let five = NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN);
    governor::Quota::with_period(std::time::Duration::from_secs(120)).map_or_else(
        || governor::Quota::per_minute(NonZeroU32::MIN),
        |q| q.allow_burst(five),
    )
}

impl AppState {
    pub fn new(
        pool: PgPool,
        config: Config,
        auth_token: SecretString,
        clock: SharedClock,
        timing: Timing,
        spool: crate::spool::Spool,
    ) -> AppState {
        let twilio = TwilioClient::new(
            config.twilio.api_base.clone(),
            config.twilio.lookup_base.clone(),
            timing.send,
        )
        .with_messaging_base(config.twilio.messaging_base.clone());
        AppState {
            pool,
            config: Arc::new(config),
            clock,
            metrics: Arc::new(Metrics::default()),
            twilio,
            timing,
            live: Arc::new(live::Hub::default()),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            api_limiter: Arc::new(governor::RateLimiter::keyed(api_quota(timing.api_burst))),
            form_limiter: Arc::new(governor::RateLimiter::keyed(form_quota())),
            outbound: crate::effects::webhooks::Outbound::new(timing.webhook_timeout),
            auth_token: Arc::new(auth_token),
            accounts: Arc::default(),
            numbers: Arc::new(std::sync::RwLock::new(
                // The numbers as the last run read them, until the database is read.
                std::fs::read(spool.path().with_file_name("numbers.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default(),
            )),
            spool: Arc::new(spool),
        }
    }
}

/// A test-hooks crash point (docs/reliability.md §6): `TEXTBACK_TEST_CRASH=<point>` aborts the
/// process there. Compiled out of normal builds. Shared by the jobs and the webhooks.
#[inline]
pub fn crash_point(point: &str) {
    #[cfg(feature = "test-hooks")]
    if std::env::var("TEXTBACK_TEST_CRASH").is_ok_and(|p| p == point) {
        eprintln!("test-hooks: crashing at {point}");
        std::process::abort();
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = point;
}
