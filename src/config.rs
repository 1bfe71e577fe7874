//! Configuration from the environment (README.md "Configuration"), parsed once at start.
//! A missing or malformed value is an error that names the variable.

use std::fmt;
use std::net::SocketAddr;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432/textback";
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:3000";
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
pub const DEFAULT_LOOKUP_BASE: &str = "https://lookups.twilio.com";
pub const DEFAULT_MESSAGING_BASE: &str = "https://messaging.twilio.com";
/// Open connections one client address may hold at once (docs/security.md "Connections").
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;
/// Where the spool is kept unless `TEXTBACK_SPOOL_DIR` says otherwise: beside the process.
pub const DEFAULT_SPOOL_DIR: &str = "spool";

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    pub public_url: PublicUrl,
    pub trusted_proxies: Vec<IpNet>,
    /// `TEXTBACK_MAX_CONNECTIONS_PER_CLIENT`: open connections one peer address may hold
    /// (a trusted proxy is not limited; 0 turns the limit off).
    pub max_connections_per_client: usize,
    /// `TEXTBACK_SPOOL_DIR`: where webhooks wait while the database cannot be reached
    /// (README.md "When the database goes away"); on local disk, one per instance.
    pub spool_dir: std::path::PathBuf,
    pub twilio: TwilioConfig,
}

#[derive(Clone)]
pub struct TwilioConfig {
    pub account_sid: Option<String>,
    /// Required by `serve`; `migrate` and `setup apply` run without it.
    pub auth_token: Option<SecretString>,
    /// `TWILIO_WEBHOOK_KEYS`: the default account's shared webhook signing keys
    /// (`KEY_ID=SECRET`, comma-separated), for webhooks signed with
    /// `X-Twilio-Webhooks-Signature-Settings`.
    pub webhook_keys: Vec<(String, SecretString)>,
    pub api_base: Url,
    pub lookup_base: Url,
    /// `TWILIO_MESSAGING_BASE`: the Messaging API (Messaging Services and their A2P 10DLC
    /// campaigns, which `textback doctor` reads).
    pub messaging_base: Url,
    /// The environment, for the secrets a brokerage's setup file names by variable
    /// (`[twilio] auth_token_env`): read when needed, never copied into the database.
    pub env: crate::twilio::credentials::Env,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url_password(&self.database_url))
            .field("bind", &self.bind)
            .field("public_url", &self.public_url.as_str())
            .field("trusted_proxies", &self.trusted_proxies)
            .field(
                "max_connections_per_client",
                &self.max_connections_per_client,
            )
            .field("spool_dir", &self.spool_dir)
            .field("twilio_account_sid", &self.twilio.account_sid)
            .field(
                "twilio_auth_token",
                &self.twilio.auth_token.as_ref().map(|_| "[redacted]"),
            )
            .field("twilio_api_base", &self.twilio.api_base.as_str())
            .field("twilio_lookup_base", &self.twilio.lookup_base.as_str())
            .field(
                "twilio_webhook_keys",
                &self
                    .twilio
                    .webhook_keys
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// `TEXTBACK_PUBLIC_URL` without a trailing slash: `https://textback.example.com` or with a
/// path prefix (`https://example.com/textback`). Signatures are checked against it plus the
/// request path, never against `Host` (docs/security.md §1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<PublicUrl, String> {
        let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!("`{raw}` must start with http:// or https://"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not contain user:password@ (Twilio signs such URLs inconsistently)".into(),
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not contain a query string or #fragment".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{raw}` has no host"));
        }
        Ok(PublicUrl(raw.trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The absolute URL of one of our paths (`/twilio/voice/dial`), for TwiML and callbacks.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn err(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map). An empty value is an error, except for
    /// `TEXTBACK_TRUSTED_PROXIES`, where empty means "no proxies".
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Config, ConfigError> {
        let value =
            |name: &'static str, default: Option<&str>| -> Result<Option<String>, ConfigError> {
                match get(name) {
                    Some(v) if v.trim().is_empty() => Err(err(name, "is set but empty")),
                    Some(v) => Ok(Some(v.trim().to_owned())),
                    None => Ok(default.map(str::to_owned)),
                }
            };

        let database_url = value("DATABASE_URL", Some(DEFAULT_DATABASE_URL))?.unwrap_or_default();
        // One host or several (libpq's `postgres://a:5432,b:5432/db`, README.md "When the
        // database goes away"): each must be a URL that names the database.
        let target =
            textback_store::failover::parse(&database_url).map_err(|e| err("DATABASE_URL", e))?;
        let first = target.hosts.first().map(|h| h.url.as_str()).unwrap_or("");
        let parsed =
            Url::parse(first).map_err(|e| err("DATABASE_URL", format!("is not a URL ({e})")))?;
        if parsed.path().trim_start_matches('/').is_empty() {
            return Err(err("DATABASE_URL", "must name a database (…/textback)"));
        }

        let bind_raw = value("TEXTBACK_BIND", Some(DEFAULT_BIND))?.unwrap_or_default();
        let bind = bind_raw.parse::<SocketAddr>().map_err(|_| {
            err(
                "TEXTBACK_BIND",
                format!("`{bind_raw}` is not an address:port such as 127.0.0.1:3000"),
            )
        })?;

        let public_raw =
            value("TEXTBACK_PUBLIC_URL", Some(DEFAULT_PUBLIC_URL))?.unwrap_or_default();
        let public_url =
            PublicUrl::parse(&public_raw).map_err(|r| err("TEXTBACK_PUBLIC_URL", r))?;

        let trusted_proxies = match get("TEXTBACK_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            err(
                                "TEXTBACK_TRUSTED_PROXIES",
                                format!("`{s}` is not a CIDR such as 10.0.0.0/8"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };

        let max_raw = value(
            "TEXTBACK_MAX_CONNECTIONS_PER_CLIENT",
            Some(&DEFAULT_MAX_CONNECTIONS_PER_CLIENT.to_string()),
        )?
        .unwrap_or_default();
        let max_connections_per_client = max_raw.parse::<usize>().map_err(|_| {
            err(
                "TEXTBACK_MAX_CONNECTIONS_PER_CLIENT",
                format!("`{max_raw}` is not a whole number (0 turns the limit off)"),
            )
        })?;

        let spool_dir = std::path::PathBuf::from(
            value("TEXTBACK_SPOOL_DIR", Some(DEFAULT_SPOOL_DIR))?.unwrap_or_default(),
        );

        let account_sid = value("TWILIO_ACCOUNT_SID", None)?;
        if let Some(sid) = &account_sid
            && !crate::setup::twilio::is_account_sid(sid)
        {
            return Err(err(
                "TWILIO_ACCOUNT_SID",
                "must be AC followed by 32 hex digits",
            ));
        }
        let auth_token = value("TWILIO_AUTH_TOKEN", None)?.map(SecretString::from);
        let webhook_keys = match value("TWILIO_WEBHOOK_KEYS", None)? {
            Some(raw) => crate::twilio::credentials::parse_keys(&raw).map_err(|e| {
                err(
                    "TWILIO_WEBHOOK_KEYS",
                    format!("{e}: write KEY_ID=SECRET, comma-separated"),
                )
            })?,
            None => Vec::new(),
        };

        let base = |name: &'static str, default: &str| -> Result<Url, ConfigError> {
            let raw = value(name, Some(default))?.unwrap_or_default();
            let url =
                Url::parse(&raw).map_err(|e| err(name, format!("`{raw}` is not a URL ({e})")))?;
            if url.scheme() != "http" && url.scheme() != "https" {
                return Err(err(name, "must start with http:// or https://"));
            }
            Ok(url)
        };
        let api_base = base("TWILIO_API_BASE", DEFAULT_API_BASE)?;
        let lookup_base = base("TWILIO_LOOKUP_BASE", DEFAULT_LOOKUP_BASE)?;
        let messaging_base = base("TWILIO_MESSAGING_BASE", DEFAULT_MESSAGING_BASE)?;

        Ok(Config {
            database_url,
            bind,
            public_url,
            trusted_proxies,
            max_connections_per_client,
            spool_dir,
            twilio: TwilioConfig {
                account_sid,
                auth_token,
                webhook_keys,
                api_base,
                lookup_base,
                messaging_base,
                env: std::sync::Arc::new(get),
            },
        })
    }

    /// `serve` cannot validate a single webhook without the auth token.
    pub fn require_auth_token(&self) -> Result<&SecretString, ConfigError> {
        self.twilio.auth_token.as_ref().ok_or_else(|| {
            err("TWILIO_AUTH_TOKEN", "is required by `serve` (it validates every webhook's signature); set it to the Twilio account's auth token")
        })
    }

    pub fn auth_token_bytes(&self) -> Option<&[u8]> {
        self.twilio
            .auth_token
            .as_ref()
            .map(|t| t.expose_secret().as_bytes())
    }
}

pub use textback_store::db::redact_url_password;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = cfg(&[]).expect("defaults are valid");
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:3000");
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.twilio.api_base.as_str(), "https://api.twilio.com/");
        assert_eq!(c.twilio.lookup_base.as_str(), "https://lookups.twilio.com/");
        assert!(c.twilio.auth_token.is_none());
        let e = c.require_auth_token().expect_err("serve needs it");
        assert_eq!(e.variable, "TWILIO_AUTH_TOKEN");
    }

    #[test]
    fn several_database_hosts_are_taken_as_libpq_writes_them() {
        // As `pg_autoctl show uri` prints it (README.md "When the database goes away").
        let url = "postgres://app:pw@10.0.0.1:5432,10.0.0.2:5432/textback?target_session_attrs=read-write&sslmode=prefer";
        let c = cfg(&[("DATABASE_URL", url)]).expect("several hosts");
        assert_eq!(c.database_url, url);
        assert!(!format!("{c:?}").contains("pw@"), "the password is hidden");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let table = [
            ("DATABASE_URL", "mysql://x/y"),
            ("DATABASE_URL", "postgres://localhost"),
            ("DATABASE_URL", "not a url"),
            ("DATABASE_URL", ""),
            ("DATABASE_URL", "postgres://a:5432,b:5432"),
            ("DATABASE_URL", "postgres://a,,b/textback"),
            (
                "DATABASE_URL",
                "postgres://a,b/textback?target_session_attrs=read-only",
            ),
            ("TEXTBACK_BIND", "localhost"),
            ("TEXTBACK_BIND", "127.0.0.1:99999"),
            ("TEXTBACK_PUBLIC_URL", "ftp://x.example"),
            ("TEXTBACK_PUBLIC_URL", "https://user:pw@x.example"),
            ("TEXTBACK_PUBLIC_URL", "https://x.example/?a=1"),
            ("TEXTBACK_PUBLIC_URL", "x.example"),
            ("TEXTBACK_TRUSTED_PROXIES", "10.0.0.0/8, nonsense"),
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_AUTH_TOKEN", "   "),
            ("TWILIO_API_BASE", "api.twilio.com"),
            ("TWILIO_LOOKUP_BASE", "file:///etc/passwd"),
        ];
        for (var, value) in table {
            let e = cfg(&[(var, value)]).expect_err(var);
            assert_eq!(e.variable, var, "{var}={value}: {e}");
            assert!(e.to_string().starts_with(var));
        }
    }

    #[test]
    fn public_url_drops_trailing_slash_and_keeps_a_prefix() {
        let c = cfg(&[("TEXTBACK_PUBLIC_URL", "https://textback.example.com/")]).expect("valid");
        assert_eq!(
            c.public_url.join("/twilio/voice"),
            "https://textback.example.com/twilio/voice"
        );
        let c = cfg(&[("TEXTBACK_PUBLIC_URL", "https://example.com/tb/")]).expect("valid");
        assert_eq!(
            c.public_url.join("/twilio/voice"),
            "https://example.com/tb/twilio/voice"
        );
        assert!(c.public_url.is_https());
    }

    #[test]
    fn trusted_proxies_accept_cidrs_and_single_addresses() {
        let c = cfg(&[("TEXTBACK_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,::1")]).expect("valid");
        assert_eq!(c.trusted_proxies.len(), 3);
        let c = cfg(&[("TEXTBACK_TRUSTED_PROXIES", "")]).expect("empty means none");
        assert!(c.trusted_proxies.is_empty());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = cfg(&[
            ("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef"),
            ("DATABASE_URL", "postgres://app:hunter2@db.example/textback"),
        ])
        .expect("valid");
        let shown = format!("{c:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
