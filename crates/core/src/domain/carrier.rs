//! What a carrier code means for the contact, the message and the people: the one table of
//! docs/reliability.md §3, for the synchronous answer to a send and for status callbacks.

/// The effect of a code, beyond the send's own class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeEffect {
    /// The recipient opted out or blocked us: suppress the number brokerage-wide, cancel the
    /// contact's pending jobs (docs/compliance.md R1).
    OptedOut,
    /// The number is invalid: mark it, later texts skip `invalid_number`.
    InvalidNumber,
    /// The number cannot take texts, for good (a landline, an unknown handset, a carrier that
    /// cannot reach it: 21614, 21635, 30005, 30006): a callback task, the follow-up sequence
    /// stops (`cancelled(cannot_text)`), and the number is marked unable to take texts until
    /// an inbound text from it proves otherwise (a later miss becomes a callback task).
    CannotReceive,
    /// The handset is unreachable now (30003: off, no signal), which may pass: a callback task;
    /// the sequence goes on unless the text before this one to the contact came back 30003
    /// too (two in a row end it, `cancelled(unreachable)`).
    Unreachable,
    /// A configuration or account problem (region permission, unregistered sender,
    /// credentials): the brokerage's admins must act.
    AdminAlert,
    /// Filtered by the carrier (30007): no resend; the admins should know (a template may be
    /// at fault), and the contact's follow-ups stop (`cancelled(filtered)`): a second text to
    /// a number whose first was filtered hurts the sender's reputation.
    Filtered,
    /// Unknown carrier failure: flag the message for a person.
    FlagForReview,
    /// Nothing beyond recording the code.
    Nothing,
}

/// Codes in a 4xx answer to `POST Messages.json` (the job ends `dead(code)`). `http` 0: the
/// request was never made because the server has no account to send from (an admin's fix).
pub fn sync_effect(http: u16, code: Option<u32>) -> CodeEffect {
    match code {
        Some(21610) => CodeEffect::OptedOut,
        Some(21211) => CodeEffect::InvalidNumber,
        Some(21614 | 21635) => CodeEffect::CannotReceive,
        Some(21408) => CodeEffect::AdminAlert,
        _ if matches!(http, 0 | 401 | 403 | 404) => CodeEffect::AdminAlert,
        _ => CodeEffect::Nothing,
    }
}

/// `ErrorCode` of a status callback (after the job ended `sent`: never a resend).
pub fn async_effect(code: u32) -> CodeEffect {
    match code {
        21610 | 30004 => CodeEffect::OptedOut,
        30005 | 30006 => CodeEffect::CannotReceive,
        30003 => CodeEffect::Unreachable,
        30007 => CodeEffect::Filtered,
        30034 => CodeEffect::AdminAlert,
        30008 => CodeEffect::FlagForReview,
        _ => CodeEffect::Nothing,
    }
}

/// What a carrier code means, in words for the people reading a thread (no code in sight);
/// `None` for a code without words here (shown as "carrier error N").
pub fn words(code: i32) -> Option<&'static str> {
    Some(match code {
        21610 | 30004 => "they have blocked texts from us",
        21211 => "the number is not valid",
        21614 | 21635 => "the number cannot take texts (a landline)",
        21408 => "texts to this region are not enabled on our account",
        30003 => "their phone was unreachable (switched off or no signal)",
        30005 => "the carrier does not know this phone",
        30006 => "a landline, or a line the carrier cannot reach",
        30007 => "the carrier filtered it as spam",
        30008 => "the carrier gave no reason",
        30034 => "our number is not registered for texting (A2P 10DLC)",
        _ => return None,
    })
}

/// [`words`], or "carrier error N" for a code without them.
pub fn describe(code: i32) -> String {
    words(code).map_or_else(|| format!("carrier error {code}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CodeEffect::*;

    #[test]
    fn every_code_with_an_effect_has_words() {
        for code in [
            21610, 30004, 21211, 21614, 21635, 21408, 30003, 30005, 30006, 30007, 30008, 30034,
        ] {
            let w = words(code).unwrap_or_default();
            assert!(!w.is_empty() && !w.contains(&code.to_string()), "{code}");
        }
        assert_eq!(describe(30099), "carrier error 30099");
    }

    #[test]
    fn the_table_of_reliability_md() {
        let sync = [
            (400, Some(21610), OptedOut),
            (400, Some(21211), InvalidNumber),
            (400, Some(21614), CannotReceive),
            (400, Some(21635), CannotReceive),
            (400, Some(21408), AdminAlert),
            (401, Some(20003), AdminAlert),
            (403, None, AdminAlert),
            (0, None, AdminAlert),
            (404, Some(20404), AdminAlert),
            (400, Some(21602), Nothing),
            (400, None, Nothing),
        ];
        for (http, code, effect) in sync {
            assert_eq!(sync_effect(http, code), effect, "{http} {code:?}");
        }
        let asynchronous = [
            (21610, OptedOut),
            (30004, OptedOut),
            (30003, Unreachable),
            (30005, CannotReceive),
            (30006, CannotReceive),
            (30007, Filtered),
            (30034, AdminAlert),
            (30008, FlagForReview),
            (30001, Nothing),
            (12345, Nothing),
        ];
        for (code, effect) in asynchronous {
            assert_eq!(async_effect(code), effect, "{code}");
        }
    }
}
