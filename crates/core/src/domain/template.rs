//! Message templates: literal text with `{field}` and `{field|fallback}` placeholders.
//!
//! Parsed when the setup file is applied (an unknown field or an unterminated `{` is an error
//! then, not at send time) and rendered per message. The renderer is ours, never askama's
//! (docs/security.md §2 "output"): values are inserted as plain text and never
//! re-parsed, so a caller's name containing `{brokerage}` stays literal.

use std::fmt;

/// The fields a template may name (README.md "The setup file").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The brokerage's `name`.
    Brokerage,
    /// The name of the dialled number's office.
    Office,
    /// First word of the assigned agent's name.
    AgentFirstName,
    /// The assigned agent's name.
    AgentName,
    /// The dialled number's `listing`.
    Listing,
    /// The brokerage number the caller dialled.
    Number,
    /// The contact's name when known (set by an agent, or Lookup caller name when enabled).
    FirstName,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Brokerage,
        Field::Office,
        Field::AgentFirstName,
        Field::AgentName,
        Field::Listing,
        Field::Number,
        Field::FirstName,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Brokerage => "brokerage",
            Field::Office => "office",
            Field::AgentFirstName => "agent_first_name",
            Field::AgentName => "agent_name",
            Field::Listing => "listing",
            Field::Number => "number",
            Field::FirstName => "first_name",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Field { field: Field, fallback: String },
}

/// A parsed template. Keeps its source for storage and display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// Why a template does not parse. Columns count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    UnknownField { name: String, column: usize },
    Unterminated { column: usize },
    UnmatchedClose { column: usize },
    EmptyField { column: usize },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::UnknownField { name, column } => {
                let known: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                write!(
                    f,
                    "unknown field `{{{name}}}` at column {column} (known: {})",
                    known.join(", ")
                )
            }
            TemplateError::Unterminated { column } => {
                write!(f, "`{{` at column {column} is never closed with `}}`")
            }
            TemplateError::UnmatchedClose { column } => {
                write!(f, "`}}` at column {column} has no opening `{{`")
            }
            TemplateError::EmptyField { column } => {
                write!(f, "empty field name in `{{}}` at column {column}")
            }
        }
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().enumerate().map(|(i, c)| (i + 1, c));
        while let Some((column, c)) = chars.next() {
            match c {
                '{' => {
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    let mut inner = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        match c {
                            '}' => {
                                closed = true;
                                break;
                            }
                            // A `{` inside a field almost always means the previous one was
                            // never closed: point at that one.
                            '{' => return Err(TemplateError::Unterminated { column }),
                            c => inner.push(c),
                        }
                    }
                    if !closed {
                        return Err(TemplateError::Unterminated { column });
                    }
                    let (name, fallback) = match inner.split_once('|') {
                        Some((name, fallback)) => (name.trim(), fallback.to_owned()),
                        None => (inner.trim(), String::new()),
                    };
                    if name.is_empty() {
                        return Err(TemplateError::EmptyField { column });
                    }
                    let field =
                        Field::from_name(name).ok_or_else(|| TemplateError::UnknownField {
                            name: name.to_owned(),
                            column,
                        })?;
                    segments.push(Segment::Field { field, fallback });
                }
                '}' => return Err(TemplateError::UnmatchedClose { column }),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Template {
            source: source.to_owned(),
            segments,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The fields the template names, in order of appearance.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Field { field, .. } => Some(*field),
            Segment::Text(_) => None,
        })
    }

    /// How the text reads for no one in particular, for people comparing templates (the
    /// dashboard): the brokerage's name, and every other field as a word in brackets
    /// ("Hi [first name], this is [agent] at Harbor Realty.").
    pub fn preview(&self, brokerage: &str) -> String {
        let mut out = String::with_capacity(self.source.len());
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field { field, .. } => out.push_str(match field {
                    Field::Brokerage => brokerage,
                    Field::Office => "[office]",
                    Field::AgentFirstName => "[agent]",
                    Field::AgentName => "[agent's name]",
                    Field::Listing => "[listing]",
                    Field::Number => "[number]",
                    Field::FirstName => "[first name]",
                }),
            }
        }
        out
    }

    /// Renders with `value(field)`; a field whose value is missing or blank gets its fallback
    /// (empty when none was given). Values are trimmed and inserted literally.
    pub fn render<'v>(&self, value: impl Fn(Field) -> Option<&'v str>) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field { field, fallback } => {
                    match value(*field).map(str::trim).filter(|v| !v.is_empty()) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(fallback),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DESIGN_TEMPLATE: &str = "Hi {first_name|there}, this is {agent_first_name} at {brokerage}. Sorry we missed your call about {listing|one of our homes}. How can we help? Reply STOP to opt out.";

    fn harbor(field: Field) -> Option<&'static str> {
        match field {
            Field::Brokerage => Some("Harbor Realty"),
            Field::Office => Some("Downtown"),
            Field::AgentFirstName => Some("Sam"),
            Field::AgentName => Some("Sam Rivera"),
            Field::Listing => Some("123 Main St"),
            Field::Number => Some("+15555550100"),
            Field::FirstName => None,
        }
    }

    #[test]
    fn renders_the_design_template_with_fallbacks() {
        let t = Template::parse(DESIGN_TEMPLATE).expect("parses");
        assert_eq!(
            t.render(harbor),
            "Hi there, this is Sam at Harbor Realty. Sorry we missed your call about 123 Main St. How can we help? Reply STOP to opt out."
        );
        let with_name = t.render(|f| {
            if f == Field::FirstName {
                Some("Jordan")
            } else {
                harbor(f)
            }
        });
        assert!(
            with_name.starts_with("Hi Jordan, this is Sam"),
            "{with_name}"
        );
        let no_listing = t.render(|f| {
            if f == Field::Listing {
                Some("   ")
            } else {
                harbor(f)
            }
        });
        assert!(
            no_listing.contains("about one of our homes."),
            "{no_listing}"
        );
    }

    #[test]
    fn a_field_without_fallback_renders_empty_when_unknown() {
        let t = Template::parse("[{first_name}]").expect("parses");
        assert_eq!(t.render(|_| None), "[]");
    }

    #[test]
    fn fallback_keeps_its_inner_spaces_and_pipes() {
        let t = Template::parse("{listing| a | b }").expect("parses");
        assert_eq!(t.render(|_| None), " a | b ");
    }

    #[test]
    fn values_are_inserted_literally() {
        let t = Template::parse("Hi {first_name}").expect("parses");
        assert_eq!(t.render(|_| Some("{brokerage} <b>")), "Hi {brokerage} <b>");
    }

    #[test]
    fn lists_every_field_name() {
        for field in Field::ALL {
            let t = Template::parse(&format!("{{{}}}", field.name())).expect("known field parses");
            assert_eq!(t.fields().collect::<Vec<_>>(), vec![field]);
        }
    }

    #[test]
    fn errors_name_the_problem_and_its_column() {
        let table = [
            (
                "Hi {firstname}",
                TemplateError::UnknownField {
                    name: "firstname".into(),
                    column: 4,
                },
            ),
            (
                "Hi {first_name|there",
                TemplateError::Unterminated { column: 4 },
            ),
            ("Hi {", TemplateError::Unterminated { column: 4 }),
            ("Hi } there", TemplateError::UnmatchedClose { column: 4 }),
            ("Hi {} there", TemplateError::EmptyField { column: 4 }),
            ("Hi {|x} there", TemplateError::EmptyField { column: 4 }),
            (
                "Hi {first_{name}}",
                TemplateError::Unterminated { column: 4 },
            ),
            (
                "Hi {agent_first_name at {brokerage}",
                TemplateError::Unterminated { column: 4 },
            ),
            (
                "{Brokerage}",
                TemplateError::UnknownField {
                    name: "Brokerage".into(),
                    column: 1,
                },
            ),
        ];
        for (src, err) in table {
            assert_eq!(Template::parse(src), Err(err), "{src}");
        }
    }

    #[test]
    fn error_messages_read_well() {
        let e = Template::parse("Hi {firstname}").expect_err("unknown");
        assert!(
            e.to_string()
                .starts_with("unknown field `{firstname}` at column 4 (known: brokerage,"),
            "{e}"
        );
        let e = Template::parse("Hi {first_name").expect_err("open");
        assert_eq!(e.to_string(), "`{` at column 4 is never closed with `}`");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(
            Template::parse("¡Hola {x}"),
            Err(TemplateError::UnknownField {
                name: "x".into(),
                column: 7
            })
        );
    }

    proptest! {
        #[test]
        fn text_without_braces_renders_to_itself(s in "[^{}]{0,80}") {
            let t = Template::parse(&s).expect("no braces parses");
            prop_assert_eq!(t.render(|_| Some("x")), s);
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            if let Ok(t) = Template::parse(&s) {
                let _ = t.render(|_| Some("v"));
            }
        }
    }

    #[test]
    fn a_preview_shows_words_not_template_syntax() {
        let t = Template::parse(DESIGN_TEMPLATE).expect("parses");
        assert_eq!(
            t.preview("Harbor Realty"),
            "Hi [first name], this is [agent] at Harbor Realty. Sorry we missed your call about [listing]. How can we help? Reply STOP to opt out."
        );
    }
}
