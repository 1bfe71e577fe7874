//! Which Twilio account a brokerage uses, and where its secrets come from.
//!
//! A deployment has one default account (`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`); a
//! brokerage may name its own (a subaccount, the usual way a provider hosts several
//! brokerages) in its setup file's `[twilio]` table. The setup file never holds a secret: it
//! names where the server reads it, an environment variable or a file, read when needed (so a
//! rotated token is picked up without a restart). Shared webhook signing keys
//! (`X-Twilio-Webhooks-Signature-Settings`) come the same way, as `KEY_ID=SECRET` entries
//! (docs/security.md "Accounts and keys").

use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

pub use textback_core::setup::twilio::{SecretSource, TwilioAccount};

/// How the server reads its environment: the process's in production, a map in tests.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The secret `source` names, or why it cannot be had (never the secret itself).
pub fn read_secret(source: &SecretSource, env: &Env) -> Result<SecretString, String> {
    let raw = match source {
        SecretSource::Env(name) => env(name).ok_or_else(|| format!("{name} is not set"))?,
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{} cannot be read ({e})", path.display()))?,
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(format!("{source} is empty"));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

/// Shared webhook signing keys read from where a setup file says (`parse_keys`'s format).
pub fn read_keys(source: &SecretSource, env: &Env) -> Result<Vec<(String, SecretString)>, String> {
    use secrecy::ExposeSecret as _;
    read_secret(source, env).and_then(|text| parse_keys(text.expose_secret()))
}

/// The credentials of one REST call.
#[derive(Clone)]
pub struct Credentials {
    pub account_sid: String,
    pub auth_token: SecretString,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

/// Shared webhook signing keys: `KEY_ID=SECRET` entries separated by commas or line breaks
/// (blank entries and `#` comment lines ignored). The secret is everything after the first
/// `=`, so a secret may itself hold `=`.
pub fn parse_keys(text: &str) -> Result<Vec<(String, SecretString)>, String> {
    let mut keys = Vec::new();
    for (i, entry) in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
        .enumerate()
    {
        let Some((id, secret)) = entry.split_once('=') else {
            return Err(format!("entry {} is not KEY_ID=SECRET", i + 1));
        };
        let (id, secret) = (id.trim(), secret.trim());
        if id.is_empty() || secret.is_empty() {
            return Err(format!("entry {} is not KEY_ID=SECRET", i + 1));
        }
        keys.push((id.to_owned(), SecretString::from(secret.to_owned())));
    }
    Ok(keys)
}

/// The secret of shared key `id` among `keys`.
pub fn find_key<'a>(keys: &'a [(String, SecretString)], id: &str) -> Option<&'a SecretString> {
    keys.iter().find(|(k, _)| k == id).map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&'static str, &'static str)]) -> Env {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Arc::new(move |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file() {
        let e = env(&[("HARBOR_TOKEN", " abc \n"), ("EMPTY", "  ")]);
        let from_env = read_secret(&SecretSource::Env("HARBOR_TOKEN".into()), &e);
        assert_eq!(
            from_env.map(|s| s.expose_secret().to_owned()),
            Ok("abc".into())
        );
        assert_eq!(
            read_secret(&SecretSource::Env("MISSING".into()), &e).err(),
            Some("MISSING is not set".to_owned())
        );
        assert!(read_secret(&SecretSource::Env("EMPTY".into()), &e).is_err());
        let dir = std::env::temp_dir().join(format!("tb-secret-{}", rand::random::<u64>()));
        std::fs::write(&dir, "from-file\n").expect("write");
        let from_file = read_secret(&SecretSource::File(dir.clone()), &e);
        assert_eq!(
            from_file.map(|s| s.expose_secret().to_owned()),
            Ok("from-file".into())
        );
        let _ = std::fs::remove_file(&dir);
        let gone = read_secret(&SecretSource::File(dir), &e)
            .err()
            .unwrap_or_default();
        assert!(gone.contains("cannot be read"), "{gone}");
    }

    #[test]
    fn keys_are_id_equals_secret_entries() {
        let keys = parse_keys("k1=s1, k2 = s=2\n# a comment\n\nk3=s3").expect("parses");
        let ids: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(ids, vec!["k1", "k2", "k3"]);
        assert_eq!(
            find_key(&keys, "k2").map(|s| s.expose_secret().to_owned()),
            Some("s=2".to_owned())
        );
        assert!(find_key(&keys, "k9").is_none());
        assert!(parse_keys("nokey").is_err());
        assert!(parse_keys("=secret").is_err());
        assert!(parse_keys("id=").is_err());
        assert_eq!(parse_keys("").map(|k| k.len()), Ok(0));
    }
}
