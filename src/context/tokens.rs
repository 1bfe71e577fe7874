//! Secret tokens (sessions, one-time form tokens, callback links): 256 random bits from the OS,
//! base64url without padding, and only their SHA-256 stored (docs/security.md §2).

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// 256 random bits from the OS, base64url without padding (43 characters).
pub fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The shape of a [`random_token`]: anything else is refused before a lookup.
pub fn is_token(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is stored of a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// API keys (docs/leads.md) read `tb_` and a [`random_token`].
pub const API_KEY_PREFIX: &str = "tb_";

/// A new API key: what is shown once, the prefix lists show, and what is stored.
pub struct NewApiKey {
    pub key: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

pub fn new_api_key() -> anyhow::Result<NewApiKey> {
    let key = format!("{API_KEY_PREFIX}{}", random_token()?);
    Ok(NewApiKey {
        prefix: key.chars().take(10).collect(),
        hash: token_hash(&key),
        key,
    })
}
