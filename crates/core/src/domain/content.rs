//! Content rules of automated texts (docs/compliance.md R11, R12): no price, no word of the
//! committed blocked-terms list (`fixtures/blocked_terms.txt`).
//!
//! Terms match whole words in any case: the text and each term are split into words at every
//! character that is not a letter or digit and compared in lower case, so `Scunthorpe`,
//! `cocktail` or `Essex` match nothing, and a term of several words (`white power`, `e-cig`)
//! matches those words in sequence.

use std::sync::LazyLock;

/// The committed list: one lower-case term per line, `#` starts a comment.
const BLOCKED_TERMS_FILE: &str = include_str!("../../../../fixtures/blocked_terms.txt");

/// (term as written in the list, its words).
static BLOCKED_TERMS: LazyLock<Vec<(&'static str, Vec<String>)>> = LazyLock::new(|| {
    BLOCKED_TERMS_FILE
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|term| !term.is_empty())
        .map(|term| (term, words(term)))
        .filter(|(_, w)| !w.is_empty())
        .collect()
});

/// The lower-cased words of `text`.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Every term of the blocked-terms list that `text` holds as whole words (any case), each
/// once, in order of first appearance.
pub fn blocked_terms(text: &str) -> Vec<&'static str> {
    let text_words = words(text);
    let mut found: Vec<(usize, &'static str)> = BLOCKED_TERMS
        .iter()
        .filter_map(|(term, term_words)| {
            text_words
                .windows(term_words.len())
                .position(|w| w == term_words.as_slice())
                .map(|at| (at, *term))
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, term)| term).collect()
}

/// Every price in `text`: a `$` followed by a digit (spaces between allowed, `$ 450k`), as
/// written up to the end of its number (`$450,000`, `$1.2M`), each once.
pub fn prices(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for (i, _) in text.match_indices('$') {
        let rest = &text[i + 1..];
        let digits_at = rest.len() - rest.trim_start_matches(' ').len();
        if !rest[digits_at..].starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let len = rest[digits_at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == ',' || c == '.'))
            .unwrap_or(rest.len() - digits_at);
        let price = text[i..i + 1 + digits_at + len].trim_end_matches(['.', ',']);
        if !out.contains(&price) {
            out.push(price);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_well_formed() {
        let terms: Vec<&str> = BLOCKED_TERMS.iter().map(|(t, _)| *t).collect();
        assert!(
            (60..=120).contains(&terms.len()),
            "a modest list: {} terms",
            terms.len()
        );
        for (i, t) in terms.iter().enumerate() {
            assert_eq!(t.to_lowercase(), *t, "lower case: {t}");
            assert!(!terms[..i].contains(t), "listed twice: {t}");
            assert_eq!(blocked_terms(t), vec![*t], "a term matches itself");
            assert_eq!(blocked_terms(&t.to_uppercase()), vec![*t], "any case: {t}");
        }
    }

    #[test]
    fn words_of_a_real_estate_text_are_not_blocked() {
        for text in [
            "Hi there, this is Sam at Harbor Realty. Sorry we missed your call about 123 Main St. How can we help? Reply STOP to opt out.",
            "Non-smoking home with a wet bar, wine cellar and washer/dryer hookup.",
            "Smoke detectors, a shotgun-style layout, and the CBD is a short walk.",
            "Come by the open house at 420 Bourbon St; we can stop by Essex or Scunthorpe Rd.",
            "Cocktail hour at the Hancock house, Sussex Ave, Middlesex County.",
            "Lots of grass in the backyard, a pot rack and a fire retardant roof.",
            "Homeowners Ass'n dues are low; the class of 2025 loved it.",
        ] {
            assert_eq!(blocked_terms(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn blocked_terms_match_whole_words_in_any_case() {
        let table: &[(&str, &[&str])] = &[
            ("Free BEER at the open house", &["beer"]),
            ("Bring your Vape!", &["vape"]),
            ("no guns, no cigarettes", &["guns", "cigarettes"]),
            ("e-cig friendly", &["e-cig"]),
            ("E Cig friendly", &["e-cig"]),
            ("Marijuana and marijuana", &["marijuana"]),
            ("beerfest", &[]),
            ("the gunnery", &[]),
            ("beer, then vodka, then beer", &["beer", "vodka"]),
        ];
        for (text, want) in table {
            assert_eq!(blocked_terms(text), *want, "{text}");
        }
    }

    #[test]
    fn prices_are_a_dollar_sign_then_a_digit() {
        let table: &[(&str, &[&str])] = &[
            ("Listed at $450,000.", &["$450,000"]),
            ("$1.2M or $ 950k", &["$1.2M", "$ 950k"]),
            ("about {listing|our $500k homes}", &["$500k"]),
            ("$5 and $5", &["$5"]),
            ("No price here, just $ signs and $$.", &[]),
            ("US$", &[]),
            ("", &[]),
        ];
        for (text, want) in table {
            assert_eq!(prices(text), *want, "{text}");
        }
    }
}
