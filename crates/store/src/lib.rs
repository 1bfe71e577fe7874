//! All SQL lives here, one module per table family. Every function that reads or writes
//! tenant data takes the `BrokerageId` first and filters on it. The only lookups without one
//! are the entry points that *find* the tenant from what the carrier sends: a brokerage number
//! (`numbers::resolve`), a parent `CallSid` (`calls::resolve_parent`), an API key
//! (`web_leads::key_by_hash`) and a hosted form's address (`web_leads::form`).

pub mod alerts;
pub mod brokerages;
pub mod callbacks;
pub mod calls;
pub mod contacts;
pub mod conversations;
pub mod dashboard;
pub mod db;
pub mod failover;
#[cfg(feature = "feed")]
pub mod feed;
pub mod gate;
pub mod inbox;
pub mod jobs;
pub mod leads;
pub mod lookups;
pub mod media;
pub mod messages;
pub mod numbers;
pub mod routing;
#[cfg(feature = "seed")]
pub mod seed;
pub mod setup;
pub mod suppressions;
pub mod tasks;
pub mod users;
pub mod web_leads;
pub mod webhooks;

use sha2::{Digest, Sha256};

/// A brokerage's id. Every store function that touches tenant data takes one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, serde::Serialize, serde::Deserialize,
)]
#[sqlx(transparent)]
pub struct BrokerageId(pub i64);

/// Row ids that travel between the layers in jobs' rows and payloads: typed, so a message id
/// cannot be passed where a job id is meant. (Within one store function they are plain.)
macro_rules! row_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type, serde::Serialize, serde::Deserialize)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

row_id! {
    /// A contact (one phone number of one brokerage).
    ContactId,
    /// A call (one `CallSid`).
    CallId,
    /// A message, in or out.
    MessageId,
    /// A job.
    JobId,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The database could not be reached, or is not the writable primary (README.md "When the
    /// database goes away"): what a webhook is spooled for.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Db(e) if db::is_unavailable(e))
    }
}

/// Lowercase hex SHA-256 of a message body: logs and reconciliation compare bodies by it.
pub fn body_sha256(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}
