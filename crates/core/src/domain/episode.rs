//! Missed-call episodes (docs/architecture.md step 2): one text-back per episode, never two.
//!
//! An episode starts at a missed call and lasts until its text-back is cancelled or skipped
//! (`dead` counts as skipped), or until 24 h after the text-back was sent (`needs_review` counts
//! as sent). A further miss inside it re-arms a text-back that is still scheduled, and is only
//! recorded (agents alerted) once the text-back is running, reconciling or sent.

use chrono::{DateTime, Duration, Utc};

/// The contact's latest text-back job, as far as the episode rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastTextBack {
    None,
    Scheduled,
    /// `running` or `reconciling`.
    InFlight,
    /// `sent` or `needs_review`, finished at this time.
    Sent {
        at: DateTime<Utc>,
    },
    /// `cancelled`, `skipped` or `dead`.
    Ended,
}

impl LastTextBack {
    /// From a job's state and finish time.
    pub fn from_state(state: &str, finished_at: Option<DateTime<Utc>>) -> LastTextBack {
        match (state, finished_at) {
            ("scheduled", _) => LastTextBack::Scheduled,
            ("running" | "reconciling", _) => LastTextBack::InFlight,
            ("sent" | "needs_review", Some(at)) => LastTextBack::Sent { at },
            ("sent" | "needs_review", None) => LastTextBack::InFlight,
            _ => LastTextBack::Ended,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissAction {
    /// A new episode: schedule a text-back at now + the hold delay.
    Schedule,
    /// The episode's text-back is still waiting: move it to now + the hold delay and make it
    /// answer this call.
    Rearm,
    /// The episode's text-back is on its way or went out: record the miss only.
    RecordOnly,
}

/// How long after its text-back was sent an episode stays open.
pub const EPISODE_AFTER_SEND: Duration = Duration::hours(24);

pub fn on_miss(last: LastTextBack, now: DateTime<Utc>) -> MissAction {
    match last {
        LastTextBack::None | LastTextBack::Ended => MissAction::Schedule,
        LastTextBack::Scheduled => MissAction::Rearm,
        LastTextBack::InFlight => MissAction::RecordOnly,
        LastTextBack::Sent { at } if now < at + EPISODE_AFTER_SEND => MissAction::RecordOnly,
        LastTextBack::Sent { .. } => MissAction::Schedule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .with_timezone(&Utc)
    }

    #[test]
    fn one_text_back_per_episode() {
        let now = t("2026-06-12T14:00:00Z");
        let table = [
            (LastTextBack::None, MissAction::Schedule),
            (LastTextBack::Scheduled, MissAction::Rearm),
            (LastTextBack::InFlight, MissAction::RecordOnly),
            (
                LastTextBack::Sent {
                    at: t("2026-06-12T13:59:00Z"),
                },
                MissAction::RecordOnly,
            ),
            (
                LastTextBack::Sent {
                    at: t("2026-06-11T14:00:01Z"),
                },
                MissAction::RecordOnly,
            ),
            (
                LastTextBack::Sent {
                    at: t("2026-06-11T14:00:00Z"),
                },
                MissAction::Schedule,
            ),
            (LastTextBack::Ended, MissAction::Schedule),
        ];
        for (last, action) in table {
            assert_eq!(on_miss(last, now), action, "{last:?}");
        }
    }

    #[test]
    fn states_map_as_design_md_says() {
        let at = t("2026-06-12T14:00:00Z");
        assert_eq!(
            LastTextBack::from_state("scheduled", None),
            LastTextBack::Scheduled
        );
        assert_eq!(
            LastTextBack::from_state("running", None),
            LastTextBack::InFlight
        );
        assert_eq!(
            LastTextBack::from_state("reconciling", None),
            LastTextBack::InFlight
        );
        assert_eq!(
            LastTextBack::from_state("sent", Some(at)),
            LastTextBack::Sent { at }
        );
        assert_eq!(
            LastTextBack::from_state("needs_review", Some(at)),
            LastTextBack::Sent { at },
            "counts as sent"
        );
        for ended in ["cancelled", "skipped", "dead"] {
            assert_eq!(
                LastTextBack::from_state(ended, Some(at)),
                LastTextBack::Ended,
                "{ended} counts as skipped"
            );
        }
    }
}
