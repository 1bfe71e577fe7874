//! Which Lookup v2 line types get a text (twilio.md §4; compliance.md R8).

/// `mobile`, `nonFixedVoip`, `fixedVoip`, `personal` and `unknown` are texted (a failed text
/// comes back as 30006 and becomes a callback task); `landline`, `tollFree`, `premium`,
/// `sharedCost`, `uan`, `voicemail` and `pager` are not: the caller gets a callback task.
/// A type Twilio adds later, or none at all (the package failed), counts as `unknown`.
pub fn can_text(line_type: Option<&str>) -> bool {
    !matches!(
        line_type,
        Some("landline" | "tollFree" | "premium" | "sharedCost" | "uan" | "voicemail" | "pager")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_of_twilio_md() {
        for t in [
            "mobile",
            "nonFixedVoip",
            "fixedVoip",
            "personal",
            "unknown",
            "somethingNew",
        ] {
            assert!(can_text(Some(t)), "{t}");
        }
        for t in [
            "landline",
            "tollFree",
            "premium",
            "sharedCost",
            "uan",
            "voicemail",
            "pager",
        ] {
            assert!(!can_text(Some(t)), "{t}");
        }
        assert!(can_text(None));
    }
}
