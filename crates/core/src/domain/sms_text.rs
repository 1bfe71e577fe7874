//! What a text costs and says: GSM-7 or UCS-2 encoding, segment counts, and R10's
//! identification rule (docs/compliance.md R10).
//!
//! Carriers bill and filter per segment. A text whose every character is in the GSM-7 basic
//! set or its extension table (3GPP TS 23.038) goes as GSM-7: 160 septets in one segment, 153
//! per segment once split, an extension character (`€ [ ] { } \ ^ ~ |` and form feed) taking
//! two. One character outside it (a curly quote, an emoji, `…`) turns the whole text into UCS-2:
//! 70 UTF-16 units in one segment, 67 per segment once split.

use crate::domain::language::Language;

/// The GSM-7 basic character set (3GPP TS 23.038 §6.2.1), escape (0x1B) excluded.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM-7 extension table: each is sent as escape + character, two septets.
const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// The opt-out line R10 appends when a text lacks the word `STOP`.
pub const OPT_OUT_LINE: &str = " Reply STOP to opt out.";

/// The Spanish opt-out line, appended when a Spanish text lacks `STOP` and `PARA`. Written in
/// GSM-7 (no `á`), so it never turns a text into UCS-2.
pub const OPT_OUT_LINE_ES: &str = " Responde PARA para no recibir mas.";

/// Septets a character takes in GSM-7 (1 or 2), or `None` when GSM-7 cannot carry it.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Whether every character of `s` can be sent as GSM-7 (basic set or extension table).
pub fn is_gsm7(s: &str) -> bool {
    s.chars().all(|c| gsm7_septets(c).is_some())
}

/// The characters of `s` that GSM-7 cannot carry, each once, in order of appearance.
pub fn non_gsm7_chars(s: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    for c in s.chars() {
        if gsm7_septets(c).is_none() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// How many segments `s` is sent as (0 for an empty text).
///
/// GSM-7 when [`is_gsm7`]: up to 160 septets is one segment, else parts of at most 153; an
/// extension character counts 2 and is never split from its escape, so a part may hold 152.
/// Otherwise UCS-2: up to 70 UTF-16 units is one segment, else parts of at most 67; a
/// surrogate pair (an emoji) is never split across parts.
pub fn segments(s: &str) -> usize {
    if s.is_empty() {
        return 0;
    }
    let (units, single, part): (Vec<usize>, usize, usize) = if is_gsm7(s) {
        (
            s.chars().map(|c| gsm7_septets(c).unwrap_or(1)).collect(),
            160,
            153,
        )
    } else {
        (s.chars().map(char::len_utf16).collect(), 70, 67)
    };
    if units.iter().sum::<usize>() <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for u in units {
        if used + u > part {
            parts += 1;
            used = 0;
        }
        used += u;
    }
    parts
}

/// Whether `text` holds the word `STOP`: upper case, as a whole word (`STOP.` counts,
/// `STOPPED`, `NONSTOP` and a lower-case `stop` do not).
///
/// Case-sensitive on purpose: the disclosure must show the keyword as carriers and CTIA write
/// it, and a lower-case "stop" in a real-estate text is usually something else ("stop by the
/// open house"), which must not stand in for the opt-out line.
pub fn has_stop_word(text: &str) -> bool {
    has_word(text, "STOP")
}

/// Whether `text` holds `word` (upper case) as a whole word; `has_word(t, "PARA")` is the
/// Spanish disclosure's keyword.
pub fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, m)| {
        let before = text[..i].chars().next_back();
        let after = text[i + m.len()..].chars().next();
        before.is_none_or(|c| !c.is_alphanumeric()) && after.is_none_or(|c| !c.is_alphanumeric())
    })
}

/// R10's rendering rule for an automated text (and for any first message to a contact).
///
/// Appends [`OPT_OUT_LINE`] when `body` lacks the word `STOP` ([`has_stop_word`]; trailing
/// whitespace is dropped first). When `first_message` is set and the brokerage's `name` is not
/// in the text verbatim, prefixes `"{brokerage}: "` as well.
pub fn identify(body: &str, brokerage: &str, first_message: bool) -> String {
    identify_in(body, brokerage, first_message, Language::En)
}

/// [`identify`] for a text in `language`: a Spanish text keeps its own `STOP` or `PARA`, else
/// gets [`OPT_OUT_LINE_ES`].
pub fn identify_in(body: &str, brokerage: &str, first_message: bool, language: Language) -> String {
    let (has_line, line) = match language {
        Language::En => (has_stop_word(body), OPT_OUT_LINE),
        Language::Es => (
            has_stop_word(body) || has_word(body, "PARA"),
            OPT_OUT_LINE_ES,
        ),
    };
    let mut out = String::with_capacity(body.len() + brokerage.len() + line.len() + 2);
    if first_message && !body.contains(brokerage) {
        out.push_str(brokerage);
        out.push_str(": ");
    }
    if has_line {
        out.push_str(body);
    } else {
        out.push_str(body.trim_end());
        out.push_str(line);
    }
    out
}

/// Whether `text` holds a phone number: a run of 10 to 15 digits, possibly broken by spaces,
/// dashes, dots, parentheses or a `+` (`(555) 555-0100`, `+1 555.555.0100`, `+15555550100`).
pub fn has_phone_number(text: &str) -> bool {
    let mut digits = 0;
    for c in text.chars().chain(std::iter::once('\n')) {
        if c.is_ascii_digit() {
            digits += 1;
        } else if !matches!(c, ' ' | '-' | '.' | '(' | ')' | '+') {
            if (10..=15).contains(&digits) {
                return true;
            }
            digits = 0;
        }
    }
    false
}

/// A person's text as they see it: browsers submit a text box's line breaks as CR LF, which
/// would count (and be sent) as two characters where the box showed one.
pub fn plain_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// A control character other than tab and line breaks (C0, DEL, C1): what typed text never
/// needs, what a setup file may not hold, what a received text shows as a stand-in
/// (docs/security.md §1.4).
pub fn is_stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// A received text made safe to show or forward, without changing what was kept: a form feed
/// or vertical tab reads as a space, any other control character (C0, DEL, C1) as a visible
/// stand-in (its Unicode control picture, or U+FFFD for C1), so that a page or an agent's
/// phone never gets an invisible or terminal-controlling byte. Tab and line breaks stay.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let odd = is_stray_control;
    if !s.chars().any(odd) {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars()
        .map(|c| match c {
            '\u{b}' | '\u{c}' => ' ',
            c if !odd(c) => c,
            c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'),
            '\u{7f}' => '\u{2421}',
            _ => '\u{FFFD}',
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        for (given, want) in [
            ("STOP\u{c}", "STOP "),
            ("a\u{b}b", "a b"),
            ("a\u{1b}[2Jb", "a\u{241b}[2Jb"),
            ("nul\u{0}", "nul\u{2400}"),
            ("del\u{7f}", "del\u{2421}"),
            ("c1\u{85}", "c1\u{FFFD}"),
            ("tab\tline\r\nok", "tab\tline\r\nok"),
            ("plain 👍", "plain 👍"),
        ] {
            assert_eq!(printable(given), want, "{given:?}");
        }
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn line_breaks_count_once() {
        for (given, want) in [
            ("a\r\nb", "a\nb"),
            ("a\rb", "a\nb"),
            ("a\nb", "a\nb"),
            ("\r\n\r\n", "\n\n"),
            ("\n\r", "\n\n"),
            ("plain", "plain"),
        ] {
            assert_eq!(plain_newlines(given), want, "{given:?}");
        }
    }

    use super::*;
    use crate::domain::template::{Field, Template};

    #[test]
    fn gsm7_membership() {
        let table: &[(&str, bool)] = &[
            ("", true),
            (
                "Hi there, this is Sam at Harbor Realty. Reply STOP to opt out.",
                true,
            ),
            ("Price: 100€ [x] {y} ~ ^ | \\", true),
            ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", true),
            ("line one\nline two\r\n", true),
            ("We’re here", false),  // right single quotation mark
            ("“Hello”", false),     // curly double quotes
            ("Thanks…", false),     // ellipsis
            ("See you 🏠", false),  // emoji
            ("Zoë", false),         // ë is not in GSM-7 (é and ä are)
            ("a\tb", false),        // tab
            ("Ç but not ç", false), // lower-case c cedilla is not in the basic set
            ("caf\u{e9}", true),
        ];
        for (s, gsm) in table {
            assert_eq!(is_gsm7(s), *gsm, "{s:?}");
            assert_eq!(non_gsm7_chars(s).is_empty(), *gsm, "{s:?}");
        }
        assert_eq!(non_gsm7_chars("“We’re” “in”…"), vec!['“', '’', '”', '…']);
    }

    #[test]
    fn segment_counts() {
        let table: Vec<(String, usize, &str)> = vec![
            (String::new(), 0, "empty"),
            ("a".into(), 1, "one char"),
            ("a".repeat(160), 1, "160 GSM-7 in one"),
            ("a".repeat(161), 2, "161 GSM-7 split"),
            ("a".repeat(306), 2, "2 x 153"),
            ("a".repeat(307), 3, "just over 2 x 153"),
            ("€".repeat(80), 1, "80 extension chars = 160 septets"),
            ("€".repeat(81), 2, "81 extension chars = 162 septets"),
            (
                format!("{}€{}", "a".repeat(152), "a".repeat(10)),
                2,
                "an escape pair that would straddle part 1 moves to part 2",
            ),
            (
                format!("{}€{}", "a".repeat(152), "a".repeat(152)),
                3,
                "152 + (2 + 151) + 1: the pair is never split",
            ),
            ("’".repeat(70), 1, "70 UCS-2 in one"),
            ("’".repeat(71), 2, "71 UCS-2 split"),
            ("’".repeat(134), 2, "2 x 67"),
            ("’".repeat(135), 3, "just over 2 x 67"),
            (
                format!("{}’", "a".repeat(69)),
                1,
                "one curly quote: UCS-2, 70 units",
            ),
            (
                format!("{}’", "a".repeat(70)),
                2,
                "one curly quote makes 71 chars two segments",
            ),
            ("🏠".repeat(35), 1, "35 emoji = 70 UTF-16 units"),
            ("🏠".repeat(36), 2, "36 emoji = 72 units"),
            (
                format!("{}🏠{}", "a".repeat(66), "a".repeat(66)),
                3,
                "134 units, but the emoji is never split: 66 | 2 + 65 | 1",
            ),
            (
                format!("{}🏠{}", "a".repeat(65), "a".repeat(67)),
                2,
                "134 units, the emoji inside part 1: 67 | 67",
            ),
        ];
        for (s, n, why) in table {
            assert_eq!(segments(&s), n, "{why}");
        }
    }

    #[test]
    fn the_stop_word_is_upper_case_and_whole() {
        let table = [
            ("Reply STOP to opt out.", true),
            ("STOP", true),
            ("Text STOP.", true),
            ("(STOP)", true),
            ("Reply stop to opt out.", false),
            ("Reply Stop to opt out.", false),
            ("Nonstop service", false),
            ("NONSTOP", false),
            ("STOPPED by", false),
            ("STOP2", false),
            ("Can you stop by at 5?", false),
        ];
        for (s, has) in table {
            assert_eq!(has_stop_word(s), has, "{s:?}");
        }
    }

    #[test]
    fn identify_appends_the_line_and_prefixes_first_messages() {
        let table: &[(&str, bool, &str)] = &[
            (
                "Hi from Harbor Realty.",
                false,
                "Hi from Harbor Realty. Reply STOP to opt out.",
            ),
            (
                "Hi from Harbor Realty.  \n",
                false,
                "Hi from Harbor Realty. Reply STOP to opt out.",
            ),
            (
                "Hi from Harbor Realty. Reply STOP to opt out.",
                false,
                "Hi from Harbor Realty. Reply STOP to opt out.",
            ),
            (
                "Harbor Realty: text STOP to end",
                true,
                "Harbor Realty: text STOP to end",
            ),
            (
                "Hi, Sam here.",
                false,
                "Hi, Sam here. Reply STOP to opt out.",
            ),
            (
                "Hi, Sam here.",
                true,
                "Harbor Realty: Hi, Sam here. Reply STOP to opt out.",
            ),
            (
                "Hi, Sam at Harbor Realty.",
                true,
                "Hi, Sam at Harbor Realty. Reply STOP to opt out.",
            ),
            (
                "Hi, Sam at harbor realty. Reply stop to quit.",
                true,
                "Harbor Realty: Hi, Sam at harbor realty. Reply stop to quit. Reply STOP to opt out.",
            ),
        ];
        for (body, first, want) in table {
            assert_eq!(identify(body, "Harbor Realty", *first), *want, "{body:?}");
        }
    }

    /// docs/compliance.md R10's test: the README's example template without its last sentence yields a
    /// body naming the brokerage and ending " Reply STOP to opt out."; with it, no second line.
    #[test]
    fn r10_the_design_template_with_and_without_its_last_sentence() {
        const DESIGN: &str = "Hi {first_name|there}, this is {agent_first_name} at {brokerage}. Sorry we missed your call about {listing|one of our homes}. How can we help? Reply STOP to opt out.";
        let harbor = |f: Field| match f {
            Field::Brokerage => Some("Harbor Realty"),
            Field::AgentFirstName => Some("Sam"),
            Field::Listing => Some("123 Main St"),
            _ => None,
        };
        let without = DESIGN
            .strip_suffix(" Reply STOP to opt out.")
            .expect("the design template ends with the line");
        for first_message in [false, true] {
            let body = identify(
                &Template::parse(without).expect("parses").render(harbor),
                "Harbor Realty",
                first_message,
            );
            assert!(body.contains("Harbor Realty"), "{body}");
            assert!(!body.starts_with("Harbor Realty:"), "{body}");
            assert!(body.ends_with("help? Reply STOP to opt out."), "{body}");
            assert_eq!(body.matches("STOP").count(), 1, "{body}");

            let rendered = Template::parse(DESIGN).expect("parses").render(harbor);
            let body = identify(&rendered, "Harbor Realty", first_message);
            assert_eq!(body, rendered, "no second line");
            assert_eq!(body.matches("Reply STOP").count(), 1, "{body}");
        }
    }

    #[test]
    fn phone_numbers_in_text() {
        let table = [
            ("for help call (555) 555-0100.", true),
            ("call +1 555 555 0100", true),
            ("call +15555550100", true),
            ("call 555.555.0100 anytime", true),
            ("call 555-555-0100, or reply", true),
            ("call 5555550100", true),
            ("Msg & data rates may apply. Reply STOP to opt out.", false),
            ("call 555-0100", false),
            ("123 Main St, unit 4", false),
            ("ref 1234567890123456789", false),
        ];
        for (s, has) in table {
            assert_eq!(has_phone_number(s), has, "{s:?}");
        }
    }
}

#[cfg(test)]
mod spanish {
    use super::*;

    #[test]
    fn a_spanish_text_gets_the_spanish_line_unless_it_says_para_or_stop() {
        let cases = [
            (
                "Hola, soy Sam de Harbor Realty.",
                "Hola, soy Sam de Harbor Realty. Responde PARA para no recibir mas.",
            ),
            (
                "Hola de Harbor Realty. Responde PARA para salir.",
                "Hola de Harbor Realty. Responde PARA para salir.",
            ),
            (
                "Hola de Harbor Realty. Responde STOP para salir.",
                "Hola de Harbor Realty. Responde STOP para salir.",
            ),
            (
                "Hola de Harbor Realty, para servirle.",
                "Hola de Harbor Realty, para servirle. Responde PARA para no recibir mas.",
            ),
        ];
        for (body, out) in cases {
            assert_eq!(identify_in(body, "Harbor Realty", true, Language::Es), out);
        }
        assert!(is_gsm7(OPT_OUT_LINE_ES));
        assert_eq!(
            identify_in("Hola, soy Sam.", "Harbor Realty", true, Language::Es),
            "Harbor Realty: Hola, soy Sam. Responde PARA para no recibir mas."
        );
        assert!(has_word("Responde PARA.", "PARA"));
        assert!(!has_word("PARAR", "PARA"));
    }
}
