//! The setup file's sections, one reader each, in the order the file lists them. A reader
//! reports every problem of its section and returns what it could read; checks that need the
//! whole file (links against `[compliance] link_domains`, templates against the values they
//! insert) are collected in [`Later`] and run at the end.

use std::collections::HashSet;
use std::ops::Range;

use toml::de::DeTable;

use super::{
    AfterHours, Agent, Automated, Blackout, Brokerage, CallbackMode, Compliance, Cx, FollowUp,
    FollowUpBoss, Inbox, Inserted, Number, Office, Problem, Role, Samples, SavedReply, SetupFile,
    TableReader, TextBack, WebForm, Webhook, check_automated, check_compliance_text,
    check_inserted, instant, is_email, is_slug, phone, read_twilio, refuse_secrets, secret_source,
    sub_table, table_array, templates,
};
use crate::domain::compliance_text::Which;
use crate::domain::language::Language;
use crate::domain::links;
use crate::domain::phone::PhoneNumber;
use crate::domain::routing::Mode;
use crate::domain::template::Field;

/// What is checked once the whole file is read.
#[derive(Default)]
struct Later {
    /// Texts whose links are checked against `[compliance] link_domains`: (key, text, span).
    linked_texts: Vec<(String, String, Range<usize>)>,
    /// Automated templates and the values they insert (docs/compliance.md R10, R11).
    automated: Vec<Automated>,
    inserted: Vec<Inserted>,
    /// A brokerage's own compliance texts (docs/compliance.md §4.5).
    compliance_texts: Vec<(Which, Language, String, Range<usize>)>,
    /// Then `{listing}` may render its fallback.
    a_number_lacks_a_listing: bool,
}

impl Later {
    fn check(self, cx: &mut Cx, compliance: &Compliance, brokerage_name: Option<&str>) {
        for (key, text, span) in self.linked_texts {
            for problem in links::check(&text, &compliance.link_domains) {
                cx.err(&span, key.clone(), problem.to_string());
            }
        }
        for value in &self.inserted {
            check_inserted(cx, value, &self.automated);
        }
        let samples = Samples::new(
            brokerage_name,
            &self.inserted,
            self.a_number_lacks_a_listing,
        );
        for template in &self.automated {
            check_automated(cx, template, &samples);
        }
        for (which, language, text, span) in &self.compliance_texts {
            check_compliance_text(cx, *which, *language, text, span, brokerage_name);
        }
    }
}

pub(super) fn read_file(
    cx: &mut Cx,
    root: &DeTable<'_>,
    root_span: Range<usize>,
) -> Option<SetupFile> {
    let mut r = TableReader::new("", root, root_span);
    let mut later = Later::default();
    let brokerage = brokerage(cx, &mut r, root);
    let (offices, office_slugs) = offices(cx, &mut r, &mut later);
    let (agents, agent_emails) = agents(cx, &mut r, &office_slugs, &mut later);
    let numbers = numbers(
        cx,
        &mut r,
        &office_slugs,
        &agents,
        &agent_emails,
        &mut later,
    );
    let text_back = text_back(cx, &mut r, root, &mut later);
    let follow_ups = follow_ups(cx, &mut r, &mut later);
    let (lead_text, lead_text_es) = lead_text(cx, &mut r, &mut later);
    let inbox = inbox(cx, &mut r);
    let saved_replies = saved_replies(cx, &mut r, &mut later);
    let forms = forms(
        cx,
        &mut r,
        &numbers,
        brokerage.as_ref().map(|b| b.name.as_str()),
    );
    let mut compliance = compliance(cx, &mut r, follow_ups.len(), &mut later);
    compliance.blackouts = blackouts(cx, &mut r);
    let twilio = sub_table(cx, &mut r, "twilio").and_then(|mut t| {
        let account = read_twilio(cx, &mut t);
        t.finish(cx);
        account
    });
    let webhooks = webhooks(cx, &mut r);
    let follow_up_boss = follow_up_boss(cx, &mut r);
    if let (Some(b), Some(tb)) = (&brokerage, &text_back)
        && b.language == Language::Es
        && tb.templates_es.is_none()
    {
        cx.problems.push(Problem {
            line: 1,
            key: "[text_back] template_es".into(),
            message: "is required when [brokerage] language = \"es\": a caller's first text is in the brokerage's language".into(),
        });
    }
    r.finish(cx);
    later.check(cx, &compliance, brokerage.as_ref().map(|b| b.name.as_str()));

    Some(SetupFile {
        brokerage: brokerage?,
        offices,
        agents,
        numbers,
        text_back: text_back?,
        follow_ups,
        lead_text,
        lead_text_es,
        inbox,
        compliance,
        saved_replies,
        forms,
        twilio,
        webhooks,
        follow_up_boss,
        warnings: Vec::new(),
    })
}

/// `[brokerage]`: required.
fn brokerage(cx: &mut Cx, r: &mut TableReader<'_, '_>, root: &DeTable<'_>) -> Option<Brokerage> {
    match sub_table(cx, r, "brokerage") {
        None => {
            if !root
                .iter()
                .any(|(k, _)| k.get_ref().as_ref() == "brokerage")
            {
                cx.problems.push(Problem {
                    line: 1,
                    key: "[brokerage]".into(),
                    message: "is required".into(),
                });
            }
            None
        }
        Some(mut b) => {
            let slug = b.req_string(cx, "slug");
            if let Some((s, span)) = &slug
                && !is_slug(s)
            {
                cx.err(span, b.key("slug"), format!("`{s}` must be lower-case letters, digits and dashes (at most 63), starting with a letter or digit"));
            }
            let name = b.req_string(cx, "name");
            let tz = b.req_string(cx, "time_zone");
            let language = match b.string(cx, "language") {
                None => Some(Language::En),
                Some((l, span)) => match Language::parse(l.trim()) {
                    Some(l) => Some(l),
                    None => {
                        cx.err(
                            &span,
                            b.key("language"),
                            format!("`{l}` must be \"en\" or \"es\""),
                        );
                        None
                    }
                },
            };
            if let Some((z, span)) = &tz
                && z.parse::<chrono_tz::Tz>().is_err()
            {
                cx.err(
                    span,
                    b.key("time_zone"),
                    format!("`{z}` is not an IANA time zone (e.g. America/New_York)"),
                );
            }
            b.finish(cx);
            match (slug, name, tz, language) {
                (Some((slug, _)), Some((name, _)), Some((time_zone, _)), Some(language)) => {
                    Some(Brokerage {
                        slug,
                        name: name.trim().to_owned(),
                        time_zone,
                        language,
                    })
                }
                _ => None,
            }
        }
    }
}

/// `[[offices]]`: the offices and their slugs.
fn offices(
    cx: &mut Cx,
    r: &mut TableReader<'_, '_>,
    later: &mut Later,
) -> (Vec<Office>, HashSet<String>) {
    let mut offices = Vec::new();
    let mut office_slugs: HashSet<String> = HashSet::new();
    for mut o in table_array(cx, r, "offices") {
        let slug = o.req_string(cx, "slug");
        let name = o.req_string(cx, "name");
        if let Some((s, span)) = &slug {
            if !is_slug(s) {
                cx.err(
                    span,
                    o.key("slug"),
                    format!("`{s}` must be lower-case letters, digits and dashes"),
                );
            } else if !office_slugs.insert(s.clone()) {
                cx.err(
                    span,
                    o.key("slug"),
                    format!("office `{s}` is defined twice"),
                );
            }
        }
        if let Some((n, span)) = &name {
            later.inserted.push(Inserted {
                field: Field::Office,
                key: o.key("name"),
                value: n.trim().to_owned(),
                span: span.clone(),
            });
        }
        let hours = o.opt_string(cx, "hours").and_then(|(h, span)| {
            match crate::domain::callback::parse_hours(&h) {
                Ok(hours) => Some(hours),
                Err(why) => {
                    cx.err(&span, o.key("hours"), format!("`{h}` {why}"));
                    None
                }
            }
        });
        o.finish(cx);
        if let (Some((slug, _)), Some((name, _))) = (slug, name) {
            offices.push(Office {
                slug,
                name: name.trim().to_owned(),
                hours,
            });
        }
    }
    (offices, office_slugs)
}

/// `[[agents]]`: the people, and their emails (lower-case).
fn agents(
    cx: &mut Cx,
    r: &mut TableReader<'_, '_>,
    office_slugs: &HashSet<String>,
    later: &mut Later,
) -> (Vec<Agent>, HashSet<String>) {
    let mut agents = Vec::new();
    let mut agent_emails: HashSet<String> = HashSet::new();
    for mut a in table_array(cx, r, "agents") {
        let email = a.req_string(cx, "email");
        let email = match email {
            Some((e, span)) => {
                let lower = e.trim().to_lowercase();
                if !is_email(&lower) {
                    cx.err(
                        &span,
                        a.key("email"),
                        format!("`{e}` is not an email address"),
                    );
                    None
                } else if !agent_emails.insert(lower.clone()) {
                    cx.err(
                        &span,
                        a.key("email"),
                        format!("agent `{e}` is defined twice"),
                    );
                    None
                } else {
                    Some(lower)
                }
            }
            None => None,
        };
        let name = a.req_string(cx, "name");
        let phone_v = a.req_string(cx, "phone");
        let phone_span = phone_v.as_ref().map(|(_, span)| span.clone());
        let phone = phone(cx, &a, "phone", phone_v);
        // The phone tells which agent pressed 1 at the screen: one agent per phone.
        if let (Some(p), Some(span)) = (&phone, &phone_span)
            && let Some(other) = agents.iter().find(|o: &&Agent| o.phone == *p)
        {
            cx.err(
                span,
                a.key("phone"),
                format!("{} is also the phone of {}", p.as_e164(), other.email),
            );
        }
        let office = a.req_string(cx, "office");
        if let Some((o, span)) = &office
            && !office_slugs.contains(o)
        {
            cx.err(
                span,
                a.key("office"),
                format!("no [[offices]] has slug `{o}`"),
            );
        }
        let role = match a.req_string(cx, "role") {
            Some((s, span)) => match s.as_str() {
                "agent" => Some(Role::Agent),
                "manager" => Some(Role::Manager),
                "admin" => Some(Role::Admin),
                _ => {
                    cx.err(
                        &span,
                        a.key("role"),
                        format!("`{s}` must be agent, manager or admin"),
                    );
                    None
                }
            },
            None => None,
        };
        if let Some((n, span)) = &name {
            later.inserted.push(Inserted {
                field: Field::AgentName,
                key: a.key("name"),
                value: n.trim().to_owned(),
                span: span.clone(),
            });
        }
        let hours = a.opt_string(cx, "hours").and_then(|(h, span)| {
            match crate::domain::callback::parse_hours(&h) {
                Ok(hours) => Some(hours),
                Err(why) => {
                    cx.err(&span, a.key("hours"), format!("`{h}` {why}"));
                    None
                }
            }
        });
        let weight = a
            .int(cx, "weight", 0..11)
            .map_or(1, |(w, _)| u8::try_from(w).unwrap_or(1));
        let mut languages: Vec<Language> = Vec::new();
        match a.strings(cx, "languages") {
            None => languages.push(Language::En),
            Some(list) => {
                for (l, span) in list {
                    match Language::parse(l.trim()) {
                        Some(l) if !languages.contains(&l) => languages.push(l),
                        Some(_) => {}
                        None => cx.err(
                            &span,
                            a.key("languages"),
                            format!("`{l}` must be \"en\" or \"es\""),
                        ),
                    }
                }
                if languages.is_empty() {
                    languages.push(Language::En);
                }
            }
        }
        a.finish(cx);
        if let (Some(email), Some((name, _)), Some(phone), Some((office, _)), Some(role)) =
            (email, name, phone, office, role)
        {
            agents.push(Agent {
                email,
                name: name.trim().to_owned(),
                phone,
                office,
                role,
                hours,
                weight,
                languages,
            });
        }
    }
    (agents, agent_emails)
}

/// `[[numbers]]`: the brokerage's numbers, each ringing agents of the file.
fn numbers(
    cx: &mut Cx,
    r: &mut TableReader<'_, '_>,
    office_slugs: &HashSet<String>,
    agents: &[Agent],
    agent_emails: &HashSet<String>,
    later: &mut Later,
) -> Vec<Number> {
    let mut numbers = Vec::new();
    let mut seen_numbers: HashSet<String> = HashSet::new();
    for mut n in table_array(cx, r, "numbers") {
        let number_v = n.req_string(cx, "number");
        let line = number_v
            .as_ref()
            .map_or_else(|| cx.line(&n.span), |(_, span)| cx.line(span));
        let number_span = number_v.as_ref().map(|(_, s)| s.clone());
        let number = phone(cx, &n, "number", number_v);
        if let (Some(num), Some(span)) = (&number, &number_span) {
            if !seen_numbers.insert(num.as_e164().to_owned()) {
                cx.err(
                    span,
                    n.key("number"),
                    format!("{} is listed twice", num.as_e164()),
                );
            }
            if agents.iter().any(|a| a.phone == *num) {
                cx.err(
                    span,
                    n.key("number"),
                    "is also an agent's phone; a brokerage number cannot ring itself",
                );
            }
        }
        let office = n.req_string(cx, "office");
        if let Some((o, span)) = &office
            && !office_slugs.contains(o)
        {
            cx.err(
                span,
                n.key("office"),
                format!("no [[offices]] has slug `{o}`"),
            );
        }
        let listing = n.opt_string(cx, "listing");
        match &listing {
            Some((l, span)) => {
                later
                    .linked_texts
                    .push((n.key("listing"), l.clone(), span.clone()));
                later.inserted.push(Inserted {
                    field: Field::Listing,
                    key: n.key("listing"),
                    value: l.trim().to_owned(),
                    span: span.clone(),
                });
            }
            None => later.a_number_lacks_a_listing = true,
        }
        let ring = match n.strings(cx, "ring") {
            Some(list) if list.is_empty() => {
                cx.err(&n.span, n.key("ring"), "must name at least one agent");
                None
            }
            Some(list) => {
                let mut emails = Vec::new();
                let mut ok = true;
                for (e, span) in list {
                    let lower = e.trim().to_lowercase();
                    if !agent_emails.contains(&lower) {
                        cx.err(
                            &span,
                            n.key("ring"),
                            format!("`{e}` is not an agent of this file"),
                        );
                        ok = false;
                    } else if emails.contains(&lower) {
                        cx.err(&span, n.key("ring"), format!("`{e}` is listed twice"));
                        ok = false;
                    } else {
                        emails.push(lower);
                    }
                }
                ok.then_some(emails)
            }
            None => {
                if !n.table.iter().any(|(k, _)| k.get_ref().as_ref() == "ring") {
                    n.missing(cx, "ring");
                }
                None
            }
        };
        let ring_timeout_secs = n.int(cx, "ring_timeout_secs", 5..601).map(|(v, _)| v);
        let screen = n.bool(cx, "screen").unwrap_or(true);
        let missed_message = n.opt_string(cx, "missed_message");
        if let Some((m, span)) = &missed_message
            && m.chars().count() > 1000
        {
            cx.err(
                span,
                n.key("missed_message"),
                "is longer than 1,000 characters",
            );
        }
        let callback = match n.string(cx, "callback") {
            None => CallbackMode::Off,
            Some((s, span)) => CallbackMode::parse(&s).unwrap_or_else(|| {
                cx.err(
                    &span,
                    n.key("callback"),
                    format!("`{s}` must be \"off\", \"offer\" or \"auto\""),
                );
                CallbackMode::Off
            }),
        };
        let voicemail = n.bool(cx, "voicemail").unwrap_or(false);
        let routing = match n.string(cx, "routing") {
            None => Mode::All,
            Some((s, span)) => Mode::parse(&s).unwrap_or_else(|| {
                cx.err(
                    &span,
                    n.key("routing"),
                    format!("`{s}` must be \"all\", \"round_robin\" or \"first_to_claim\""),
                );
                Mode::All
            }),
        };
        let claim_timeout = n.duration_at(cx, "claim_timeout", 30, 86_400);
        let claim_timeout_secs = claim_timeout.as_ref().map(|(secs, _)| *secs);
        if let Some((_, span)) = &claim_timeout
            && routing != Mode::FirstToClaim
        {
            cx.err(
                span,
                n.key("claim_timeout"),
                "is only for routing = \"first_to_claim\"",
            );
        }
        // Routing must have someone to give a lead to (docs/routing.md): a round robin whose
        // agents all have weight 0 would hand every lead to the managers.
        if let Some(ring) = &ring
            && routing == Mode::RoundRobin
            && ring.iter().all(|e| {
                agents
                    .iter()
                    .find(|a| &a.email == e)
                    .is_some_and(|a| a.weight == 0)
            })
        {
            cx.err(
                &n.span,
                n.key("ring"),
                "names no agent who takes round-robin leads (every one has weight = 0)",
            );
        }
        n.finish(cx);
        if let (Some(number), Some((office, _)), Some(ring)) = (number, office, ring) {
            numbers.push(Number {
                number,
                office,
                listing: listing.map(|(l, _)| l.trim().to_owned()),
                ring,
                ring_timeout_secs: u32::try_from(ring_timeout_secs.unwrap_or(18)).unwrap_or(18),
                screen,
                missed_message: missed_message.map(|(m, _)| m.trim().to_owned()),
                callback,
                voicemail,
                routing,
                claim_timeout_secs: u32::try_from(claim_timeout_secs.unwrap_or(300)).unwrap_or(300),
                line,
            });
        }
    }
    numbers
}

/// `[text_back]`: required (it holds the template).
fn text_back(
    cx: &mut Cx,
    r: &mut TableReader<'_, '_>,
    root: &DeTable<'_>,
    later: &mut Later,
) -> Option<TextBack> {
    match sub_table(cx, r, "text_back") {
        None => {
            if !root
                .iter()
                .any(|(k, _)| k.get_ref().as_ref() == "text_back")
            {
                cx.problems.push(Problem {
                    line: 1,
                    key: "[text_back]".into(),
                    message: "is required (it holds the template)".into(),
                });
            }
            None
        }
        Some(mut t) => {
            let delay = t.int(cx, "delay_secs", 0..3601).map(|(v, _)| v);
            let caller_name_lookup = t.bool(cx, "caller_name_lookup").unwrap_or(false);
            let lookup_max_age = t.duration(cx, "lookup_max_age", 60, 365 * 86_400);
            let after_hours = match t.string(cx, "after_hours") {
                None => Some(AfterHours::Defer),
                Some((s, span)) => match s.as_str() {
                    "defer" => Some(AfterHours::Defer),
                    "send" => Some(AfterHours::Send),
                    _ => {
                        cx.err(
                            &span,
                            t.key("after_hours"),
                            format!("`{s}` must be \"defer\" or \"send\""),
                        );
                        None
                    }
                },
            };
            let list = automated_template(cx, &mut t, later);
            let list_es = spanish_template(cx, &mut t, later, true);
            t.finish(cx);
            match (list, after_hours) {
                (Some(list), Some(after_hours)) => Some(TextBack {
                    delay_secs: u32::try_from(delay.unwrap_or(20)).unwrap_or(20),
                    caller_name_lookup,
                    lookup_max_age_secs: lookup_max_age.unwrap_or(30 * 86_400),
                    after_hours,
                    templates: list.into_iter().map(|(s, _)| s).collect(),
                    templates_es: list_es,
                }),
                _ => None,
            }
        }
    }
}

/// `[lead_text]`: optional; its `template` (one or more variants, checked like the text-back's)
/// answers a lead from the website or a lead source (docs/leads.md). Without it, the
/// text-back's template does.
/// Its variants, and its Spanish ones (`template_es`).
type LeadText = (Option<Vec<String>>, Option<Vec<String>>);

fn lead_text(cx: &mut Cx, r: &mut TableReader<'_, '_>, later: &mut Later) -> LeadText {
    let Some(mut t) = sub_table(cx, r, "lead_text") else {
        return (None, None);
    };
    let list = automated_template(cx, &mut t, later);
    let list_es = spanish_template(cx, &mut t, later, true);
    t.finish(cx);
    (
        list.map(|l| l.into_iter().map(|(s, _)| s).collect()),
        list_es,
    )
}

/// A table's required `template` (a string or a list of variants) of an automated text: each
/// variant parses, and its links and words are checked with the rest of the file (R10, R11).
fn automated_template(
    cx: &mut Cx,
    t: &mut TableReader<'_, '_>,
    later: &mut Later,
) -> Option<Vec<(String, Range<usize>)>> {
    let present = t
        .table
        .iter()
        .any(|(k, _)| k.get_ref().as_ref() == "template");
    let list = t.templates(cx, "template");
    if list.is_none() && !present {
        t.missing(cx, "template");
    }
    let list = list.and_then(|l| templates(cx, t, "template", l));
    if let Some(list) = &list {
        later.linked_texts.extend(
            list.iter()
                .map(|(s, span)| (t.key("template"), s.clone(), span.clone())),
        );
        later.automated.extend(Automated::variants(
            t.key("template"),
            list,
            true,
            Language::En,
        ));
    }
    list
}

/// An optional `template_es`: the Spanish variants of a template, checked like the English
/// ones with the Spanish opt-out line (README.md "Not built yet").
fn spanish_template(
    cx: &mut Cx,
    t: &mut TableReader<'_, '_>,
    later: &mut Later,
    first_message: bool,
) -> Option<Vec<String>> {
    let list = t.templates(cx, "template_es")?;
    let list = templates(cx, t, "template_es", list)?;
    later.linked_texts.extend(
        list.iter()
            .map(|(s, span)| (t.key("template_es"), s.clone(), span.clone())),
    );
    later.automated.extend(Automated::variants(
        t.key("template_es"),
        &list,
        first_message,
        Language::Es,
    ));
    Some(list.into_iter().map(|(s, _)| s).collect())
}

/// `[[follow_ups]]`: in increasing order of `after`.
fn follow_ups(cx: &mut Cx, r: &mut TableReader<'_, '_>, later: &mut Later) -> Vec<FollowUp> {
    let mut follow_ups = Vec::new();
    let mut last_after: Option<u64> = None;
    for mut f in table_array(cx, r, "follow_ups") {
        let after_present = f.table.iter().any(|(k, _)| k.get_ref().as_ref() == "after");
        // At most 89 days: the text-back and its sequence stay inside the 3-month inquiry window.
        let after = f.duration_at(cx, "after", 1, 89 * 86_400);
        if after.is_none() && !after_present {
            f.missing(cx, "after");
        }
        if let (Some((a, span)), Some(prev)) = (&after, last_after)
            && *a <= prev
        {
            cx.err(
                span,
                f.key("after"),
                "follow-ups must be listed in increasing order of `after`",
            );
        }
        let after = after.map(|(secs, _)| secs);
        if after.is_some() {
            last_after = after;
        }
        let present = f
            .table
            .iter()
            .any(|(k, _)| k.get_ref().as_ref() == "template");
        let list = f.templates(cx, "template");
        if list.is_none() && !present {
            f.missing(cx, "template");
        }
        let list = list.and_then(|l| templates(cx, &f, "template", l));
        if let Some(list) = &list {
            later.linked_texts.extend(
                list.iter()
                    .map(|(s, span)| (f.key("template"), s.clone(), span.clone())),
            );
            later.automated.extend(Automated::variants(
                f.key("template"),
                list,
                false,
                Language::En,
            ));
        }
        let list_es = spanish_template(cx, &mut f, later, false);
        f.finish(cx);
        if let (Some(after_secs), Some(list)) = (after, list) {
            follow_ups.push(FollowUp {
                after_secs,
                templates: list.into_iter().map(|(s, _)| s).collect(),
                templates_es: list_es,
            });
        }
    }
    follow_ups
}

/// `[inbox]`: optional.
fn inbox(cx: &mut Cx, r: &mut TableReader<'_, '_>) -> Inbox {
    match sub_table(cx, r, "inbox") {
        None => Inbox {
            escalate_after_secs: 600,
        },
        Some(mut i) => {
            let secs = i.duration(cx, "escalate_after", 60, 86_400).unwrap_or(600);
            i.finish(cx);
            Inbox {
                escalate_after_secs: secs,
            }
        }
    }
}

/// `[[saved_replies]]`: optional; each a `name` (at most 40 characters, unique) and a `text`
/// (a template: its fields are filled when an agent picks it; links checked like the
/// templates').
fn saved_replies(cx: &mut Cx, r: &mut TableReader<'_, '_>, later: &mut Later) -> Vec<SavedReply> {
    let mut out: Vec<SavedReply> = Vec::new();
    for mut s in table_array(cx, r, "saved_replies") {
        let name = s.req_string(cx, "name").and_then(|(n, span)| {
            let n = n.trim().to_owned();
            if n.is_empty() || n.chars().count() > 40 {
                cx.err(&span, s.key("name"), "must be 1 to 40 characters");
                None
            } else if out.iter().any(|o| o.name == n) {
                cx.err(&span, s.key("name"), format!("`{n}` is used twice"));
                None
            } else {
                Some(n)
            }
        });
        let text = s.req_string(cx, "text").and_then(|(t, span)| {
            if t.chars().count() > 1000 {
                cx.err(&span, s.key("text"), "is longer than 1,000 characters");
                return None;
            }
            let list = templates(cx, &s, "text", vec![(t, span.clone())])?;
            later.linked_texts.extend(
                list.iter()
                    .map(|(t, span)| (s.key("text"), t.clone(), span.clone())),
            );
            list.into_iter().next().map(|(t, _)| t)
        });
        s.finish(cx);
        if let (Some(name), Some(text)) = (name, text) {
            out.push(SavedReply { name, text });
        }
    }
    out
}

/// `[[forms]]`: optional hosted lead forms (docs/leads.md). `slug` unique (`/f/{brokerage}/{slug}`),
/// `consent` the wording shown beside the unticked box (it names the brokerage and says how to
/// stop, like every text's R10), `number` one of this file's, `frame_origins` the sites that
/// may embed the form (origins: `https://host[:port]`).
fn forms(
    cx: &mut Cx,
    r: &mut TableReader<'_, '_>,
    numbers: &[Number],
    brokerage_name: Option<&str>,
) -> Vec<WebForm> {
    let mut out: Vec<WebForm> = Vec::new();
    for mut f in table_array(cx, r, "forms") {
        let slug = f.req_string(cx, "slug").and_then(|(v, span)| {
            if !is_slug(&v) {
                cx.err(
                    &span,
                    f.key("slug"),
                    format!("`{v}` must be lowercase letters, digits and dashes (at most 63)"),
                );
                None
            } else if out.iter().any(|o| o.slug == v) {
                cx.err(&span, f.key("slug"), format!("`{v}` is used twice"));
                None
            } else {
                Some(v)
            }
        });
        let title = f.string(cx, "title").and_then(|(v, span)| {
            let v = v.trim().to_owned();
            if v.is_empty() || v.chars().count() > 80 {
                cx.err(&span, f.key("title"), "must be 1 to 80 characters");
                None
            } else {
                Some(v)
            }
        });
        let consent = f.req_string(cx, "consent").and_then(|(v, span)| {
            let v = v.trim().to_owned();
            let lower = v.to_lowercase();
            let names = brokerage_name.is_none_or(|b| lower.contains(&b.to_lowercase()));
            if v.chars().count() < 20 || v.chars().count() > 1000 {
                cx.err(&span, f.key("consent"), "must be 20 to 1,000 characters");
                None
            } else if !names {
                cx.err(
                    &span,
                    f.key("consent"),
                    "must name the brokerage: the lead agrees to texts from someone",
                );
                None
            } else if !lower.contains("stop") {
                cx.err(
                    &span,
                    f.key("consent"),
                    "must say how to stop the texts (\"Reply STOP to opt out.\")",
                );
                None
            } else {
                Some(v)
            }
        });
        let number = f.string(cx, "number");
        let number = match number {
            None => None,
            Some((v, span)) => match PhoneNumber::parse_possible(&v) {
                Ok(p) if numbers.iter().any(|n| n.number == p) => Some(p),
                _ => {
                    cx.err(
                        &span,
                        f.key("number"),
                        format!("`{v}` is not one of this file's [[numbers]]"),
                    );
                    None
                }
            },
        };
        let listing = f.string(cx, "listing").map(|(v, _)| v.trim().to_owned());
        let mut frame_origins = Vec::new();
        if let Some(list) = f.strings(cx, "frame_origins") {
            for (o, span) in list {
                match origin(&o) {
                    Some(o) => frame_origins.push(o),
                    None => cx.err(
                        &span,
                        f.key("frame_origins"),
                        format!("`{o}` is not a site's origin (https://harbor.example, no path)"),
                    ),
                }
            }
        }
        f.finish(cx);
        if let (Some(slug), Some(consent)) = (slug, consent) {
            out.push(WebForm {
                slug,
                title,
                consent,
                number,
                listing,
                frame_origins,
            });
        }
    }
    out
}

/// An origin as a CSP `frame-ancestors` source: `https://host` or `https://host:port` (or
/// `http://localhost[:port]` for a site under development), lower-cased; nothing else.
fn origin(raw: &str) -> Option<String> {
    let o = raw.trim().to_ascii_lowercase();
    let (scheme, rest) = o.split_once("://")?;
    let host = rest.split(':').next().unwrap_or("");
    let port = rest.split_once(':').map(|(_, p)| p);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-']);
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let scheme_ok = scheme == "https" || (scheme == "http" && host == "localhost");
    (scheme_ok && host_ok && port_ok).then_some(o)
}

/// `[compliance]`: optional; `follow_ups` is how many `[[follow_ups]]` the file has.
fn compliance(
    cx: &mut Cx,
    r: &mut TableReader<'_, '_>,
    follow_ups: usize,
    later: &mut Later,
) -> Compliance {
    let mut compliance = Compliance::default();
    if let Some(mut c) = sub_table(cx, r, "compliance") {
        if let Some((v, _)) = c.int(cx, "cap_24h", 1..4) {
            compliance.cap_24h = u8::try_from(v).unwrap_or(3);
        }
        if let Some(b) = c.bool(cx, "carrier_answers_keywords") {
            compliance.carrier_answers_keywords = b;
        }
        if let Some(list) = c.strings(cx, "link_domains") {
            for (d, span) in list {
                let d = d.trim().to_ascii_lowercase();
                let valid = !d.is_empty()
                    && d.contains('.')
                    && d.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
                if !valid {
                    cx.err(
                        &span,
                        c.key("link_domains"),
                        format!("`{d}` is not a domain name (e.g. harbor.example)"),
                    );
                } else if links::SHORTENERS
                    .iter()
                    .any(|s| d == *s || d.ends_with(&format!(".{s}")))
                {
                    cx.err(
                        &span,
                        c.key("link_domains"),
                        format!("`{d}` is a public link shortener and cannot be allowed"),
                    );
                } else {
                    compliance.link_domains.push(d);
                }
            }
        }
        for which in Which::ALL {
            for language in Language::ALL {
                let key = which.key(*language);
                let Some((h, span)) = c.opt_string(cx, key) else {
                    continue;
                };
                later
                    .linked_texts
                    .push((c.key(key), h.clone(), span.clone()));
                later
                    .compliance_texts
                    .push((*which, *language, h.clone(), span));
                let text = Some(h.trim().to_owned());
                match (which, language) {
                    (Which::OptOut, Language::En) => compliance.opt_out_text = text,
                    (Which::OptOut, Language::Es) => compliance.opt_out_text_es = text,
                    (Which::OptIn, Language::En) => compliance.opt_in_text = text,
                    (Which::OptIn, Language::Es) => compliance.opt_in_text_es = text,
                    (Which::Help, Language::En) => compliance.help_text = text,
                    (Which::Help, Language::Es) => compliance.help_text_es = text,
                }
            }
        }
        let office_phone = c.string(cx, "office_phone");
        compliance.office_phone = phone(cx, &c, "office_phone", office_phone);
        let written_span = c.get("followups_need_written_consent").map(|v| v.span());
        if let Some(b) = c.bool(cx, "followups_need_written_consent") {
            compliance.followups_need_written_consent = b;
            // Only leads of the lead API bring written consent (docs/leads.md), so the rule
            // switches the follow-ups of every other caller off (docs/compliance.md R12): say so
            // rather than let them vanish quietly.
            if b && follow_ups > 0
                && let Some(span) = written_span
            {
                cx.warn(
                    &span,
                    c.key("followups_need_written_consent"),
                    format!(
                        "follow-ups will go only to callers whose written consent is on record (a lead sent through the lead API brings it): for every other caller all {} [[follow_ups]] step{} will be skipped (no_written_consent). Set it to false to send them to callers who called or texted in the last three months.",
                        follow_ups,
                        if follow_ups == 1 { "" } else { "s" }
                    ),
                );
            }
        }
        if let Some((v, _)) = c.int(cx, "daily_unique_recipients", 1..1001) {
            compliance.daily_unique_recipients = u32::try_from(v).unwrap_or(200);
        }
        c.finish(cx);
    }
    compliance
}

/// `[[blackouts]]`: days the gate sends nothing to some states.
fn blackouts(cx: &mut Cx, r: &mut TableReader<'_, '_>) -> Vec<Blackout> {
    let mut blackouts = Vec::new();
    for mut b in table_array(cx, r, "blackouts") {
        let states = match b.strings(cx, "states") {
            Some(list) if list.is_empty() => {
                cx.err(&b.span, b.key("states"), "must name at least one state");
                None
            }
            Some(list) => {
                let mut ok = true;
                for (s, span) in &list {
                    if !crate::domain::quiet_hours::is_known_state(s) {
                        cx.err(
                            span,
                            b.key("states"),
                            format!("`{s}` is not a USPS state code (e.g. LA)"),
                        );
                        ok = false;
                    }
                }
                ok.then(|| list.into_iter().map(|(s, _)| s).collect::<Vec<_>>())
            }
            None => {
                if !b
                    .table
                    .iter()
                    .any(|(k, _)| k.get_ref().as_ref() == "states")
                {
                    b.missing(cx, "states");
                }
                None
            }
        };
        let from = instant(cx, &mut b, "from");
        let until = instant(cx, &mut b, "until");
        if let (Some(f), Some(u)) = (from, until)
            && f >= u
        {
            cx.err(&b.span, b.key("until"), "must be after `from`");
        }
        let reason = b.req_string(cx, "reason");
        b.finish(cx);
        if let (Some(states), Some(from), Some(until), Some((reason, _))) =
            (states, from, until, reason)
        {
            blackouts.push(Blackout {
                states,
                from,
                until,
                reason: reason.trim().to_owned(),
            });
        }
    }
    blackouts
}

/// `[[webhooks]]` (docs/webhooks.md): `name` unique, `url` https (http only with
/// `allow_private_addresses`, for a receiver on this machine), `events` known names or `*`,
/// the secret named by `secret_env` or `secret_file` (never the secret itself).
fn webhooks(cx: &mut Cx, r: &mut TableReader<'_, '_>) -> Vec<Webhook> {
    use crate::domain::webhooks::{EVENTS, is_event};
    let mut out: Vec<Webhook> = Vec::new();
    for mut w in table_array(cx, r, "webhooks") {
        refuse_secrets(cx, &mut w, &["secret"]);
        let name = w.req_string(cx, "name").and_then(|(v, span)| {
            if !is_slug(&v) {
                cx.err(
                    &span,
                    w.key("name"),
                    format!("`{v}` must be lowercase letters, digits and dashes (at most 63)"),
                );
                None
            } else if out.iter().any(|o| o.name == v) {
                cx.err(&span, w.key("name"), format!("`{v}` is used twice"));
                None
            } else {
                Some(v)
            }
        });
        let allow_private_addresses = w.bool(cx, "allow_private_addresses").unwrap_or(false);
        let url = w.req_string(cx, "url").and_then(|(v, span)| {
            match subscriber_url(&v, allow_private_addresses) {
                Ok(u) => Some(u),
                Err(why) => {
                    cx.err(&span, w.key("url"), why);
                    None
                }
            }
        });
        let mut events: Vec<String> = Vec::new();
        match w.strings(cx, "events") {
            None => {
                if w.get("events").is_none() {
                    cx.err(
                        &w.span,
                        w.key("events"),
                        "is required: the events to send, or [\"*\"] for all",
                    );
                }
            }
            Some(list) => {
                for (e, span) in list {
                    if !is_event(&e) {
                        cx.err(
                            &span,
                            w.key("events"),
                            format!(
                                "`{e}` is not an event (the events are: {})",
                                EVENTS.join(", ")
                            ),
                        );
                    } else if e == "*" {
                        events.extend(EVENTS.iter().map(|e| (*e).to_owned()));
                    } else {
                        events.push(e);
                    }
                }
            }
        }
        events.sort();
        events.dedup();
        let secret = match secret_source(cx, &mut w, "secret_env", "secret_file") {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                cx.err(
                    &w.span,
                    w.key("secret_env"),
                    "is required (or secret_file): where the server reads the whsec_ signing secret",
                );
                None
            }
            Err(()) => None,
        };
        w.finish(cx);
        if let (Some(name), Some(url), Some(secret), false) = (name, url, secret, events.is_empty())
        {
            out.push(Webhook {
                name,
                url,
                events,
                secret,
                allow_private_addresses,
            });
        }
    }
    out
}

/// `[follow_up_boss]` (docs/webhooks.md "Follow Up Boss"): the API key by `api_key_env` or
/// `api_key_file`, the registered `system` and its key, an optional `url`.
fn follow_up_boss(cx: &mut Cx, r: &mut TableReader<'_, '_>) -> Option<FollowUpBoss> {
    let mut t = sub_table(cx, r, "follow_up_boss")?;
    refuse_secrets(cx, &mut t, &["api_key", "system_key"]);
    let api_key = match secret_source(cx, &mut t, "api_key_env", "api_key_file") {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            cx.err(
                &t.span,
                t.key("api_key_env"),
                "is required (or api_key_file): where the server reads the Follow Up Boss API key",
            );
            None
        }
        Err(()) => None,
    };
    let system_key = secret_source(cx, &mut t, "system_key_env", "system_key_file").ok()?;
    let system = match t.string(cx, "system") {
        None => "textback".to_owned(),
        Some((v, span)) => {
            let v = v.trim().to_owned();
            if v.is_empty()
                || v.len() > 64
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_. ".contains(&b))
            {
                cx.err(
                    &span,
                    t.key("system"),
                    "must be 1 to 64 letters, digits, spaces, dots, dashes or underscores",
                );
            }
            v
        }
    };
    let allow_private_addresses = t.bool(cx, "allow_private_addresses").unwrap_or(false);
    let url = match t.string(cx, "url") {
        None => Some("https://api.followupboss.com".to_owned()),
        Some((v, span)) => match subscriber_url(&v, allow_private_addresses) {
            Ok(u) => Some(u.trim_end_matches('/').to_owned()),
            Err(why) => {
                cx.err(&span, t.key("url"), why);
                None
            }
        },
    };
    t.finish(cx);
    Some(FollowUpBoss {
        api_key: api_key?,
        system,
        system_key,
        url: url?,
        allow_private_addresses,
    })
}

/// A receiver's URL: absolute, `https` (or `http` when private addresses are allowed: a
/// receiver on this machine), no user or password, at most 2,000 characters.
fn subscriber_url(raw: &str, allow_private: bool) -> Result<String, String> {
    let v = raw.trim();
    if v.len() > 2000 {
        return Err("is longer than 2,000 characters".into());
    }
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err(format!(
            "`{v}` is not an absolute URL (https://crm.example/hooks)"
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not carry a user or password: the signature authenticates us".into());
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            authority
        }
    });
    if host.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{v}` is not a URL textback can post to"));
    }
    if !allow_private {
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let private_ip = bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| !crate::domain::webhooks::is_public(ip));
        if private_ip || bare == "localhost" || bare.ends_with(".localhost") {
            return Err(format!(
                "`{host}` is this machine or a private network: refused unless allow_private_addresses = true"
            ));
        }
    }
    match scheme.as_str() {
        "https" => Ok(v.to_owned()),
        "http" if allow_private => Ok(v.to_owned()),
        "http" => Err("must be https (http only with allow_private_addresses = true, for a receiver on this machine)".into()),
        _ => Err(format!("`{scheme}` is not http or https")),
    }
}
