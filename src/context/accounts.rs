//! The Twilio accounts a brokerage's work runs under (docs/security.md §1.5): the credentials
//! of its REST calls, the keys that may have signed its webhooks, and the account its webhooks
//! must come from.
//!
//! The brokerages' own accounts are kept in memory for the webhook guard. Which keys may have
//! signed a webhook is asked of every request before its signature says anything, so an
//! unsigned flood naming made-up accounts must not cost a database query each. The list is
//! read again when it is older than [`FRESH`], and when a webhook names an account that was not
//! in it and not asked for since the last read (a brokerage just set up), at most once per
//! [`RETRY`]; an account no brokerage names (the deployment's own) waits for the next
//! [`FRESH`] read. The read runs outside the lock. A change to a brokerage's
//! `[twilio]` therefore reaches webhooks within ten seconds; the secrets themselves are read
//! from where the file says at each use.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::Mutex;

use super::AppState;
use crate::setup::twilio::{TwilioAccount, is_account_sid};
use crate::store::BrokerageId;
use crate::twilio::credentials::{self, Credentials};
use crate::twilio::signature;

/// A key that may have signed a webhook, and whose it is.
pub struct WebhookKey {
    pub algorithm: signature::Algorithm,
    pub secret: SecretString,
    /// The account SID the key belongs to; `None`: the deployment's, when `TWILIO_ACCOUNT_SID`
    /// is not set.
    pub account: Option<String>,
}

impl AppState {
    /// The credentials the brokerage's REST calls use: its own account's (`[twilio]`, the
    /// token read now from where the file says), else the deployment's. The inner error says why
    /// no account can be used (for the job's reason and the admins' alert; never a secret); the
    /// outer one is a database that could not be read (the job tries again).
    pub async fn credentials(
        &self,
        brokerage: BrokerageId,
    ) -> crate::store::Result<Result<Credentials, String>> {
        let mut conn = self.pool.acquire().await?;
        self.credentials_on(&mut conn, brokerage).await
    }

    /// [`AppState::credentials`] on the caller's connection (the pre-send transaction).
    pub async fn credentials_on(
        &self,
        conn: &mut sqlx::PgConnection,
        brokerage: BrokerageId,
    ) -> crate::store::Result<Result<Credentials, String>> {
        let account = crate::store::brokerages::twilio_account(conn, brokerage).await?;
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
            // While webhooks wait in the spool the database is not asked: what was read before
            // checks them (README.md "When the database goes away").
            Some(sid) => {
                self.accounts
                    .by_sid(&self.pool, sid, !self.spool.has_pending())
                    .await
            }
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

/// How long a read of the accounts is used before it is read again.
pub const FRESH: Duration = Duration::from_secs(10);
/// The least time between two reads (an unknown account, or a database that failed).
pub const RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct AccountCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// When the list was last read successfully.
    loaded_at: Option<Instant>,
    /// When a read was last tried (successful or not).
    tried_at: Option<Instant>,
    by_sid: HashMap<String, Vec<TwilioAccount>>,
    /// SIDs asked for since the last read that no brokerage names (the deployment's own account,
    /// on every webhook of a deployment without subaccounts): they wait for the next [`FRESH`]
    /// read instead of making one each.
    missing: HashSet<String>,
}

impl AccountCache {
    /// The brokerages' accounts with this SID (one account may serve several brokerages).
    /// Empty for anything that is not an account SID, and, with a warning, when the database
    /// cannot be read and the SID was never seen: the deployment's key still checks its own
    /// webhooks.
    pub async fn by_sid(&self, pool: &PgPool, sid: &str, may_read: bool) -> Vec<TwilioAccount> {
        if !is_account_sid(sid) {
            return Vec::new();
        }
        {
            // Without the database's attention (webhooks waiting in the spool), the accounts
            // as last read, unless they were never read (a restart with a spool left).
            let mut inner = self.inner.lock().await;
            if !may_read && inner.loaded_at.is_some() {
                return found(&mut inner, sid);
            }
        }
        let now = Instant::now();
        let older_than = |at: Option<Instant>, d: Duration| at.is_none_or(|t| now - t >= d);
        {
            let mut inner = self.inner.lock().await;
            let unknown = !inner.by_sid.contains_key(sid) && !inner.missing.contains(sid);
            let wanted = older_than(inner.loaded_at, FRESH) || unknown;
            if !(wanted && older_than(inner.tried_at, RETRY)) {
                return found(&mut inner, sid);
            }
            inner.tried_at = Some(now);
        }
        // Read without holding the lock: the other webhooks meanwhile use what was read before.
        // A database that does not answer within a second is not waited for: the webhook has
        // Twilio's 15 s in all, and the spool for the rest.
        let loaded = match tokio::time::timeout(Duration::from_secs(1), load(pool)).await {
            Ok(loaded) => loaded,
            Err(_) => Err(crate::store::Error::Db(sqlx::Error::PoolTimedOut)),
        };
        let mut inner = self.inner.lock().await;
        match loaded {
            Ok(by_sid) => {
                inner.by_sid = by_sid;
                inner.missing.clear();
                inner.loaded_at = Some(now);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "cannot read the brokerages' accounts; checking webhooks with what was read before"
            ),
        }
        found(&mut inner, sid)
    }
}

/// The accounts with `sid`, remembering a SID that has none.
fn found(inner: &mut Inner, sid: &str) -> Vec<TwilioAccount> {
    match inner.by_sid.get(sid) {
        Some(accounts) => accounts.clone(),
        None => {
            inner.missing.insert(sid.to_owned());
            Vec::new()
        }
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
