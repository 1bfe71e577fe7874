//! `[twilio]`: a brokerage's own Twilio account, and where the server reads its secrets (the
//! file never holds one). Reading them is the server's (`twilio::credentials`).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable of the server's process.
    Env(String),
    /// A file (its whole content, outer whitespace trimmed): a mounted secret.
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "the environment variable {name}"),
            SecretSource::File(path) => write!(f, "the file {}", path.display()),
        }
    }
}

/// A brokerage's own account as its setup file names it (stored without any secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioAccount {
    pub account_sid: String,
    pub auth_token: SecretSource,
    /// Shared webhook signing keys, `KEY_ID=SECRET` entries; none: only the auth token signs.
    pub webhook_keys: Option<SecretSource>,
}

/// Whether `s` is an account SID: `AC` and 32 hex digits.
pub fn is_account_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` can name an environment variable: upper-case letters, digits, underscores,
/// not starting with a digit.
pub fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sids() {
        assert!(is_account_sid("AC4a9f9b8b5c52fcd667586e852d52ac05"));
        assert!(!is_account_sid("AC4a9f"));
        assert!(!is_account_sid("XX4a9f9b8b5c52fcd667586e852d52ac05"));
        assert!(is_env_name("HARBOR_TWILIO_AUTH_TOKEN"));
        assert!(!is_env_name("harbor"));
        assert!(!is_env_name("1TOKEN"));
        assert!(!is_env_name(""));
    }

    #[test]
    fn a_stored_reference_holds_no_secret() {
        let r = TwilioAccount {
            account_sid: "AC4a9f9b8b5c52fcd667586e852d52ac05".into(),
            auth_token: SecretSource::Env("HARBOR_TOKEN".into()),
            webhook_keys: Some(SecretSource::File("/run/secrets/keys".into())),
        };
        let json = serde_json::to_string(&r).expect("serializes");
        assert_eq!(
            json,
            r#"{"account_sid":"AC4a9f9b8b5c52fcd667586e852d52ac05","auth_token":{"env":"HARBOR_TOKEN"},"webhook_keys":{"file":"/run/secrets/keys"}}"#
        );
        let back: TwilioAccount = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, r);
    }
}
