//! A job as types: its kind and its state (stored as the fixed words of
//! docs/architecture.md "The scheduler"), and one payload type per kind, each with an
//! `enqueue` that takes the caller's connection, so a job is written in the transaction of the
//! event that caused it.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef, Postgres};

use crate::{BrokerageId, CallId, ContactId, JobId, MessageId, Result};

/// An enum stored as one of a fixed set of words in a `text` column.
macro_rules! stored_words {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident => $word:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The word stored in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),*
                }
            }

            pub fn parse(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl sqlx::Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as sqlx::Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }

            fn array_compatible(ty: &PgTypeInfo) -> bool {
                <&str as PgHasArrayType>::array_compatible(ty)
            }
        }

        impl sqlx::Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> std::result::Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> std::result::Result<$name, BoxDynError> {
                let word = <&str as sqlx::Decode<'r, Postgres>>::decode(value)?;
                $name::parse(word).ok_or_else(|| format!("unknown {} `{word}`", $what).into())
            }
        }
    };
}

stored_words! {
    /// What a job does. The words are fixed: a kind is never renamed, a new one is added.
    JobKind, "job kind", {
        TextBack => "text_back",
        FollowUp => "follow_up",
        KeywordReply => "keyword_reply",
        AgentReply => "agent_reply",
        AgentAlert => "agent_alert",
        Escalation => "escalation",
        Reconcile => "reconcile",
        /// Places a callback's call (docs/calls.md), then watches it until it ends.
        CallBack => "call_back",
        /// Ends a first-to-claim offer nobody claimed (docs/routing.md).
        ClaimTimeout => "claim_timeout",
        /// Answers a lead from the website or a lead source at once (docs/leads.md).
        LeadText => "lead_text",
        /// Fetches an inbound text's media item from Twilio (README.md "Pictures").
        MediaFetch => "media_fetch",
        /// Benchmarks and the scheduler's own tests.
        Noop => "noop",
    }
}

stored_words! {
    /// Where a job is. The last six are terminal, each with its reason in the row.
    JobState, "job state", {
        Scheduled => "scheduled",
        Running => "running",
        /// A text's send whose outcome is unknown, waiting for its `reconcile` job.
        Reconciling => "reconciling",
        Sent => "sent",
        Done => "done",
        Cancelled => "cancelled",
        Skipped => "skipped",
        Dead => "dead",
        NeedsReview => "needs_review",
    }
}

impl JobState {
    pub const fn is_terminal(self) -> bool {
        !matches!(
            self,
            JobState::Scheduled | JobState::Running | JobState::Reconciling
        )
    }
}

/// Where and when a new job runs: the contact and call it is about, if any.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub contact: Option<ContactId>,
    pub call: Option<CallId>,
    pub run_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

impl Place {
    /// A job about nobody in particular (an alert, a reconciliation), due at `run_at`.
    pub fn at(run_at: DateTime<Utc>, now: DateTime<Utc>) -> Place {
        Place {
            contact: None,
            call: None,
            run_at,
            now,
        }
    }

    /// A job about a contact, due at `run_at`.
    pub fn for_contact(contact: ContactId, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Place {
        Place {
            contact: Some(contact),
            ..Place::at(run_at, now)
        }
    }

    pub fn with_call(self, call: Option<CallId>) -> Place {
        Place { call, ..self }
    }
}

/// A kind's payload. Its fields are the row's `payload` JSON; existing rows stay readable, so
/// a field is only ever added with a default.
pub trait JobPayload: Serialize + DeserializeOwned + Sync {
    const KIND: JobKind;

    /// Writes the job through `conn`: the caller's transaction, so the job and the event that
    /// caused it commit together or not at all.
    fn enqueue(
        &self,
        conn: &mut PgConnection,
        brokerage: BrokerageId,
        place: Place,
    ) -> impl Future<Output = Result<JobId>> + Send {
        let payload = serde_json::to_value(self);
        async move {
            let payload = payload.map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            super::insert(conn, brokerage, Self::KIND, place, &payload).await
        }
    }
}

/// A missed call's text-back. Everything it needs is in its row (contact, call).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TextBack {}

impl JobPayload for TextBack {
    const KIND: JobKind = JobKind::TextBack;
}

/// One step of the follow-up sequence, armed when the text-back was accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowUp {
    pub position: i64,
    pub templates: Vec<String>,
    /// The Spanish variants (`template_es`); absent in jobs queued before they existed.
    #[serde(default)]
    pub templates_es: Option<Vec<String>>,
    pub text_back_message_id: MessageId,
    pub text_back_accepted_at: DateTime<Utc>,
}

impl JobPayload for FollowUp {
    const KIND: JobKind = JobKind::FollowUp;
}

/// The answer to a keyword (docs/compliance.md §4.5): `ack` is `opt_out_ack`, `opt_in_ack`
/// or `help`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeywordReply {
    pub ack: String,
    pub number_id: i64,
    pub inbound_message_id: MessageId,
    pub received_at: DateTime<Utc>,
    pub carrier_answered: bool,
    pub already_confirmed: bool,
}

impl JobPayload for KeywordReply {
    const KIND: JobKind = JobKind::KeywordReply;
}

/// An agent's reply from the inbox; `once` is the form's one-time token; `by_text` the agent
/// who texted it from their phone (told by text when the gate refuses it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentReply {
    pub number_id: i64,
    pub agent: String,
    pub body: String,
    pub once: Option<String>,
    #[serde(default)]
    pub by_text: Option<i64>,
    /// Attachments (README.md "Pictures"), sent as `MediaUrl`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_ids: Vec<i64>,
}

impl JobPayload for AgentReply {
    const KIND: JobKind = JobKind::AgentReply;
}

/// One person's text of an alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentAlert {
    pub alert_id: i64,
    pub agent_id: i64,
}

impl JobPayload for AgentAlert {
    const KIND: JobKind = JobKind::AgentAlert;
}

/// A reply nobody answered within `escalate_after`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Escalation {
    pub reply_wait_id: i64,
}

impl JobPayload for Escalation {
    const KIND: JobKind = JobKind::Escalation;
}

/// Settles a send whose outcome is unknown by the carrier's list (docs/reliability.md §2);
/// `absent` keeps when the list did not show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reconcile {
    pub message_id: MessageId,
    pub text_job_id: JobId,
    #[serde(default)]
    pub absent: Vec<DateTime<Utc>>,
}

impl JobPayload for Reconcile {
    const KIND: JobKind = JobKind::Reconcile;
}

/// A callback's call: placed at most once, then watched until it ends (docs/calls.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallBack {
    pub callback_id: i64,
}

impl JobPayload for CallBack {
    const KIND: JobKind = JobKind::CallBack;
}

/// A first-to-claim offer's deadline (docs/routing.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimTimeout {
    pub claim_offer_id: i64,
}

impl JobPayload for ClaimTimeout {
    const KIND: JobKind = JobKind::ClaimTimeout;
}

/// The text that answers a web lead (docs/leads.md): the lead row has what it says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeadText {
    pub web_lead_id: i64,
}

impl JobPayload for LeadText {
    const KIND: JobKind = JobKind::LeadText;
}

/// An inbound media item to fetch (README.md "Pictures").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaFetch {
    pub media_id: i64,
}

impl JobPayload for MediaFetch {
    const KIND: JobKind = JobKind::MediaFetch;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_its_variant_and_no_other_word_does() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(*k));
        }
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(*s));
        }
        assert_eq!(JobKind::parse("text-back"), None);
        assert_eq!(JobState::parse("Sent"), None);
        let terminal: Vec<&str> = JobState::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            terminal,
            [
                "sent",
                "done",
                "cancelled",
                "skipped",
                "dead",
                "needs_review"
            ]
        );
    }

    #[test]
    fn payloads_read_the_rows_written_before_they_were_types() {
        let f: FollowUp = serde_json::from_value(serde_json::json!({
            "position": 2, "templates": ["a"], "text_back_message_id": 7,
            "text_back_accepted_at": "2026-06-12T14:00:20Z"
        }))
        .expect("follow-up");
        assert_eq!((f.position, f.text_back_message_id), (2, MessageId(7)));
        let r: Reconcile =
            serde_json::from_value(serde_json::json!({ "message_id": 3, "text_job_id": 4 }))
                .expect("reconcile");
        assert_eq!(
            (r.message_id, r.text_job_id, r.absent.len()),
            (MessageId(3), JobId(4), 0)
        );
        let t: TextBack = serde_json::from_value(serde_json::json!({})).expect("text-back");
        assert_eq!(
            serde_json::to_value(&t).expect("json"),
            serde_json::json!({})
        );
    }
}
