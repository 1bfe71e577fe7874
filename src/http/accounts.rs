//! The brokerages' own Twilio accounts, kept in memory for the webhook guard. Which keys may
//! have signed a webhook is asked of every request before its signature says anything, so an
//! unsigned flood naming made-up accounts must not cost a database query each
//! (docs/security.md "Accounts and keys").
//!
//! The list is read again when it is older than [`FRESH`], and when a webhook names an account
//! that is not in it (a brokerage just set up), at most once per [`RETRY`]. A change to a
//! brokerage's `[twilio]` therefore reaches webhooks within ten seconds; the secrets themselves
//! are read from where the file says at each use.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::setup::twilio::{TwilioAccount, is_account_sid};

/// How long a read of the accounts is used before it is read again.
pub const FRESH: Duration = Duration::from_secs(10);
/// The least time between two reads (an unknown account, or a database that failed).
pub const RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct AccountCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// When the list was last read successfully.
    loaded_at: Option<Instant>,
    /// When a read was last tried (successful or not).
    tried_at: Option<Instant>,
    by_sid: HashMap<String, Vec<TwilioAccount>>,
}

impl AccountCache {
    /// The brokerages' accounts with this SID (one account may serve several brokerages).
    /// Empty for anything that is not an account SID, and, with a warning, when the database
    /// cannot be read and the SID was never seen: the deployment's key still checks its own
    /// webhooks.
    pub async fn by_sid(&self, pool: &PgPool, sid: &str) -> Vec<TwilioAccount> {
        if !is_account_sid(sid) {
            return Vec::new();
        }
        let mut inner = self.inner.lock().await;
        let now = Instant::now();
        let older_than = |at: Option<Instant>, d: Duration| at.is_none_or(|t| now - t >= d);
        let wanted = older_than(inner.loaded_at, FRESH) || !inner.by_sid.contains_key(sid);
        if wanted && older_than(inner.tried_at, RETRY) {
            inner.tried_at = Some(now);
            match load(pool).await {
                Ok(by_sid) => {
                    inner.by_sid = by_sid;
                    inner.loaded_at = Some(now);
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot read the brokerages' accounts; checking webhooks with what was read before"
                ),
            }
        }
        inner.by_sid.get(sid).cloned().unwrap_or_default()
    }
}

async fn load(pool: &PgPool) -> crate::store::Result<HashMap<String, Vec<TwilioAccount>>> {
    let mut conn = pool.acquire().await?;
    let mut by_sid: HashMap<String, Vec<TwilioAccount>> = HashMap::new();
    for (_slug, account) in crate::store::brokerages::all_twilio_accounts(&mut conn).await? {
        by_sid
            .entry(account.account_sid.clone())
            .or_default()
            .push(account);
    }
    Ok(by_sid)
}
