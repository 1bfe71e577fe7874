use super::*;
use crate::setup::twilio::SecretSource;

const DEMO: &str = include_str!("../../../../fixtures/demo.toml");

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
    // docs/security.md §3 row 32a
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

/// docs/security.md §3 row 32, one line each; every problem is listed at once.
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

// ---- docs/compliance.md R10, R11, R6: what automated texts and the help text must (not) say ----

const BASE_TEMPLATE: &str = r#"template = "Hi {first_name|there}, this is {agent_first_name} at {brokerage}. Reply STOP to opt out.""#;

/// BASE with the text-back template line (line 23) replaced by `template = <value>`.
fn with_template(value: &str) -> String {
    BASE.replace(BASE_TEMPLATE, &format!("template = {value}"))
}

/// BASE with one follow-up (its template on line 27).
fn with_follow_up(template: &str) -> String {
    format!("{BASE}\n[[follow_ups]]\nafter = \"1d\"\ntemplate = {template}\n")
}

/// BASE with the number's `listing` (line 20).
fn with_listing(listing: &str) -> String {
    BASE.replace(
        "office = \"downtown\"\nring",
        &format!("office = \"downtown\"\nlisting = {listing}\nring"),
    )
}

/// BASE with a `[compliance] help_text` (line 26).
fn with_help_text(help: &str) -> String {
    format!("{BASE}\n[compliance]\nhelp_text = {help}\n")
}

/// Asserts the file applies with exactly these (line, key fragment, message fragment) warnings.
fn assert_warnings(text: &str, expected: &[(usize, &str, &str)]) {
    let file = parse(text).unwrap_or_else(|p| panic!("the file should apply: {p:#?}"));
    let rendered: Vec<String> = file.warnings.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        file.warnings.len(),
        expected.len(),
        "warnings: {rendered:#?}"
    );
    for ((line, key, msg), w) in expected.iter().zip(&file.warnings) {
        assert_eq!(w.line, *line, "line of {w}");
        assert!(w.key.contains(key), "key of {w} should contain {key:?}");
        assert!(
            w.message.contains(msg),
            "message of {w} should contain {msg:?}"
        );
    }
}

#[test]
fn the_demo_file_applies_without_warnings() {
    let file = parse(DEMO).expect("demo.toml is valid");
    assert_eq!(file.warnings, vec![], "demo.toml is one GSM-7 segment");
    assert_eq!(parse(BASE).expect("valid").warnings, vec![]);
}

/// Issue 15 §5: only leads of the lead API bring written consent (docs/leads.md), so
/// `followups_need_written_consent = true` switches every other caller's follow-ups off.
/// Applying says so, naming the consequence; without follow-ups there is nothing to warn about.
#[test]
fn r12_requiring_written_consent_warns_that_no_follow_up_will_go() {
    let file = with_follow_up("\"A note from {brokerage}. Reply STOP to opt out.\"");
    let on = format!("{file}\n[compliance]\nfollowups_need_written_consent = true\n");
    assert_warnings(
        &on,
        &[(
            30,
            "[compliance] followups_need_written_consent",
            "for every other caller all 1 [[follow_ups]] step will be skipped",
        )],
    );
    let off = format!("{BASE}\n[compliance]\nfollowups_need_written_consent = true\n");
    assert_warnings(&off, &[]);
}

/// Issue 15 §6: `[twilio]` names the brokerage's own account and where its secrets are read;
/// a secret in the file itself is refused, and so is every malformed source.
#[test]
fn the_twilio_table_names_an_account_and_where_its_secrets_are() {
    let ok = format!(
        "{BASE}\n[twilio]\naccount_sid = \"AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01\"\nauth_token_env = \"HARBOR_TWILIO_AUTH_TOKEN\"\nwebhook_keys_file = \"/run/secrets/harbor-keys\"\n"
    );
    let file = parse(&ok).expect("valid");
    let account = file.twilio.expect("the account");
    assert_eq!(account.account_sid, "AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01");
    assert_eq!(
        account.auth_token,
        twilio::SecretSource::Env("HARBOR_TWILIO_AUTH_TOKEN".into())
    );
    assert_eq!(
        account.webhook_keys,
        Some(twilio::SecretSource::File(
            "/run/secrets/harbor-keys".into()
        ))
    );
    assert_eq!(
        parse(BASE).expect("valid").twilio,
        None,
        "the deployment's account"
    );
    let with = |body: &str| format!("{BASE}\n[twilio]\n{body}\n");
    assert_problems(
        &with("account_sid = \"AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01\"\nauth_token = \"5b5b5b\""),
        &[
            (25, "[twilio] auth_token_env", "is required"),
            (
                27,
                "[twilio] auth_token",
                "a secret never goes in the setup file",
            ),
        ],
    );
    assert_problems(
        &with("account_sid = \"AC12\"\nauth_token_env = \"X\""),
        &[(26, "[twilio] account_sid", "AC followed by 32 hex digits")],
    );
    assert_problems(
        &with(
            "account_sid = \"AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01\"\nauth_token_env = \"X\"\nauth_token_file = \"/x\"",
        ),
        &[(27, "[twilio] auth_token_env", "not both")],
    );
    assert_problems(
        &with(
            "account_sid = \"AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01\"\nauth_token_env = \"harbor-token\"",
        ),
        &[(
            27,
            "[twilio] auth_token_env",
            "not an environment variable name",
        )],
    );
    assert_problems(
        &with(
            "account_sid = \"AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01\"\nauth_token_file = \"secrets/token\"",
        ),
        &[(27, "[twilio] auth_token_file", "absolute path")],
    );
}

#[test]
fn r10_a_template_must_name_the_brokerage() {
    let missing = "\"Hi {first_name|there}, this is {agent_first_name}. Reply STOP to opt out.\"";
    let msg = "names neither `{brokerage}` nor `Harbor Realty`";
    assert_problems(
        &with_template(missing),
        &[(23, "[text_back] template", msg)],
    );
    assert_problems(
        &with_follow_up(missing),
        &[(27, "[[follow_ups]] #1 template", msg)],
    );
    assert_problems(
        &with_template(&format!(
            "[\"Hi from {{brokerage}}. Reply STOP to opt out.\", {missing}]"
        )),
        &[(23, "[text_back] template", "(variant 2)")],
    );
    // The name written out, verbatim, does as well as the field; another spelling does not.
    parse(&with_template(
        "\"Hi, Sam at Harbor Realty here. Reply STOP to opt out.\"",
    ))
    .expect("the literal name counts");
    assert_problems(
        &with_template("\"Hi, Sam at harbor realty here. Reply STOP to opt out.\""),
        &[(23, "[text_back] template", msg)],
    );
    parse(&with_follow_up("\"Still looking? {brokerage|Harbor}\"")).expect("with a fallback");
}

#[test]
fn r10_over_320_characters_fails_with_the_opt_out_line_and_longest_values() {
    // 297 characters of text without STOP: the appended line (23) makes it 320, just allowed;
    // one more character fails.
    let pad = |n: usize| "x".repeat(n);
    let head = "Harbor Realty ";
    let at_limit = format!("\"{head}{}\"", pad(297 - head.len()));
    let file = parse(&with_template(&at_limit)).expect("320 is allowed");
    assert_eq!(file.warnings.len(), 1, "{:?}", file.warnings);
    assert!(
        file.warnings[0]
            .message
            .contains("renders to 320 characters (3 segments)")
    );
    let over = format!("\"{head}{}\"", pad(298 - head.len()));
    assert_problems(
        &with_template(&over),
        &[(23, "[text_back] template", "renders to 321 characters")],
    );
    let p = &problems(&with_template(&over))[0];
    assert!(p.message.contains("the limit is 320"), "{p}");
    assert!(p.message.ends_with(" Reply STOP to opt out.\""), "{p}");

    // The file's longest agent first name is the sample: Sam fits, Bartholomew does not.
    let tpl = format!("\"{{agent_first_name}} of {{brokerage}} {}\"", pad(270));
    parse(&with_template(&tpl)).expect("with Sam: 3 + 4 + 13 + 1 + 270 + 23 = 314");
    let longer_agent = with_template(&tpl).replace(
        "[[numbers]]",
        "[[agents]]\nemail = \"bart@harbor.example\"\nname = \"Bartholomew Lee\"\nphone = \"+15555550105\"\noffice = \"downtown\"\nrole = \"manager\"\n\n[[numbers]]",
    );
    assert_problems(
        &longer_agent,
        &[(30, "[text_back] template", "renders to 322 characters")],
    );

    // The first name sample is "Alexandria" unless the fallback is longer; the listing is the
    // longest of the file's, or the fallback when a number has none.
    let tpl = format!(
        "\"Hi {{first_name|there}}, {{brokerage}} about {{listing|one of our homes}} {}\"",
        pad(250)
    );
    // 3 + 10 + 2 + 13 + 7 + 16 + 1 + 250 + 23 = 325
    assert_problems(
        &with_template(&tpl),
        &[(23, "[text_back] template", "renders to 325 characters")],
    );
    let tpl = tpl.replace(&pad(250), &pad(245));
    parse(&with_template(&tpl)).expect("320 with the fallback listing");
    assert_problems(
        &with_listing("\"1234 Long Meadow Road Unit 5\"")
            .replace(BASE_TEMPLATE, &format!("template = {tpl}")),
        &[(24, "[text_back] template", "renders to 332 characters")],
    );
}

#[test]
fn r10_long_or_non_gsm7_texts_warn_and_still_apply() {
    let long = format!(
        "\"Hi {{first_name|there}}, this is {{agent_first_name}} at {{brokerage}}. {} Reply STOP to opt out.\"",
        "We will call you back within the hour. "
            .repeat(3)
            .trim_end()
    );
    assert_warnings(
        &with_template(&long),
        &[(
            23,
            "[text_back] template",
            "renders to 184 characters (2 segments) with the longest sample values",
        )],
    );
    assert_warnings(
        &with_follow_up(&long),
        &[(
            27,
            "[[follow_ups]] #1 template",
            "over 160 a text is split into segments",
        )],
    );
    let table: &[(&str, &str)] = &[
        ("We’re sorry we missed you", "`’` (U+2019)"),
        ("“Sorry” we missed you", "`“` (U+201C), `”` (U+201D)"),
        ("Sorry we missed you…", "`…` (U+2026)"),
        ("Sorry we missed you 🏠", "`🏠` (U+1F3E0)"),
    ];
    for (text, chars) in table {
        let tpl = format!("\"{text}. {{brokerage}}. Reply STOP to opt out.\"");
        assert_warnings(&with_template(&tpl), &[(23, "[text_back] template", chars)]);
        let file = parse(&with_template(&tpl)).expect("applies");
        assert!(
            file.warnings[0]
                .message
                .contains("UCS-2, 70 characters a segment")
                && file.warnings[0]
                    .message
                    .contains("(1 segment with the longest"),
            "{}",
            file.warnings[0]
        );
    }
    // A fallback counts too; a template may warn twice.
    let tpl = format!(
        "\"Hi {{first_name|friend}}, about {{listing|one of our homes…}} {}. {{brokerage}}\"",
        "x".repeat(120)
    );
    assert_warnings(
        &with_template(&tpl),
        &[
            (23, "[text_back] template", "197 characters (3 segments)"),
            (
                23,
                "[text_back] template",
                "`…` (U+2026); the text goes as UCS-2",
            ),
        ],
    );
    // GSM-7's extension table is fine.
    assert_warnings(
        &with_template("\"{brokerage} [EUR €] ~ Reply STOP to opt out.\""),
        &[],
    );
}

#[test]
fn r10_values_that_templates_insert_warn_when_outside_gsm7() {
    let file = with_listing("\"12 O’Brien St\"").replace(
        BASE_TEMPLATE,
        "template = \"Hi from {brokerage} about {listing}. Reply STOP to opt out.\"",
    );
    assert_warnings(
        &file,
        &[
            (
                20,
                "[[numbers]] #1 listing",
                "a text that inserts it ({listing}) goes as UCS-2",
            ),
            (24, "[text_back] template", "`’` (U+2019)"),
        ],
    );
    // The template does not insert the listing: nothing to warn about.
    assert_warnings(&with_listing("\"12 O’Brien St\""), &[]);
    // Only the part of an agent's name that a template inserts counts.
    let zoe = BASE.replace("name = \"Sam Rivera\"", "name = \"Sam Zoë-Rivera\"");
    assert_warnings(&zoe, &[]);
    let zoe = BASE.replace("name = \"Sam Rivera\"", "name = \"Zoë Rivera\"");
    assert_warnings(
        &zoe,
        &[
            (12, "[[agents]] #1 name", "({agent_first_name})"),
            (23, "[text_back] template", "`ë` (U+00EB)"),
        ],
    );
}

#[test]
fn r11_automated_templates_hold_no_price_and_no_blocked_term() {
    let table: &[(&str, &str)] = &[
        (
            "Homes from $450k at {brokerage}.",
            "holds a price (`$450k`)",
        ),
        (
            "{brokerage}: now $ 1,200,000.",
            "holds a price (`$ 1,200,000`)",
        ),
        (
            "{brokerage} about {listing|our $1M homes}.",
            "holds a price (`$1M`)",
        ),
        (
            "{brokerage}: free BEER at the open house",
            "blocked term `beer`",
        ),
        ("{brokerage}: no Guns allowed", "blocked term `guns`"),
        ("{brokerage}: vape-free home", "blocked term `vape`"),
        ("{brokerage} says WTF, shit happens", "blocked term `shit`"),
    ];
    for (text, msg) in table {
        let tpl = format!("\"{text} Reply STOP to opt out.\"");
        assert_problems(&with_template(&tpl), &[(23, "[text_back] template", msg)]);
        assert_problems(
            &with_follow_up(&tpl),
            &[(27, "[[follow_ups]] #1 template", msg)],
        );
    }
    // Each term is named; a variant is named too.
    assert_problems(
        &with_template(
            "[\"{brokerage}. Reply STOP to opt out.\", \"{brokerage}: beer and cigars, $5\"]",
        ),
        &[
            (23, "[text_back] template", "price (`$5`) (variant 2)"),
            (23, "[text_back] template", "term `beer` (variant 2)"),
            (23, "[text_back] template", "term `cigars` (variant 2)"),
        ],
    );
    // Whole words only: no Scunthorpe problem.
    for fine in [
        "{brokerage}: open house on Scunthorpe Rd, Essex; cocktail hour, non-smoking, wine cellar.",
        "{brokerage}: reply with your budget in $ and we'll call.",
    ] {
        parse(&with_template(&format!("\"{fine}\""))).expect(fine);
    }
}

#[test]
fn r11_listings_hold_no_price_and_no_blocked_term() {
    assert_problems(
        &with_listing("\"123 Main St, $450,000\""),
        &[(20, "[[numbers]] #1 listing", "holds a price (`$450,000`)")],
    );
    assert_problems(
        &with_listing("\"The Tobacco Barn\""),
        &[(20, "[[numbers]] #1 listing", "blocked term `tobacco`")],
    );
    parse(&with_listing("\"420 Bourbon St\"")).expect("addresses are not terms");
}

#[test]
fn r6_the_help_text_names_the_brokerage_says_stop_and_gives_a_number_or_link() {
    for ok in [
        "\"{brokerage}: for help call {office_phone}. Msg & data rates may apply. Reply STOP to opt out.\"",
        "\"Harbor Realty: for help call (555) 555-0100. Reply STOP to opt out.\"",
        "\"Harbor Realty help: www.harbor.example/help. Text STOP to stop.\"",
    ] {
        let text = with_help_text(ok) + "link_domains = [\"harbor.example\"]\n";
        parse(&text).unwrap_or_else(|p| panic!("{ok}: {p:?}"));
    }
    let table: &[(&str, &str)] = &[
        (
            "\"For help call (555) 555-0100. Reply STOP to opt out.\"",
            "must name the brokerage (`Harbor Realty` or `{brokerage}`)",
        ),
        (
            "\"{brokerage}: for help call (555) 555-0100.\"",
            "with the word STOP",
        ),
        (
            "\"{brokerage}: for help call (555) 555-0100. Reply stop to opt out.\"",
            "with the word STOP",
        ),
        (
            "\"{brokerage}: we are here to help. Reply STOP to opt out.\"",
            "a phone number or a link",
        ),
        (
            "\"{brokerage}: call 555-0100. Reply STOP to opt out.\"",
            "a phone number or a link",
        ),
    ];
    for (help, msg) in table {
        assert_problems(
            &with_help_text(help),
            &[(26, "[compliance] help_text", msg)],
        );
    }
    assert_problems(
        &with_help_text("\"Call us.\""),
        &[
            (26, "[compliance] help_text", "must name the brokerage"),
            (26, "[compliance] help_text", "STOP"),
            (26, "[compliance] help_text", "a phone number or a link"),
        ],
    );
}

/// Issue 20 §2: the confirmations and the help text in both languages, checked as strictly in
/// Spanish as in English; each problem names its key and line.
#[test]
fn the_compliance_texts_in_both_languages_are_checked_alike() {
    let with = |key: &str, value: &str| format!("{BASE}\n[compliance]\n{key} = {value}\n");
    let file = format!(
        "{BASE}\n[compliance]\nopt_out_text = \"{{brokerage}}: done, no more texts. Reply START to come back.\"\nopt_out_text_es = \"{{brokerage}}: listo. Responde START para volver.\"\nopt_in_text = \"{{brokerage}}: welcome back. Reply STOP to opt out.\"\nopt_in_text_es = \"{{brokerage}}: bienvenido. Responde PARA para salir.\"\nhelp_text_es = \"{{brokerage}}: AYUDA al {{office_phone}}. Responde PARA para salir.\"\n"
    );
    let setup = parse(&file).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(
        setup.compliance.opt_in_text_es.as_deref(),
        Some("{brokerage}: bienvenido. Responde PARA para salir.")
    );
    let table: &[(&str, &str, &str)] = &[
        ("opt_out_text", "\"Harbor Realty: done.\"", "the word START"),
        (
            "opt_out_text_es",
            "\"Listo. Responde START.\"",
            "must name the brokerage",
        ),
        (
            "opt_out_text_es",
            "\"{brokerage}: listo. Responde START. https://harbor.example\"",
            "no link",
        ),
        (
            "opt_in_text",
            "\"{brokerage}: welcome back.\"",
            "the word STOP",
        ),
        (
            "opt_in_text_es",
            "\"{brokerage}: bienvenido. Responde para salir.\"",
            "PARA or STOP",
        ),
        (
            "help_text_es",
            "\"{brokerage}: llama al {office_phone}. Responde PARA.\"",
            "AYUDA",
        ),
        (
            "help_text_es",
            "\"{brokerage}: AYUDA. Responde PARA.\"",
            "a phone number or a link",
        ),
    ];
    for (key, value, msg) in table {
        let key_name = format!("[compliance] {key}");
        let problems = parse(&with(key, value))
            .err()
            .unwrap_or_else(|| panic!("{key} = {value} passed"));
        assert!(
            problems
                .iter()
                .any(|p| p.key == key_name && p.line == 26 && p.message.contains(msg)),
            "{key} = {value}: {problems:?}"
        );
    }
}

#[test]
fn the_call_side_keys_parse_and_refuse_bad_values_with_their_line() {
    let with = BASE
        .replace(
            "name = \"Downtown\"\n",
            "name = \"Downtown\"\nhours = \"09:00-18:00\"\n",
        )
        .replace(
            "ring = [\"sam@harbor.example\"]\n",
            "ring = [\"sam@harbor.example\"]\ncallback = \"auto\"\nvoicemail = true\n",
        );
    let file = parse(&with).expect("valid");
    let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let six = chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap();
    assert_eq!(file.offices[0].hours, Some((nine, six)));
    assert_eq!(file.numbers[0].callback, CallbackMode::Auto);
    assert!(file.numbers[0].voicemail);
    let defaults = parse(BASE).expect("valid");
    assert_eq!(defaults.offices[0].hours, None);
    assert_eq!(defaults.numbers[0].callback, CallbackMode::Off);
    assert!(!defaults.numbers[0].voicemail);

    let bad = BASE
        .replace(
            "name = \"Downtown\"\n",
            "name = \"Downtown\"\nhours = \"18:00-09:00\"\n",
        )
        .replace(
            "ring = [\"sam@harbor.example\"]\n",
            "ring = [\"sam@harbor.example\"]\ncallback = \"always\"\n",
        );
    assert_problems(
        &bad,
        &[
            (9, "hours", "opening before closing"),
            (22, "callback", "must be \"off\", \"offer\" or \"auto\""),
        ],
    );
}

#[test]
fn routing_keys_parse_and_refuse_bad_values_with_their_line() {
    use crate::domain::routing::Mode;
    let with = BASE
        .replace(
            "role = \"agent\"\n",
            "role = \"agent\"\nhours = \"09:00-18:00\"\nweight = 3\n",
        )
        .replace(
            "ring = [\"sam@harbor.example\"]\n",
            "ring = [\"sam@harbor.example\"]\nrouting = \"first_to_claim\"\nclaim_timeout = \"2m\"\n",
        )
        + "\n[[saved_replies]]\nname = \"Showing\"\ntext = \"Hi {first_name|there}, {agent_first_name} here. When suits you for a showing of {listing|the home}?\"\n";
    let file = parse(&with).expect("valid");
    assert_eq!(file.numbers[0].routing, Mode::FirstToClaim);
    assert_eq!(file.numbers[0].claim_timeout_secs, 120);
    assert_eq!(file.agents[0].weight, 3);
    assert!(file.agents[0].hours.is_some());
    assert_eq!(file.saved_replies.len(), 1);
    assert_eq!(file.saved_replies[0].name, "Showing");
    let defaults = parse(BASE).expect("valid");
    assert_eq!(defaults.numbers[0].routing, Mode::All);
    assert_eq!(defaults.numbers[0].claim_timeout_secs, 300);
    assert_eq!(defaults.agents[0].weight, 1);

    let bad_routing = BASE.replace(
        "ring = [\"sam@harbor.example\"]\n",
        "ring = [\"sam@harbor.example\"]\nrouting = \"lottery\"\nclaim_timeout = \"5m\"\n",
    );
    let problems = parse(&bad_routing).expect_err("invalid");
    assert!(
        problems.iter().any(|p| p.key.ends_with("routing")
            && p.message
                .contains("must be \"all\", \"round_robin\" or \"first_to_claim\"")
            && p.line > 0),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.key.ends_with("claim_timeout")
            && p.message.contains("only for routing = \"first_to_claim\"")),
        "{problems:?}"
    );
    // A round robin with nobody to take a turn names no available agent.
    let nobody = BASE
        .replace("role = \"agent\"\n", "role = \"agent\"\nweight = 0\n")
        .replace(
            "ring = [\"sam@harbor.example\"]\n",
            "ring = [\"sam@harbor.example\"]\nrouting = \"round_robin\"\n",
        );
    let problems = parse(&nobody).expect_err("invalid");
    assert!(
        problems.iter().any(|p| p.key.ends_with("ring")
            && p.message
                .contains("names no agent who takes round-robin leads")
            && p.line > 0),
        "{problems:?}"
    );
    let bad_agent = BASE.replace(
        "role = \"agent\"\n",
        "role = \"agent\"\nhours = \"9-5\"\nweight = 11\n",
    );
    let problems = parse(&bad_agent).expect_err("invalid");
    assert!(
        problems.iter().any(|p| p.key.ends_with("hours")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.key.ends_with("weight")),
        "{problems:?}"
    );
    let bad_saved = format!("{BASE}\n[[saved_replies]]\nname = \"\"\ntext = \"Hi {{nope}}\"\n");
    let problems = parse(&bad_saved).expect_err("invalid");
    assert!(
        problems
            .iter()
            .any(|p| p.key.contains("saved_replies") && p.key.ends_with("name")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.key.contains("saved_replies") && p.key.ends_with("text")),
        "{problems:?}"
    );
}

/// Issue 19: `[lead_text] template` (docs/leads.md) is optional; given, it is checked like the
/// text-back's: it must parse, and a missing `template` is named with its line.
#[test]
fn the_lead_text_is_optional_and_checked_like_the_text_back() {
    assert_eq!(parse(BASE).expect("valid").lead_text, None);
    let with = format!(
        "{BASE}\n[lead_text]\ntemplate = [\"Hi {{first_name|there}}, this is {{agent_first_name|the team}} at {{brokerage}}: thanks for asking about {{listing|the home}}.\", \"Hello from {{brokerage}}!\"]\n"
    );
    let file = parse(&with).expect("valid");
    assert_eq!(file.lead_text.map(|v| v.len()), Some(2));
    // R10 holds for it as for the text-back: the brokerage is named.
    let unnamed =
        format!("{BASE}\n[lead_text]\ntemplate = \"Thanks, we will text you shortly.\"\n");
    let got = problems(&unnamed);
    assert!(
        got.iter()
            .any(|p| p.key.contains("[lead_text] template") && p.message.contains("R10")),
        "{got:?}"
    );
    let missing = format!("{BASE}\n[lead_text]\ntext = \"Hi\"\n");
    let got = problems(&missing);
    assert!(
        got.iter().any(|p| p.key.contains("[lead_text] template")),
        "{got:?}"
    );
    let broken = format!("{BASE}\n[lead_text]\ntemplate = \"Hi {{nickname}}\"\n");
    let got = problems(&broken);
    assert!(
        got.iter().any(|p| p.key.contains("[lead_text] template")),
        "{got:?}"
    );
}

/// Issue 19 §2: `[[forms]]`, the hosted lead forms: read with their defaults, and every bad
/// value named with its line (BASE has 23 lines; the form's table is line 25, its keys follow).
/// value named with its line (BASE has 23 lines; the form starts on line 25).
#[test]
fn forms_are_read_and_their_problems_named_with_their_lines() {
    const CONSENT: &str =
        "I agree to receive texts from Harbor Realty about my inquiry. Reply STOP to opt out.";
    let good = format!(
        "{BASE}\n[[forms]]\nslug = \"buyers\"\ntitle = \"Ask about a home\"\nconsent = \"{CONSENT}\"\nnumber = \"+15555550100\"\nlisting = \"123 Main St\"\nframe_origins = [\"https://harbor.example\", \"HTTPS://www.Harbor.example:8443\", \"http://localhost:3000\"]\n\n[[forms]]\nslug = \"sellers\"\nconsent = \"{CONSENT}\"\n"
    );
    let file = parse(&good).expect("valid");
    assert_eq!(file.forms.len(), 2);
    let f = &file.forms[0];
    assert_eq!(
        (f.slug.as_str(), f.title.as_deref(), f.listing.as_deref()),
        ("buyers", Some("Ask about a home"), Some("123 Main St"))
    );
    assert_eq!(f.number.as_ref().map(|n| n.as_e164()), Some("+15555550100"));
    assert_eq!(
        f.frame_origins,
        vec![
            "https://harbor.example",
            "https://www.harbor.example:8443",
            "http://localhost:3000"
        ]
    );
    assert_eq!(
        (
            file.forms[1].title.clone(),
            file.forms[1].number.clone(),
            file.forms[1].frame_origins.len()
        ),
        (None, None, 0)
    );
    let bad = |form: &str| format!("{BASE}\n[[forms]]\n{form}");
    let cases: [(&str, usize, &str, &str); 9] = [
        (
            "consent = \"{C}\"\n",
            25,
            "[[forms]] #1 slug",
            "is required",
        ),
        (
            "slug = \"Buyers!\"\nconsent = \"{C}\"\n",
            26,
            "[[forms]] #1 slug",
            "lowercase",
        ),
        ("slug = \"b\"\n", 25, "[[forms]] #1 consent", "is required"),
        (
            "slug = \"b\"\nconsent = \"Yes please\"\n",
            27,
            "[[forms]] #1 consent",
            "20 to 1,000",
        ),
        (
            "slug = \"b\"\nconsent = \"I agree to receive texts about my inquiry. Reply STOP to opt out.\"\n",
            27,
            "[[forms]] #1 consent",
            "name the brokerage",
        ),
        (
            "slug = \"b\"\nconsent = \"I agree to receive texts from Harbor Realty about my inquiry.\"\n",
            27,
            "[[forms]] #1 consent",
            "how to stop",
        ),
        (
            "slug = \"b\"\nconsent = \"{C}\"\nnumber = \"+15555550199\"\n",
            28,
            "[[forms]] #1 number",
            "not one of this file's",
        ),
        (
            "slug = \"b\"\nconsent = \"{C}\"\nframe_origins = [\"https://harbor.example/contact\"]\n",
            28,
            "[[forms]] #1 frame_origins",
            "not a site's origin",
        ),
        (
            "slug = \"b\"\nconsent = \"{C}\"\nframe_origins = [\"http://harbor.example\"]\n",
            28,
            "[[forms]] #1 frame_origins",
            "not a site's origin",
        ),
    ];
    for (form, line, key, msg) in cases {
        assert_problems(&bad(&form.replace("{C}", CONSENT)), &[(line, key, msg)]);
    }
    // Two forms with one slug.
    let twice = format!(
        "{BASE}\n[[forms]]\nslug = \"b\"\nconsent = \"{CONSENT}\"\n\n[[forms]]\nslug = \"b\"\nconsent = \"{CONSENT}\"\n"
    );
    assert_problems(&twice, &[(30, "[[forms]] #2 slug", "used twice")]);
}

/// Issue 19 §3–4: `[[webhooks]]` and `[follow_up_boss]`: read with their defaults, the secret
/// named (never given), and every bad value named with its line (the table is line 25).
#[test]
fn webhooks_and_follow_up_boss_are_read_and_their_problems_named() {
    let good = format!(
        "{BASE}\n[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example/hooks/textback\"\nevents = [\"reply.received\", \"call.missed\", \"call.missed\"]\nsecret_env = \"HARBOR_WEBHOOK_SECRET\"\n\n[[webhooks]]\nname = \"local\"\nurl = \"http://127.0.0.1:9000/in\"\nevents = [\"*\"]\nsecret_file = \"/run/secrets/whsec\"\nallow_private_addresses = true\n\n[follow_up_boss]\napi_key_env = \"HARBOR_FUB_KEY\"\nsystem_key_file = \"/run/secrets/fub-system\"\n"
    );
    let file = parse(&good).expect("valid");
    assert_eq!(file.webhooks.len(), 2);
    let w = &file.webhooks[0];
    assert_eq!(
        (w.name.as_str(), w.url.as_str(), w.allow_private_addresses),
        ("crm", "https://crm.example/hooks/textback", false)
    );
    assert_eq!(
        w.events,
        vec!["call.missed", "reply.received"],
        "sorted, once each"
    );
    assert_eq!(w.secret, SecretSource::Env("HARBOR_WEBHOOK_SECRET".into()));
    assert_eq!(
        file.webhooks[1].events.len(),
        crate::domain::webhooks::EVENTS.len()
    );
    let fub = file.follow_up_boss.as_ref().expect("FUB");
    assert_eq!(fub.url, "https://api.followupboss.com");
    assert_eq!(fub.system, "textback");
    assert_eq!(fub.api_key, SecretSource::Env("HARBOR_FUB_KEY".into()));
    assert_eq!(
        fub.system_key,
        Some(SecretSource::File("/run/secrets/fub-system".into()))
    );

    let hook = |body: &str| format!("{BASE}\n[[webhooks]]\nname = \"crm\"\n{body}");
    let ok_rest = "events = [\"opt_out\"]\nsecret_env = \"S\"\n";
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            hook(&format!("url = \"ftp://crm.example\"\n{ok_rest}")),
            27,
            "[[webhooks]] #1 url",
            "not http or https",
        ),
        (
            hook(&format!("url = \"http://crm.example/in\"\n{ok_rest}")),
            27,
            "[[webhooks]] #1 url",
            "must be https",
        ),
        (
            hook(&format!("url = \"https://10.0.0.8/in\"\n{ok_rest}")),
            27,
            "[[webhooks]] #1 url",
            "private network",
        ),
        (
            hook(&format!("url = \"https://[::1]:8443/in\"\n{ok_rest}")),
            27,
            "[[webhooks]] #1 url",
            "private network",
        ),
        (
            hook(&format!("url = \"https://LOCALHOST/in\"\n{ok_rest}")),
            27,
            "[[webhooks]] #1 url",
            "private network",
        ),
        (
            hook(&format!(
                "url = \"https://user:pw@crm.example/in\"\n{ok_rest}"
            )),
            27,
            "[[webhooks]] #1 url",
            "user or password",
        ),
        (
            hook("url = \"https://crm.example\"\nevents = [\"text.maybe\"]\nsecret_env = \"S\"\n"),
            28,
            "[[webhooks]] #1 events",
            "not an event",
        ),
        (
            hook("url = \"https://crm.example\"\nsecret_env = \"S\"\n"),
            25,
            "[[webhooks]] #1 events",
            "is required",
        ),
        (
            hook("url = \"https://crm.example\"\nevents = [\"*\"]\n"),
            25,
            "[[webhooks]] #1 secret_env",
            "is required",
        ),
        (
            hook(
                "url = \"https://crm.example\"\nevents = [\"*\"]\nsecret = \"whsec_abc\"\nsecret_env = \"S\"\n",
            ),
            29,
            "[[webhooks]] #1 secret",
            "never goes in the setup file",
        ),
        (
            hook("url = \"https://crm.example\"\nevents = [\"*\"]\nsecret_env = \"lower\"\n"),
            29,
            "[[webhooks]] #1 secret_env",
            "not an environment variable name",
        ),
        (
            format!("{BASE}\n[follow_up_boss]\napi_key = \"abc\"\napi_key_env = \"K\"\n"),
            26,
            "[follow_up_boss] api_key",
            "never goes in the setup file",
        ),
        (
            format!("{BASE}\n[follow_up_boss]\nsystem = \"textback\"\n"),
            25,
            "[follow_up_boss] api_key_env",
            "is required",
        ),
        (
            format!(
                "{BASE}\n[follow_up_boss]\napi_key_env = \"K\"\nurl = \"http://fub.example\"\n"
            ),
            27,
            "[follow_up_boss] url",
            "must be https",
        ),
    ];
    for (text, line, key, msg) in cases {
        assert_problems(&text, &[(line, key, msg)]);
    }
    let twice = format!(
        "{BASE}\n[[webhooks]]\nname = \"a\"\nurl = \"https://crm.example\"\n{ok_rest}\n[[webhooks]]\nname = \"a\"\nurl = \"https://crm.example\"\n{ok_rest}"
    );
    assert_problems(&twice, &[(32, "[[webhooks]] #2 name", "used twice")]);
}

/// Issue 20 §2 (groundwork): Spanish variants are read and checked with the Spanish opt-out
/// line; a Spanish help text must say PARA or STOP; a Spanish brokerage needs a Spanish
/// text-back.
#[test]
fn spanish_templates_are_read_and_checked() {
    let base = BASE.replace(
        "[text_back]",
        "[text_back]\ntemplate_es = \"Hola, soy {agent_first_name} de {brokerage}. ¿En qué le ayudo?\"",
    );
    let file = parse(&format!(
        "{base}\n[compliance]\nhelp_text_es = \"{{brokerage}}: ayuda al {{office_phone}}. Responde PARA para salir.\"\n"
    ))
    .expect("valid");
    assert_eq!(
        file.text_back.templates_es.as_deref().map(<[String]>::len),
        Some(1)
    );
    assert!(file.compliance.help_text_es.is_some());
    let bad = parse(&format!(
        "{base}\n[compliance]\nhelp_text_es = \"{{brokerage}}: ayuda al {{office_phone}}.\"\n"
    ))
    .expect_err("no PARA");
    assert!(
        bad.iter()
            .any(|p| p.key == "[compliance] help_text_es" && p.message.contains("PARA")),
        "{bad:?}"
    );
    let spanish_default = BASE.replace("[brokerage]", "[brokerage]\nlanguage = \"es\"");
    let bad = parse(&spanish_default).expect_err("no template_es");
    assert!(
        bad.iter().any(|p| p.key == "[text_back] template_es"),
        "{bad:?}"
    );
    let bad =
        parse(&BASE.replace("[brokerage]", "[brokerage]\nlanguage = \"fr\"")).expect_err("fr");
    assert!(
        bad.iter().any(|p| p.message.contains("\"en\" or \"es\"")),
        "{bad:?}"
    );
}
