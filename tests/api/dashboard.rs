//! The recovery dashboard (issue 6 §5): its numbers equal what the test made happen, by
//! period, number, office and agent; the CSV holds the same rows; the admins' banner.

use chrono::Duration;

use crate::helpers::*;

const MAIN_ST: &str = "+15555550100"; // Downtown, Sam first
const ELM_ST: &str = "+15555550110"; // Waterfront, Jo

/// `data-stage='LABEL'`'s number on the page.
fn stage(page: &str, label: &str) -> i64 {
    let key = format!("data-stage=\"{label}\">");
    let at = page
        .find(&key)
        .unwrap_or_else(|| panic!("{label} not on the page"))
        + key.len();
    page[at..page[at..].find('<').map_or(at, |e| at + e)]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{label}: not a number"))
}

fn kpi(page: &str, name: &str) -> String {
    let key = format!("data-kpi=\"{name}\">");
    let at = page
        .find(&key)
        .unwrap_or_else(|| panic!("{name} not on the page"))
        + key.len();
    page[at..page[at..].find('<').map_or(at, |e| at + e)]
        .trim()
        .to_owned()
}

/// A morning on both offices' numbers:
/// * Main St: 5 missed callers: 3 texted (one replies at +1 min and Sam answers 4 min later,
///   one texts STOP), 1 landline, 1 reconnects (answered); one caller misses twice (one lead);
/// * Elm St: 2 missed callers: 1 texted and replies (unanswered), 1 already opted out (DNC).
async fn morning(app: &TestApp) {
    let main = [
        "+16175550201",
        "+16175550202",
        "+16175550203",
        "+16175550204",
        "+16175550205",
    ];
    let elm = ["+16175550301", "+16175550302"];
    app.fake.set_line_type(main[3], "landline");
    {
        let mut conn = app.db.pool.acquire().await.expect("conn");
        let harbor = textback::store::brokerages::by_slug(&mut conn, "harbor")
            .await
            .expect("b")
            .expect("harbor");
        let evidence = textback::store::suppressions::Evidence {
            source: "import",
            who: "import:test.csv",
            how: None,
            evidence: None,
            raw_text: None,
            reason: Some("asked by phone"),
        };
        textback::store::suppressions::suppress(
            &mut conn,
            harbor,
            elm[1],
            &evidence,
            textback::clock::Clock::now(app.clock.as_ref()),
        )
        .await
        .expect("suppress");
    }
    for lead in main {
        app.missed_call(lead, MAIN_ST).await;
    }
    app.missed_call(main[0], MAIN_ST).await; // the same episode: re-armed, one lead
    app.answered_call(main[4], MAIN_ST).await;
    for lead in elm {
        app.missed_call(lead, ELM_ST).await;
    }
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    app.clock.advance(Duration::minutes(1));
    app.text_in(main[0], MAIN_ST, "Yes! Can I see it today?")
        .await;
    app.text_in(main[1], MAIN_ST, "STOP").await;
    app.text_in(elm[0], ELM_ST, "Is the Elm St house still for sale?")
        .await;
    app.drain().await;
    app.clock.advance(Duration::minutes(4));
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let id: i64 = sqlx::query_scalar(
        "select c.conversation_id from conversation c join contact ct using (contact_id) where ct.phone = $1",
    )
    .bind(main[0])
    .fetch_one(&app.db.pool)
    .await
    .expect("conversation");
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/reply"), &[("body", "Sure, 4 pm?")])
            .await
            .status,
        303
    );
    app.drain().await;
}

#[tokio::test]
async fn the_funnel_equals_what_happened() {
    let app = spawn_app().await;
    morning(&app).await;
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    let page = riley.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let p = &page.body;
    assert_eq!(
        stage(p, "Missed calls"),
        8,
        "every miss, the repeat included"
    );
    assert_eq!(
        stage(p, "Missed-call leads"),
        7,
        "one per caller and episode"
    );
    assert_eq!(
        stage(p, "Texted back"),
        4,
        "three on Main St, one on Elm St"
    );
    assert_eq!(stage(p, "Replied"), 2, "STOP is not a reply");
    assert_eq!(stage(p, "First human reply"), 1);
    assert_eq!(stage(p, "Call connected"), 1);
    assert!(
        p.contains("Landline: callback task <strong>1</strong>"),
        "{p}"
    );
    assert!(p.contains("Caller reconnected first <strong>1</strong>"));
    assert!(p.contains("Held back by the rules <strong>1</strong>"));
    assert_eq!(kpi(p, "median-text"), "20 s");
    assert_eq!(kpi(p, "median-reply"), "4 min");
    assert_eq!(kpi(p, "waiting"), "1");
    // Delivered: the fake delivers every text it accepts (text-backs, the reply).
    assert_eq!(kpi(p, "delivery"), "100 %");
    assert_eq!(kpi(p, "opt-out"), "25 %", "1 of the 4 texted opted out");
    assert!(
        p.contains("<td>opted out</td><td class=\"num\">1</td>"),
        "suppressed by reason"
    );
    // One variant: 3 sent... on both numbers: 4 sent, 2 replied.
    assert!(
        p.contains("<td class=\"num\">4</td><td class=\"num\">2</td><td class=\"num\">50 %</td>"),
        "{p}"
    );

    // The same numbers for Downtown alone, as its manager sees them.
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let p = morgan.get("/dashboard").await.body;
    assert_eq!(stage(&p, "Missed calls"), 6);
    assert_eq!(stage(&p, "Missed-call leads"), 5);
    assert_eq!(stage(&p, "Texted back"), 3);
    assert_eq!(stage(&p, "Replied"), 1);
    assert!(
        !p.contains("42 Elm St"),
        "another office's number is not listed"
    );

    // By agent: Sam's conversations (Main St) and Jo's (Elm St).
    let jo: i64 =
        sqlx::query_scalar("select agent_id from agent where email = 'jo@harbor.example'")
            .fetch_one(&app.db.pool)
            .await
            .expect("jo");
    let p = riley.get(&format!("/dashboard?agent={jo}")).await.body;
    assert_eq!(stage(&p, "Missed-call leads"), 2);
    assert_eq!(stage(&p, "Texted back"), 1);
    assert_eq!(kpi(&p, "waiting"), "1");
    // The period links keep the agent chosen.
    assert!(
        p.contains(&format!("href=\"/dashboard?period=7d&#38;agent={jo}\"")),
        "period links keep the filter: {p}"
    );

    // Tomorrow, "today" is empty and "7 days" still holds the morning.
    app.clock.advance(Duration::days(1));
    let mut riley = app.log_in("riley@harbor.example", PASSWORD).await;
    let p = riley.get("/dashboard?period=today").await.body;
    assert_eq!(stage(&p, "Missed calls"), 0);
    let p = riley.get("/dashboard?period=7d").await.body;
    assert_eq!(stage(&p, "Missed calls"), 8);
}

#[tokio::test]
async fn the_export_holds_the_same_rows() {
    let app = spawn_app().await;
    morning(&app).await;
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    let r = riley.get("/dashboard/export.csv?period=today").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "text/csv; charset=utf-8");
    assert!(
        r.headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment; filename=\"textback-funnel-today.csv\""))
    );
    let mut reader = csv::Reader::from_reader(r.body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header[2..7],
        ["group", "name", "missed_calls", "leads", "texted"]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect();
    let find = |group: &str, name: &str| -> Vec<String> {
        rows.iter()
            .find(|r| r[2] == group && r[3] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{group} {name} in {rows:?}"))
    };
    let all = find("all", "All");
    assert_eq!(
        all[4..14],
        ["8", "7", "4", "1", "1", "1", "0", "2", "1", "1"]
    );
    assert_eq!(all[14], "20");
    assert_eq!(all[15], "240");
    let main = find("number", "(555) 555-0100 (123 Main St)");
    assert_eq!(main[4..7], ["6", "5", "3"]);
    let downtown = find("office", "Downtown");
    assert_eq!(downtown[4..7], ["6", "5", "3"]);
    // By agent the funnel starts at the leads: a miss has no agent until it is one.
    let jo = find("agent", "Jo Alvarez");
    assert_eq!(jo[4..7], ["", "2", "1"]);
    // Aggregates only: no phone number of a lead.
    assert!(!r.body.contains("617"), "{}", r.body);
}

#[tokio::test]
async fn configuration_alerts_show_as_a_banner_until_an_admin_dismisses_them() {
    let app = spawn_app().await;
    app.fake.inject(
        textback_fake_twilio::Fault::Status {
            http: 400,
            code: Some(21408),
            recorded: false,
            retry_after: None,
        },
        textback_fake_twilio::Scope::Next(1),
    );
    app.missed_call("+16175550401", MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    // The admin was texted, and the dashboard says it.
    assert_eq!(app.alerts_to("+15555550104").len(), 1);
    // The banner is the admins': a manager's dashboard is their office's.
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let p = morgan.get("/dashboard").await.body;
    assert!(!p.contains("21408") && !p.contains("/dismiss"), "{p}");
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    let p = riley.get("/dashboard").await.body;
    let id: i64 =
        sqlx::query_scalar("select alert_id from alert where reason = 'carrier_configuration'")
            .fetch_one(&app.db.pool)
            .await
            .expect("alert");
    assert!(p.contains(&format!("/dashboard/alerts/{id}/dismiss")));
    assert_eq!(
        riley
            .post(&format!("/dashboard/alerts/{id}/dismiss"), &[])
            .await
            .status,
        303
    );
    assert!(!riley.get("/dashboard").await.body.contains("21408"));
    let who: Option<String> =
        sqlx::query_scalar("select dismissed_by from alert where alert_id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .expect("who");
    assert_eq!(who.as_deref(), Some("riley@harbor.example"));
    // Twice is not found.
    riley.get("/dashboard").await;
    assert_eq!(
        riley
            .post(&format!("/dashboard/alerts/{id}/dismiss"), &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn managers_and_admins_export_the_do_not_text_list() {
    let app = spawn_app().await;
    app.text_in("+16175550501", MAIN_ST, "STOP").await;
    app.drain().await;
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let r = morgan.get("/dashboard/suppressions.csv").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "text/csv; charset=utf-8");
    let mut lines = r.body.lines();
    assert_eq!(lines.next(), Some("phone,reason,source,at,who"));
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with("+16175550501,")
            && row.contains(",carrier_keyword,")
            && row.ends_with(",contact"),
        "{row}"
    );
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    assert_eq!(sam.get("/dashboard/suppressions.csv").await.status, 403);
}

/// Issue 15 §5: with `followups_need_written_consent = true` a caller without written consent
/// on record (docs/leads.md) gets no follow-up. The dashboard says so beside "Texts not sent",
/// before any follow-up was due, and counts each skipped one by its reason in words.
#[tokio::test]
async fn written_consent_switching_follow_ups_off_is_shown() {
    let setup = DEMO.replace(
        "[compliance]\n",
        "[compliance]\nfollowups_need_written_consent = true\n",
    );
    assert_ne!(setup, DEMO);
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await;
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let page = morgan.get("/dashboard").await;
    assert!(
        page.body
            .contains("Follow-ups go only to callers whose written consent is on record")
            && page.body.contains("followups_need_written_consent"),
        "{}",
        page.body
    );
    app.missed_call("+16175550123", MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.run_until_quiet(Duration::days(2)).await;
    app.clock.advance(Duration::minutes(1));
    // (A new login: two days idle ended the first session.)
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let page = morgan.get("/dashboard?period=7d").await;
    assert!(
        page.body
            .contains("follow-up needs written consent, and none is on record"),
        "{}",
        page.body
    );
    // Without the rule, no such notice.
    let plain = spawn_app().await;
    let mut morgan = plain.person("harbor", "morgan@harbor.example").await;
    assert!(
        !morgan
            .get("/dashboard")
            .await
            .body
            .contains("No follow-up is sent")
    );
}

/// Issue 15 §15: the 7- and 30-day views show leads by day beside the period before; the
/// hour chart's title says what it plots; the variant table shows the text as a lead reads it
/// rather than template syntax; a 0 % is not shown as good news; the CSV's times are in the
/// brokerage's zone with the offset.
#[tokio::test]
async fn the_dashboard_trends_by_day_and_speaks_plainly() {
    let app = spawn_app().await;
    // A lead 8 days ago (the previous 7 days) and two today.
    app.clock.advance(-Duration::days(8));
    app.missed_call("+16175550401", MAIN_ST).await;
    app.clock.advance(Duration::days(8));
    app.missed_call("+16175550402", MAIN_ST).await;
    app.missed_call("+16175550403", ELM_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    let page = riley.get("/dashboard?period=7d").await.body;
    assert!(
        page.contains("Missed-call leads by day: these 7 days beside the 7 before"),
        "{page}"
    );
    assert!(
        page.contains("<th scope=\"row\">Jun 12</th><td>2</td><td>2</td><td>0</td>"),
        "today: 2 leads, 2 texted; 7 days earlier none: {page}"
    );
    assert!(
        page.contains("<th scope=\"row\">Jun 11</th><td>0</td><td>0</td><td>1</td>"),
        "the day before: none, and the lead of 8 days ago beside it: {page}"
    );
    assert!(
        page.contains("Missed-call leads and text-backs by hour of the call (Eastern time)"),
        "{page}"
    );
    assert!(
        page.contains("Hi [first name], this is [agent] at Harbor Realty."),
        "{page}"
    );
    assert!(!page.contains("{first_name|there}"), "{page}");
    assert!(
        page.contains("<span class=\"pct zero\">0 % of those texted</span>"),
        "a 0 % is not green: {page}"
    );
    assert!(
        !riley.get("/dashboard").await.body.contains("by day:"),
        "no trend for today"
    );
    let csv = riley.get("/dashboard/export.csv?period=7d").await.body;
    let row = csv.lines().nth(1).expect("a row");
    assert!(
        row.starts_with("2026-06-06T00:00:00-04:00,2026-06-12T10:00:20-04:00,"),
        "{row}"
    );
}

// Calls answered and missed, speed to lead, claims and reassignments (issue 18 §6).

const OAK_AVE: &str = "+15555550120"; // Downtown, rings Sam and Ava, no screen

/// The demo with a third number that rings Sam and Ava at once without the screen (Elm St
/// screens too, by default, but rings Jo alone).
fn with_oak_ave() -> String {
    let setup = DEMO.replace(
        "[text_back]",
        "[[numbers]]\nnumber = \"+15555550120\"\noffice = \"downtown\"\nlisting = \"9 Oak Ave\"\nring = [\"sam@harbor.example\", \"ava@harbor.example\"]\nscreen = false\n\n[text_back]",
    );
    assert_ne!(setup, DEMO);
    setup
}

/// The part of the page from the heading with `id` to the end of its section.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("{id} not on the page: {page}"));
    let end = page[at..].find("</section>").map_or(page.len(), |e| at + e);
    &page[at..end]
}

/// The cells after the row headed `name` in `part` (None: no such row).
fn row(part: &str, name: &str) -> Option<Vec<String>> {
    let key = format!("<th scope=\"row\">{name}</th>");
    let at = part.find(&key)? + key.len();
    let end = part[at..].find("</tr>").map_or(part.len(), |e| at + e);
    Some(
        part[at..end]
            .split("</td>")
            .filter_map(|c| c.rsplit_once('>').map(|(_, v)| v.trim().to_owned()))
            .filter(|c| !c.is_empty())
            .collect(),
    )
}

fn cells(part: &str, name: &str) -> Vec<String> {
    row(part, name).unwrap_or_else(|| panic!("no row {name} in {part}"))
}

async fn agent_id(app: &TestApp, email: &str) -> i64 {
    sqlx::query_scalar("select agent_id from agent where email = $1")
        .bind(email)
        .fetch_one(&app.db.pool)
        .await
        .expect("agent")
}

async fn conversation_of(app: &TestApp, phone: &str) -> i64 {
    sqlx::query_scalar(
        "select c.conversation_id from conversation c join contact ct using (contact_id) where ct.phone = $1",
    )
    .bind(phone)
    .fetch_one(&app.db.pool)
    .await
    .expect("conversation")
}

/// A call to a screening number that the agent at `agent_phone` takes by pressing 1.
async fn screened_call(app: &TestApp, from: &str, to: &str, agent_phone: &str) {
    let parent = new_sid("CA");
    let r = app
        .post_signed(
            "/twilio/voice",
            &TestApp::incoming_params(&parent, from, to),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let leg = vec![
        ("AccountSid".to_owned(), ACCOUNT_SID.to_owned()),
        ("CallSid".to_owned(), new_sid("CA")),
        ("ParentCallSid".to_owned(), parent.clone()),
        ("CallStatus".to_owned(), "in-progress".to_owned()),
        ("Direction".to_owned(), "outbound-dial".to_owned()),
        ("From".to_owned(), from.to_owned()),
        ("To".to_owned(), agent_phone.to_owned()),
        ("Digits".to_owned(), "1".to_owned()),
    ];
    let r = app.post_signed("/twilio/voice/screen/answer", &leg).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post_signed(
            "/twilio/voice/dial",
            &TestApp::dial_params(&parent, from, to, "completed", "true"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Answered ÷ all calls per number (the missed-call rate first), and per agent: answered by
/// them ÷ calls that rang them, where who answered is known (the screen, or one agent rung).
/// A call that rang Sam and Ava without the screen counts for its number only.
#[tokio::test]
async fn the_missed_call_rate_comes_first_by_number_and_by_agent() {
    let app = spawn_app_with(AppOptions {
        setup: Some(with_oak_ave()),
        ..AppOptions::default()
    })
    .await;
    // Main St (screens, rings Sam and Ava): Ava takes one, one is missed.
    screened_call(&app, "+16175550601", MAIN_ST, "+15555550102").await;
    app.missed_call("+16175550602", MAIN_ST).await;
    // Elm St (rings Jo alone): one answered, two missed.
    app.answered_call("+16175550603", ELM_ST).await;
    app.missed_call("+16175550604", ELM_ST).await;
    app.missed_call("+16175550605", ELM_ST).await;
    // Oak Ave (rings Sam and Ava, no screen): one answered by one of them, one missed.
    app.answered_call("+16175550606", OAK_AVE).await;
    app.missed_call("+16175550607", OAK_AVE).await;
    // (A period ends now: what happens at the very instant of the page is not in it yet.)
    app.clock.advance(Duration::seconds(1));

    let mut riley = app.person("harbor", "riley@harbor.example").await;
    let page = riley.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let p = &page.body;
    assert_eq!(kpi(p, "missed-rate"), "57 %", "4 of 7 calls missed");
    assert_eq!(kpi(p, "answer-rate"), "43 %");
    assert!(p.contains("of calls missed (4 of 7)"), "{p}");
    // The same misses as the funnel's first stage.
    assert_eq!(stage(p, "Missed calls"), 4);
    // The rate section comes before the funnel's tables.
    assert!(p.find("id=\"calls-h\"") < p.find("Reply rate by text-back variant"));
    let calls = section(p, "calls-h");
    // Number: calls, missed, missed rate, answered, answer rate.
    assert_eq!(
        cells(calls, "(555) 555-0110 (42 Elm St)"),
        ["3", "2", "67 %", "1", "33 %"]
    );
    assert_eq!(
        cells(calls, "(555) 555-0100 (123 Main St)"),
        ["2", "1", "50 %", "1", "50 %"]
    );
    assert_eq!(
        cells(calls, "(555) 555-0120 (9 Oak Ave)"),
        ["2", "1", "50 %", "1", "50 %"]
    );
    let agents = section(p, "agent-calls-h");
    // Rang them, answered, rate: Oak Ave's two calls are in no agent's row.
    assert_eq!(cells(agents, "Ava Chen"), ["2", "1", "50 %"]);
    assert_eq!(cells(agents, "Sam Rivera"), ["2", "0", "0 %"]);
    assert_eq!(cells(agents, "Jo Alvarez"), ["3", "1", "33 %"]);
    assert_eq!(kpi(p, "unknown-answerer"), "2");
    assert!(
        agents.contains("counts in its number's rate only"),
        "{agents}"
    );

    // Morgan sees Downtown's numbers and agents only.
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let p = morgan.get("/dashboard").await.body;
    assert_eq!(kpi(&p, "missed-rate"), "50 %", "2 of Downtown's 4 calls");
    let calls = section(&p, "calls-h");
    assert!(!calls.contains("42 Elm St"), "{calls}");
    assert_eq!(
        cells(calls, "(555) 555-0100 (123 Main St)"),
        ["2", "1", "50 %", "1", "50 %"]
    );
    let agents = section(&p, "agent-calls-h");
    assert_eq!(row(agents, "Jo Alvarez"), None);
    assert_eq!(cells(agents, "Ava Chen"), ["2", "1", "50 %"]);
    assert_eq!(kpi(&p, "unknown-answerer"), "2");

    // An agent's slice: the calls that rang Jo.
    let jo = agent_id(&app, "jo@harbor.example").await;
    let p = riley.get(&format!("/dashboard?agent={jo}")).await.body;
    assert_eq!(kpi(&p, "missed-rate"), "67 %");
    assert_eq!(
        row(section(&p, "calls-h"), "(555) 555-0100 (123 Main St)"),
        None
    );
    assert_eq!(
        cells(section(&p, "agent-calls-h"), "Jo Alvarez"),
        ["3", "1", "33 %"]
    );

    // Tomorrow, today has no calls; the 7 days keep them.
    app.clock.advance(Duration::days(1));
    let mut riley = app.log_in("riley@harbor.example", PASSWORD).await;
    let p = riley.get("/dashboard").await.body;
    assert_eq!(kpi(&p, "missed-rate"), "–");
    assert!(section(&p, "calls-h").contains("No calls in this period."));
    let p = riley.get("/dashboard?period=7d").await.body;
    assert_eq!(kpi(&p, "missed-rate"), "57 %");
}

/// Speed to lead: from the first alert texted to an agent about a lead (since they last
/// answered it) to their next answer. Sam is alerted twice before answering (the wait counts
/// from the first), then once more; Jo never answers and the escalation hands the lead to the
/// admin (Waterfront has no manager), who answers it.
#[tokio::test]
async fn speed_to_lead_runs_from_the_alert_to_the_agents_answer() {
    let app = spawn_app().await;
    let (l1, l2) = ("+16175550701", "+16175550702");
    app.missed_call(l1, MAIN_ST).await; // Sam's
    app.missed_call(l2, ELM_ST).await; // Jo's
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    app.clock.advance(Duration::seconds(40));
    // t1: both leads reply; Sam and Jo are alerted.
    app.text_in(l1, MAIN_ST, "Is it still available?").await;
    app.text_in(l2, ELM_ST, "Can I see it?").await;
    app.drain().await;
    // Six minutes on, a second alert to Sam (past the rate limit's five minutes).
    app.clock.advance(Duration::minutes(6));
    app.text_in(l1, MAIN_ST, "Hello?").await;
    app.drain().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let c1 = conversation_of(&app, l1).await;
    app.clock.advance(Duration::minutes(2));
    sam.get(&format!("/inbox/c/{c1}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{c1}/reply"), &[("body", "Yes, 4 pm?")])
            .await
            .status,
        303
    );
    app.drain().await;
    // t1 + 10 min: Jo's lead escalates to Riley (and the alert about it goes to Riley).
    app.clock.advance(Duration::minutes(2));
    app.drain().await;
    // t1 + 12 min: the lead writes again; Sam answers a minute later.
    app.clock.advance(Duration::minutes(2));
    app.text_in(l1, MAIN_ST, "4 pm works").await;
    app.drain().await;
    app.clock.advance(Duration::minutes(1));
    sam.get(&format!("/inbox/c/{c1}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{c1}/reply"), &[("body", "See you then")])
            .await
            .status,
        303
    );
    app.drain().await;
    // t1 + 15 min: Riley answers Jo's lead, five minutes after the escalation's alert.
    app.clock.advance(Duration::minutes(2));
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    let c2 = conversation_of(&app, l2).await;
    riley.get(&format!("/inbox/c/{c2}")).await;
    assert_eq!(
        riley
            .post(
                &format!("/inbox/c/{c2}/reply"),
                &[("body", "Riley here: yes!")]
            )
            .await
            .status,
        303
    );
    app.drain().await;

    let page = riley.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let speed = section(&page.body, "speed-h");
    // Alerted, answered, median, 90 %: Sam's waits are 8 min and 1 min.
    assert_eq!(
        cells(speed, "Sam Rivera"),
        ["2", "2", "4 min 30 s", "7 min 18 s"]
    );
    assert_eq!(cells(speed, "Jo Alvarez"), ["1", "0", "–", "–"]);
    assert_eq!(cells(speed, "Riley Park"), ["1", "1", "5 min", "5 min"]);
    assert!(
        speed.contains("From the first alert texted to the agent about a lead"),
        "{speed}"
    );
    // Morgan's office: Sam's lead only (Riley's alert was about Elm St's).
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let speed_page = morgan.get("/dashboard").await.body;
    let speed = section(&speed_page, "speed-h");
    assert_eq!(
        cells(speed, "Sam Rivera"),
        ["2", "2", "4 min 30 s", "7 min 18 s"]
    );
    assert_eq!(row(speed, "Jo Alvarez"), None);
    assert_eq!(row(speed, "Riley Park"), None);
}

/// First to claim on Main St (two leads offered to Sam and Ava: Ava claims one after two
/// minutes, nobody claims the other, which goes to Sam in turn), and the escalation's moves:
/// Ava's silent lead to Sam, Jo's to the admin (Waterfront has no manager).
#[tokio::test]
async fn claims_and_reassignments_by_agent() {
    let setup = DEMO.replace(
        "ring_timeout_secs = 18\n",
        "ring_timeout_secs = 18\nrouting = \"first_to_claim\"\nclaim_timeout = \"5m\"\n",
    );
    assert_ne!(setup, DEMO);
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await;
    let (l1, l2, l3) = ("+16175550801", "+16175550802", "+16175550803");
    app.missed_call(l1, MAIN_ST).await;
    app.missed_call(l2, MAIN_ST).await;
    app.missed_call(l3, ELM_ST).await; // routed to Jo
    app.drain().await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    // t0 + 1 min: Jo's lead replies (it escalates at t0 + 11 min).
    app.clock.advance(Duration::seconds(40));
    app.text_in(l3, ELM_ST, "Is Elm St open on Sunday?").await;
    app.drain().await;
    // t0 + 2 min: Ava claims the first lead; Sam is too late.
    app.clock.advance(Duration::minutes(1));
    let c1 = conversation_of(&app, l1).await;
    let mut ava = app.person("harbor", "ava@harbor.example").await;
    ava.get(&format!("/inbox/c/{c1}")).await;
    assert_eq!(
        ava.post(&format!("/inbox/c/{c1}/claim"), &[]).await.status,
        303
    );
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{c1}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{c1}/claim"), &[]).await.status,
        409
    );
    app.drain().await;
    // t0 + 3 min: Ava's lead replies (it escalates at t0 + 13 min).
    app.clock.advance(Duration::minutes(1));
    app.text_in(l1, MAIN_ST, "When can I see it?").await;
    app.drain().await;
    // t0 + 5 min: the second offer times out and goes to Sam in turn.
    app.clock.advance(Duration::minutes(2));
    app.drain().await;
    // t0 + 13 min: both escalations have run.
    app.clock.advance(Duration::minutes(8));
    app.drain().await;
    app.clock.advance(Duration::seconds(1));

    let mut riley = app.person("harbor", "riley@harbor.example").await;
    let page = riley.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let p = &page.body;
    let routing = section(p, "routing-h");
    // Routed, offered, claimed, time to claim, moved away, moved to them.
    assert_eq!(
        cells(routing, "Ava Chen"),
        ["0", "2", "1", "2 min", "1", "0"]
    );
    assert_eq!(cells(routing, "Sam Rivera"), ["1", "2", "0", "–", "0", "1"]);
    assert_eq!(cells(routing, "Jo Alvarez"), ["1", "0", "0", "–", "1", "0"]);
    assert_eq!(cells(routing, "Riley Park"), ["0", "0", "0", "–", "0", "1"]);
    assert_eq!(kpi(p, "timed-out"), "1");
    assert_eq!(kpi(p, "to-managers"), "1");
    // Speed to lead: the offer counts for Ava, who claimed it (unanswered); not for Sam.
    let speed = section(p, "speed-h");
    assert_eq!(cells(speed, "Ava Chen"), ["1", "0", "–", "–"]);

    // Morgan: Main St's leads only.
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let p = morgan.get("/dashboard").await.body;
    let routing = section(&p, "routing-h");
    assert_eq!(
        cells(routing, "Ava Chen"),
        ["0", "2", "1", "2 min", "1", "0"]
    );
    assert_eq!(row(routing, "Jo Alvarez"), None);
    assert_eq!(row(routing, "Riley Park"), None);
    assert_eq!(kpi(&p, "timed-out"), "1");
    assert_eq!(kpi(&p, "to-managers"), "0");

    // Ava's slice: her row, and the offer nobody claimed that she was offered.
    let ava_id = agent_id(&app, "ava@harbor.example").await;
    let p = riley.get(&format!("/dashboard?agent={ava_id}")).await.body;
    let routing = section(&p, "routing-h");
    assert_eq!(row(routing, "Sam Rivera"), None);
    assert_eq!(
        cells(routing, "Ava Chen"),
        ["0", "2", "1", "2 min", "1", "0"]
    );
    assert_eq!(kpi(&p, "timed-out"), "1");
    assert_eq!(kpi(&p, "to-managers"), "0");
}
