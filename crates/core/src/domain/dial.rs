//! Answered or missed: the one precedence table of docs/twilio.md §1.6 (docs/architecture.md step 2 and
//! docs/security.md refer here). Pure; the webhook handlers record what it returns.

/// What a `<Dial action>` request (or the parent call's final status) says about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOutcome {
    /// A human took the call (the screen was passed and the legs were bridged).
    Answered,
    /// Nobody took it: the caller gets a text-back (docs/architecture.md step 2).
    Missed,
    /// An unknown `DialCallStatus` without `DialBridged`: recorded, no text-back, a callback
    /// task for the number's agents.
    Unclassified,
}

impl DialOutcome {
    /// The value stored in `call.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            DialOutcome::Answered => "answered",
            DialOutcome::Missed => "missed",
            DialOutcome::Unclassified => "unclassified",
        }
    }
}

/// `DialBridged` as Twilio sends it: `true`, `false`, or absent. Any other value counts as
/// absent, so the status decides (rows 2, 4 and 6 of [`classify`]).
pub fn parse_bridged(raw: Option<&str>) -> Option<bool> {
    match raw.map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if s == "true" => Some(true),
        Some(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// docs/twilio.md §1.6: the first row that matches decides.
///
/// | # | `DialBridged` | `DialCallStatus` | outcome |
/// |---|---|---|---|
/// | 1 | `true` | any | answered |
/// | 2 | `false` or absent | `no-answer`, `busy`, `failed`, `canceled` | missed |
/// | 3 | `false` | `completed`, `answered` | missed (screen not passed, voicemail, AMD) |
/// | 4 | absent | `completed`, `answered` | answered |
/// | 5 | `false` | any other value | missed |
/// | 6 | absent | any other value | unclassified |
pub fn classify(bridged: Option<bool>, dial_call_status: &str) -> DialOutcome {
    let status = dial_call_status.trim().to_ascii_lowercase();
    let status = status.as_str();
    match (bridged, status) {
        (Some(true), _) => DialOutcome::Answered,
        (_, "no-answer" | "busy" | "failed" | "canceled") => DialOutcome::Missed,
        (Some(false), "completed" | "answered") => DialOutcome::Missed,
        (None, "completed" | "answered") => DialOutcome::Answered,
        (Some(false), _) => DialOutcome::Missed,
        (None, _) => DialOutcome::Unclassified,
    }
}

/// The parent call's final status with no dial result recorded (docs/twilio.md §1.6 point 3, the
/// backup path of `/twilio/voice/status`): a terminal status means the caller left before any
/// agent was bridged, a missed call; a non-terminal one says nothing yet.
pub fn classify_parent_final(call_status: &str) -> Option<DialOutcome> {
    match call_status.trim().to_ascii_lowercase().as_str() {
        "completed" | "busy" | "failed" | "no-answer" | "canceled" => Some(DialOutcome::Missed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DialOutcome::*;

    #[test]
    fn precedence_table_of_twilio_md() {
        let table: &[(u8, Option<bool>, &str, DialOutcome)] = &[
            (1, Some(true), "completed", Answered),
            (1, Some(true), "answered", Answered),
            (1, Some(true), "no-answer", Answered),
            (1, Some(true), "something-new", Answered),
            (2, Some(false), "no-answer", Missed),
            (2, Some(false), "busy", Missed),
            (2, Some(false), "failed", Missed),
            (2, Some(false), "canceled", Missed),
            (2, None, "no-answer", Missed),
            (2, None, "busy", Missed),
            (2, None, "failed", Missed),
            (2, None, "canceled", Missed),
            (3, Some(false), "completed", Missed),
            (3, Some(false), "answered", Missed),
            (4, None, "completed", Answered),
            (4, None, "answered", Answered),
            (5, Some(false), "something-new", Missed),
            (5, Some(false), "", Missed),
            (6, None, "something-new", Unclassified),
            (6, None, "", Unclassified),
            (6, None, "in-progress", Unclassified),
        ];
        for (row, bridged, status, expected) in table {
            assert_eq!(
                classify(*bridged, status),
                *expected,
                "row {row}: bridged={bridged:?} status={status}"
            );
        }
    }

    #[test]
    fn status_values_are_read_case_insensitively() {
        assert_eq!(classify(Some(false), "No-Answer"), Missed);
        assert_eq!(classify(None, "COMPLETED"), Answered);
    }

    #[test]
    fn bridged_parses_only_true_and_false() {
        assert_eq!(parse_bridged(Some("true")), Some(true));
        assert_eq!(parse_bridged(Some("False")), Some(false));
        assert_eq!(parse_bridged(Some("yes")), None);
        assert_eq!(parse_bridged(Some("")), None);
        assert_eq!(parse_bridged(None), None);
    }

    #[test]
    fn parent_final_status_is_a_miss_only_when_terminal() {
        for s in ["completed", "busy", "failed", "no-answer", "canceled"] {
            assert_eq!(classify_parent_final(s), Some(Missed), "{s}");
        }
        for s in ["ringing", "in-progress", "queued", "initiated", "weird"] {
            assert_eq!(classify_parent_final(s), None, "{s}");
        }
    }
}
