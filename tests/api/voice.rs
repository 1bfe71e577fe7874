//! The voice webhooks: what is recorded and what TwiML comes back (docs/architecture.md "What happens to
//! a call" steps 1–2, docs/twilio.md §1.3–§1.7, docs/security.md §3 rows 12–15).

use crate::helpers::*;

const LEAD: &str = "+16175550123";
const MAIN_ST: &str = "+15555550100"; // rings Sam and Ava, screen on, has a missed_message
const ELM_ST: &str = "+15555550110"; // rings Jo, no missed_message

fn incoming(call_sid: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let p = with(fixture("voice-incoming.txt"), "CallSid", call_sid);
    let p = with(with(p, "From", from), "Caller", from);
    with(with(p, "To", to), "Called", to)
}

fn dial(
    call_sid: &str,
    to: &str,
    status: &str,
    bridged: Option<&str>,
    parent: &str,
) -> Vec<(String, String)> {
    let p = with(
        fixture("voice-dial-action-no-answer.txt"),
        "CallSid",
        call_sid,
    );
    let p = with(
        with(with(p, "To", to), "Called", to),
        "DialCallStatus",
        status,
    );
    let p = with(p, "CallStatus", parent);
    match bridged {
        Some(b) => with(p, "DialBridged", b),
        None => without(p, "DialBridged"),
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CallRow {
    from_raw: String,
    contact_id: Option<i64>,
    invalid_reason: Option<String>,
    outcome: Option<String>,
    outcome_source: Option<String>,
    dial_call_status: Option<String>,
    dial_bridged: Option<bool>,
    call_status: Option<String>,
    screened_agent_id: Option<i64>,
}

async fn call_row(app: &TestApp, sid: &str) -> CallRow {
    sqlx::query_as(
        "select from_raw, contact_id, invalid_reason, outcome, outcome_source, dial_call_status, dial_bridged, call_status, screened_agent_id
           from call where call_sid = $1",
    )
    .bind(sid)
    .fetch_one(&app.db.pool)
    .await
    .expect("the call is recorded")
}

#[tokio::test]
async fn an_incoming_call_rings_the_numbers_agents_with_the_screen() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    let r = app
        .post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "text/xml; charset=utf-8");
    let doc = roxmltree::Document::parse(&r.body).expect("XML");
    let d = doc
        .descendants()
        .find(|n| n.has_tag_name("Dial"))
        .expect("a Dial");
    assert_eq!(d.attribute("timeout"), Some("18"));
    assert_eq!(d.attribute("answerOnBridge"), Some("true"));
    assert_eq!(
        d.attribute("action"),
        Some(format!("{}/twilio/voice/dial", app.public_url).as_str())
    );
    let numbers: Vec<(Option<&str>, Option<&str>)> = d
        .children()
        .filter(|n| n.has_tag_name("Number"))
        .map(|n| (n.text(), n.attribute("url")))
        .collect();
    let screen = format!("{}/twilio/voice/screen", app.public_url);
    assert_eq!(
        numbers,
        vec![
            (Some("+15555550101"), Some(screen.as_str())),
            (Some("+15555550102"), Some(screen.as_str()))
        ],
        "Sam then Ava"
    );

    let call = call_row(&app, &sid).await;
    assert_eq!(call.from_raw, LEAD);
    assert!(call.contact_id.is_some());
    assert_eq!(call.call_status.as_deref(), Some("ringing"));
    let phone: String = sqlx::query_scalar("select phone from contact")
        .fetch_one(&app.db.pool)
        .await
        .expect("contact");
    assert_eq!(phone, LEAD);
}

#[tokio::test]
async fn without_the_screen_the_numbers_have_no_url() {
    let setup = DEMO.replace(
        "ring_timeout_secs = 18\nscreen = true",
        "ring_timeout_secs = 25\nscreen = false",
    );
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..Default::default()
    })
    .await;
    let r = app
        .post_signed("/twilio/voice", &incoming(&new_sid("CA"), LEAD, MAIN_ST))
        .await;
    let doc = roxmltree::Document::parse(&r.body).expect("XML");
    let d = doc
        .descendants()
        .find(|n| n.has_tag_name("Dial"))
        .expect("a Dial");
    assert_eq!(d.attribute("timeout"), Some("25"));
    assert!(
        d.children()
            .filter(|n| n.has_tag_name("Number"))
            .all(|n| n.attribute("url").is_none())
    );
}

/// docs/security.md §3 row 12: agents still ring; the call keeps `From` raw; no contact.
#[tokio::test]
async fn a_caller_without_an_e164_number_rings_but_never_becomes_a_contact() {
    let app = spawn_app().await;
    for from in [
        "anonymous",
        "unknown",
        "client:alice",
        "+1",
        "+1 (555) 555-0100",
        "+12345678901234567",
        "",
    ] {
        let sid = new_sid("CA");
        let r = app
            .post_signed("/twilio/voice", &incoming(&sid, from, MAIN_ST))
            .await;
        assert_eq!(r.status, 200, "{from:?}");
        assert_eq!(twiml_verbs(&r.body), vec!["Dial"], "{from:?}");
        let call = call_row(&app, &sid).await;
        assert_eq!(call.from_raw, from);
        assert_eq!(call.contact_id, None, "{from:?}");
        assert_eq!(call.invalid_reason.as_deref(), Some("invalid_number"));
    }
    assert_eq!(app.count("contact").await, 0);
}

/// docs/security.md §3 row 12a: E.164 but not textable numbers are still contacts (the text-back
/// job skips them later, docs/compliance.md R8).
#[tokio::test]
async fn an_e164_caller_that_cannot_be_texted_is_still_recorded_as_a_contact() {
    let app = spawn_app().await;
    for from in [
        "+266696687",
        "+442071838750",
        "+12115550123",
        "+10125550123",
        "+11125550123",
    ] {
        let sid = new_sid("CA");
        assert_eq!(
            app.post_signed("/twilio/voice", &incoming(&sid, from, MAIN_ST))
                .await
                .status,
            200
        );
        let call = call_row(&app, &sid).await;
        assert!(call.contact_id.is_some(), "{from}");
        assert_eq!(call.invalid_reason, None);
    }
    assert_eq!(app.count("contact").await, 5);
}

#[tokio::test]
async fn a_missed_call_says_the_missed_message_then_hangs_up() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    let r = app
        .post_signed(
            "/twilio/voice/dial",
            &dial(&sid, MAIN_ST, "no-answer", Some("false"), "in-progress"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(twiml_verbs(&r.body), vec!["Say", "Hangup"]);
    assert!(
        r.body
            .contains("Sorry we missed you. We will text you in a moment."),
        "{}",
        r.body
    );
    let call = call_row(&app, &sid).await;
    assert_eq!(
        (call.outcome.as_deref(), call.outcome_source.as_deref()),
        (Some("missed"), Some("dial"))
    );
    assert_eq!(
        (call.dial_call_status.as_deref(), call.dial_bridged),
        (Some("no-answer"), Some(false))
    );
    assert_eq!(call.call_status.as_deref(), Some("in-progress"));
}

#[tokio::test]
async fn a_missed_call_on_a_number_without_message_just_hangs_up() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, ELM_ST))
        .await;
    let r = app
        .post_signed(
            "/twilio/voice/dial",
            &dial(&sid, ELM_ST, "busy", None, "in-progress"),
        )
        .await;
    assert_eq!(twiml_verbs(&r.body), vec!["Hangup"]);
    assert_eq!(
        call_row(&app, &sid).await.outcome.as_deref(),
        Some("missed")
    );
}

#[tokio::test]
async fn when_the_caller_is_gone_the_answer_is_empty() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    let r = app
        .post_signed(
            "/twilio/voice/dial",
            &dial(&sid, MAIN_ST, "no-answer", Some("false"), "completed"),
        )
        .await;
    assert!(twiml_verbs(&r.body).is_empty(), "{}", r.body);
    assert_eq!(
        call_row(&app, &sid).await.outcome.as_deref(),
        Some("missed")
    );
}

/// The precedence table of docs/twilio.md §1.6, through the real endpoint.
#[tokio::test]
async fn dial_results_are_classified_by_the_precedence_table() {
    let app = spawn_app().await;
    let table: &[(Option<&str>, &str, &str, &[&str])] = &[
        (Some("true"), "completed", "answered", &["Hangup"]),
        (Some("false"), "no-answer", "missed", &["Say", "Hangup"]),
        (None, "canceled", "missed", &["Say", "Hangup"]),
        // An agent's voicemail answered and the screen was not passed.
        (Some("false"), "completed", "missed", &["Say", "Hangup"]),
        (None, "completed", "answered", &["Hangup"]),
        (Some("false"), "something-new", "missed", &["Say", "Hangup"]),
        (None, "something-new", "unclassified", &["Hangup"]),
    ];
    for (bridged, status, outcome, verbs) in table {
        let sid = new_sid("CA");
        app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
            .await;
        let r = app
            .post_signed(
                "/twilio/voice/dial",
                &dial(&sid, MAIN_ST, status, *bridged, "in-progress"),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(&twiml_verbs(&r.body), verbs, "{bridged:?} {status}");
        let call = call_row(&app, &sid).await;
        assert_eq!(
            call.outcome.as_deref(),
            Some(*outcome),
            "{bridged:?} {status}"
        );
        assert_eq!(
            call.dial_call_status.as_deref(),
            Some(*status),
            "the raw value is kept"
        );
    }
}

#[tokio::test]
async fn a_dial_result_for_a_call_we_never_saw_records_the_call() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    let r = app
        .post_signed(
            "/twilio/voice/dial",
            &dial(&sid, MAIN_ST, "no-answer", Some("false"), "in-progress"),
        )
        .await;
    assert_eq!(r.status, 200);
    let call = call_row(&app, &sid).await;
    assert_eq!(call.from_raw, LEAD);
    assert!(call.contact_id.is_some());
    assert_eq!(call.outcome.as_deref(), Some("missed"));
}

#[tokio::test]
async fn the_first_dial_result_wins() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    app.post_signed(
        "/twilio/voice/dial",
        &dial(&sid, MAIN_ST, "completed", Some("true"), "completed"),
    )
    .await;
    let later = app
        .post_signed(
            "/twilio/voice/dial",
            &dial(&sid, MAIN_ST, "no-answer", Some("false"), "completed"),
        )
        .await;
    assert_eq!(later.status, 200);
    assert_eq!(
        call_row(&app, &sid).await.outcome.as_deref(),
        Some("answered")
    );
    assert_eq!(app.webhook_count("/twilio/voice/dial", "duplicate"), 1);
}

#[tokio::test]
async fn concurrent_dial_results_record_one_outcome() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    let params = dial(&sid, MAIN_ST, "no-answer", Some("false"), "in-progress");
    let answers = futures_util::future::join_all(
        (0..20).map(|_| app.post_signed("/twilio/voice/dial", &params)),
    )
    .await;
    assert!(
        answers
            .iter()
            .all(|r| r.status == 200 && r.body == answers[0].body)
    );
    assert_eq!(app.webhook_count("/twilio/voice/dial", "ok"), 1);
    assert_eq!(app.webhook_count("/twilio/voice/dial", "duplicate"), 19);
}

fn status(call_sid: &str, to: &str, call_status: &str, seq: &str) -> Vec<(String, String)> {
    let p = with(fixture("voice-status-completed.txt"), "CallSid", call_sid);
    let p = with(with(p, "To", to), "Called", to);
    with(with(p, "CallStatus", call_status), "SequenceNumber", seq)
}

/// docs/twilio.md §1.6 point 3: the caller hung up while agents rang and no dial result came.
#[tokio::test]
async fn a_final_status_without_a_dial_result_records_a_miss() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    let r = app
        .post_signed(
            "/twilio/voice/status",
            &status(&sid, MAIN_ST, "completed", "0"),
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let call = call_row(&app, &sid).await;
    assert_eq!(
        (call.outcome.as_deref(), call.outcome_source.as_deref()),
        (Some("missed"), Some("status"))
    );
    assert_eq!(call.call_status.as_deref(), Some("completed"));

    // A late dial result is authoritative: the agent did pick up.
    app.post_signed(
        "/twilio/voice/dial",
        &dial(&sid, MAIN_ST, "completed", Some("true"), "completed"),
    )
    .await;
    let call = call_row(&app, &sid).await;
    assert_eq!(
        (call.outcome.as_deref(), call.outcome_source.as_deref()),
        (Some("answered"), Some("dial"))
    );
}

#[tokio::test]
async fn a_status_after_the_dial_result_does_not_change_the_outcome() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    app.post_signed(
        "/twilio/voice/dial",
        &dial(&sid, MAIN_ST, "completed", Some("true"), "in-progress"),
    )
    .await;
    app.post_signed(
        "/twilio/voice/status",
        &status(&sid, MAIN_ST, "completed", "0"),
    )
    .await;
    let call = call_row(&app, &sid).await;
    assert_eq!(
        (call.outcome.as_deref(), call.outcome_source.as_deref()),
        (Some("answered"), Some("dial"))
    );
}

#[tokio::test]
async fn call_statuses_only_move_forward_and_are_recorded_once() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    app.post_signed(
        "/twilio/voice/status",
        &status(&sid, MAIN_ST, "completed", "3"),
    )
    .await;
    app.post_signed(
        "/twilio/voice/status",
        &status(&sid, MAIN_ST, "in-progress", "1"),
    )
    .await;
    app.post_signed(
        "/twilio/voice/status",
        &status(&sid, MAIN_ST, "weird-status", "2"),
    )
    .await;
    let dup = app
        .post_signed(
            "/twilio/voice/status",
            &status(&sid, MAIN_ST, "completed", "3"),
        )
        .await;
    assert_eq!(dup.status, 200);
    assert_eq!(
        call_row(&app, &sid).await.call_status.as_deref(),
        Some("completed")
    );
    assert_eq!(
        app.count("call_event").await,
        3,
        "each (status, sequence) once, unknown ones kept"
    );
    assert_eq!(app.webhook_count("/twilio/voice/status", "duplicate"), 1);
}

/// docs/security.md §3 row 15.
#[tokio::test]
async fn a_status_for_an_unknown_call_is_acknowledged_and_ignored() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let r = app
        .post_signed(
            "/twilio/voice/status",
            &status(&new_sid("CA"), MAIN_ST, "completed", "0"),
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = app
        .post_signed(
            "/twilio/voice/status",
            &status(&new_sid("CA"), "+15555550999", "completed", "0"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.webhook_count("/twilio/voice/status", "unknown_sid"), 2);
}

fn leg(parent: &str, child: &str, agent: &str, digits: Option<&str>) -> Vec<(String, String)> {
    let mut p = vec![
        ("AccountSid".to_owned(), ACCOUNT_SID.to_owned()),
        ("CallSid".to_owned(), child.to_owned()),
        ("ParentCallSid".to_owned(), parent.to_owned()),
        ("CallStatus".to_owned(), "in-progress".to_owned()),
        ("Direction".to_owned(), "outbound-dial".to_owned()),
        ("From".to_owned(), LEAD.to_owned()),
        ("To".to_owned(), agent.to_owned()),
    ];
    if let Some(d) = digits {
        p.push(("Digits".to_owned(), d.to_owned()));
    }
    p
}

#[tokio::test]
async fn the_screen_names_the_brokerage_and_listing_and_asks_for_1() {
    let app = spawn_app().await;
    let parent = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&parent, LEAD, MAIN_ST))
        .await;
    let r = app
        .post_signed(
            "/twilio/voice/screen",
            &leg(&parent, &new_sid("CA"), "+15555550101", None),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(twiml_verbs(&r.body), vec!["Gather", "Hangup"]);
    let doc = roxmltree::Document::parse(&r.body).expect("XML");
    let g = doc
        .descendants()
        .find(|n| n.has_tag_name("Gather"))
        .expect("Gather");
    assert_eq!(g.attribute("numDigits"), Some("1"));
    assert_eq!(
        g.attribute("action"),
        Some(format!("{}/twilio/voice/screen/answer", app.public_url).as_str())
    );
    let say = g
        .children()
        .find(|n| n.has_tag_name("Say"))
        .and_then(|n| n.text())
        .expect("Say");
    assert_eq!(
        say,
        "Call for Harbor Realty about 123 Main St. Press 1 to take it."
    );
}

/// An agent's carrier voicemail never presses 1, so it never counts as an answer.
#[tokio::test]
async fn only_pressing_1_takes_the_call() {
    let app = spawn_app().await;
    let parent = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&parent, LEAD, MAIN_ST))
        .await;
    for digits in [None, Some("2"), Some("*"), Some("11")] {
        let r = app
            .post_signed(
                "/twilio/voice/screen/answer",
                &leg(&parent, &new_sid("CA"), "+15555550101", digits),
            )
            .await;
        assert_eq!(twiml_verbs(&r.body), vec!["Hangup"], "{digits:?}");
    }
    assert_eq!(call_row(&app, &parent).await.screened_agent_id, None);

    let r = app
        .post_signed(
            "/twilio/voice/screen/answer",
            &leg(&parent, &new_sid("CA"), "+15555550102", Some("1")),
        )
        .await;
    assert!(
        twiml_verbs(&r.body).is_empty(),
        "an empty response bridges the call: {}",
        r.body
    );
    let ava: i64 =
        sqlx::query_scalar("select agent_id from agent where email = 'ava@harbor.example'")
            .fetch_one(&app.db.pool)
            .await
            .expect("ava");
    assert_eq!(call_row(&app, &parent).await.screened_agent_id, Some(ava));
}

/// Tenants are walled off: a call is recorded under the brokerage whose number was dialled,
/// and another brokerage's number cannot reach it.
#[tokio::test]
async fn calls_belong_to_the_brokerage_whose_number_was_dialled() {
    let app = spawn_app().await;
    apply_setup(&app.db.pool, OTHER_BROKERAGE).await;
    let sid = new_sid("CA");
    let r = app
        .post_signed("/twilio/voice", &incoming(&sid, LEAD, "+15555550200"))
        .await;
    let doc = roxmltree::Document::parse(&r.body).expect("XML");
    let rung: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Number"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(rung, vec!["+15555550201"], "Bayside's agent, not Harbor's");
    let slug: String = sqlx::query_scalar(
        "select b.slug from call join brokerage b using (brokerage_id) where call_sid = $1",
    )
    .bind(&sid)
    .fetch_one(&app.db.pool)
    .await
    .expect("call");
    assert_eq!(slug, "bayside");
    let contacts: Vec<String> =
        sqlx::query_scalar("select b.slug from contact join brokerage b using (brokerage_id)")
            .fetch_all(&app.db.pool)
            .await
            .expect("contacts");
    assert_eq!(contacts, vec!["bayside"]);

    // A dial result naming Bayside's call but sent to Harbor's number changes nothing.
    let before = app.snapshot().await;
    let r = app
        .post_signed(
            "/twilio/voice/dial",
            &dial(&sid, MAIN_ST, "completed", Some("true"), "completed"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.snapshot().await, before);
    assert_eq!(call_row(&app, &sid).await.outcome, None);

    // Nor does Bayside's CallSid arriving as an incoming call to Harbor's number: no Harbor
    // contact, no ringing of Harbor's agents.
    let r = app
        .post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    assert_eq!(r.status, 200);
    assert!(twiml_verbs(&r.body).is_empty(), "{}", r.body);
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.webhook_count("/twilio/voice", "unknown_sid"), 1);
}

/// Times come from the server's one clock (docs/architecture.md "The scheduler"), not from the database.
#[tokio::test]
async fn recorded_times_come_from_the_servers_clock() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.clock.advance(chrono::Duration::hours(3));
    let at_call = test_start() + chrono::Duration::hours(3);
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    app.clock.advance(chrono::Duration::seconds(23));
    app.post_signed(
        "/twilio/voice/dial",
        &dial(&sid, MAIN_ST, "no-answer", Some("false"), "in-progress"),
    )
    .await;
    let (started, outcome_at): (
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as("select started_at, outcome_at from call where call_sid = $1")
        .bind(&sid)
        .fetch_one(&app.db.pool)
        .await
        .expect("call");
    assert_eq!(started, at_call);
    assert_eq!(outcome_at, Some(at_call + chrono::Duration::seconds(23)));
}

#[tokio::test]
async fn concurrent_dial_results_for_a_call_we_never_saw_record_one_call() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    let params = dial(&sid, MAIN_ST, "no-answer", Some("false"), "in-progress");
    let answers = futures_util::future::join_all(
        (0..20).map(|_| app.post_signed("/twilio/voice/dial", &params)),
    )
    .await;
    assert!(
        answers
            .iter()
            .all(|r| r.status == 200 && r.body == answers[0].body),
        "{answers:?}"
    );
    assert_eq!(app.count("call").await, 1);
    assert_eq!(app.count("contact").await, 1);
    assert_eq!(
        call_row(&app, &sid).await.outcome.as_deref(),
        Some("missed")
    );
    assert_eq!(app.webhook_count("/twilio/voice/dial", "ok"), 1);
}
