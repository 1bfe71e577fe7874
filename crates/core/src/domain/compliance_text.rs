//! The compliance texts (docs/compliance.md §4.5): the opt-out and opt-in confirmations and the
//! help text, in English and Spanish, their defaults, the checks `setup apply` holds a
//! brokerage's own wording to (the defaults pass the same checks), and their rendering. Pure.

use super::language::Language;
use super::{links, sms_text};

/// Which compliance text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Which {
    /// R2: confirms an opt-out.
    OptOut,
    /// R5: confirms an opt-in.
    OptIn,
    /// R6: answers HELP.
    Help,
}

impl Which {
    pub const ALL: &'static [Which] = &[Which::OptOut, Which::OptIn, Which::Help];

    /// The `[compliance]` key of a brokerage's own wording.
    pub fn key(self, language: Language) -> &'static str {
        match (self, language) {
            (Which::OptOut, Language::En) => "opt_out_text",
            (Which::OptOut, Language::Es) => "opt_out_text_es",
            (Which::OptIn, Language::En) => "opt_in_text",
            (Which::OptIn, Language::Es) => "opt_in_text_es",
            (Which::Help, Language::En) => "help_text",
            (Which::Help, Language::Es) => "help_text_es",
        }
    }
}

/// The default wording. `{brokerage}` and `{office_phone}` are filled by [`render`]. The
/// Spanish texts keep to GSM-7 (no accents) so each stays one segment.
pub fn default(which: Which, language: Language) -> &'static str {
    match (which, language) {
        (Which::OptOut, Language::En) => {
            "{brokerage}: you are unsubscribed and will get no more texts from us. Reply START to resubscribe."
        }
        (Which::OptIn, Language::En) => {
            "{brokerage}: you are resubscribed to our texts. Reply STOP to opt out."
        }
        (Which::Help, Language::En) => {
            "{brokerage}: for help call {office_phone}. Msg & data rates may apply. Reply STOP to opt out."
        }
        (Which::OptOut, Language::Es) => {
            "{brokerage}: ya no recibiras mas mensajes nuestros. Responde START para volver a recibirlos."
        }
        (Which::OptIn, Language::Es) => {
            "{brokerage}: volveras a recibir nuestros mensajes. Responde PARA para no recibir mas."
        }
        (Which::Help, Language::Es) => {
            "{brokerage}: para AYUDA llama al {office_phone}. Pueden aplicar tarifas de mensajes y datos. Responde PARA para no recibir mas."
        }
    }
}

/// The text sent: `own` (the brokerage's wording, if any) or the default, filled in.
pub fn render(
    which: Which,
    language: Language,
    own: Option<&str>,
    brokerage: &str,
    office_phone: &str,
) -> String {
    own.unwrap_or_else(|| default(which, language))
        .replace("{brokerage}", brokerage)
        .replace("{office_phone}", office_phone)
}

/// What is wrong with a wording of `which` in `language` (empty: nothing). `brokerage` is the
/// brokerage's name when known; `{brokerage}` counts as it, `{office_phone}` as a number.
pub fn problems(
    which: Which,
    language: Language,
    text: &str,
    brokerage: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(name) = brokerage
        && !text.contains("{brokerage}")
        && !text.contains(name)
    {
        out.push(format!(
            "must name the brokerage (`{name}` or `{{brokerage}}`) (docs/compliance.md R10)"
        ));
    }
    let says_stop = sms_text::has_stop_word(text)
        || (language == Language::Es && sms_text::has_word(text, "PARA"));
    let stop_words = match language {
        Language::En => "STOP",
        Language::Es => "PARA or STOP",
    };
    match which {
        Which::OptOut => {
            if !sms_text::has_word(text, "START") {
                out.push(
                    "must tell how to opt back in with the word START, in capitals (docs/compliance.md R2)"
                        .into(),
                );
            }
        }
        Which::OptIn | Which::Help => {
            if !says_stop {
                out.push(format!(
                    "must tell how to opt out with the word {stop_words}, in capitals (docs/compliance.md R5, R6)"
                ));
            }
        }
    }
    match which {
        Which::OptOut | Which::OptIn => {
            if links::has_link(text) {
                out.push("a confirmation holds no link (docs/compliance.md R2, R5)".into());
            }
        }
        Which::Help => {
            if !sms_text::has_phone_number(text)
                && !links::has_link(text)
                && !text.contains("{office_phone}")
            {
                out.push(
                    "must give a phone number or a link (http://, https:// or www.) where to get help (docs/compliance.md R6)"
                        .into(),
                );
            }
            if language == Language::Es && !sms_text::has_word(&text.to_uppercase(), "AYUDA") {
                out.push("must name the word AYUDA, so the lead knows what it answers".into());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_the_checks_a_brokerage_s_own_wording_must() {
        for which in Which::ALL {
            for language in Language::ALL {
                let text = default(*which, *language);
                assert_eq!(
                    problems(*which, *language, text, Some("Harbor Realty")),
                    Vec::<String>::new(),
                    "{which:?} {language:?}"
                );
                let sent = render(*which, *language, None, "Harbor Realty", "(555) 555-0100");
                assert!(sent.starts_with("Harbor Realty: "), "{sent}");
                assert!(sms_text::is_gsm7(&sent), "{sent}");
                assert_eq!(sms_text::segments(&sent), 1, "{sent}");
            }
        }
    }

    #[test]
    fn english_defaults_are_those_of_compliance_md() {
        let r = |w| render(w, Language::En, None, "Harbor Realty", "(555) 555-0100");
        assert_eq!(
            r(Which::OptOut),
            "Harbor Realty: you are unsubscribed and will get no more texts from us. Reply START to resubscribe."
        );
        assert_eq!(
            r(Which::OptIn),
            "Harbor Realty: you are resubscribed to our texts. Reply STOP to opt out."
        );
        assert_eq!(
            r(Which::Help),
            "Harbor Realty: for help call (555) 555-0100. Msg & data rates may apply. Reply STOP to opt out."
        );
    }

    #[test]
    fn a_brokerage_s_own_wording_is_held_to_the_same_rules() {
        use Language::{En, Es};
        use Which::{Help, OptIn, OptOut};
        let name = Some("Harbor Realty");
        // (which, language, text, expected problem fragments; empty = fine)
        let table: &[(Which, Language, &str, &[&str])] = &[
            (
                OptOut,
                En,
                "{brokerage}: done. Reply START to come back.",
                &[],
            ),
            (
                OptOut,
                En,
                "Harbor Realty: done. Reply START to come back.",
                &[],
            ),
            (
                OptOut,
                En,
                "Done. Reply START to come back.",
                &["name the brokerage"],
            ),
            (OptOut, En, "{brokerage}: done.", &["START"]),
            (OptOut, En, "{brokerage}: done. Reply start.", &["START"]),
            (
                OptOut,
                En,
                "{brokerage}: done. Reply START. https://x.example",
                &["no link"],
            ),
            (
                OptOut,
                Es,
                "{brokerage}: listo. Responde START para volver.",
                &[],
            ),
            (OptOut, Es, "{brokerage}: listo.", &["START"]),
            (
                OptIn,
                En,
                "{brokerage}: welcome back. Reply STOP to opt out.",
                &[],
            ),
            (OptIn, En, "{brokerage}: welcome back.", &["STOP"]),
            (
                OptIn,
                Es,
                "{brokerage}: bienvenido. Responde PARA para salir.",
                &[],
            ),
            (
                OptIn,
                Es,
                "{brokerage}: bienvenido. Responde STOP para salir.",
                &[],
            ),
            (
                OptIn,
                Es,
                "{brokerage}: bienvenido. Responde para salir.",
                &["PARA or STOP"],
            ),
            (
                OptIn,
                Es,
                "{brokerage}: bienvenido. Responde PARA. www.x.example",
                &["no link"],
            ),
            (
                Help,
                En,
                "{brokerage}: call {office_phone}. Reply STOP to opt out.",
                &[],
            ),
            (
                Help,
                En,
                "{brokerage}: call us. Reply STOP to opt out.",
                &["phone number or a link"],
            ),
            (
                Help,
                Es,
                "{brokerage}: AYUDA al {office_phone}. Responde PARA para salir.",
                &[],
            ),
            (
                Help,
                Es,
                "{brokerage}: ayuda al {office_phone}. Responde PARA para salir.",
                &[],
            ),
            (
                Help,
                Es,
                "{brokerage}: llama al {office_phone}. Responde PARA para salir.",
                &["AYUDA"],
            ),
            (
                Help,
                Es,
                "{brokerage}: AYUDA al {office_phone}.",
                &["PARA or STOP"],
            ),
        ];
        for (which, language, text, expected) in table {
            let got = problems(*which, *language, text, name);
            assert_eq!(got.len(), expected.len(), "{text}: {got:?}");
            for (g, e) in got.iter().zip(expected.iter()) {
                assert!(g.contains(e), "{text}: `{g}` lacks `{e}`");
            }
        }
    }

    #[test]
    fn a_brokerage_s_own_wording_is_filled_in() {
        assert_eq!(
            render(
                Which::Help,
                Language::Es,
                Some("{brokerage} AYUDA: {office_phone}. Responde PARA."),
                "Harbor Realty",
                "(555) 555-0100"
            ),
            "Harbor Realty AYUDA: (555) 555-0100. Responde PARA."
        );
    }
}
