//! The availability switch on a person's own page, `/me` (issue 18 §2): available, away, or on
//! vacation until a date, stored for the signed-in person only, shown in plain words, refused
//! with a 400 (nothing stored) for a bad state or date and with a 403 without the page's token;
//! and routing skips an agent who switched away.

use chrono::Duration;

use crate::helpers::*;

const MAIN_ST: &str = "+15555550100"; // Downtown; rings Sam then Ava
const SAM_PHONE: &str = "+15555550101";
const AVA_PHONE: &str = "+15555550102";

/// Every agent's availability as stored: (email, availability, back_on, availability_at).
async fn states(app: &TestApp) -> Vec<(String, String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "select email, availability, back_on::text, availability_at::text from agent order by email",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("agents")
}

async fn state_of(app: &TestApp, email: &str) -> (String, Option<String>) {
    sqlx::query_as("select availability, back_on::text from agent where email = $1")
        .bind(email)
        .fetch_one(&app.db.pool)
        .await
        .expect("agent")
}

/// The sentence of the page's state box (`data-state` and its words).
fn shown_state(body: &str) -> String {
    let at = body
        .find("class=\"state ")
        .unwrap_or_else(|| panic!("no state on the page:\n{body}"));
    let rest = &body[at..];
    let end = rest.find("</p>").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// Posts the switch as the page's buttons do, and expects the redirect back to `/me`.
async fn switch(person: &mut Person, form: &[(&str, &str)]) {
    let r = person.post("/me/availability", form).await;
    assert_eq!(r.status, 303, "{form:?}: {}", r.body);
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("/me")
    );
}

#[tokio::test]
async fn an_agent_switches_away_on_vacation_and_back_and_the_page_says_so() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    // Friday 2026-06-12, 10:00 in New York.
    let page = sam.get("/me").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h1>Sam Rivera</h1>"), "{}", page.body);
    assert!(
        page.body.contains("Working hours: any hour"),
        "{}",
        page.body
    );
    let state = shown_state(&page.body);
    assert!(
        state.contains("data-state=\"available\"")
            && state.contains("Available: new leads come to you"),
        "{state}"
    );
    // The header links to the page; the date field defaults to tomorrow, within a year.
    assert!(page.body.contains("href=\"/me\""), "{}", page.body);
    assert!(
        page.body.contains(
            "name=\"back_on\" value=\"2026-06-13\" min=\"2026-06-13\" max=\"2027-06-12\""
        ),
        "{}",
        page.body
    );

    switch(&mut sam, &[("availability", "away")]).await;
    assert_eq!(
        state_of(&app, "sam@harbor.example").await,
        ("away".to_owned(), None)
    );
    let at: Option<String> = sqlx::query_scalar(
        "select to_char(availability_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from agent where email = 'sam@harbor.example'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("when");
    assert_eq!(
        at.as_deref(),
        Some("2026-06-12 14:00"),
        "the server's clock"
    );
    let page = sam.get("/me").await;
    let state = shown_state(&page.body);
    assert!(
        state.contains("data-state=\"away\"")
            && state.contains("Away: leads skip you until you switch back"),
        "{state}"
    );
    assert!(
        page.body
            .contains("<button type=\"submit\" aria-pressed=\"true\">Away</button>"),
        "{}",
        page.body
    );

    switch(
        &mut sam,
        &[("availability", "vacation"), ("back_on", "2026-06-15")],
    )
    .await;
    assert_eq!(
        state_of(&app, "sam@harbor.example").await,
        ("vacation".to_owned(), Some("2026-06-15".to_owned()))
    );
    let page = sam.get("/me").await;
    let state = shown_state(&page.body);
    assert!(
        state.contains("data-state=\"vacation\"")
            && state.contains("On vacation: back on Mon Jun 15"),
        "{state}"
    );
    // The date field keeps the vacation's end.
    assert!(
        page.body.contains("name=\"back_on\" value=\"2026-06-15\""),
        "{}",
        page.body
    );

    switch(&mut sam, &[("availability", "available")]).await;
    assert_eq!(
        state_of(&app, "sam@harbor.example").await,
        ("available".to_owned(), None),
        "back from vacation: no date kept"
    );
    let page = sam.get("/me").await;
    assert!(
        shown_state(&page.body).contains("Available: new leads come to you"),
        "{}",
        page.body
    );

    // A vacation ends by itself on the day they are back (in the brokerage's zone).
    switch(
        &mut sam,
        &[("availability", "vacation"), ("back_on", "2026-06-13")],
    )
    .await;
    // (in steps shorter than the session's 8 idle hours)
    app.clock.advance(Duration::hours(7));
    assert!(shown_state(&sam.get("/me").await.body).contains("back on Sat Jun 13"));
    app.clock.advance(Duration::hours(6)); // Friday 23:00 in New York
    assert!(
        shown_state(&sam.get("/me").await.body).contains("back on Sat Jun 13"),
        "still on vacation at 23:00 on Friday"
    );
    app.clock.advance(Duration::hours(2)); // Saturday 01:00
    let state = shown_state(&sam.get("/me").await.body);
    assert!(
        state.contains("Available: new leads come to you"),
        "{state}"
    );
}

#[tokio::test]
async fn working_hours_come_from_the_setup_file_and_outside_them_the_page_says_until_when() {
    let setup = DEMO.replacen(
        "phone = \"+15555550101\"\n",
        "phone = \"+15555550101\"\nhours = \"11:00-18:00\"\n",
        1,
    );
    assert_ne!(setup, DEMO);
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let page = sam.get("/me").await;
    assert!(
        page.body
            .contains("Working hours: 11:00\u{2013}18:00 every day (America/New_York)"),
        "{}",
        page.body
    );
    // 10:00 in New York: an hour before they start.
    let state = shown_state(&page.body);
    assert!(
        state.contains("data-state=\"off_hours\"")
            && state.contains("Outside your working hours: leads skip you until 11:00"),
        "{state}"
    );
    app.clock.advance(Duration::hours(2));
    assert!(shown_state(&sam.get("/me").await.body).contains("Available: new leads come to you"));
    // Away wins over working hours.
    switch(&mut sam, &[("availability", "away")]).await;
    assert!(shown_state(&sam.get("/me").await.body).contains("Away:"));
    // Ava has none.
    let mut ava = app.person("harbor", "ava@harbor.example").await;
    assert!(
        ava.get("/me")
            .await
            .body
            .contains("Working hours: any hour")
    );
}

#[tokio::test]
async fn a_bad_state_or_date_is_refused_with_the_reason_and_nothing_changes() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    switch(&mut sam, &[("availability", "away")]).await;
    sam.get("/me").await;
    let before = states(&app).await;
    // Today is Friday 2026-06-12 in New York.
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("availability", "holiday")],
            "Choose Available, Away or On vacation",
        ),
        (
            &[("availability", "")],
            "Choose Available, Away or On vacation",
        ),
        (&[], "Choose Available, Away or On vacation"),
        (
            &[("availability", "AWAY")],
            "Choose Available, Away or On vacation",
        ),
        (&[("availability", "vacation")], "Pick the day you are back"),
        (
            &[("availability", "vacation"), ("back_on", "")],
            "Pick the day you are back",
        ),
        (
            &[("availability", "vacation"), ("back_on", "next week")],
            "Pick the day you are back",
        ),
        (
            &[("availability", "vacation"), ("back_on", "2026-02-30")],
            "Pick the day you are back",
        ),
        (
            &[("availability", "vacation"), ("back_on", "2026-06-12")],
            "must be after today (Fri Jun 12)",
        ),
        (
            &[("availability", "vacation"), ("back_on", "2026-06-01")],
            "must be after today (Fri Jun 12)",
        ),
        (
            &[("availability", "vacation"), ("back_on", "2027-06-13")],
            "at most 365 days ahead",
        ),
        (
            &[("availability", "vacation"), ("back_on", "9999-12-31")],
            "at most 365 days ahead",
        ),
    ];
    for (form, why) in cases {
        let r = sam.post("/me/availability", form).await;
        assert_eq!(r.status, 400, "{form:?}: {}", r.body);
        assert!(r.body.contains(why), "{form:?}: {}", r.body);
        assert!(r.body.contains("nothing was changed"), "{}", r.body);
        // The page again, still saying what is stored.
        assert!(
            shown_state(&r.body).contains("data-state=\"away\""),
            "{}",
            r.body
        );
        assert_eq!(states(&app).await, before, "{form:?} changed something");
    }
    // A control character in a field is refused before anything is read.
    let r = sam
        .post(
            "/me/availability",
            &[("availability", "vacation"), ("back_on", "2026-06-15\0")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(states(&app).await, before);
    // The last day allowed, a year from today, is taken.
    switch(
        &mut sam,
        &[("availability", "vacation"), ("back_on", "2027-06-12")],
    )
    .await;
    assert_eq!(
        state_of(&app, "sam@harbor.example").await,
        ("vacation".to_owned(), Some("2027-06-12".to_owned()))
    );
}

#[tokio::test]
async fn without_the_pages_token_or_a_session_nothing_changes() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get("/me").await;
    let before = states(&app).await;
    let away = |csrf: Option<&str>| {
        let mut form = vec![("availability".to_owned(), "away".to_owned())];
        if let Some(t) = csrf {
            form.push(("csrf".to_owned(), t.to_owned()));
        }
        form
    };
    let r = sam.post_raw("/me/availability", &away(None), &[]).await;
    assert_eq!(r.status, 403, "no token: {}", r.body);
    let r = sam
        .post_raw("/me/availability", &away(Some(&"x".repeat(43))), &[])
        .await;
    assert_eq!(r.status, 403, "a wrong token: {}", r.body);
    let r = sam
        .post_raw(
            "/me/availability",
            &away(Some(&sam.csrf)),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.status, 403, "another site's form: {}", r.body);
    let r = sam
        .post_raw(
            "/me/availability",
            &away(Some(&sam.csrf)),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(r.status, 403, "a cross-site fetch: {}", r.body);
    // Another person's token with Sam's session.
    let ava = app.person("harbor", "ava@harbor.example").await;
    let mut ava = ava;
    ava.get("/me").await;
    let r = sam
        .post_raw("/me/availability", &away(Some(&ava.csrf)), &[])
        .await;
    assert_eq!(r.status, 403, "Ava's token: {}", r.body);
    // A GET changes nothing; no session goes to the login.
    assert_eq!(
        sam.get("/me/availability?availability=away").await.status,
        405
    );
    let anonymous = no_redirects();
    let r = read(
        anonymous
            .post(format!("{}/me/availability", app.base_url))
            .form(&away(Some(&sam.csrf)))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("/login")
    );
    let r = read(
        anonymous
            .get(format!("{}/me", app.base_url))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(states(&app).await, before, "nothing changed");
    // With the token the same form goes through.
    let r = sam
        .post_raw("/me/availability", &away(Some(&sam.csrf)), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        state_of(&app, "sam@harbor.example").await.0,
        "away".to_owned()
    );
}

#[tokio::test]
async fn one_agent_cannot_change_anothers_availability() {
    let app = spawn_app().await;
    let ava_id: i64 =
        sqlx::query_scalar("select agent_id from agent where email = 'ava@harbor.example'")
            .fetch_one(&app.db.pool)
            .await
            .expect("Ava");
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get("/me").await;
    // The form names no agent: whatever id or email is slipped in, it is Sam who changes.
    let ava_id = ava_id.to_string();
    switch(
        &mut sam,
        &[
            ("availability", "away"),
            ("agent_id", &ava_id),
            ("agent", &ava_id),
            ("email", "ava@harbor.example"),
        ],
    )
    .await;
    assert_eq!(
        state_of(&app, "sam@harbor.example").await,
        ("away".to_owned(), None)
    );
    assert_eq!(
        state_of(&app, "ava@harbor.example").await,
        ("available".to_owned(), None),
        "Ava is untouched"
    );
    // There is no page or action of another person's availability.
    for path in [
        format!("/me/{ava_id}"),
        format!("/me/{ava_id}/availability"),
        "/me/availability/ava@harbor.example".to_owned(),
    ] {
        let r = sam.post(&path, &[("availability", "away")]).await;
        assert!(r.status == 404 || r.status == 405, "{path}: {}", r.status);
    }
    let mut ava = app.person("harbor", "ava@harbor.example").await;
    assert!(shown_state(&ava.get("/me").await.body).contains("Available: new leads come to you"));
    // A manager has the page too, for their own state only.
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    morgan.get("/me").await;
    switch(
        &mut morgan,
        &[("availability", "vacation"), ("back_on", "2026-06-20")],
    )
    .await;
    let rows = states(&app).await;
    let changed: Vec<&str> = rows
        .iter()
        .filter(|(_, a, _, _)| a != "available")
        .map(|(e, _, _, _)| e.as_str())
        .collect();
    assert_eq!(changed, ["morgan@harbor.example", "sam@harbor.example"]);
}

#[tokio::test]
async fn routing_skips_an_agent_who_switched_away() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get("/me").await;
    switch(&mut sam, &[("availability", "away")]).await;
    // A new caller on Sam and Ava's line: only Ava's phone rings, and the lead is hers.
    let sid = new_sid("CA");
    let r = app
        .post_signed(
            "/twilio/voice",
            &TestApp::incoming_params(&sid, "+16175550123", MAIN_ST),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(AVA_PHONE) && !r.body.contains(SAM_PHONE),
        "{}",
        r.body
    );
    let (owner, skipped): (Option<String>, Vec<String>) = (
        sqlx::query_scalar(
            "select a.email from conversation c join agent a on a.agent_id = c.assigned_agent_id",
        )
        .fetch_optional(&app.db.pool)
        .await
        .expect("owner"),
        sqlx::query_scalar(
            "select a.email || ' ' || e.detail from conversation_event e
               join agent a on a.agent_id = e.to_agent_id where e.kind = 'skipped'",
        )
        .fetch_all(&app.db.pool)
        .await
        .expect("trace"),
    );
    assert_eq!(owner.as_deref(), Some("ava@harbor.example"));
    assert_eq!(skipped, ["sam@harbor.example away"]);
    // Back to available: the next caller rings Sam again.
    sam.get("/me").await;
    switch(&mut sam, &[("availability", "available")]).await;
    let r = app
        .post_signed(
            "/twilio/voice",
            &TestApp::incoming_params(&new_sid("CA"), "+16175550124", MAIN_ST),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(SAM_PHONE), "{}", r.body);
}
