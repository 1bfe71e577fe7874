//! Which Lookup v2 line types get a text (docs/twilio.md §4; docs/compliance.md R8).

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

/// Why a number cannot take texts, in words for the agent about to write to it: the carrier's
/// code (until an inbound text proved otherwise) wins over Lookup's line type. `None` when
/// nothing says so.
pub fn why_no_texts(carrier_code: Option<&str>, line_type: Option<&str>) -> Option<&'static str> {
    match carrier_code {
        Some("30005") => return Some("the carrier does not know this handset"),
        Some("21614" | "21635" | "30006") => {
            return Some("the carrier says this is a landline or a line it cannot reach");
        }
        Some(_) => return Some("the carrier says this number cannot take texts"),
        None => {}
    }
    if can_text(line_type) {
        return None;
    }
    Some(match line_type {
        Some("landline") => "it is a landline",
        Some("tollFree") => "it is a toll-free number",
        Some("voicemail") => "it is a voicemail-only line",
        Some("pager") => "it is a pager",
        _ => "its line type cannot take texts",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carriers_word_wins_over_the_lookup() {
        assert_eq!(why_no_texts(None, Some("mobile")), None);
        assert_eq!(why_no_texts(None, None), None);
        assert_eq!(
            why_no_texts(None, Some("landline")),
            Some("it is a landline")
        );
        assert_eq!(
            why_no_texts(Some("30006"), Some("mobile")),
            Some("the carrier says this is a landline or a line it cannot reach")
        );
        assert_eq!(
            why_no_texts(Some("30005"), None),
            Some("the carrier does not know this handset")
        );
        assert!(why_no_texts(Some("99999"), None).is_some());
    }

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
