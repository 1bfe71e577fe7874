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

/// Issue 15 §5: with `followups_need_written_consent = true` every follow-up is skipped
/// (written consent cannot be recorded yet). The dashboard says so beside "Texts not sent",
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
        page.body.contains("No follow-up is sent")
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
            .contains("follow-up needs written consent, which cannot be recorded yet"),
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
