//! The inbox through its pages (issue 6 §2–§3; docs/security.md §2 and §3 rows 23–30): who sees
//! what, replies through the gate, the people's decisions the rules need, notes, tasks, assign,
//! close, delete and merge, live updates.

use std::time::Duration as StdDuration;

use chrono::Duration;

use crate::helpers::*;

const LEAD: &str = "+16175550123";
const LEAD2: &str = "+16175550199";
const MAIN_ST: &str = "+15555550100"; // Downtown; rings Sam then Ava
const ELM_ST: &str = "+15555550110"; // Waterfront; rings Jo

async fn conversation_of(app: &TestApp, phone: &str) -> i64 {
    sqlx::query_scalar(
        "select c.conversation_id from conversation c join contact ct using (contact_id) where ct.phone = $1",
    )
    .bind(phone)
    .fetch_one(&app.db.pool)
    .await
    .expect("conversation")
}

async fn lead_replied(app: &TestApp, from: &str, to: &str, body: &str) -> i64 {
    app.text_in(from, to, body).await;
    app.drain().await;
    conversation_of(app, from).await
}

async fn agent_replies(app: &TestApp) -> Vec<(String, Option<String>)> {
    sqlx::query_as("select state, reason from job where kind = 'agent_reply' order by job_id")
        .fetch_all(&app.db.pool)
        .await
        .expect("jobs")
}

#[tokio::test]
async fn another_brokerages_or_offices_ids_are_not_found_and_nothing_of_them_shows() {
    let app = spawn_app().await;
    apply_setup(&app.db.pool, OTHER_BROKERAGE).await;
    let main = lead_replied(&app, LEAD, MAIN_ST, "About 123 Main: is it sold?").await;
    let elm = lead_replied(&app, LEAD2, ELM_ST, "About 42 Elm: open house?").await;
    let task: i64 = {
        app.fake.set_line_type("+16175550177", "landline");
        app.missed_call("+16175550177", MAIN_ST).await;
        app.clock.advance(Duration::seconds(20));
        app.drain().await;
        sqlx::query_scalar("select task_id from task")
            .fetch_one(&app.db.pool)
            .await
            .expect("task")
    };
    // Bayside's Lee sees nothing of Harbor's.
    let mut lee = app.person("bayside", "lee@bayside.example").await;
    let inbox = lee.get("/inbox").await;
    assert!(
        !inbox.body.contains("555-0123") && !inbox.body.contains("123 Main St"),
        "{}",
        inbox.body
    );
    let not_found = lee.get(&format!("/inbox/c/{main}")).await;
    assert_eq!(not_found.status, 404);
    assert!(!not_found.body.contains("123 Main St") && !not_found.body.contains("0123"));
    let missing = lee.get("/inbox/c/987654").await;
    assert_eq!(
        (missing.status, missing.body.clone()),
        (404, not_found.body.clone()),
        "the same page as a missing id"
    );
    for path in [
        format!("/inbox/c/{main}/thread"),
        "/inbox/c/-1".to_owned(),
        "/inbox/c/0".to_owned(),
        "/inbox/c/9223372036854775808".to_owned(),
        "/inbox/c/abc".to_owned(),
        "/inbox/c/123e4567-e89b-12d3-a456-426614174000".to_owned(),
    ] {
        assert_eq!(lee.get(&path).await.status, 404, "{path}");
    }
    let before = app.snapshot().await;
    let notes = app.count("note").await;
    let elm_id = elm.to_string();
    for (path, form) in [
        (format!("/inbox/c/{main}/reply"), vec![("body", "hi")]),
        (format!("/inbox/c/{main}/note"), vec![("body", "hi")]),
        (format!("/inbox/c/{main}/close"), vec![]),
        (format!("/inbox/c/{main}/reopen"), vec![]),
        (format!("/inbox/c/{main}/takeover"), vec![]),
        (format!("/inbox/c/{main}/assign"), vec![("agent", "")]),
        (
            format!("/inbox/c/{main}/review"),
            vec![("decision", "opt_out")],
        ),
        (format!("/inbox/c/{main}/name"), vec![("name", "Pat")]),
        (format!("/inbox/c/{main}/merge"), vec![("into", &elm_id)]),
        (
            format!("/inbox/c/{main}/do-not-text"),
            vec![("confirm", "yes")],
        ),
        (format!("/inbox/c/{main}/delete"), vec![("confirm", "yes")]),
        (format!("/inbox/c/{main}/tasks/{task}/done"), vec![]),
        ("/inbox/c/-5/note".to_owned(), vec![("body", "hi")]),
    ] {
        assert_eq!(lee.post(&path, &form).await.status, 404, "{path}");
    }
    assert_eq!(
        (app.snapshot().await, app.count("note").await),
        (before, notes)
    );
    // Searching Harbor's lead from Bayside finds nothing.
    lee.get("/inbox").await;
    let search = lee
        .post("/inbox/search", &[("phone", "(617) 555-0123")])
        .await;
    assert_eq!(search.status, 200);
    assert!(search.body.contains("No conversation with (617) 555-0123."));

    // Within Harbor: Jo (Waterfront) sees Elm St's lead but not Main St's; Morgan (Downtown's
    // manager) the reverse; Riley (admin) both.
    let mut jo = app.person("harbor", "jo@harbor.example").await;
    assert_eq!(jo.get(&format!("/inbox/c/{elm}")).await.status, 200);
    assert_eq!(jo.get(&format!("/inbox/c/{main}")).await.status, 404);
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    assert_eq!(morgan.get(&format!("/inbox/c/{main}")).await.status, 200);
    assert_eq!(morgan.get(&format!("/inbox/c/{elm}")).await.status, 404);
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    assert_eq!(riley.get(&format!("/inbox/c/{main}")).await.status, 200);
    assert_eq!(riley.get(&format!("/inbox/c/{elm}")).await.status, 200);
    // Assigned to Jo, the Main St conversation becomes hers to see too.
    let jo_id: i64 =
        sqlx::query_scalar("select agent_id from agent where email = 'jo@harbor.example'")
            .fetch_one(&app.db.pool)
            .await
            .expect("jo");
    riley.get(&format!("/inbox/c/{main}")).await;
    let r = riley
        .post(
            &format!("/inbox/c/{main}/assign"),
            &[("agent", &jo_id.to_string())],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(jo.get(&format!("/inbox/c/{main}")).await.status, 200);
}

#[tokio::test]
async fn the_dashboard_and_its_export_are_for_managers_and_admins() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    assert_eq!(sam.get("/dashboard").await.status, 403);
    assert_eq!(sam.get("/dashboard/export.csv").await.status, 403);
    assert!(
        !sam.get("/inbox").await.body.contains("href=\"/dashboard\""),
        "no dashboard link for agents"
    );
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    assert_eq!(morgan.get("/dashboard").await.status, 200);
    // A manager's dashboard is their office's: another office's id is not found.
    let waterfront: i64 =
        sqlx::query_scalar("select office_id from office where slug = 'waterfront'")
            .fetch_one(&app.db.pool)
            .await
            .expect("office");
    assert_eq!(
        morgan
            .get(&format!("/dashboard?office={waterfront}"))
            .await
            .status,
        404
    );
    let elm: i64 = sqlx::query_scalar("select number_id from number where e164 = $1")
        .bind(ELM_ST)
        .fetch_one(&app.db.pool)
        .await
        .expect("number");
    assert_eq!(
        morgan.get(&format!("/dashboard?number={elm}")).await.status,
        404
    );
    assert_eq!(morgan.get("/dashboard?period=1y").await.status, 404);
    assert_eq!(morgan.get("/dashboard?agent=-3").await.status, 404);
    // Only admins dismiss configuration alerts.
    assert_eq!(
        morgan.post("/dashboard/alerts/1/dismiss", &[]).await.status,
        403
    );
}

#[tokio::test]
async fn a_reply_goes_through_the_gate_and_the_sender() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Hi! Is 123 Main St still available?").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{id}")).await;
    let r = sam
        .post(
            &format!("/inbox/c/{id}/reply"),
            &[("body", "  Yes it is. Want to see it Saturday?  ")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/inbox/c/{id}").as_str())
    );
    app.drain().await;
    // R10: the first message to the contact introduces the brokerage.
    let sent: Vec<String> = app
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == LEAD)
        .map(|m| m.body)
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].starts_with("Harbor Realty: Yes it is. Want to see it Saturday?"),
        "{}",
        sent[0]
    );
    assert_eq!(agent_replies(&app).await, vec![("sent".into(), None)]);
    let page = sam.get(&format!("/inbox/c/{id}")).await;
    assert!(page.body.contains("Sam Rivera") && page.body.contains("Want to see it Saturday?"));
    // The wait is answered: no escalation.
    app.clock.advance(Duration::minutes(30));
    app.drain().await;
    assert!(app.alerts_to("+15555550103").is_empty());
}

#[tokio::test]
async fn bad_replies_are_refused_with_the_reason_and_queue_nothing() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Hello?").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{id}")).await;
    let path = format!("/inbox/c/{id}/reply");
    let empty = sam.post(&path, &[("body", " \n\t ")]).await;
    assert_eq!(empty.status, 400);
    assert!(empty.body.contains("The message is empty."));
    let long = "x".repeat(1601);
    let too_long = sam.post(&path, &[("body", &long)]).await;
    assert_eq!(too_long.status, 400);
    assert!(too_long.body.contains("at most 1,600 characters"));
    // A first message gets the brokerage's name and the opt-out line (R10): counted too.
    let first = sam.post(&path, &[("body", &"y".repeat(1590))]).await;
    assert_eq!(first.status, 400);
    assert!(
        first.body.contains("at most 1,600 characters"),
        "{}",
        first.body
    );
    assert_eq!(
        sam.post(&path, &[("body", "Hi, Sam here.")]).await.status,
        303
    );
    app.drain().await;
    assert_eq!(
        sam.post(&path, &[("body", &"y".repeat(1600))]).await.status,
        303,
        "1,600 is fine"
    );
    app.drain().await;
    // A browser sends the box's line break as CR LF: one character, as the box counted it.
    let lines = format!("{}\r\n{}", "y".repeat(799), "z".repeat(800));
    assert_eq!(sam.post(&path, &[("body", &lines)]).await.status, 303);
    app.drain().await;
    let sent = app.fake.messages().pop().expect("sent").body;
    assert_eq!(sent.chars().count(), 1600);
    assert!(sent.contains("y\nz") && !sent.contains('\r'));
    let short = sam.post(&path, &[("body", "Photos: bit.ly/abc")]).await;
    assert_eq!(short.status, 422);
    assert!(
        short.body.contains("data-reason=\"link_shortener\"")
            && short.body.contains("carriers block public link shorteners"),
        "{}",
        short.body
    );
    assert!(
        short.body.contains("Photos: bit.ly/abc"),
        "the draft is kept"
    );
    // A review hold, then an opt-out: each refused with its reason.
    app.text_in(LEAD, MAIN_ST, "Not interested").await;
    app.drain().await;
    let held = sam.post(&path, &[("body", "Are you sure?")]).await;
    assert_eq!(held.status, 422);
    assert!(
        held.body.contains("data-reason=\"review_hold\""),
        "{}",
        held.body
    );
    let mut conn = app.db.pool.acquire().await.expect("conn");
    let harbor = textback::store::brokerages::by_slug(&mut conn, "harbor")
        .await
        .expect("b")
        .expect("harbor");
    let contact = textback::store::contacts::find_by_phone(&mut conn, harbor, LEAD)
        .await
        .expect("c")
        .expect("contact");
    drop(conn);
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/review"), &[("decision", "opt_out")])
            .await
            .status,
        303
    );
    let opted = sam.post(&path, &[("body", "Are you sure?")]).await;
    assert_eq!(opted.status, 422);
    assert!(
        opted.body.contains("data-reason=\"opted_out\"")
            && opted.body.contains("this number opted out of texts"),
        "{}",
        opted.body
    );
    assert_eq!(
        agent_replies(&app).await,
        vec![("sent".into(), None); 3],
        "only the three that were accepted"
    );
    let suppressed: (String, Option<String>) =
        sqlx::query_as("select source, who from suppression")
            .fetch_one(&app.db.pool)
            .await
            .expect("suppression");
    assert_eq!(
        suppressed,
        ("review".into(), Some("sam@harbor.example".into()))
    );
    let _ = contact;
}

#[tokio::test]
async fn payloads_are_stored_verbatim_and_shown_escaped() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "hello").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let payloads = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "{{7*7}}",
        "${7*7}",
        "'); DROP TABLE messages;--",
    ];
    for p in payloads {
        sam.get(&format!("/inbox/c/{id}")).await;
        assert_eq!(
            sam.post(&format!("/inbox/c/{id}/reply"), &[("body", p)])
                .await
                .status,
            303,
            "{p}"
        );
        app.drain().await;
    }
    let stored: Vec<String> =
        sqlx::query_scalar("select body from message where kind = 'manual' order by message_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("bodies");
    assert_eq!(stored.len(), 5);
    assert!(
        stored[0].ends_with("<script>alert(1)</script> Reply STOP to opt out."),
        "{}",
        stored[0]
    );
    assert_eq!(&stored[1..], &payloads[1..]);
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    assert!(!page.contains("<script>alert(1)") && !page.contains("<img src=x"));
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{page}"
    );
    assert!(
        page.contains("&#34;&#62;&#60;img src=x onerror=alert(1)&#62;"),
        "escaped"
    );
    assert!(page.contains("{{7*7}}") && !page.contains(">49<"));
}

#[tokio::test]
async fn a_reply_outside_the_window_is_accepted_and_shows_when_it_will_go() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Call me tomorrow").await;
    // Two days later, at 22:30 in Boston: no live conversation, the window is closed.
    app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-06-15T02:30:00Z")
            .expect("t")
            .with_timezone(&chrono::Utc),
    );
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(
            &format!("/inbox/c/{id}/reply"),
            &[("body", "Good morning! Sam here.")]
        )
        .await
        .status,
        303
    );
    app.drain().await;
    assert!(
        app.fake.messages().iter().all(|m| m.to != LEAD),
        "nothing at night"
    );
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    assert!(
        page.contains("Reply held until 8:00 am Eastern: quiet hours, area code 617"),
        "{page}"
    );
    assert!(page.contains("queued: goes at 8:00 am"), "{page}");
}

#[tokio::test]
async fn the_peoples_decisions_stop_automation_and_are_recorded() {
    let app = spawn_app().await;
    // A missed call: text-back sent, a follow-up armed for tomorrow.
    app.missed_call(LEAD, MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let id = conversation_of(&app, LEAD).await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{id}")).await;
    // Take over: the follow-up is cancelled (R12).
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/takeover"), &[])
            .await
            .status,
        303
    );
    let follow: Vec<(String, Option<String>)> =
        sqlx::query_as("select state, reason from job where kind = 'follow_up'")
            .fetch_all(&app.db.pool)
            .await
            .expect("follow-ups");
    assert_eq!(
        follow,
        vec![("cancelled".into(), Some("agent_takeover".into()))]
    );
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    assert!(page.contains("taken over by Sam Rivera"), "{page}");
    // Notes, a name.
    assert_eq!(
        sam.post(
            &format!("/inbox/c/{id}/note"),
            &[("body", "Prefers mornings")]
        )
        .await
        .status,
        303
    );
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/name"), &[("name", "Jordan Smith")])
            .await
            .status,
        303
    );
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    assert!(
        page.contains("Note by Sam Rivera")
            && page.contains("Prefers mornings")
            && page.contains("Jordan Smith")
    );
    // Do not text (R1): only when confirmed (the page's tick box; without it, a clear 400 and
    // nothing changes); then suppressed brokerage-wide, with who; a later missed call gets no
    // text.
    let before = app.snapshot().await;
    let unconfirmed = sam.post(&format!("/inbox/c/{id}/do-not-text"), &[]).await;
    assert_eq!(unconfirmed.status, 400);
    assert!(
        unconfirmed.body.contains("Tick the box to confirm"),
        "{}",
        unconfirmed.body
    );
    assert_eq!(app.snapshot().await, before);
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/do-not-text"), &[("confirm", "yes")])
            .await
            .status,
        303
    );
    let ledger: (String, String, String) = sqlx::query_as(
        "select event, source, who from consent_event order by consent_event_id desc limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("ledger");
    assert_eq!(
        ledger,
        (
            "opt_out".into(),
            "agent".into(),
            "sam@harbor.example".into()
        )
    );
    let creates_before = app.fake.messages().iter().filter(|m| m.to == LEAD).count();
    app.clock.advance(Duration::minutes(5));
    app.missed_call(LEAD, ELM_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    assert_eq!(
        app.fake.messages().iter().filter(|m| m.to == LEAD).count(),
        creates_before
    );
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    assert!(page.contains("Marked do not text by Sam Rivera"), "{page}");
}

#[tokio::test]
async fn not_an_opt_out_lifts_the_hold_and_the_reply_goes() {
    let app = spawn_app().await;
    let id = lead_replied(
        &app,
        LEAD,
        MAIN_ST,
        "Please stop texting me, we bought with another agent",
    )
    .await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    assert!(page.contains("Possible opt-out."), "{page}");
    assert!(page.contains("It is an opt-out") && page.contains("Not an opt-out"));
    // The list puts held conversations first.
    lead_replied(&app, LEAD2, MAIN_ST, "Is it still available?").await;
    let list = sam.get("/inbox").await.body;
    let first = list.find("/inbox/c/").expect("a row");
    assert!(
        list[first..].starts_with(&format!("/inbox/c/{id}?")),
        "held first"
    );
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(
            &format!("/inbox/c/{id}/review"),
            &[("decision", "not_opt_out")]
        )
        .await
        .status,
        303
    );
    assert_eq!(
        sam.post(
            &format!("/inbox/c/{id}/reply"),
            &[("body", "Understood, congratulations!")]
        )
        .await
        .status,
        303
    );
    app.drain().await;
    assert_eq!(agent_replies(&app).await, vec![("sent".into(), None)]);
    let cleared: (String, String) =
        sqlx::query_as("select event, who from consent_event where event = 'review_cleared'")
            .fetch_one(&app.db.pool)
            .await
            .expect("cleared");
    assert_eq!(
        cleared,
        ("review_cleared".into(), "sam@harbor.example".into())
    );
}

#[tokio::test]
async fn tasks_are_done_by_a_person_and_closing_stops_automation() {
    let app = spawn_app().await;
    app.fake.set_line_type(LEAD, "landline");
    app.missed_call(LEAD, MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let id = conversation_of(&app, LEAD).await;
    let task: i64 = sqlx::query_scalar("select task_id from task")
        .fetch_one(&app.db.pool)
        .await
        .expect("task");
    let mut ava = app.person("harbor", "ava@harbor.example").await;
    let list = ava.get("/inbox?filter=tasks").await.body;
    assert!(
        list.contains(&format!("/inbox/c/{id}?")),
        "the callback filter lists it"
    );
    let page = ava.get(&format!("/inbox/c/{id}")).await.body;
    assert!(
        page.contains("Call (617) 555-0123 back (landline)"),
        "{page}"
    );
    assert_eq!(
        ava.post(&format!("/inbox/c/{id}/tasks/{task}/done"), &[])
            .await
            .status,
        303
    );
    let done: (String, Option<String>) = sqlx::query_as("select state, done_by from task")
        .fetch_one(&app.db.pool)
        .await
        .expect("task");
    assert_eq!(done, ("done".into(), Some("ava@harbor.example".into())));
    assert!(
        !ava.get("/inbox?filter=tasks")
            .await
            .body
            .contains(&format!("/inbox/c/{id}?"))
    );

    // Another lead, texted back with a follow-up pending: closing cancels it.
    app.missed_call(LEAD2, MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let other = conversation_of(&app, LEAD2).await;
    ava.get(&format!("/inbox/c/{other}")).await;
    assert_eq!(
        ava.post(&format!("/inbox/c/{other}/close"), &[])
            .await
            .status,
        303
    );
    let follow: Vec<(String, Option<String>)> =
        sqlx::query_as("select state, reason from job where kind = 'follow_up'")
            .fetch_all(&app.db.pool)
            .await
            .expect("jobs");
    assert_eq!(
        follow,
        vec![("cancelled".into(), Some("conversation_closed".into()))]
    );
    assert!(
        ava.get("/inbox?filter=closed")
            .await
            .body
            .contains(&format!("/inbox/c/{other}?"))
    );
    assert!(
        !ava.get("/inbox")
            .await
            .body
            .contains(&format!("/inbox/c/{other}?"))
    );
    // The lead writes again: the conversation reopens by itself.
    app.text_in(LEAD2, MAIN_ST, "Hello again").await;
    assert!(
        ava.get("/inbox")
            .await
            .body
            .contains(&format!("/inbox/c/{other}?"))
    );
}

#[tokio::test]
async fn a_deleted_contact_stays_suppressed_and_a_merge_keeps_both_histories() {
    let app = spawn_app().await;
    let a = lead_replied(&app, LEAD, MAIN_ST, "This is Jordan on my cell").await;
    let b = lead_replied(&app, LEAD2, MAIN_ST, "Jordan again, from work").await;
    app.text_in(LEAD2, MAIN_ST, "STOP").await;
    app.drain().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    // Merge the work number into the cell's conversation: one thread with both.
    sam.get(&format!("/inbox/c/{b}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{b}/merge"), &[("into", &a.to_string())])
            .await
            .status,
        303
    );
    assert_eq!(
        sam.get(&format!("/inbox/c/{b}")).await.status,
        404,
        "merged away"
    );
    let page = sam.get(&format!("/inbox/c/{a}")).await.body;
    assert!(page.contains("This is Jordan on my cell") && page.contains("Jordan again, from work"));
    assert!(
        page.contains("<select name=\"to\">"),
        "a reply can go to either number"
    );
    // The work number stays suppressed after the merge; the cell number is not.
    let suppressed: Vec<String> =
        sqlx::query_scalar("select phone from suppression where lifted_at is null")
            .fetch_all(&app.db.pool)
            .await
            .expect("s");
    assert_eq!(suppressed, vec![LEAD2.to_owned()]);
    // Later, delete the conversation: hidden, records kept, the suppression survives.
    app.clock.advance(Duration::hours(1));
    let messages_before = app.count("message").await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{a}/delete"), &[("confirm", "no")])
            .await
            .status,
        400
    );
    assert_eq!(sam.get(&format!("/inbox/c/{a}")).await.status, 200);
    assert_eq!(
        sam.post(&format!("/inbox/c/{a}/delete"), &[("confirm", "yes")])
            .await
            .status,
        303
    );
    assert_eq!(sam.get(&format!("/inbox/c/{a}")).await.status, 404);
    assert!(!sam.get("/inbox").await.body.contains("555-0123"));
    assert_eq!(
        app.count("message").await,
        messages_before,
        "records are kept (R13)"
    );
    let still: i64 = sqlx::query_scalar(
        "select count(*) from suppression where phone = $1 and lifted_at is null",
    )
    .bind(LEAD2)
    .fetch_one(&app.db.pool)
    .await
    .expect("s");
    assert_eq!(still, 1, "a deleted contact stays suppressed");
    // The cell number calls again: the conversation is back, with a fresh thread.
    app.clock.advance(Duration::minutes(1));
    app.missed_call(LEAD, MAIN_ST).await;
    let page = sam.get(&format!("/inbox/c/{a}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Missed call") && !page.body.contains("This is Jordan on my cell"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn unread_and_waiting_filters_follow_what_happens() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Hi there").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let list = sam.get("/inbox?filter=waiting").await.body;
    assert!(list.contains(&format!("/inbox/c/{id}?")) && list.contains("row unread"));
    assert!(
        sam.get("/inbox?filter=mine")
            .await
            .body
            .contains(&format!("/inbox/c/{id}?"))
    );
    assert!(
        !sam.get("/inbox?filter=unassigned")
            .await
            .body
            .contains(&format!("/inbox/c/{id}?"))
    );
    sam.get(&format!("/inbox/c/{id}")).await;
    assert!(
        !sam.get("/inbox").await.body.contains("row unread"),
        "read once opened"
    );
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/reply"), &[("body", "Hello!")])
            .await
            .status,
        303
    );
    assert!(
        !sam.get("/inbox?filter=waiting")
            .await
            .body
            .contains(&format!("/inbox/c/{id}?"))
    );
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/assign"), &[("agent", "")])
            .await
            .status,
        303
    );
    assert!(
        sam.get("/inbox?filter=unassigned")
            .await
            .body
            .contains(&format!("/inbox/c/{id}?"))
    );
    // An agent id of nobody in the brokerage is refused.
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/assign"), &[("agent", "999999")])
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn search_by_phone_is_a_post_and_urls_carry_no_phone_numbers() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Hi").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get("/inbox").await;
    let r = sam
        .post("/inbox/search", &[("phone", "617-555-0123")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/inbox/c/{id}").as_str())
    );
    let r = sam.post("/inbox/search", &[("phone", "call me")]).await;
    assert!(r.body.contains("Type a phone number"));
    // No href, action or src of any page holds a number.
    for path in [
        "/inbox".to_owned(),
        format!("/inbox/c/{id}"),
        "/inbox?filter=waiting".to_owned(),
    ] {
        let body = sam.get(&path).await.body;
        for attr in ["href=\"", "action=\"", "src=\""] {
            for part in body.split(attr).skip(1) {
                let url = &part[..part.find('"').unwrap_or(0)];
                if url.starts_with("tel:") {
                    continue; // the phone's own dial link: never sent to a server
                }
                assert!(
                    !url.contains("555") && !url.contains("617"),
                    "{url} in {path}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_store_error_gives_a_plain_500_and_sends_nothing() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Hi").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{id}")).await;
    sqlx::query("alter table job rename to job_gone")
        .execute(&app.db.pool)
        .await
        .expect("break");
    let r = sam
        .post(&format!("/inbox/c/{id}/reply"), &[("body", "Hello")])
        .await;
    sqlx::query("alter table job_gone rename to job")
        .execute(&app.db.pool)
        .await
        .expect("mend");
    assert_eq!(r.status, 500);
    assert_eq!(r.body, "internal error\n", "no internals");
    app.drain().await;
    assert!(app.fake.messages().iter().all(|m| m.to != LEAD));
}

#[tokio::test]
async fn live_updates_name_the_conversations_a_person_may_see() {
    let app = spawn_app().await;
    apply_setup(&app.db.pool, OTHER_BROKERAGE).await;
    let sam = app.person("harbor", "sam@harbor.example").await;
    let lee = app.person("bayside", "lee@bayside.example").await;
    let open = |p: &Person| {
        let req = reqwest::Client::new()
            .get(format!("{}/inbox/events", p.base_url))
            .header("cookie", p.cookie.clone());
        async move { req.send().await.expect("events") }
    };
    let mut sam_stream = open(&sam).await;
    assert_eq!(sam_stream.status(), 200);
    assert!(
        sam_stream
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"))
    );
    let mut lee_stream = open(&lee).await;
    // Give the listener a moment to subscribe, then a lead writes to Harbor.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    app.text_in(LEAD, MAIN_ST, "Hello Harbor").await;
    let id = conversation_of(&app, LEAD).await;
    let mut got = String::new();
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    while !got.contains(&format!("data: {id}")) {
        let chunk = tokio::time::timeout_at(deadline, sam_stream.chunk())
            .await
            .expect("an event in time");
        got.push_str(&String::from_utf8_lossy(
            &chunk.expect("open").expect("bytes"),
        ));
    }
    assert!(got.contains("event: change"), "{got}");
    // Bayside's page hears nothing of it. Proven with a marker rather than a wait (issue 15
    // §8: one chunk read for 700 ms passed whenever a keep-alive came first): a Bayside lead
    // then writes to Bayside, and everything Lee's stream carried up to that event holds no
    // Harbor id.
    app.text_in("+16175550177", "+15555550200", "Hello Bayside")
        .await;
    let bayside = conversation_of(&app, "+16175550177").await;
    let mut heard = String::new();
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    while !heard.contains(&format!("data: {bayside}\n")) {
        let chunk = tokio::time::timeout_at(deadline, lee_stream.chunk())
            .await
            .expect("Bayside's event in time");
        heard.push_str(&String::from_utf8_lossy(
            &chunk.expect("open").expect("bytes"),
        ));
    }
    assert!(
        !heard.contains(&format!("data: {id}\n")),
        "Bayside's stream carried Harbor's conversation {id}: {heard}"
    );
}

#[tokio::test]
async fn second_ids_in_forms_are_checked_too() {
    let app = spawn_app().await;
    apply_setup(&app.db.pool, OTHER_BROKERAGE).await;
    let main = lead_replied(&app, LEAD, MAIN_ST, "Hi from Main").await;
    lead_replied(&app, "+16175550188", MAIN_ST, "Hi again from Main").await;
    let elm = lead_replied(&app, LEAD2, ELM_ST, "Hi from Elm").await;
    let bay = lead_replied(&app, "+16175550177", "+15555550200", "Hi Bayside").await;
    // A task of another conversation of the same brokerage.
    app.fake.set_line_type("+16175550166", "landline");
    app.missed_call("+16175550166", MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let other_task: i64 = sqlx::query_scalar("select task_id from task")
        .fetch_one(&app.db.pool)
        .await
        .expect("task");
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{main}")).await;
    // Merge into a Waterfront conversation (not Sam's) or another brokerage's: not found.
    for into in [elm, bay, 0, -1] {
        let r = sam
            .post(
                &format!("/inbox/c/{main}/merge"),
                &[("into", &into.to_string())],
            )
            .await;
        assert_eq!(r.status, 404, "merge into {into}");
    }
    // A reply "to" a contact that is not this conversation's: not found, nothing queued.
    let other_contact: i64 =
        sqlx::query_scalar("select contact_id from contact where phone = '+16175550188'")
            .fetch_one(&app.db.pool)
            .await
            .expect("contact");
    let r = sam
        .post(
            &format!("/inbox/c/{main}/reply"),
            &[("body", "Hello"), ("to", &other_contact.to_string())],
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(agent_replies(&app).await.is_empty());
    // Another conversation's task through this one: nothing changes.
    let r = sam
        .post(&format!("/inbox/c/{main}/tasks/{other_task}/done"), &[])
        .await;
    assert_eq!(r.status, 303);
    let state: String = sqlx::query_scalar("select state from task")
        .fetch_one(&app.db.pool)
        .await
        .expect("state");
    assert_eq!(state, "open");
    // Another brokerage's alert cannot be dismissed.
    let bay_alert: i64 = sqlx::query_scalar(
        "insert into alert (brokerage_id, audience, reason, detail, created_at)
         select brokerage_id, 'admins', 'carrier_configuration', '21408', now() from brokerage where slug = 'bayside'
         returning alert_id",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("alert");
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    riley.get("/dashboard").await;
    assert_eq!(
        riley
            .post(&format!("/dashboard/alerts/{bay_alert}/dismiss"), &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_double_submitted_reply_is_sent_once() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Hello?").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    let at = page.find("name=\"once\" value=\"").expect("a token") + 20;
    let once = page[at..at + page[at..].find('"').expect("end")].to_owned();
    for _ in 0..2 {
        let r = sam
            .post(
                &format!("/inbox/c/{id}/reply"),
                &[("body", "Hi!"), ("once", &once)],
            )
            .await;
        assert_eq!(r.status, 303);
    }
    app.drain().await;
    assert_eq!(agent_replies(&app).await, vec![("sent".into(), None)]);
}

#[tokio::test]
async fn a_text_from_an_agents_phone_is_not_a_lead() {
    let app = spawn_app().await;
    // Sam answers with "ok" when he has no open alert, and then "STOP" (README.md "Agents on
    // their phones"): no contact, no message of a lead, no suppression; his texts are kept as
    // an agent's, "ok" is answered with why nothing was sent, STOP is never answered.
    app.text_in("+15555550101", MAIN_ST, "ok").await;
    app.text_in("+15555550101", MAIN_ST, "STOP").await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(app.count("contact").await, 0);
    assert_eq!(app.count("conversation").await, 0);
    assert_eq!(app.count("suppression").await, 0);
    let kept: Vec<(String, Option<String>)> =
        sqlx::query_as("select outcome, detail from agent_text order by agent_text_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("agent texts");
    assert_eq!(
        kept,
        vec![
            ("refused".into(), Some("no_conversation".into())),
            ("ignored".into(), Some("keyword".into()))
        ]
    );
    assert_eq!(
        app.alerts_to("+15555550101"),
        vec![
            "Harbor Realty: You have no open lead on this number to answer. Nothing was sent."
                .to_owned()
        ]
    );
}

#[tokio::test]
async fn a_merge_keeps_a_waiting_reply_waiting_and_its_holds_resolvable() {
    let app = spawn_app().await;
    let a = lead_replied(&app, LEAD, MAIN_ST, "Cell here").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{a}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{a}/reply"), &[("body", "Hi Jordan")])
            .await
            .status,
        303
    );
    app.drain().await;
    // The work number writes (waiting), then may have opted out (a review hold).
    let b = lead_replied(&app, LEAD2, MAIN_ST, "Work phone: is it available?").await;
    app.text_in(LEAD2, MAIN_ST, "Not interested").await;
    app.drain().await;
    sam.get(&format!("/inbox/c/{b}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{b}/merge"), &[("into", &a.to_string())])
            .await
            .status,
        303
    );
    // A waits now, and shows the hold.
    assert!(
        sam.get("/inbox?filter=waiting")
            .await
            .body
            .contains(&format!("/inbox/c/{a}?"))
    );
    let page = sam.get(&format!("/inbox/c/{a}")).await.body;
    assert!(page.contains("Possible opt-out."), "{page}");
    // Unanswered, it escalates to Downtown's manager.
    app.clock.advance(Duration::minutes(10));
    app.drain().await;
    assert_eq!(
        app.alerts_to("+15555550103").len(),
        1,
        "the merged reply escalated"
    );
    // The hold of the merged number is decided from the merged conversation.
    sam.get(&format!("/inbox/c/{a}")).await;
    assert_eq!(
        sam.post(
            &format!("/inbox/c/{a}/review"),
            &[("decision", "not_opt_out")]
        )
        .await
        .status,
        303
    );
    let held: i64 =
        sqlx::query_scalar("select count(*) from contact where review_hold_at is not null")
            .fetch_one(&app.db.pool)
            .await
            .expect("held");
    assert_eq!(held, 0);
}

#[tokio::test]
async fn take_over_while_the_text_back_is_in_flight_stops_its_follow_ups() {
    let app = spawn_app().await;
    // The carrier takes the text-back but answers 500: the outcome is unknown, reconciled.
    app.fake.inject(
        textback_fake_twilio::Fault::Status {
            http: 500,
            code: None,
            recorded: true,
            retry_after: None,
        },
        textback_fake_twilio::Scope::Next(1),
    );
    app.missed_call(LEAD, MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let id = conversation_of(&app, LEAD).await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/takeover"), &[])
            .await
            .status,
        303
    );
    // Reconciliation finds the text: the sequence is armed and stopped at once.
    app.run_until_quiet(Duration::days(3)).await;
    let texts: Vec<String> = app
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == LEAD)
        .map(|m| m.body)
        .collect();
    assert_eq!(texts.len(), 1, "the text-back only: {texts:?}");
    let follow: Vec<(String, Option<String>)> =
        sqlx::query_as("select state, reason from job where kind = 'follow_up'")
            .fetch_all(&app.db.pool)
            .await
            .expect("jobs");
    assert_eq!(
        follow,
        vec![("cancelled".into(), Some("agent_takeover".into()))]
    );
}

/// The thread shows calls' outcomes, scheduled and ended jobs and consent: each change
/// notifies the live inbox, not only messages and the conversation row.
#[tokio::test]
async fn a_calls_outcome_its_text_back_and_consent_notify_the_live_inbox() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Hello").await;
    let brokerage: i64 =
        sqlx::query_scalar("select brokerage_id from conversation where conversation_id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .expect("brokerage");
    let expected = format!("{brokerage}:{id}");
    let sid = new_sid("CA");
    let r = app
        .post_signed(
            "/twilio/voice",
            &TestApp::incoming_params(&sid, LEAD, MAIN_ST),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Listening from here: the ring itself (a conversation touch) is not counted.
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.db.pool)
        .await
        .expect("listener");
    listener.listen("textback_inbox").await.expect("listen");
    let r = app
        .post_signed(
            "/twilio/voice/dial",
            &TestApp::dial_params(&sid, LEAD, MAIN_ST, "no-answer", "false"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        next_payload(&mut listener).await,
        expected,
        "the miss and its text-back"
    );
    // The text-back's job ends (cancelled here: the lead already wrote, or sent): notified.
    sqlx::query(
        "update job set state = 'cancelled', reason = 'test', finished_at = now(), updated_at = now()
          where kind = 'text_back' and state = 'scheduled'",
    )
    .execute(&app.db.pool)
    .await
    .expect("cancel");
    assert_eq!(next_payload(&mut listener).await, expected, "the job's end");
    // A do-not-text entry kept by phone number (an import, the carrier) reaches the thread.
    sqlx::query(
        "insert into consent_event (brokerage_id, phone, event, source, who, suppressed_after, at)
         values ($1, $2, 'opt_out', 'import', 'import:test.csv', false, now())",
    )
    .bind(brokerage)
    .bind(LEAD)
    .execute(&app.db.pool)
    .await
    .expect("consent");
    assert_eq!(next_payload(&mut listener).await, expected, "consent");
}

async fn next_payload(l: &mut sqlx::postgres::PgListener) -> String {
    tokio::time::timeout(StdDuration::from_secs(5), l.recv())
        .await
        .expect("a notification in time")
        .expect("listener")
        .payload()
        .to_owned()
}

/// A take-over goes with its conversation into a merge: the number merged into gets no more
/// follow-ups either.
#[tokio::test]
async fn a_merge_carries_a_take_over_to_the_conversation_merged_into() {
    let app = spawn_app().await;
    let a = lead_replied(&app, LEAD, MAIN_ST, "Cell here").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{a}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{a}/takeover"), &[])
            .await
            .status,
        303
    );
    // The same person's work number misses a call: texted back, a follow-up armed.
    app.missed_call(LEAD2, MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let b = conversation_of(&app, LEAD2).await;
    sam.get(&format!("/inbox/c/{a}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{a}/merge"), &[("into", &b.to_string())])
            .await
            .status,
        303
    );
    let page = sam.get(&format!("/inbox/c/{b}")).await.body;
    assert!(page.contains("taken over by Sam Rivera"), "{page}");
    app.run_until_quiet(Duration::days(3)).await;
    let texts = app
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == LEAD2)
        .count();
    assert_eq!(texts, 1, "the text-back only");
    let follow: Vec<(String, Option<String>)> =
        sqlx::query_as("select state, reason from job where kind = 'follow_up'")
            .fetch_all(&app.db.pool)
            .await
            .expect("jobs");
    assert_eq!(follow.len(), 1, "{follow:?}");
    assert_eq!(follow[0].1.as_deref(), Some("agent_takeover"), "{follow:?}");
}

/// The list says what a conversation's last call was when no text has been exchanged yet: an
/// answered call is not a missed one.
#[tokio::test]
async fn the_list_tells_an_answered_call_from_a_missed_one() {
    let app = spawn_app().await;
    app.answered_call(LEAD, MAIN_ST).await;
    app.missed_call(LEAD2, MAIN_ST).await;
    app.drain().await;
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let list = morgan.get("/inbox/list?filter=open").await;
    assert_eq!(list.status, 200);
    let row = |phone: &str| {
        let at = list
            .body
            .find(phone)
            .unwrap_or_else(|| panic!("{phone} listed"));
        let end = list.body[at..]
            .find("</li>")
            .map_or(list.body.len(), |e| at + e);
        list.body[at..end].to_owned()
    };
    let answered = row("(617) 555-0123");
    assert!(
        answered.contains("Call answered") && !answered.contains("Missed call"),
        "{answered}"
    );
    let missed = row("(617) 555-0199");
    assert!(missed.contains("Missed call"), "{missed}");
}

/// Issue 15 §10: a NUL (or another control character) in any field a person types answered 500
/// (PostgreSQL refuses NUL in text). Every form is checked the same way: 400 naming the field,
/// nothing stored or queued.
#[tokio::test]
async fn a_control_character_in_a_typed_field_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let id = lead_replied(&app, LEAD, MAIN_ST, "Hello?").await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{id}")).await;
    let before = app.snapshot().await;
    let notes_before = app.count("note").await;
    for (action, field, value, named) in [
        ("note", "body", "call\u{0}back", "The text"),
        ("reply", "body", "Hi\u{0} there", "The text"),
        ("reply", "body", "Hi\u{1b}[2J", "The text"),
        ("name", "name", "Jo\u{0}rdan", "The name"),
    ] {
        let r = sam
            .post(&format!("/inbox/c/{id}/{action}"), &[(field, value)])
            .await;
        assert_eq!(r.status, 400, "{action} {value:?}: {}", r.body);
        assert!(
            r.body.contains(named) && r.body.contains("control character"),
            "{action}: {}",
            r.body
        );
    }
    let search = sam.post("/inbox/search", &[("phone", "617\u{0}555")]).await;
    assert_eq!(search.status, 400, "{}", search.body);
    assert!(search.body.contains("The phone number"), "{}", search.body);
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.count("note").await, notes_before);
    // Tabs and line breaks are what people type: still fine.
    let ok = sam
        .post(
            &format!("/inbox/c/{id}/note"),
            &[("body", "line one\r\n\tline two")],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

/// Issue 15 §3: an agent could "reply by text" to a known landline; the reply bounced. The
/// compose box now says the line cannot take texts and offers the call first; a text goes only
/// with "Send the text anyway" ticked.
#[tokio::test]
async fn the_reply_box_offers_the_call_first_for_a_line_that_cannot_take_texts() {
    let app = spawn_app().await;
    app.fake.set_line_type(LEAD, "landline");
    app.missed_call(LEAD, MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let id = conversation_of(&app, LEAD).await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let page = sam.get(&format!("/inbox/c/{id}")).await;
    assert!(
        page.body.contains("probably cannot take texts") && page.body.contains("it is a landline"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("href=\"tel:{LEAD}\"")));
    let path = format!("/inbox/c/{id}/reply");
    let refused = sam.post(&path, &[("body", "Hi, Sam here")]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("Call them instead"),
        "{}",
        refused.body
    );
    assert!(agent_replies(&app).await.is_empty(), "nothing queued");
    let sent = sam
        .post(&path, &[("body", "Hi, Sam here"), ("anyway", "yes")])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(agent_replies(&app).await.len(), 1);
    // A number that takes texts shows no such box.
    let other = lead_replied(&app, LEAD2, MAIN_ST, "Hello").await;
    let page = sam.get(&format!("/inbox/c/{other}")).await;
    assert!(!page.body.contains("probably cannot take texts"));
}

/// Issue 15 §14: plain words for agents. People are named by name; assign and close leave a
/// line in the thread; the compose box says what a first text gets; a conversation in its hold
/// says when its text-back goes; a carrier code shows as words, never as a number.
#[tokio::test]
async fn the_thread_speaks_plain_words_and_names_people() {
    let app = spawn_app().await;
    app.fake
        .set_callback_plan(textback_fake_twilio::CallbackPlan::disabled());
    app.missed_call(LEAD, MAIN_ST).await;
    let id = conversation_of(&app, LEAD).await;
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let page = morgan.get(&format!("/inbox/c/{id}")).await.body;
    assert!(page.contains("Text-back in 20 s (at 10:00 am)"), "{page}");
    assert!(
        page.contains("This is the first text to them"),
        "the compose box says what a first text gets: {page}"
    );
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    let page = morgan.get(&format!("/inbox/c/{id}")).await.body;
    assert!(!page.contains("This is the first text to them"), "{page}");
    // The text comes back undelivered: words, not a code.
    let sid = app.fake.messages()[0].sid.clone();
    app.fake
        .send_message_status(&sid, "undelivered", Some(30006))
        .await
        .expect("callback");
    let page = morgan.get(&format!("/inbox/c/{id}")).await.body;
    assert!(
        page.contains("not delivered: a landline, or a line the carrier cannot reach"),
        "{page}"
    );
    assert!(
        !page.contains("30006"),
        "no carrier code on the page: {page}"
    );
    // Assign, close and reopen: each a line, naming who.
    let ava: i64 =
        sqlx::query_scalar("select agent_id from agent where email = 'ava@harbor.example'")
            .fetch_one(&app.db.pool)
            .await
            .expect("ava");
    for (path, field) in [
        (format!("/inbox/c/{id}/assign"), ("agent", ava.to_string())),
        (format!("/inbox/c/{id}/close"), ("x", String::new())),
        (format!("/inbox/c/{id}/reopen"), ("x", String::new())),
        (format!("/inbox/c/{id}/takeover"), ("x", String::new())),
    ] {
        let r = morgan.post(&path, &[(field.0, field.1.as_str())]).await;
        assert_eq!(r.status, 303, "{path}: {}", r.body);
    }
    let page = morgan.get(&format!("/inbox/c/{id}")).await.body;
    for line in [
        "Assigned to Ava Chen by Morgan Lee",
        "Closed by Morgan Lee",
        "Reopened by Morgan Lee",
        "Taken over by Morgan Lee",
        "taken over by Morgan Lee",
    ] {
        assert!(page.contains(line), "{line}: {page}");
    }
    assert!(
        !page.contains("morgan@harbor.example"),
        "names, not emails: {page}"
    );
}

/// Issue 15 §14: in the default view a lead waiting for an answer sorts above a conversation
/// that ended in an opt-out, even when the opt-out came later.
#[tokio::test]
async fn a_waiting_lead_sorts_above_a_later_opt_out() {
    let app = spawn_app().await;
    app.text_in(LEAD, MAIN_ST, "Is it still available?").await;
    app.drain().await;
    app.clock.advance(Duration::minutes(1));
    app.text_in(LEAD2, MAIN_ST, "STOP").await;
    app.drain().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let page = sam.get("/inbox").await.body;
    let waiting = page.find("(617) 555-0123").expect("the waiting lead");
    let opted = page.find("(617) 555-0199").expect("the opt-out");
    assert!(waiting < opted, "{page}");
}

/// Lifting waiting leads within a page does not change which conversations a page holds:
/// following "Older conversations" shows every conversation exactly once, each page's waiting
/// leads first, and a waiting lead older than the first page is on the second.
#[tokio::test]
async fn paging_shows_every_conversation_once_with_waiting_leads_first_on_each_page() {
    let app = spawn_app().await;
    let now = textback::clock::Clock::now(app.clock.as_ref());
    // Sixty conversations a minute apart (555-1000 the newest); every seventh lead, the oldest
    // of the first page (1049) and the five oldest wait for an answer.
    sqlx::query(
        "with b as (select brokerage_id from brokerage where slug = 'harbor'),
              n as (select number_id from number where e164 = $2),
              ct as (insert into contact (brokerage_id, phone)
                     select b.brokerage_id, '+1617555' || i from b, generate_series(1000, 1059) i
                     returning brokerage_id, contact_id, right(phone, 4)::int as i)
         insert into conversation (brokerage_id, contact_id, number_id, last_activity_at,
                                   last_inbound_at, created_at, waiting_since)
         select ct.brokerage_id, ct.contact_id, n.number_id,
                $1 - (ct.i - 1000) * interval '1 minute', $1 - (ct.i - 1000) * interval '1 minute',
                $1 - (ct.i - 1000) * interval '1 minute',
                case when ct.i % 7 = 0 or ct.i >= 1055 or ct.i = 1049 then $1 - (ct.i - 1000) * interval '1 minute' end
           from ct, n",
    )
    .bind(now)
    .bind(MAIN_ST)
    .execute(&app.db.pool)
    .await
    .expect("seed");
    let waiting = |i: u32| i.is_multiple_of(7) || i >= 1055 || i == 1049;

    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let mut path = "/inbox".to_owned();
    let mut pages: Vec<Vec<u32>> = Vec::new();
    loop {
        let body = sam.get(&path).await.body;
        // The leads in the order shown, each once.
        let mut shown: Vec<u32> = Vec::new();
        for (at, _) in body.match_indices("(617) 555-1") {
            let digits = &body[at + 10..at + 14];
            if let Ok(i) = digits.parse::<u32>()
                && !shown.contains(&i)
            {
                shown.push(i);
            }
        }
        pages.push(shown);
        let Some(at) = body.find("before=") else {
            break;
        };
        let micros: String = body[at + 7..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        path = format!("/inbox?before={micros}");
        assert!(pages.len() < 5, "the pages end");
    }
    let mut all: Vec<u32> = pages.concat();
    all.sort_unstable();
    assert_eq!(all, (1000..1060).collect::<Vec<_>>(), "{pages:?}");
    assert_eq!(pages.len(), 2, "{pages:?}");
    for page in &pages {
        let lifted = page.iter().take_while(|i| waiting(**i)).count();
        assert!(
            page[lifted..].iter().all(|i| !waiting(*i)),
            "waiting leads first: {page:?}"
        );
        let waiting_ones: Vec<u32> = page.iter().copied().filter(|i| waiting(*i)).collect();
        let sorted = {
            let mut s = waiting_ones.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(waiting_ones, sorted, "newest first among them: {page:?}");
    }
    assert!(
        pages[1].contains(&1059),
        "the oldest waiting lead is on page 2"
    );
    assert_eq!(pages[0].len(), 50);
}
