use super::*;

const DEMO: &str = include_str!("../../fixtures/demo.toml");

/// A small valid file; tests change one thing in it.
const BASE: &str = r#"[brokerage]
slug = "harbor"
name = "Harbor Realty"
time_zone = "America/New_York"

[[offices]]
slug = "downtown"
name = "Downtown"

[[agents]]
email = "sam@harbor.example"
name = "Sam Rivera"
phone = "+15555550101"
office = "downtown"
role = "agent"

[[numbers]]
number = "+15555550100"
office = "downtown"
ring = ["sam@harbor.example"]

[text_back]
template = "Hi {first_name|there}, this is {agent_first_name} at {brokerage}. Reply STOP to opt out."
"#;

fn problems(text: &str) -> Vec<Problem> {
    parse(text).expect_err("the file has problems")
}

/// Asserts that exactly these (line, key fragment, message fragment) problems are reported.
fn assert_problems(text: &str, expected: &[(usize, &str, &str)]) {
    let got = problems(text);
    let rendered: Vec<String> = got.iter().map(|p| p.to_string()).collect();
    assert_eq!(got.len(), expected.len(), "problems: {rendered:#?}");
    for ((line, key, msg), p) in expected.iter().zip(&got) {
        assert_eq!(p.line, *line, "line of {p}");
        assert!(p.key.contains(key), "key of {p} should contain {key:?}");
        assert!(
            p.message.contains(msg),
            "message of {p} should contain {msg:?}"
        );
    }
}

#[test]
fn the_demo_file_is_valid() {
    let file = parse(DEMO).expect("demo.toml is valid");
    assert_eq!(file.brokerage.slug, "harbor");
    assert_eq!(file.brokerage.name, "Harbor Realty");
    assert_eq!(file.offices.len(), 2);
    assert_eq!(file.agents.len(), 5);
    assert_eq!(file.numbers.len(), 2);
    assert_eq!(
        file.numbers[0].ring,
        vec!["sam@harbor.example", "ava@harbor.example"]
    );
    assert_eq!(file.numbers[1].ring_timeout_secs, 18, "default");
    assert!(file.numbers[1].screen, "screen defaults to true");
    assert_eq!(file.text_back.delay_secs, 20);
    assert_eq!(file.follow_ups.len(), 1);
    assert_eq!(file.follow_ups[0].after_secs, 86_400);
    assert_eq!(file.inbox.escalate_after_secs, 600);
    assert_eq!(
        file.compliance.office_phone.as_ref().map(|p| p.as_e164()),
        Some("+15555550100")
    );
}

#[test]
fn defaults_fill_optional_keys() {
    let file = parse(BASE).expect("valid");
    assert_eq!(file.text_back.delay_secs, 20);
    assert_eq!(file.text_back.lookup_max_age_secs, 30 * 86_400);
    assert_eq!(file.text_back.after_hours, AfterHours::Defer);
    assert!(!file.text_back.caller_name_lookup);
    assert_eq!(file.numbers[0].ring_timeout_secs, 18);
    assert_eq!(file.inbox.escalate_after_secs, 600);
    assert_eq!(file.compliance.cap_24h, 3);
    assert!(file.compliance.carrier_answers_keywords);
    assert_eq!(file.compliance.daily_unique_recipients, 200);
    assert!(file.follow_ups.is_empty());
}

#[test]
fn fictional_555_numbers_are_accepted() {
    // security.md §3 row 32a
    let file = parse(BASE).expect("valid");
    assert_eq!(file.numbers[0].number.as_e164(), "+15555550100");
    assert_eq!(file.agents[0].phone.as_e164(), "+15555550101");
}

#[test]
fn template_variants_are_accepted() {
    let text = BASE.replace(
        r#"template = "Hi {first_name|there}, this is {agent_first_name} at {brokerage}. Reply STOP to opt out.""#,
        r#"template = ["Hi from {brokerage}. Reply STOP to opt out.", "Hello from {brokerage}! Reply STOP to opt out."]"#,
    );
    let file = parse(&text).expect("valid");
    assert_eq!(file.text_back.templates.len(), 2);
}

#[test]
fn emails_are_matched_case_insensitively() {
    let text = BASE.replace(
        r#"ring = ["sam@harbor.example"]"#,
        r#"ring = ["Sam@Harbor.Example"]"#,
    );
    let file = parse(&text).expect("valid");
    assert_eq!(file.numbers[0].ring, vec!["sam@harbor.example"]);
}

#[test]
fn template_errors_are_reported_with_their_line() {
    let text = BASE.replace("{first_name|there}", "{firstname|there}");
    assert_problems(
        &text,
        &[(
            23,
            "[text_back] template",
            "unknown field `{firstname}` at column 4",
        )],
    );
    let text = BASE.replace("{agent_first_name}", "{agent_first_name");
    assert_problems(&text, &[(23, "[text_back] template", "never closed")]);
}

#[test]
fn public_link_shorteners_are_refused_even_when_listed() {
    let text = BASE.replace(
        "Reply STOP to opt out.",
        "See bit.ly/harbor42. Reply STOP to opt out.",
    ) + "\n[compliance]\nlink_domains = [\"harbor.example\"]\n";
    assert_problems(
        &text,
        &[(23, "[text_back] template", "public link shortener")],
    );
    let text = BASE.to_owned() + "\n[compliance]\nlink_domains = [\"bit.ly\"]\n";
    assert_problems(&text, &[(26, "[compliance] link_domains", "shortener")]);
}

#[test]
fn links_must_be_on_the_brokerage_domains() {
    let text = BASE.replace(
        "Reply STOP",
        "See https://www.harbor.example/42. Reply STOP",
    );
    assert_problems(
        &text,
        &[(
            23,
            "[text_back] template",
            "not in [compliance] link_domains",
        )],
    );
    let ok = text + "\n[compliance]\nlink_domains = [\"harbor.example\"]\n";
    parse(&ok).expect("the link is on an allowed domain");
}

#[test]
fn a_listing_with_a_shortener_is_refused() {
    let text = BASE.replace(
        r#"office = "downtown"
ring"#,
        r#"office = "downtown"
listing = "tinyurl.com/abc"
ring"#,
    );
    assert_problems(&text, &[(20, "[[numbers]] #1 listing", "shortener")]);
}

/// security.md §3 row 32, one line each; every problem is listed at once.
#[test]
fn every_problem_is_listed_with_its_line() {
    let text = r#"[brokerage]
slug = "harbor"
name = "Harbor Realty"
time_zone = "America/Harbor"

[[offices]]
slug = "downtown"
name = "Downtown"

[[agents]]
email = "sam@harbor.example"
name = "Sam Rivera"
phone = "+1555"
office = "uptown"
role = "boss"

[[numbers]]
number = "5555550100"
office = "downtown"
ring = ["nobody@harbor.example"]
ring_timeout_secs = 4

[text_back]
delay_secs = -1
after_hours = "maybe"
template = "Hi {first_name|there"

[[follow_ups]]
after = "90d"
template = "Hi again from {brokerage}. Reply STOP to opt out."

[inbox]
escalate_after = "30s"

[compliance]
cap_24h = 4
"#;
    assert_problems(
        text,
        &[
            (4, "[brokerage] time_zone", "not an IANA time zone"),
            (13, "[[agents]] #1 phone", "not a usable number"),
            (
                14,
                "[[agents]] #1 office",
                "no [[offices]] has slug `uptown`",
            ),
            (15, "[[agents]] #1 role", "must be agent, manager or admin"),
            (18, "[[numbers]] #1 number", "must start with +"),
            (20, "[[numbers]] #1 ring", "not an agent of this file"),
            (21, "[[numbers]] #1 ring_timeout_secs", "between 5 and 600"),
            (24, "[text_back] delay_secs", "between 0 and 3600"),
            (25, "[text_back] after_hours", "\"defer\" or \"send\""),
            (26, "[text_back] template", "never closed"),
            (29, "[[follow_ups]] #1 after", "between 1s and 89d"),
            (33, "[inbox] escalate_after", "between 1m and 1d"),
            (36, "[compliance] cap_24h", "between 1 and 3"),
        ],
    );
}

#[test]
fn range_edges_are_inclusive() {
    let ok = BASE
        .replace("[text_back]\n", "[text_back]\ndelay_secs = 3600\n")
        .replace(
            "ring = [\"sam@harbor.example\"]",
            "ring = [\"sam@harbor.example\"]\nring_timeout_secs = 600",
        )
        + "\n[inbox]\nescalate_after = \"24h\"\n[compliance]\ncap_24h = 1\n";
    let file = parse(&ok).expect("edges are allowed");
    assert_eq!(file.text_back.delay_secs, 3600);
    assert_eq!(file.numbers[0].ring_timeout_secs, 600);
    assert_eq!(file.inbox.escalate_after_secs, 86_400);
    let low = BASE
        .replace("[text_back]\n", "[text_back]\ndelay_secs = 0\n")
        .replace(
            "ring = [\"sam@harbor.example\"]",
            "ring = [\"sam@harbor.example\"]\nring_timeout_secs = 5",
        )
        + "\n[inbox]\nescalate_after = \"1m\"\n";
    parse(&low).expect("low edges are allowed");
    let over = BASE.replace("[text_back]\n", "[text_back]\ndelay_secs = 3601\n");
    assert_problems(&over, &[(23, "delay_secs", "between 0 and 3600")]);
    let over = BASE.to_owned() + "\n[inbox]\nescalate_after = \"24h1s\"\n";
    assert_problems(&over, &[(26, "escalate_after", "between 1m and 1d")]);
}

#[test]
fn missing_required_keys_are_named() {
    let text = BASE
        .replace("name = \"Sam Rivera\"\n", "")
        .replace("[text_back]\ntemplate", "[text_back]\ntemplat");
    assert_problems(
        &text,
        &[
            (10, "[[agents]] #1 name", "is required"),
            (21, "[text_back] template", "is required"),
            (22, "[text_back] templat", "unknown key"),
        ],
    );
    assert_problems(
        "",
        &[
            (1, "[brokerage]", "is required"),
            (1, "[text_back]", "is required"),
        ],
    );
}

#[test]
fn unknown_keys_and_tables_are_errors() {
    let text =
        BASE.replace("[text_back]\n", "[text_back]\ndealy_secs = 20\n") + "\n[extras]\nx = 1\n";
    assert_problems(
        &text,
        &[
            (23, "[text_back] dealy_secs", "unknown key"),
            (26, "extras", "unknown key"),
        ],
    );
}

#[test]
fn wrong_types_are_reported_each() {
    let text = BASE.replace(
        "[text_back]\n",
        "[text_back]\ndelay_secs = \"20\"\ncaller_name_lookup = \"no\"\n",
    );
    assert_problems(
        &text,
        &[
            (23, "delay_secs", "must be a whole number, not string"),
            (24, "caller_name_lookup", "true or false"),
        ],
    );
}

#[test]
fn duplicates_are_refused() {
    let text = BASE.replace(
        "[[numbers]]",
        "[[agents]]\nemail = \"SAM@harbor.example\"\nname = \"Sam Two\"\nphone = \"+15555550105\"\noffice = \"downtown\"\nrole = \"agent\"\n\n[[numbers]]",
    );
    assert_problems(&text, &[(18, "[[agents]] #2 email", "defined twice")]);
    let text = BASE.to_owned().replace(
        "[text_back]",
        "[[numbers]]\nnumber = \"+15555550100\"\noffice = \"downtown\"\nring = [\"sam@harbor.example\"]\n\n[text_back]",
    );
    assert_problems(&text, &[(23, "[[numbers]] #2 number", "listed twice")]);
}

#[test]
fn a_number_cannot_be_an_agents_phone() {
    let text = BASE.replace("number = \"+15555550100\"", "number = \"+15555550101\"");
    assert_problems(
        &text,
        &[(18, "[[numbers]] #1 number", "also an agent's phone")],
    );
}

#[test]
fn toml_syntax_errors_and_duplicate_keys_give_lines() {
    let dup = BASE.replace(
        "name = \"Harbor Realty\"",
        "name = \"Harbor Realty\"\nname = \"Again\"",
    );
    let p = problems(&dup);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].line, 4);
    assert!(p[0].message.starts_with("TOML:"), "{}", p[0]);
    let broken = BASE.replace("slug = \"harbor\"", "slug = \"harbor");
    let p = problems(&broken);
    assert_eq!(p[0].line, 2, "{p:?}");
}

#[test]
fn oversized_and_non_utf8_files_are_refused() {
    let big = vec![b'#'; MAX_FILE_BYTES + 1];
    let p = parse_bytes(&big).expect_err("too big");
    assert!(p[0].message.contains("larger than 1 MiB"), "{}", p[0]);
    let mut bad = BASE.as_bytes().to_vec();
    bad.extend_from_slice(b"\n# \xff\xfe\n");
    let p = parse_bytes(&bad).expect_err("not UTF-8");
    assert_eq!(p[0].line, 25);
    assert!(p[0].message.contains("UTF-8"));
}

#[test]
fn follow_ups_must_be_in_increasing_order() {
    let text = BASE.to_owned()
        + "\n[[follow_ups]]\nafter = \"2d\"\ntemplate = \"A from {brokerage}\"\n\n[[follow_ups]]\nafter = \"1d\"\ntemplate = \"B from {brokerage}\"\n";
    assert_problems(
        &text,
        &[(30, "[[follow_ups]] #2 after", "increasing order")],
    );
}

#[test]
fn blackouts_are_validated() {
    let ok = BASE.to_owned()
        + "\n[[blackouts]]\nstates = [\"LA\"]\nfrom = \"2026-08-29T00:00:00-05:00\"\nuntil = 2026-09-06T00:00:00-05:00\nreason = \"Louisiana state of emergency\"\n";
    let file = parse(&ok).expect("valid blackout");
    assert_eq!(file.compliance.blackouts.len(), 1);
    let bad = BASE.to_owned()
        + "\n[[blackouts]]\nstates = [\"XX\"]\nfrom = \"2026-09-06T00:00:00-05:00\"\nuntil = \"2026-08-29\"\nreason = \"x\"\n";
    assert_problems(
        &bad,
        &[
            (26, "[[blackouts]] #1 states", "not a USPS state code"),
            (28, "[[blackouts]] #1 until", "not an RFC 3339 time"),
        ],
    );
}

#[test]
fn problems_print_with_line_and_key() {
    let p = Problem {
        line: 12,
        key: "[[agents]] #1 phone".into(),
        message: "is required".into(),
    };
    assert_eq!(p.to_string(), "line 12: [[agents]] #1 phone: is required");
}

#[test]
fn two_agents_cannot_share_a_phone() {
    let text = BASE.replace(
        "[[numbers]]",
        "[[agents]]\nemail = \"ava@harbor.example\"\nname = \"Ava Chen\"\nphone = \"+15555550101\"\noffice = \"downtown\"\nrole = \"agent\"\n\n[[numbers]]",
    );
    assert_problems(
        &text,
        &[(
            20,
            "[[agents]] #2 phone",
            "also the phone of sam@harbor.example",
        )],
    );
}
