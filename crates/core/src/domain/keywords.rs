//! Inbound keywords (docs/compliance.md §4): the normalisation of an inbound `Body` (§4.1), the
//! fixed word lists (§4.2) and the classification into OPT_OUT, OPT_IN, HELP, REVIEW or REPLY
//! (§4.3) that drives R2–R6. Pure: no I/O, no clock.
//!
//! The raw body is what is stored; [`normalise`] only feeds [`classify`]. Media are ignored: a
//! photo with an empty body is classified as the empty body (a REPLY).

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

/// Opt-out words (§4.2): the whole `joined` body, or every token, makes an OPT_OUT (§4.3 rule 3).
pub const OPT_OUT_WORDS: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "alto",
    "parar",
    "para",
    "cancelar",
    "basta",
    "baja",
    "detener",
];

/// The Spanish entries of the lists above: a text made of one of these words, or holding one
/// of the Spanish phrases, was written in Spanish, so its confirmation is too (docs/compliance.md §4.5).
pub const SPANISH_WORDS: &[&str] = &[
    "alto", "parar", "para", "cancelar", "basta", "baja", "detener", "ayuda",
];

/// Whether `body` is a Spanish keyword text: a Spanish keyword word alone (or repeated), or a
/// text holding a Spanish opt-out or review phrase.
pub fn is_spanish_keyword(body: &str) -> bool {
    let n = normalise(body);
    (!n.tokens.is_empty() && n.tokens.iter().all(|t| SPANISH_WORDS.contains(&t.as_str())))
        || OPT_OUT_PHRASES_ES
            .iter()
            .chain(REVIEW_PHRASES_ES)
            .any(|p| contains_phrase(&n.tokens, p))
}

/// Opt-in words (§4.2, R5): the whole `norm`.
pub const OPT_IN_WORDS: &[&str] = &["start", "unstop", "yes"];

/// Help words (§4.2, R6): the whole `norm`.
pub const HELP_WORDS: &[&str] = &["help", "info", "ayuda"];

/// Opt-out phrases (§4.2), matched as whole consecutive tokens of `norm` (§4.3 rule 4): the
/// English ones, then the Spanish ones ([`opt_out_phrases`] gives both).
pub const OPT_OUT_PHRASES_EN: &[&str] = &[
    "stop texting",
    "stop text",
    "stop messaging",
    "stop sending",
    "stop contacting",
    "stop calling",
    "remove me",
    "take me off",
    "unsubscribe me",
    "opt me out",
    "do not text",
    "dont text",
    "do not contact",
    "dont contact",
    "no more texts",
    "no more messages",
    "leave me alone",
    "wrong number",
    "wrong person",
    "lose my number",
    "delete my number",
];

pub const OPT_OUT_PHRASES_ES: &[&str] = &[
    "no mas",
    "no me escriban",
    "no me escribas",
    "no me manden",
    "dejen de escribir",
    "darme de baja",
    "dar de baja",
    "numero equivocado",
    "no me envien",
    "no me envies",
    "no quiero mensajes",
    "no quiero mas mensajes",
    "borra mi numero",
    "borren mi numero",
    "quitame de la lista",
    "sacame de la lista",
    "saquenme de la lista",
    "quitenme de la lista",
    "dejen de mandar",
    "deja de escribir",
    "deja de mandar",
];

/// Every opt-out phrase, English and Spanish.
pub fn opt_out_phrases() -> impl Iterator<Item = &'static str> {
    OPT_OUT_PHRASES_EN.iter().chain(OPT_OUT_PHRASES_ES).copied()
}

/// An opt-out phrase suppresses only in a message of at most this many tokens (§4.3 rule 4).
pub const PHRASE_MAX_TOKENS: usize = 8;

/// Review phrases (§4.2), matched as whole consecutive tokens (§4.3 rule 5): English, then
/// Spanish ([`review_phrases`] gives both).
pub const REVIEW_PHRASES_EN: &[&str] = &["not interested", "no longer interested"];

pub const REVIEW_PHRASES_ES: &[&str] = &[
    "no estoy interesado",
    "no estoy interesada",
    "no me interesa",
    "ya no estoy interesado",
    "ya no estoy interesada",
];

/// Every review phrase, English and Spanish.
pub fn review_phrases() -> impl Iterator<Item = &'static str> {
    REVIEW_PHRASES_EN.iter().chain(REVIEW_PHRASES_ES).copied()
}

/// Strong tokens (§4.2, §4.3 rule 6); the pair [`STRONG_PAIR`] counts too.
pub const STRONG_TOKENS: &[&str] = &["stop", "stopall", "unsubscribe", "optout", "revoke", "alto"];

/// Two consecutive tokens that count as one strong token.
pub const STRONG_PAIR: (&str, &str) = ("opt", "out");

/// "stop" directly followed by one of these is not a strong token ("stop by the house").
pub const STOP_NOT_BEFORE: &[&str] = &["by", "in", "over"];

/// Typo targets (§4.2, §4.3 rule 7): a one-token body within this optimal-string-alignment
/// distance of the word.
pub const TYPO_TARGETS: &[(&str, usize)] = &[
    ("stop", 1),
    ("stopall", 1),
    ("cancel", 1),
    ("revoke", 1),
    ("optout", 1),
    ("unsubscribe", 2),
];

/// Stop symbols (§4.2): 🛑 ⛔ 🚫 ✋ (§4.3 rule 8, only when `norm` is empty).
pub const STOP_SYMBOLS: &[char] = &['\u{1F6D1}', '\u{26D4}', '\u{1F6AB}', '\u{270B}'];

/// Apostrophes deleted by §4.1 step 4 (`don’t` → `dont`).
pub const APOSTROPHES: &[char] = &['\u{0027}', '\u{2018}', '\u{2019}', '\u{02BC}'];

/// Carrier-exact opt-out keywords (docs/compliance.md §1).
pub const CARRIER_OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];

/// Carrier-exact opt-in keywords (docs/compliance.md §1).
pub const CARRIER_OPT_IN: &[&str] = &["START", "YES", "UNSTOP"];

/// Carrier-exact help keywords (docs/compliance.md §1).
pub const CARRIER_HELP: &[&str] = &["HELP", "INFO"];

/// The class of an inbound text (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Suppress the number (R2), one confirmation unless the carrier answered (R4).
    OptOut,
    /// Lift the suppression (R5); only from a suppressed number.
    OptIn,
    /// Answer with the help text (R6).
    Help,
    /// A possible opt-out: stored as a reply and the contact put on review hold (R3).
    Review,
    /// A plain reply.
    Reply,
}

impl Class {
    /// `opt_out`, `opt_in`, `help`, `review` or `reply`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::OptOut => "opt_out",
            Class::OptIn => "opt_in",
            Class::Help => "help",
            Class::Review => "review",
            Class::Reply => "reply",
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A body normalised by §4.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// Letters and digits only, case-folded, single spaces between words, no outer spaces.
    pub norm: String,
    /// `norm` split on spaces (empty when `norm` is empty).
    pub tokens: Vec<String>,
    /// The tokens concatenated (`S T O P` → `stop`).
    pub joined: String,
}

fn deleted_before_folding(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::NonspacingMark | GeneralCategory::Format
    )
}

fn is_letter_or_digit(c: char) -> bool {
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number
    )
}

/// §4.1: NFKD; delete Mn and Cf; default case folding; delete the apostrophes; every code
/// point that is not a letter (L*) or digit (N*) becomes a space; spaces collapsed and trimmed.
pub fn normalise(body: &str) -> Normalised {
    // Steps 1 and 2.
    let decomposed: String = body
        .nfkd()
        .filter(|c| !deleted_before_folding(*c))
        .collect();
    // Step 3.
    let folded = caseless::default_case_fold_str(&decomposed);
    // Steps 4 to 6 in one pass: apostrophes vanish, any other non-letter/digit run is one gap.
    let mut norm = String::with_capacity(folded.len());
    let mut gap = false;
    for c in folded.chars() {
        if APOSTROPHES.contains(&c) {
            continue;
        }
        if is_letter_or_digit(c) {
            if gap && !norm.is_empty() {
                norm.push(' ');
            }
            gap = false;
            norm.push(c);
        } else {
            gap = true;
        }
    }
    let tokens: Vec<String> = if norm.is_empty() {
        Vec::new()
    } else {
        norm.split(' ').map(str::to_owned).collect()
    };
    let joined = tokens.concat();
    Normalised {
        norm,
        tokens,
        joined,
    }
}

/// The result of [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub class: Class,
    /// Twilio's built-in handling matched: `OptOutType` was present (rule 0 of §4.3)
    pub by_opt_out_type: bool,
    /// the body is a carrier-exact keyword (docs/compliance.md §1 terms) of the same class
    pub carrier_exact: bool,
}

impl Classified {
    /// whether the carrier answered the keyword itself, given the brokerage setting
    /// carrier_answers_keywords (R4–R6): `OptOutType` was present, or the body is
    /// carrier-exact and the brokerage's Twilio answers keywords.
    pub fn carrier_answered(&self, carrier_answers_keywords: bool) -> bool {
        self.by_opt_out_type || (carrier_answers_keywords && self.carrier_exact)
    }
}

/// The class of the carrier-exact keyword `body` is (docs/compliance.md §1: outer whitespace
/// removed, ASCII case ignored, the whole body one keyword), if any.
fn carrier_keyword_class(body: &str) -> Option<Class> {
    let body = body.trim();
    let is_one_of = |list: &[&str]| list.iter().any(|k| body.eq_ignore_ascii_case(k));
    if is_one_of(CARRIER_OPT_OUT) {
        Some(Class::OptOut)
    } else if is_one_of(CARRIER_OPT_IN) {
        Some(Class::OptIn)
    } else if is_one_of(CARRIER_HELP) {
        Some(Class::Help)
    } else {
        None
    }
}

/// §4.3 rule 0: Twilio's `OptOutType` (STOP, START, HELP, any case); an unknown value is
/// ignored (`None`).
fn class_by_opt_out_type(opt_out_type: &str, suppressed: bool) -> Option<Class> {
    let value = opt_out_type.trim();
    if value.eq_ignore_ascii_case("STOP") {
        Some(Class::OptOut)
    } else if value.eq_ignore_ascii_case("START") {
        Some(if suppressed {
            Class::OptIn
        } else {
            Class::Reply
        })
    } else if value.eq_ignore_ascii_case("HELP") {
        Some(Class::Help)
    } else {
        None
    }
}

/// Whether `phrase` (space-separated tokens) occurs as whole consecutive tokens.
fn contains_phrase(tokens: &[String], phrase: &str) -> bool {
    let wanted: Vec<&str> = phrase.split(' ').collect();
    tokens
        .windows(wanted.len())
        .any(|window| window.iter().map(String::as_str).eq(wanted.iter().copied()))
}

/// Whether the raw body asks a question (§4.3 rule 4). `?` in any compatibility form (full-width
/// `？`, small `﹖`, `⁇`, `⁈`, `⁉` all decompose to it) or an opening `¿` counts: the rule sends
/// questions to a person, and that is the cautious side.
fn has_question_mark(body: &str) -> bool {
    body.contains('¿') || body.nfkd().any(|c| c == '?')
}

/// A strong token (§4.2, §4.3 rule 6); "stop" directly followed by by, in or over does not count.
fn has_strong_token(tokens: &[String]) -> bool {
    tokens.iter().enumerate().any(|(i, token)| {
        let next = tokens.get(i + 1).map(String::as_str);
        if token == "stop" {
            !next.is_some_and(|n| STOP_NOT_BEFORE.contains(&n))
        } else {
            STRONG_TOKENS.contains(&token.as_str())
                || (token == STRONG_PAIR.0 && next == Some(STRONG_PAIR.1))
        }
    })
}

/// A one-token body within the typo distance of a target (§4.2, §4.3 rule 7).
fn is_typo_target(tokens: &[String]) -> bool {
    match tokens {
        [only] => TYPO_TARGETS
            .iter()
            .any(|(target, max)| strsim::osa_distance(only, target) <= *max),
        _ => false,
    }
}

/// §4.3 rules 1–9 (rule 0 is handled by [`classify`]).
fn classify_body(body: &str, n: &Normalised, suppressed: bool) -> Class {
    let norm = n.norm.as_str();
    let tokens = n.tokens.as_slice();
    // 1. An opt-in word as the whole body: only a suppressed number has something to lift.
    if OPT_IN_WORDS.contains(&norm) {
        return if suppressed {
            Class::OptIn
        } else {
            Class::Reply
        };
    }
    // 2. A help word as the whole body.
    if HELP_WORDS.contains(&norm) {
        return Class::Help;
    }
    // 3. `joined` is an opt-out word, or every token is one.
    if !norm.is_empty()
        && (OPT_OUT_WORDS.contains(&n.joined.as_str())
            || tokens.iter().all(|t| OPT_OUT_WORDS.contains(&t.as_str())))
    {
        return Class::OptOut;
    }
    // 4. An opt-out phrase: suppress when short and not a question, else a person decides.
    if opt_out_phrases().any(|p| contains_phrase(tokens, p)) {
        return if tokens.len() <= PHRASE_MAX_TOKENS && !has_question_mark(body) {
            Class::OptOut
        } else {
            Class::Review
        };
    }
    // 5. A review phrase. 6. A strong token. 7. A typo of a target.
    if review_phrases().any(|p| contains_phrase(tokens, p))
        || has_strong_token(tokens)
        || is_typo_target(tokens)
    {
        return Class::Review;
    }
    // 8. No words, but a stop symbol.
    if norm.is_empty() && body.chars().any(|c| STOP_SYMBOLS.contains(&c)) {
        return Class::Review;
    }
    // 9.
    Class::Reply
}

/// Classifies an inbound text (§4.3, first match wins). `opt_out_type` is Twilio's
/// `OptOutType` form value, if present; `suppressed` whether the number is suppressed in this
/// brokerage now.
pub fn classify(body: &str, opt_out_type: Option<&str>, suppressed: bool) -> Classified {
    let by_type = opt_out_type.and_then(|t| class_by_opt_out_type(t, suppressed));
    let class = match by_type {
        Some(class) => class,
        None => classify_body(body, &normalise(body), suppressed),
    };
    Classified {
        class,
        by_opt_out_type: by_type.is_some(),
        carrier_exact: carrier_keyword_class(body) == Some(class),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Who sends the confirmation or help text, the "reply by" column of §4.4.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum By {
        Carrier,
        Ours,
        Nobody,
    }

    /// The S column of §4.4: `None` is "–" (checked with both values).
    struct Row {
        row: u32,
        body: &'static str,
        suppressed: Option<bool>,
        /// `None` where the table gives no norm.
        norm: Option<&'static str>,
        class: Class,
        by: By,
    }

    const fn row(
        row: u32,
        body: &'static str,
        suppressed: Option<bool>,
        norm: Option<&'static str>,
        class: Class,
        by: By,
    ) -> Row {
        Row {
            row,
            body,
            suppressed,
            norm,
            class,
            by,
        }
    }

    use By::{Carrier, Nobody, Ours};
    use Class::{Help, OptIn, OptOut, Reply, Review};
    const NA: Option<bool> = None;
    const S: Option<bool> = Some(true);
    const NOT_S: Option<bool> = Some(false);

    /// Every body of docs/compliance.md §4.4, one case each.
    const TABLE: &[Row] = &[
        row(1, "STOP", NA, Some("stop"), OptOut, Carrier),
        row(2, "Stop", NA, Some("stop"), OptOut, Carrier),
        row(2, "stop", NA, Some("stop"), OptOut, Carrier),
        row(3, "  STOP \n", NA, Some("stop"), OptOut, Carrier),
        row(4, "STOPALL", NA, Some("stopall"), OptOut, Carrier),
        row(4, "Unsubscribe", NA, Some("unsubscribe"), OptOut, Carrier),
        row(4, "cancel", NA, Some("cancel"), OptOut, Carrier),
        row(4, "END", NA, Some("end"), OptOut, Carrier),
        row(4, "Quit", NA, Some("quit"), OptOut, Carrier),
        row(4, "revoke", NA, Some("revoke"), OptOut, Carrier),
        row(4, "OPTOUT", NA, Some("optout"), OptOut, Carrier),
        row(5, "Stop.", NA, Some("stop"), OptOut, Ours),
        row(5, "stop!!", NA, Some("stop"), OptOut, Ours),
        row(5, "\"Stop\"", NA, Some("stop"), OptOut, Ours),
        row(
            6,
            "\u{FF33}\u{FF34}\u{FF2F}\u{FF30}",
            NA,
            Some("stop"),
            OptOut,
            Ours,
        ),
        row(7, "S\u{200B}TOP", NA, Some("stop"), OptOut, Ours),
        row(8, "\u{200F}STOP", NA, Some("stop"), OptOut, Ours),
        row(9, "STOP STOP", NA, Some("stop stop"), OptOut, Ours),
        row(10, "S T O P", NA, Some("s t o p"), OptOut, Ours),
        row(11, "STOP \u{1F6D1}", NA, Some("stop"), OptOut, Ours),
        row(12, "Stop all", NA, Some("stop all"), OptOut, Ours),
        row(13, "opt-out", NA, Some("opt out"), OptOut, Ours),
        // 14: `STOP` with NumMedia=1; media are ignored, so it is the body alone.
        row(14, "STOP", NA, Some("stop"), OptOut, Carrier),
        row(
            15,
            "please stop texting me",
            NA,
            Some("please stop texting me"),
            OptOut,
            Ours,
        ),
        row(16, "Remove me from your list", NA, None, OptOut, Ours),
        row(
            16,
            "Don\u{2019}t text me again",
            NA,
            Some("dont text me again"),
            OptOut,
            Ours,
        ),
        row(
            17,
            "Sorry, wrong number",
            NA,
            Some("sorry wrong number"),
            OptOut,
            Ours,
        ),
        row(
            18,
            "Is this the wrong number for Ava?",
            NA,
            Some("is this the wrong number for ava"),
            Review,
            Nobody,
        ),
        // 19: norm "(12 tokens)", checked in `table_row_19_has_12_tokens`.
        row(
            19,
            "Please stop texting me, we already bought a house with another agent",
            NA,
            None,
            Review,
            Nobody,
        ),
        row(20, "ALTO", NA, Some("alto"), OptOut, Ours),
        row(20, "Para", NA, Some("para"), OptOut, Ours),
        row(20, "cancelar", NA, Some("cancelar"), OptOut, Ours),
        row(21, "no más", NA, Some("no mas"), OptOut, Ours),
        row(
            21,
            "No mas mensajes por favor",
            NA,
            Some("no mas mensajes por favor"),
            OptOut,
            Ours,
        ),
        row(
            22,
            "we've got to stop this bill",
            NA,
            Some("weve got to stop this bill"),
            Review,
            Nobody,
        ),
        // 23: the table abbreviates these norms with "…".
        row(
            23,
            "Can you stop by the house at 5?",
            NA,
            None,
            Reply,
            Nobody,
        ),
        row(23, "I stopped by the open house", NA, None, Reply, Nobody),
        row(
            24,
            "Can we cancel the showing tomorrow?",
            NA,
            Some("can we cancel the showing tomorrow"),
            Reply,
            Nobody,
        ),
        row(
            25,
            "How do I opt out?",
            NA,
            Some("how do i opt out"),
            Review,
            Nobody,
        ),
        row(
            26,
            "Not interested",
            NA,
            Some("not interested"),
            Review,
            Nobody,
        ),
        row(27, "Stpo", NA, Some("stpo"), Review, Nobody),
        row(28, "\u{1F6D1}", NA, Some(""), Review, Nobody),
        row(29, "\u{1F44D}", NA, Some(""), Reply, Nobody),
        // 29: empty body with NumMedia=1 is the empty body.
        row(29, "", NA, Some(""), Reply, Nobody),
        row(30, "START", S, Some("start"), OptIn, Carrier),
        row(31, "Start", NOT_S, Some("start"), Reply, Nobody),
        row(32, "yes!", S, Some("yes"), OptIn, Ours),
        row(33, "Yes", NOT_S, Some("yes"), Reply, Nobody),
        row(
            34,
            "Yes please call me",
            S,
            Some("yes please call me"),
            Reply,
            Nobody,
        ),
        row(35, "HELP", NA, Some("help"), Help, Carrier),
        row(36, "Help!", NA, Some("help"), Help, Ours),
        row(
            37,
            "I need help finding a house",
            NA,
            Some("i need help finding a house"),
            Reply,
            Nobody,
        ),
        row(38, "ayuda", NA, Some("ayuda"), Help, Ours),
        row(
            39,
            "No thanks, we found a place",
            NA,
            Some("no thanks we found a place"),
            Reply,
            Nobody,
        ),
    ];

    /// The failures of one case of the table (empty when it passes).
    fn check_row(r: &Row, suppressed: bool) -> Vec<String> {
        let ctx = format!("row {} {:?} (suppressed: {suppressed})", r.row, r.body);
        let mut failures = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(format!("{ctx}: {what}"));
            }
        };
        let n = normalise(r.body);
        if let Some(norm) = r.norm {
            check(
                n.norm == norm,
                format!("norm {:?}, expected {norm:?}", n.norm),
            );
        }
        let c = classify(r.body, None, suppressed);
        check(
            c.class == r.class,
            format!("class {:?}, expected {:?}", c.class, r.class),
        );
        check(
            !c.by_opt_out_type,
            "by_opt_out_type without OptOutType".into(),
        );
        match r.by {
            Carrier => {
                check(c.carrier_answered(true), "the carrier should answer".into());
                // Without the brokerage setting (and without OptOutType) it is ours.
                check(!c.carrier_answered(false), "setting off: ours".into());
            }
            Ours => {
                check(!c.carrier_answered(true), "ours to answer".into());
                check(!c.carrier_answered(false), "ours to answer".into());
            }
            Nobody => {}
        }
        failures
    }

    #[test]
    fn expected_classification_table() {
        assert_eq!(TABLE.len(), 54, "every body of §4.4");
        let rows: std::collections::BTreeSet<u32> = TABLE.iter().map(|r| r.row).collect();
        assert_eq!(rows, (1..=39).collect(), "every row of §4.4");
        let mut failures = Vec::new();
        for r in TABLE {
            // "–" in the S column: the class must not depend on it.
            let suppressed = match r.suppressed {
                Some(s) => vec![s],
                None => vec![false, true],
            };
            for s in suppressed {
                failures.extend(check_row(r, s));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn table_row_16_and_23_norms() {
        assert_eq!(
            normalise("Remove me from your list").norm,
            "remove me from your list"
        );
        assert_eq!(
            normalise("Can you stop by the house at 5?").norm,
            "can you stop by the house at 5"
        );
        assert_eq!(
            normalise("I stopped by the open house").norm,
            "i stopped by the open house"
        );
    }

    #[test]
    fn table_row_19_has_12_tokens() {
        let n = normalise("Please stop texting me, we already bought a house with another agent");
        assert_eq!(n.tokens.len(), 12);
        assert_eq!(
            n.norm,
            "please stop texting me we already bought a house with another agent"
        );
    }

    #[test]
    fn table_rows_10_12_13_joined() {
        assert_eq!(normalise("S T O P").joined, "stop");
        assert_eq!(normalise("Stop all").joined, "stopall");
        assert_eq!(normalise("opt-out").joined, "optout");
        assert_eq!(normalise("S T O P").tokens, vec!["s", "t", "o", "p"]);
    }

    #[test]
    fn class_names() {
        assert_eq!(OptOut.as_str(), "opt_out");
        assert_eq!(OptIn.as_str(), "opt_in");
        assert_eq!(Help.as_str(), "help");
        assert_eq!(Review.as_str(), "review");
        assert_eq!(Reply.as_str(), "reply");
        assert_eq!(OptOut.to_string(), "opt_out");
    }

    // --- rule 0: OptOutType ---

    #[test]
    fn opt_out_type_decides_first_and_means_the_carrier_answered() {
        for value in ["STOP", "stop", "Stop"] {
            // Even a body we would not read as an opt-out: Twilio matched it.
            let c = classify("please no", Some(value), false);
            assert_eq!(c.class, OptOut, "{value}");
            assert!(c.by_opt_out_type);
            assert!(!c.carrier_exact);
            assert!(
                c.carrier_answered(false),
                "OptOutType counts without the setting"
            );
            assert!(c.carrier_answered(true));
        }
        let c = classify("STOP", Some("STOP"), false);
        assert!(c.by_opt_out_type && c.carrier_exact);

        assert_eq!(classify("start", Some("START"), true).class, OptIn);
        assert_eq!(classify("start", Some("start"), false).class, Reply);
        assert!(classify("start", Some("start"), false).by_opt_out_type);
        let c = classify("Help me", Some("help"), false);
        assert_eq!(c.class, Help);
        assert!(c.carrier_answered(false));
    }

    #[test]
    fn unknown_opt_out_type_is_ignored() {
        for value in ["", "FOO", "STOPALL", "OPT_OUT"] {
            let c = classify("Stop.", Some(value), false);
            assert_eq!(c.class, OptOut, "{value:?}");
            assert!(!c.by_opt_out_type, "{value:?}");
            assert!(!c.carrier_answered(true), "{value:?}");
            let c = classify("hello there", Some(value), true);
            assert_eq!(c.class, Reply, "{value:?}");
            assert!(!c.by_opt_out_type);
        }
    }

    // --- carrier-exact keywords (§1) ---

    #[test]
    fn carrier_exact_keywords_need_the_same_class() {
        for k in CARRIER_OPT_OUT {
            for body in [k.to_string(), k.to_lowercase(), format!(" \t{k}\r\n")] {
                let c = classify(&body, None, false);
                assert_eq!(c.class, OptOut, "{body:?}");
                assert!(c.carrier_exact, "{body:?}");
            }
        }
        for k in CARRIER_OPT_IN {
            let c = classify(k, None, true);
            assert_eq!(c.class, OptIn, "{k}");
            assert!(c.carrier_exact, "{k}");
            // Not suppressed: a reply, and no keyword response of ours or theirs applies.
            let c = classify(k, None, false);
            assert_eq!(c.class, Reply, "{k}");
            assert!(!c.carrier_exact, "{k}");
        }
        for k in CARRIER_HELP {
            let c = classify(&k.to_lowercase(), None, false);
            assert_eq!(c.class, Help, "{k}");
            assert!(c.carrier_exact, "{k}");
        }
        // Not carrier-exact: punctuation, inner spaces, non-ASCII case, Spanish keywords.
        for body in [
            "STOP.",
            "S TOP",
            "stop all",
            "opt out",
            "ALTO",
            "AYUDA",
            "\u{FF33}\u{FF34}\u{FF2F}\u{FF30}",
        ] {
            assert!(!classify(body, None, true).carrier_exact, "{body:?}");
        }
    }

    // --- §4.1 normalisation ---

    #[test]
    fn each_apostrophe_is_deleted() {
        for a in APOSTROPHES {
            let n = normalise(&format!("Don{a}t text me"));
            assert_eq!(n.norm, "dont text me", "U+{:04X}", u32::from(*a));
        }
        // The full-width apostrophe becomes U+0027 under NFKD.
        assert_eq!(normalise("don\u{FF07}t").norm, "dont");
        // Other quotes separate words.
        assert_eq!(normalise("don\u{201D}t").norm, "don t");
    }

    #[test]
    fn marks_and_format_characters_are_deleted() {
        for (body, norm) in [
            ("un\u{00AD}subscribe", "unsubscribe"), // soft hyphen (Cf)
            ("st\u{2060}op", "stop"),               // word joiner
            ("\u{FEFF}stop", "stop"),               // BOM
            ("st\u{200D}op", "stop"),               // zero-width joiner
            ("s\u{200C}top", "stop"),               // zero-width non-joiner
            ("sto\u{200E}p", "stop"),               // LRM
            ("stop\u{FE0F}", "stop"),               // variation selector (Mn)
            ("n\u{0303}o", "no"),                   // combining tilde
            ("número equivocado", "numero equivocado"),
            ("ÑO", "no"),
        ] {
            assert_eq!(normalise(body).norm, norm, "{body:?}");
        }
        assert_eq!(classify("número equivocado", None, false).class, OptOut);
    }

    #[test]
    fn default_case_folding() {
        assert_eq!(normalise("STRASSE straße").norm, "strasse strasse");
        assert_eq!(normalise("ΣΤΟΠ στοπς").norm, "στοπ στοπσ");
        assert_eq!(normalise("İ").norm, "i");
        // Kelvin sign, long s, ligature: compatibility forms.
        assert_eq!(normalise("\u{212A} \u{017F}top \u{FB00}").norm, "k stop ff");
    }

    #[test]
    fn non_letters_and_digits_become_spaces() {
        assert_eq!(normalise("stop,please").norm, "stop please");
        assert_eq!(normalise("  a\t\n-b--c  ").norm, "a b c");
        assert_eq!(normalise("Call me at 5:30 ½").norm, "call me at 5 30 1 2");
        // Digits of any script are N*; ² decomposes to 2.
        assert_eq!(normalise("٣ x²").norm, "٣ x2");
        assert_eq!(normalise("...!?").norm, "");
        assert!(normalise("").tokens.is_empty());
        assert_eq!(normalise("").joined, "");
        // Letters of other scripts are kept.
        assert_eq!(normalise("停止 STOP").norm, "停止 stop");
    }

    #[test]
    fn letters_by_general_category_not_char_is_alphanumeric() {
        // U+2160 ROMAN NUMERAL ONE is Nl; NFKD makes it "I", folded "i".
        assert_eq!(normalise("\u{2160}").norm, "i");
        // U+24B6 CIRCLED LATIN CAPITAL LETTER A is So (alphabetic for Rust); NFKD gives "A".
        assert_eq!(normalise("\u{24B6}").norm, "a");
        // U+00AA ª (Lo) decomposes to "a"; U+02B0 ʰ (Lm) to "h".
        assert_eq!(normalise("\u{00AA}\u{02B0}").norm, "ah");
        // U+0903 DEVANAGARI SIGN VISARGA is Mc: alphabetic for Rust, not L*/N*.
        assert!('\u{0903}'.is_alphabetic());
        assert_eq!(normalise("क\u{0903}ख").norm, "क ख");
    }

    #[test]
    fn normalise_is_idempotent_on_every_code_point() {
        for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
            let once = normalise(&c.to_string());
            let twice = normalise(&once.norm);
            assert_eq!(twice.norm, once.norm, "U+{:04X}", u32::from(c));
        }
    }

    // --- §4.2 lists, each entry ---

    #[test]
    fn each_opt_out_word_alone_is_an_opt_out() {
        for w in OPT_OUT_WORDS {
            for body in [w.to_string(), w.to_uppercase(), format!("{w}!")] {
                assert_eq!(classify(&body, None, false).class, OptOut, "{body:?}");
                assert_eq!(classify(&body, None, true).class, OptOut, "{body:?}");
            }
        }
        // Every token an opt-out word.
        assert_eq!(classify("stop, cancel. QUIT", None, false).class, OptOut);
        assert_eq!(classify("para para", None, false).class, OptOut);
        // `joined`.
        assert_eq!(classify("un-subscribe", None, false).class, OptOut);
        assert_eq!(classify("c a n c e l a r", None, false).class, OptOut);
    }

    #[test]
    fn each_opt_in_and_help_word() {
        for w in OPT_IN_WORDS {
            assert_eq!(classify(w, None, true).class, OptIn, "{w}");
            assert_eq!(classify(&format!("{w}."), None, true).class, OptIn, "{w}");
            assert_eq!(classify(w, None, false).class, Reply, "{w}");
            // Not the whole body.
            assert_eq!(
                classify(&format!("{w} thanks"), None, true).class,
                Reply,
                "{w}"
            );
        }
        for w in HELP_WORDS {
            for s in [false, true] {
                assert_eq!(classify(w, None, s).class, Help, "{w}");
                assert_eq!(
                    classify(&format!("{}?", w.to_uppercase()), None, s).class,
                    Help,
                    "{w}"
                );
            }
            assert_eq!(
                classify(&format!("some {w} please"), None, false).class,
                Reply,
                "{w}"
            );
        }
    }

    #[test]
    fn each_opt_out_phrase_in_a_short_sentence_is_an_opt_out() {
        for p in opt_out_phrases() {
            let body = format!("Please, {p} now.");
            let c = classify(&body, None, false);
            assert_eq!(c.class, OptOut, "{body:?}");
            assert!(!c.carrier_answered(true), "{body:?}");
            // Alone, capitalised.
            assert_eq!(
                classify(&p.to_uppercase(), None, false).class,
                OptOut,
                "{p}"
            );
            // Exactly 8 tokens still suppresses.
            let filler = vec!["ok"; PHRASE_MAX_TOKENS - p.split(' ').count()].join(" ");
            let body = format!("{filler} {p}");
            assert_eq!(normalise(&body).tokens.len(), PHRASE_MAX_TOKENS);
            assert_eq!(classify(&body, None, false).class, OptOut, "{body:?}");
        }
    }

    #[test]
    fn each_opt_out_phrase_asked_or_long_is_a_review() {
        for p in opt_out_phrases() {
            for body in [
                format!("{p}?"),
                format!("Did you say {p}?"),
                format!("{p}\u{FF1F}"),
                format!("¿{p}"),
            ] {
                assert_eq!(classify(&body, None, false).class, Review, "{body:?}");
            }
            let filler = vec!["ok"; PHRASE_MAX_TOKENS + 1 - p.split(' ').count()].join(" ");
            let body = format!("{filler} {p}");
            assert_eq!(normalise(&body).tokens.len(), PHRASE_MAX_TOKENS + 1);
            assert_eq!(classify(&body, None, false).class, Review, "{body:?}");
        }
    }

    #[test]
    fn phrases_match_whole_tokens_only() {
        // "remove me" inside "remove meat", "no mas" inside "no mask".
        assert_eq!(
            classify("remove meat from the list", None, false).class,
            Reply
        );
        assert_eq!(classify("no mask needed", None, false).class, Reply);
        assert_eq!(classify("wrong numbers", None, false).class, Reply);
    }

    #[test]
    fn each_review_phrase_is_a_review() {
        for p in review_phrases() {
            for body in [p.to_string(), format!("Sorry, {p} anymore, thanks.")] {
                assert_eq!(classify(&body, None, false).class, Review, "{body:?}");
                assert_eq!(classify(&body, None, true).class, Review, "{body:?}");
            }
        }
        assert_eq!(
            classify("No estoy interesado, gracias", None, false).class,
            Review
        );
    }

    #[test]
    fn each_strong_token_in_a_sentence_is_a_review() {
        let strong: Vec<String> = STRONG_TOKENS
            .iter()
            .map(|t| t.to_string())
            .chain([format!("{} {}", STRONG_PAIR.0, STRONG_PAIR.1)])
            .collect();
        for t in &strong {
            let long = format!("I think you should {t} this whole thing today, it is too much");
            assert!(normalise(&long).tokens.len() > PHRASE_MAX_TOKENS);
            assert_eq!(classify(&long, None, false).class, Review, "{long:?}");
            let question = format!("can I {t} now?");
            assert_eq!(
                classify(&question, None, false).class,
                Review,
                "{question:?}"
            );
        }
        // "cancel", "end", "quit" and the Spanish words other than alto are not strong.
        for w in [
            "cancel", "end", "quit", "para", "parar", "cancelar", "basta",
        ] {
            let body = format!("we should {w} the plan soon");
            assert_eq!(classify(&body, None, false).class, Reply, "{body:?}");
        }
        // "opt" and "out" apart do not make the pair.
        assert_eq!(classify("opt for the way out", None, false).class, Reply);
    }

    #[test]
    fn stop_by_in_or_over_is_not_strong() {
        for next in STOP_NOT_BEFORE {
            let body = format!("Can you stop {next} the office later");
            assert_eq!(classify(&body, None, false).class, Reply, "{body:?}");
            // A second, bare "stop" still counts.
            let body = format!("stop {next} later and stop this");
            assert_eq!(classify(&body, None, false).class, Review, "{body:?}");
        }
        // The exclusion is for the following token only; "stop" last still counts.
        assert_eq!(classify("please make it stop", None, false).class, Review);
        assert_eq!(classify("by the way stop", None, false).class, Review);
        // "stopall" is not "stop".
        assert_eq!(classify("i said stopall by now", None, false).class, Review);
    }

    #[test]
    fn typo_targets_and_distances() {
        // Within the distance: Review (distance 0 is an opt-out word already).
        for body in [
            "Stpo",
            "stp",
            "stopp",
            "sop",
            "top",
            "stop1",
            "stoppall",
            "stopal",
            "sotpall",
            "cancle",
            "cancell",
            "cncel",
            "revoek",
            "revok",
            "optuot",
            "opout",
            "otpout",
            "unsubscirbe",
            "unsubscrib",
            "unsuscribe",
            "unsubscibre",
            "usubscrbe",
            "unsibscrive",
        ] {
            assert_eq!(classify(body, None, false).class, Review, "{body:?}");
        }
        // Beyond the distance: Reply.
        for body in [
            "spot",
            "sotps",
            "stpoal",
            "cancer1",
            "ravoka",
            "outopt",
            "unsbscrb",
            "nusbuscrbie",
        ] {
            assert_eq!(classify(body, None, false).class, Reply, "{body:?}");
        }
        // Optimal string alignment: one transposition counts 1, as the spec asks.
        assert_eq!(strsim::osa_distance("stpo", "stop"), 1);
        assert_eq!(strsim::osa_distance("unsubscirbe", "unsubscribe"), 1);
        assert_eq!(strsim::osa_distance("usubscrbe", "unsubscribe"), 2);
        assert_eq!(strsim::osa_distance("unsbscrb", "unsubscribe"), 3);
        // Only a one-token body.
        assert_eq!(classify("stpo please", None, false).class, Reply);
        assert_eq!(classify("STPO!", None, false).class, Review);
    }

    #[test]
    fn each_stop_symbol_alone_is_a_review() {
        for s in STOP_SYMBOLS {
            for body in [s.to_string(), format!("{s}\u{FE0F}"), format!("  {s}{s} ")] {
                assert_eq!(classify(&body, None, false).class, Review, "{body:?}");
            }
            // With words: the words decide.
            assert_eq!(classify(&format!("ok {s}"), None, false).class, Reply);
            assert_eq!(classify(&format!("stop {s}"), None, false).class, OptOut);
        }
        // ✋ with a skin tone.
        assert_eq!(classify("\u{270B}\u{1F3FD}", None, false).class, Review);
        assert_eq!(classify("\u{1F600}\u{1F44D}", None, false).class, Reply);
    }

    // --- properties ---

    fn assert_norm_shape(n: &Normalised) {
        assert!(!n.norm.chars().any(|c| c.is_ascii_uppercase()), "{n:?}");
        assert!(!n.norm.contains("  "), "{n:?}");
        assert_eq!(n.norm.trim(), n.norm, "{n:?}");
        assert_eq!(n.tokens.join(" "), n.norm, "{n:?}");
        assert!(n.tokens.iter().all(|t| !t.is_empty()), "{n:?}");
        assert_eq!(n.joined, n.tokens.concat(), "{n:?}");
    }

    /// Bodies near the interesting cases: keywords, marks, zero-width, full-width, symbols.
    fn keyword_like() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "stop",
            "STOP",
            "Stop",
            "opt",
            "out",
            "by",
            "help",
            "yes",
            "start",
            "no",
            "mas",
            "más",
            "wrong",
            "number",
            "not",
            "interested",
            "stpo",
            "unsubscribe",
            " ",
            "  ",
            "\n",
            "?",
            "!",
            ".",
            "'",
            "\u{2019}",
            "\u{200B}",
            "\u{200F}",
            "\u{00AD}",
            "\u{0301}",
            "\u{FE0F}",
            "\u{FF33}\u{FF34}",
            "\u{1F6D1}",
            "\u{270B}",
            "\u{1F44D}",
            "İ",
            "ß",
            "\u{0345}",
            "ǰ",
            "ΐ",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn classify_never_panics(
            body in any::<String>(),
            opt_out_type in proptest::option::of(any::<String>()),
            suppressed in any::<bool>(),
        ) {
            let c = classify(&body, opt_out_type.as_deref(), suppressed);
            let _ = c.carrier_answered(true);
        }

        #[test]
        fn classify_never_panics_near_keywords(
            body in keyword_like(),
            opt_out_type in proptest::option::of(
                prop::sample::select(vec!["STOP", "start", "Help", "x", ""])),
            suppressed in any::<bool>(),
        ) {
            let c = classify(&body, opt_out_type, suppressed);
            // The carrier-exact flag never contradicts the class.
            if c.carrier_exact {
                prop_assert!(matches!(c.class, OptOut | OptIn | Help));
            }
        }

        #[test]
        fn normalise_is_idempotent(body in any::<String>()) {
            let n = normalise(&body);
            prop_assert_eq!(normalise(&n.norm), n.clone());
            assert_norm_shape(&n);
        }

        #[test]
        fn normalise_is_idempotent_near_keywords(body in keyword_like()) {
            let n = normalise(&body);
            prop_assert_eq!(normalise(&n.norm), n.clone());
            assert_norm_shape(&n);
        }
    }

    #[test]
    fn spanish_entries_are_in_the_lists_and_tell_spanish() {
        for w in SPANISH_WORDS {
            assert!(OPT_OUT_WORDS.contains(w) || HELP_WORDS.contains(w), "{w}");
            assert!(is_spanish_keyword(&w.to_uppercase()), "{w}");
        }
        for p in OPT_OUT_PHRASES_ES.iter().chain(REVIEW_PHRASES_ES) {
            assert!(is_spanish_keyword(&format!("Por favor {p}!")), "{p}");
        }
        for p in OPT_OUT_PHRASES_EN.iter().chain(REVIEW_PHRASES_EN) {
            assert!(!is_spanish_keyword(p), "{p}");
        }
        for body in [
            "BAJA",
            "¡Basta!",
            "Para para",
            "AYUDA",
            "NO MÁS",
            "ya no me escribas",
        ] {
            assert!(is_spanish_keyword(body), "{body}");
        }
        for body in [
            "STOP",
            "help",
            "para mañana?",
            "cancel",
            "no more texts",
            "",
            "👍",
        ] {
            assert!(!is_spanish_keyword(body), "{body}");
        }
    }

    /// Issue 20 §3: the Spanish keywords, as table-driven as the English ones: the same
    /// normalisation (accents, case, punctuation), the same rules (whole words, short phrases,
    /// questions and long texts held for review).
    #[test]
    fn spanish_keywords_are_first_class() {
        let cases: &[(&str, bool, Class)] = &[
            ("PARA", false, Class::OptOut),
            ("Para.", false, Class::OptOut),
            ("parar", false, Class::OptOut),
            ("ALTO", false, Class::OptOut),
            ("¡Basta!", false, Class::OptOut),
            ("BAJA", false, Class::OptOut),
            ("baja", false, Class::OptOut),
            ("Cancelar", false, Class::OptOut),
            ("NO MÁS", false, Class::OptOut),
            ("no mas", false, Class::OptOut),
            ("DETENER", false, Class::OptOut),
            ("Detener.", false, Class::OptOut),
            ("ya no me escribas", false, Class::OptOut),
            ("Ya no me escribas!!", false, Class::OptOut),
            ("no me manden más mensajes", false, Class::OptOut),
            ("No me envíen mensajes", false, Class::OptOut),
            ("quítame de la lista", false, Class::OptOut),
            ("Sáquenme de la lista por favor", false, Class::OptOut),
            ("quítenme de la lista", false, Class::OptOut),
            ("sácame de la lista", false, Class::OptOut),
            ("borren mi número", false, Class::OptOut),
            ("número equivocado", false, Class::OptOut),
            ("dejen de escribir", false, Class::OptOut),
            ("Ya no me escribas, ¿ok?", false, Class::Review),
            (
                "no me manden más mensajes de la casa de Main porque ya compramos otra en Elm",
                false,
                Class::Review,
            ),
            ("no me interesa", false, Class::Review),
            ("Ya no estoy interesada", false, Class::Review),
            ("AYUDA", false, Class::Help),
            ("Ayuda", false, Class::Help),
            ("INFO", false, Class::Help),
            ("info", false, Class::Help),
            ("para cuando esta lista la casa", false, Class::Reply),
            ("Es para mi hija", false, Class::Reply),
            ("baja el precio?", false, Class::Reply),
            ("Sí, me interesa", false, Class::Reply),
            ("ESPAÑOL", false, Class::Reply),
        ];
        for (body, suppressed, class) in cases {
            assert_eq!(classify(body, None, *suppressed).class, *class, "{body:?}");
        }
    }
}
