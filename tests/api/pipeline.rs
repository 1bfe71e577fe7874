//! The missed-call pipeline against a real database and the fake carrier: one text-back per
//! missed caller, never two, never none (docs/architecture.md steps 2–4; docs/reliability.md §2, §3, F2–F5,
//! F9, F10).

use chrono::Duration;
use textback_fake_twilio::{CallbackPlan, Fault, KeptBody, Scope, TRIAL_PREFIX};

use crate::helpers::*;

const LEAD: &str = "+16175550123";
const MAIN_ST: &str = "+15555550100";
const ELM_ST: &str = "+15555550110";
const THE_TEXT: &str = "Hi there, this is Sam at Harbor Realty. Sorry we missed your call about 123 Main St. How can we help? Reply STOP to opt out.";

fn incoming(call_sid: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let p = with(fixture("voice-incoming.txt"), "CallSid", call_sid);
    let p = with(with(p, "From", from), "Caller", from);
    with(with(p, "To", to), "Called", to)
}

fn dial(
    call_sid: &str,
    from: &str,
    to: &str,
    status: &str,
    bridged: Option<&str>,
) -> Vec<(String, String)> {
    let p = with(
        fixture("voice-dial-action-no-answer.txt"),
        "CallSid",
        call_sid,
    );
    let p = with(with(p, "From", from), "Caller", from);
    let p = with(
        with(with(p, "To", to), "Called", to),
        "DialCallStatus",
        status,
    );
    match bridged {
        Some(b) => with(p, "DialBridged", b),
        None => without(p, "DialBridged"),
    }
}

/// A call from `from` to `to` that nobody answers.
async fn missed_call(app: &TestApp, from: &str, to: &str) -> String {
    let sid = new_sid("CA");
    assert_eq!(
        app.post_signed("/twilio/voice", &incoming(&sid, from, to))
            .await
            .status,
        200
    );
    let r = app
        .post_signed(
            "/twilio/voice/dial",
            &dial(&sid, from, to, "no-answer", Some("false")),
        )
        .await;
    assert_eq!(r.status, 200);
    sid
}

async fn answered_call(app: &TestApp, from: &str, to: &str) {
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, from, to))
        .await;
    app.post_signed(
        "/twilio/voice/dial",
        &dial(&sid, from, to, "completed", Some("true")),
    )
    .await;
}

/// What the carrier accepted (the fake's messages: what it "has").
fn texts_to(app: &TestApp, to: &str) -> Vec<String> {
    app.fake
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| m.body)
        .collect()
}

/// Text-backs the carrier accepted for `to` (follow-ups not counted).
async fn text_backs_to(app: &TestApp, to: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from message where to_raw = $1 and kind = 'text_back' and send_state = 'sent'",
    )
    .bind(to)
    .fetch_one(&app.db.pool)
    .await
    .expect("count")
}

/// Texts to leads the carrier was asked to send (alerts to agents' phones left out).
fn creates(app: &TestApp) -> usize {
    app.fake
        .requests()
        .iter()
        .filter(|r| is_lead_text(r))
        .count()
}

async fn hold(app: &TestApp) {
    app.clock.advance(Duration::seconds(20));
}

#[tokio::test]
async fn a_missed_caller_gets_one_text_after_the_hold() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    assert_eq!(
        app.jobs().await,
        vec![("text_back".into(), "scheduled".into(), None)]
    );
    assert_eq!(app.drain().await, 0, "not before the hold delay");
    assert!(texts_to(&app, LEAD).is_empty());

    hold(&app).await;
    assert_eq!(app.drain().await, 1);
    assert_eq!(texts_to(&app, LEAD), vec![THE_TEXT.to_owned()]);
    let fake = &app.fake.messages()[0];
    assert_eq!(fake.from.as_deref(), Some(MAIN_ST));
    assert_eq!(
        fake.status_callback.as_deref(),
        Some(format!("{}/twilio/sms/status", app.public_url).as_str())
    );

    let (state, sid, send_state): (String, Option<String>, Option<String>) = sqlx::query_as(
        "select j.state, m.sid, m.send_state from job j join message m on m.job_id = j.job_id",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("job and message");
    assert_eq!(
        (state.as_str(), sid.as_deref(), send_state.as_deref()),
        ("sent", Some(fake.sid.as_str()), Some("sent"))
    );

    // Nothing more, ever, but the demo's one follow-up a day later.
    app.run_until_quiet(Duration::hours(48)).await;
    assert_eq!(creates(&app), 2);
    assert!(
        app.fake.messages()[1].body.contains("again"),
        "the follow-up"
    );
    assert_eq!(text_backs_to(&app, LEAD).await, 1);
    // The fake's delivery callbacks reached us and moved the message forward.
    let status: Option<String> =
        sqlx::query_scalar("select carrier_status from message where direction = 'outbound'")
            .fetch_one(&app.db.pool)
            .await
            .expect("m");
    assert_eq!(status.as_deref(), Some("delivered"));
    assert_eq!(app.state.metrics.text_count("text_back", "accepted"), 1);
}

#[tokio::test]
async fn every_transition_is_recorded() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    let transitions: Vec<(Option<String>, String)> = sqlx::query_as(
        "select from_state, to_state from job_transition
          where job_id = (select job_id from job where kind = 'text_back') order by job_transition_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("t");
    assert_eq!(
        transitions,
        vec![
            (None, "scheduled".into()),
            (Some("scheduled".into()), "running".into()),
            (Some("running".into()), "sent".into())
        ]
    );
}

/// "Unless the caller reconnects first."
#[tokio::test]
async fn a_reconnect_within_the_hold_cancels_the_text_back() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    app.clock.advance(Duration::seconds(10));
    answered_call(&app, LEAD, MAIN_ST).await;
    assert_eq!(
        app.jobs().await,
        vec![(
            "text_back".into(),
            "cancelled".into(),
            Some("answered_call".into())
        )]
    );
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(creates(&app), 0);
}

/// The re-check before sending (docs/architecture.md step 3): a reconnect that lands after the job was
/// claimed still stops the text (simulated by answering while the job's claim is due).
#[tokio::test]
async fn an_inbound_text_cancels_the_text_back() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    let sms = with(
        fixture("sms-inbound-reply.txt"),
        "MessageSid",
        &new_sid("SM"),
    );
    app.post_signed("/twilio/sms", &sms).await;
    assert_eq!(
        app.jobs().await,
        vec![(
            "text_back".into(),
            "cancelled".into(),
            Some("inbound_text".into())
        )]
    );
    hold(&app).await;
    app.drain().await;
    assert_eq!(creates(&app), 0);
}

/// An agent's voicemail picked up and the screen was not passed: `completed` but not bridged.
#[tokio::test]
async fn an_agents_voicemail_still_gives_a_text_back() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    app.post_signed(
        "/twilio/voice/dial",
        &dial(&sid, LEAD, MAIN_ST, "completed", Some("false")),
    )
    .await;
    hold(&app).await;
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);
}

#[tokio::test]
async fn duplicate_and_concurrent_dial_webhooks_give_one_job() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    let params = dial(&sid, LEAD, MAIN_ST, "no-answer", Some("false"));
    app.post_signed("/twilio/voice/dial", &params).await;
    futures_util::future::join_all((0..20).map(|_| app.post_signed("/twilio/voice/dial", &params)))
        .await;
    assert_eq!(app.count("job").await, 1);
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);
}

/// Two different missed calls at once from the same caller: the contact lock orders them; the
/// second re-arms the first's text-back.
#[tokio::test]
async fn concurrent_misses_from_one_caller_give_one_text_back() {
    let app = spawn_app().await;
    let calls: Vec<Vec<(String, String)>> = (0..10)
        .map(|_| dial(&new_sid("CA"), LEAD, MAIN_ST, "no-answer", Some("false")))
        .collect();
    let answers = futures_util::future::join_all(
        calls
            .iter()
            .map(|p| app.post_signed("/twilio/voice/dial", p)),
    )
    .await;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.body);
    }
    assert_eq!(app.count("call").await, 10);
    assert_eq!(app.count("job").await, 1);
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);
}

/// docs/architecture.md step 2: inside an episode a second miss re-arms a scheduled text-back; after it
/// went out, misses are recorded (and the agents alerted) for 24 h, then a new episode starts.
#[tokio::test]
async fn a_second_miss_rearms_and_never_gives_a_second_text_back() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    app.clock.advance(Duration::seconds(15));
    let second = missed_call(&app, LEAD, ELM_ST).await;
    let (run_at, answers): (chrono::DateTime<chrono::Utc>, String) =
        sqlx::query_as("select j.run_at, c.call_sid from job j join call c using (call_id)")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        run_at,
        test_start() + Duration::seconds(35),
        "re-armed: 20 s after the second miss"
    );
    assert_eq!(answers, second, "it now answers the second call");
    app.clock.advance(Duration::seconds(15));
    assert_eq!(
        app.drain().await,
        0,
        "the first call's hold no longer applies"
    );
    app.clock.advance(Duration::seconds(5));
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);
    assert!(
        app.fake.messages()[0].body.contains("about 42 Elm St"),
        "it speaks of the second call's listing"
    );

    // After the text-back went out: recorded, agents alerted, no new text.
    app.clock.advance(Duration::hours(3));
    missed_call(&app, LEAD, MAIN_ST).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);
    let alerts: i64 =
        sqlx::query_scalar("select count(*) from alert where reason = 'repeat_missed_call'")
            .fetch_one(&app.db.pool)
            .await
            .expect("a");
    assert_eq!(alerts, 1);

    // A day after the text-back, a miss starts a new episode.
    app.clock.advance(Duration::hours(22));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    assert_eq!(text_backs_to(&app, LEAD).await, 2);
}

#[tokio::test]
async fn a_landline_becomes_a_callback_task_and_gets_no_text() {
    let app = spawn_app().await;
    app.fake.set_line_type(LEAD, "landline");
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    assert_eq!(creates(&app), 0);
    assert_eq!(
        app.jobs().await,
        vec![(
            "text_back".into(),
            "skipped".into(),
            Some("line_type".into())
        )]
    );
    let (reason, detail, state): (String, Option<String>, String) =
        sqlx::query_as("select reason, detail, state from task")
            .fetch_one(&app.db.pool)
            .await
            .expect("a task");
    assert_eq!(
        (reason.as_str(), detail.as_deref(), state.as_str()),
        ("line_type", Some("landline"), "open")
    );

    // The line type is cached: a later episode does not pay for a second Lookup.
    app.clock.advance(Duration::days(2));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    let lookups = app
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v2/PhoneNumbers"))
        .count();
    assert_eq!(lookups, 1);
    assert_eq!(
        app.count("task").await,
        1,
        "one open callback task per contact"
    );
    // An answered call with the contact closes it.
    answered_call(&app, LEAD, MAIN_ST).await;
    let state: String = sqlx::query_scalar("select state from task")
        .fetch_one(&app.db.pool)
        .await
        .expect("task");
    assert_eq!(state, "done");
}

#[tokio::test]
async fn every_no_text_line_type_gets_a_task_and_every_other_a_text() {
    let app = spawn_app().await;
    let types = [
        ("landline", false),
        ("tollFree", false),
        ("premium", false),
        ("sharedCost", false),
        ("uan", false),
        ("voicemail", false),
        ("pager", false),
        ("mobile", true),
        ("fixedVoip", true),
        ("nonFixedVoip", true),
        ("personal", true),
        ("unknown", true),
    ];
    for (i, (line_type, texted)) in types.iter().enumerate() {
        let number = format!("+1617555{:04}", 2000 + i);
        app.fake.set_line_type(&number, line_type);
        missed_call(&app, &number, MAIN_ST).await;
        hold(&app).await;
        app.drain().await;
        assert_eq!(
            texts_to(&app, &number).len(),
            usize::from(*texted),
            "{line_type}"
        );
    }
    assert_eq!(app.count("task").await, 7);
}

/// The lookup cache honours `lookup_max_age` (30 days in the demo file).
#[tokio::test]
async fn a_stale_lookup_is_looked_up_again() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    app.clock.advance(Duration::days(31));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    let lookups = app
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v2/PhoneNumbers"))
        .count();
    assert_eq!(lookups, 2);
    assert_eq!(text_backs_to(&app, LEAD).await, 2);
}

/// docs/reliability.md F2: 503 (not processed) three times, then the carrier takes it: one text.
#[tokio::test]
async fn three_503s_then_success_give_one_text() {
    let app = spawn_app().await;
    app.fake.inject(
        Fault::Status {
            http: 503,
            code: None,
            recorded: false,
            retry_after: None,
        },
        Scope::Next(3),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(creates(&app), 4);
    assert_eq!(texts_to(&app, LEAD).len(), 1);
    let states: Vec<String> =
        sqlx::query_scalar("select send_state from message order by message_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("rows");
    assert_eq!(
        states,
        vec!["failed_certain", "failed_certain", "failed_certain", "sent"]
    );
    let (state, attempt): (String, i32) =
        sqlx::query_as("select state, attempt from job where kind = 'text_back'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!((state.as_str(), attempt), ("sent", 4));
}

/// docs/reliability.md F4: never a create earlier than Retry-After.
#[tokio::test]
async fn a_429_with_retry_after_is_respected() {
    let app = spawn_app().await;
    app.fake.inject(
        Fault::Status {
            http: 429,
            code: Some(20429),
            recorded: false,
            retry_after: Some(2),
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    let refused_at = textback::clock::Clock::now(app.clock.as_ref());
    let run_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select run_at from job")
        .fetch_one(&app.db.pool)
        .await
        .expect("job");
    assert!(
        run_at >= refused_at + Duration::seconds(2),
        "retry at {run_at}, refused at {refused_at}"
    );
    app.clock.advance(Duration::milliseconds(1900));
    app.drain().await;
    assert_eq!(creates(&app), 1, "nothing before Retry-After");
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(creates(&app), 2);
    assert_eq!(texts_to(&app, LEAD).len(), 1);
}

/// docs/reliability.md F3: the carrier took the text, then answered 500: reconciled by its list,
/// no second create.
#[tokio::test]
async fn accepted_then_500_is_reconciled_without_a_second_text() {
    let app = spawn_app().await;
    // No status callbacks: this is the listing's path (the callback's is tested below).
    app.fake.set_callback_plan(CallbackPlan::disabled());
    app.fake.inject(
        Fault::Status {
            http: 500,
            code: None,
            recorded: true,
            retry_after: None,
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    assert_eq!(app.jobs().await[0].1, "reconciling");
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(creates(&app), 1);
    assert_eq!(texts_to(&app, LEAD).len(), 1);
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("select state, reason from job where kind = 'text_back'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("sent", Some("reconciled"))
    );
    let (send_state, sid): (Option<String>, Option<String>) =
        sqlx::query_as("select send_state, sid from message")
            .fetch_one(&app.db.pool)
            .await
            .expect("m");
    assert_eq!(send_state.as_deref(), Some("sent"));
    assert_eq!(
        sid.as_deref(),
        Some(app.fake.messages()[0].sid.as_str()),
        "linked to the carrier's message"
    );
}

/// F3 variant: a 500 that was not processed: absent from two listings, so retried once.
#[tokio::test]
async fn a_500_that_was_not_processed_is_retried_after_two_listings() {
    let app = spawn_app().await;
    app.fake.inject(
        Fault::Status {
            http: 500,
            code: None,
            recorded: false,
            retry_after: None,
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(texts_to(&app, LEAD).len(), 1, "exactly one accepted create");
    assert_eq!(creates(&app), 2);
    let listings = app
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/Messages.json"))
        .count();
    assert!(
        listings >= 2,
        "two listings before the retry, saw {listings}"
    );
    let states: Vec<String> =
        sqlx::query_scalar("select send_state from message order by message_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("rows");
    assert_eq!(states, vec!["failed_certain", "sent"]);
}

/// F3 variants: the list cannot settle it → needs_review, never a second create.
#[tokio::test]
async fn an_unreadable_or_ambiguous_list_needs_review_and_never_resends() {
    for (fault, reason) in [
        (Fault::ListFail, "carrier_list_unreadable"),
        (Fault::ListDup, "carrier_list_ambiguous"),
    ] {
        let app = spawn_app().await;
        app.fake.inject(
            Fault::Status {
                http: 500,
                code: None,
                recorded: true,
                retry_after: None,
            },
            Scope::Next(1),
        );
        app.fake.inject(fault, Scope::Always);
        missed_call(&app, LEAD, MAIN_ST).await;
        hold(&app).await;
        app.run_until_quiet(Duration::hours(3)).await;
        assert_eq!(creates(&app), 1, "{reason}");
        let (state, why): (String, Option<String>) =
            sqlx::query_as("select state, reason from job where kind = 'text_back'")
                .fetch_one(&app.db.pool)
                .await
                .expect("job");
        assert_eq!(
            (state.as_str(), why.as_deref()),
            ("needs_review", Some(reason))
        );
        let review: Option<String> = sqlx::query_scalar("select review_reason from message")
            .fetch_one(&app.db.pool)
            .await
            .expect("m");
        assert_eq!(review.as_deref(), Some(reason));
        let alerts: i64 =
            sqlx::query_scalar("select count(*) from alert where reason = 'text_needs_review'")
                .fetch_one(&app.db.pool)
                .await
                .expect("a");
        assert_eq!(alerts, 1);
    }
}

/// Issue 15 §2: the create answered 500 while the carrier kept the message under another body
/// (a trial account's prefix, Message Redaction's empty body). Reconciliation counted a
/// listed message as ours only when its body was byte-identical, so the text went again 121 s
/// later. A message of the send's window under another body is not proof of absence: a person
/// decides, nothing is resent.
#[tokio::test]
async fn a_text_the_carrier_kept_under_another_body_needs_review_and_is_never_resent() {
    for kept in [
        KeptBody::Prefixed(TRIAL_PREFIX.to_owned()),
        KeptBody::Redacted,
    ] {
        let app = spawn_app().await;
        app.fake.set_callback_plan(CallbackPlan::disabled());
        app.fake.keep_bodies(kept.clone());
        app.fake.inject(
            Fault::Status {
                http: 500,
                code: None,
                recorded: true,
                retry_after: None,
            },
            Scope::Next(1),
        );
        missed_call(&app, LEAD, MAIN_ST).await;
        hold(&app).await;
        app.run_until_quiet(Duration::hours(3)).await;
        assert_eq!(creates(&app), 1, "{kept:?}: never a second create");
        let (state, why): (String, Option<String>) =
            sqlx::query_as("select state, reason from job where kind = 'text_back'")
                .fetch_one(&app.db.pool)
                .await
                .expect("job");
        assert_eq!(
            (state.as_str(), why.as_deref()),
            ("needs_review", Some("carrier_body_differs")),
            "{kept:?}"
        );
        let (send_state, review): (Option<String>, Option<String>) =
            sqlx::query_as("select send_state, review_reason from message")
                .fetch_one(&app.db.pool)
                .await
                .expect("m");
        assert_eq!(send_state.as_deref(), Some("needs_review"));
        assert_eq!(review.as_deref(), Some("carrier_body_differs"));
    }
}

/// Issue 15 §2: Twilio's list can lag the create by seconds. A text the list shows only after
/// the first look is still found (one create, `sent`), as long as the lag is shorter than the
/// least age of the second "not found" listing (2 minutes in production, 2 s here).
#[tokio::test]
async fn a_text_the_list_shows_late_is_still_found() {
    let app = spawn_app().await;
    app.fake.set_callback_plan(CallbackPlan::disabled());
    app.fake.set_list_lag(Duration::milliseconds(1500));
    app.fake.inject(
        Fault::Status {
            http: 500,
            code: None,
            recorded: true,
            retry_after: None,
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(creates(&app), 1);
    let listings: Vec<String> = app
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/Messages.json"))
        .map(|r| r.outcome.clone())
        .collect();
    assert!(
        listings
            .first()
            .is_some_and(|o| o.starts_with("200 listed 0")),
        "the first look finds nothing yet: {listings:?}"
    );
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("select state, reason from job where kind = 'text_back'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("sent", Some("reconciled"))
    );
}

/// F5: a carrier slower than the client's timeout: unknown, then found in the list.
#[tokio::test]
async fn a_timed_out_send_is_reconciled() {
    let app = spawn_app().await;
    app.fake.inject(
        Fault::Delay {
            ms: 1500,
            recorded: true,
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(creates(&app), 1);
    assert_eq!(app.jobs().await[0].1, "sent");
}

/// The carrier unreachable for longer than the retry budget: dead with the reason.
#[tokio::test]
async fn an_unreachable_carrier_past_the_budget_ends_dead() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    app.fake.inject(
        Fault::Status {
            http: 503,
            code: None,
            recorded: false,
            retry_after: None,
        },
        Scope::Always,
    );
    hold(&app).await;
    app.run_until_quiet(Duration::hours(3)).await;
    assert!(texts_to(&app, LEAD).is_empty());
    let (state, reason, error): (String, Option<String>, Option<String>) =
        sqlx::query_as("select state, reason, last_error from job")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref(), error.as_deref()),
        ("dead", Some("stale"), Some("HTTP 503"))
    );
}

/// docs/reliability.md F6: the carrier unreachable (connections refused, the Lookup included).
/// Back within the retry budget: the text goes once. Down past it: `dead`, with the
/// connection error as the reason, and nothing sent.
#[tokio::test]
async fn an_unreachable_carrier_is_retried_until_it_returns_or_the_budget_ends() {
    for back_in_time in [true, false] {
        let app = spawn_app().await;
        missed_call(&app, LEAD, MAIN_ST).await;
        app.fake.go_down().await;
        hold(&app).await;
        app.drain().await;
        let (state, error): (String, Option<String>) =
            sqlx::query_as("select state, last_error from job where kind = 'text_back'")
                .fetch_one(&app.db.pool)
                .await
                .expect("job");
        assert_eq!(state, "scheduled", "a refused connection is retried");
        assert!(error.is_some(), "the failure is kept: {error:?}");
        if back_in_time {
            // A second refused attempt, well within the budget (10 s with the test timing).
            app.clock.advance(Duration::seconds(2));
            app.drain().await;
            let (state, attempt): (String, i32) =
                sqlx::query_as("select state, attempt from job where kind = 'text_back'")
                    .fetch_one(&app.db.pool)
                    .await
                    .expect("job");
            assert_eq!((state.as_str(), attempt), ("scheduled", 2));
            app.fake.go_up().await.expect("the fake listens again");
            app.run_until_quiet(Duration::hours(1)).await;
            assert_eq!(texts_to(&app, LEAD).len(), 1);
            assert_eq!(creates(&app), 1);
            assert_eq!(app.jobs().await[0].1, "sent");
        } else {
            app.run_until_quiet(Duration::hours(3)).await;
            app.fake.go_up().await.expect("the fake listens again");
            assert_eq!(creates(&app), 0);
            let (state, error): (String, Option<String>) =
                sqlx::query_as("select state, last_error from job where kind = 'text_back'")
                    .fetch_one(&app.db.pool)
                    .await
                    .expect("job");
            assert_eq!(state, "dead");
            let error = error.unwrap_or_default();
            assert!(
                error.contains("connect") || error.contains("refused"),
                "the reason names the connection: {error}"
            );
        }
    }
}

/// docs/reliability.md §3: 21610 suppresses the number, the job ends dead(21610), no retry; the
/// next miss is skipped `opted_out` without paying for anything.
#[tokio::test]
async fn a_21610_suppresses_the_number_and_nothing_more_is_sent() {
    let app = spawn_app().await;
    app.fake.inject(
        Fault::Status {
            http: 400,
            code: Some(21610),
            recorded: false,
            retry_after: None,
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(
        app.jobs().await,
        vec![("text_back".into(), "dead".into(), Some("21610".into()))]
    );
    let source: String = sqlx::query_scalar("select source from suppression where phone = $1")
        .bind(LEAD)
        .fetch_one(&app.db.pool)
        .await
        .expect("suppressed");
    assert_eq!(source, "carrier");
    app.clock.advance(Duration::days(2));
    missed_call(&app, LEAD, ELM_ST).await;
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(creates(&app), 1);
    assert_eq!(
        app.jobs().await[1],
        (
            "text_back".into(),
            "skipped".into(),
            Some("opted_out".into())
        )
    );
}

#[tokio::test]
async fn a_21211_marks_the_number_invalid() {
    let app = spawn_app().await;
    app.fake.inject(
        Fault::Status {
            http: 400,
            code: Some(21211),
            recorded: false,
            retry_after: None,
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    app.clock.advance(Duration::days(2));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    let jobs = app.jobs().await;
    assert_eq!(
        jobs[0],
        ("text_back".into(), "dead".into(), Some("21211".into()))
    );
    assert_eq!(
        jobs[1],
        (
            "text_back".into(),
            "skipped".into(),
            Some("invalid_number".into())
        )
    );
    assert_eq!(creates(&app), 1);
}

#[tokio::test]
async fn sync_codes_that_mean_no_texts_give_a_callback_task() {
    let app = spawn_app().await;
    app.fake.inject(
        Fault::Status {
            http: 400,
            code: Some(21614),
            recorded: false,
            retry_after: None,
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    let (reason, detail): (String, Option<String>) =
        sqlx::query_as("select reason, detail from task")
            .fetch_one(&app.db.pool)
            .await
            .expect("task");
    assert_eq!(
        (reason.as_str(), detail.as_deref()),
        ("cannot_receive", Some("21614"))
    );
}

/// Status callbacks: 30006 gives one callback task however often it is delivered; 30007 and
/// 30034 alert the admins; 30004 suppresses; 30008 flags the message.
#[tokio::test]
async fn asynchronous_codes_have_their_effects_once() {
    let app = spawn_app().await;
    for (i, code) in ["30006", "30007", "30004", "30008"].iter().enumerate() {
        let lead = format!("+1617555{:04}", 3000 + i);
        missed_call(&app, &lead, MAIN_ST).await;
        hold(&app).await;
        app.drain().await;
        for _ in 0..3 {
            undelivered(&app, &lead, code).await;
        }
    }
    let tasks: Vec<(String, Option<String>)> = sqlx::query_as("select reason, detail from task")
        .fetch_all(&app.db.pool)
        .await
        .expect("tasks");
    assert_eq!(
        tasks,
        vec![("cannot_receive".into(), Some("30006".into()))],
        "one task"
    );
    let alerts: Vec<String> = sqlx::query_scalar("select reason from alert order by reason")
        .fetch_all(&app.db.pool)
        .await
        .expect("alerts");
    // The task's alert for the agents, and the filter's for the admins: once each.
    assert_eq!(alerts, vec!["callback_task", "carrier_filtered"]);
    let suppressed: i64 = sqlx::query_scalar("select count(*) from suppression")
        .fetch_one(&app.db.pool)
        .await
        .expect("s");
    assert_eq!(suppressed, 1);
    let flagged: i64 = sqlx::query_scalar(
        "select count(*) from message where review_reason = 'carrier_unknown_failure'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("f");
    assert_eq!(flagged, 1);
}

#[tokio::test]
async fn an_unclassified_dial_result_becomes_a_task_and_no_text() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    app.post_signed(
        "/twilio/voice/dial",
        &dial(&sid, LEAD, MAIN_ST, "something-new", None),
    )
    .await;
    hold(&app).await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(app.jobs().await, vec![], "no text-back");
    let (reason, detail): (String, Option<String>) =
        sqlx::query_as("select reason, detail from task")
            .fetch_one(&app.db.pool)
            .await
            .expect("task");
    assert_eq!(
        (reason.as_str(), detail.as_deref()),
        ("unclassified_call", Some("something-new"))
    );
}

#[tokio::test]
async fn a_caller_without_a_number_gets_no_text_back() {
    let app = spawn_app().await;
    missed_call(&app, "anonymous", MAIN_ST).await;
    assert_eq!(app.count("job").await, 0);
}

/// docs/security.md §3 rows 12a and 13 (R8).
#[tokio::test]
async fn unusable_numbers_are_skipped_with_their_reason() {
    let app = spawn_app().await;
    let table = [
        ("+442071838750", "outside_us"),
        ("+14165550123", "outside_us"),
        ("+12115550123", "invalid_number"),
        ("+16175550999", "invalid_number"),
    ];
    app.fake.set_lookup_invalid("+16175550999");
    for (number, _) in table {
        missed_call(&app, number, MAIN_ST).await;
    }
    hold(&app).await;
    app.drain().await;
    let reasons: Vec<(String, Option<String>)> =
        sqlx::query_as("select c.phone, j.reason from job j join contact c using (brokerage_id, contact_id) order by j.job_id").fetch_all(&app.db.pool).await.expect("jobs");
    for ((number, reason), (phone, got)) in table.iter().zip(&reasons) {
        assert_eq!((phone.as_str(), got.as_deref()), (*number, Some(*reason)));
    }
    assert_eq!(creates(&app), 0);
    let lookups = app
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v2/PhoneNumbers"))
        .count();
    assert_eq!(lookups, 1, "only the well-shaped US number was looked up");
    let abroad: i64 = sqlx::query_scalar("select count(*) from task where reason = 'outside_us'")
        .fetch_one(&app.db.pool)
        .await
        .expect("t");
    assert_eq!(abroad, 2, "callers from abroad become callback tasks");
}

/// docs/twilio.md §1.6 point 3: the caller hung up while agents rang; the parent's status callback
/// is the only signal. The dial result that may follow does not add or delay anything.
#[tokio::test]
async fn a_caller_who_hangs_up_while_ringing_gets_a_text_back_once() {
    let app = spawn_app().await;
    let sid = new_sid("CA");
    app.post_signed("/twilio/voice", &incoming(&sid, LEAD, MAIN_ST))
        .await;
    let status = with(
        with(fixture("voice-status-completed.txt"), "CallSid", &sid),
        "SequenceNumber",
        "0",
    );
    app.post_signed("/twilio/voice/status", &status).await;
    assert_eq!(app.count("job").await, 1);
    app.clock.advance(Duration::seconds(5));
    app.post_signed(
        "/twilio/voice/dial",
        &dial(&sid, LEAD, MAIN_ST, "canceled", None),
    )
    .await;
    let run_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select run_at from job")
        .fetch_one(&app.db.pool)
        .await
        .expect("job");
    assert_eq!(
        run_at,
        test_start() + Duration::seconds(20),
        "not re-armed by the later dial result"
    );
    app.clock.advance(Duration::seconds(15));
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);
}

/// A suppression committed before the job runs wins (the gate re-runs in the pre-send
/// transaction; docs/compliance.md R1).
#[tokio::test]
async fn a_suppressed_number_gets_nothing() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    sqlx::query("insert into suppression (brokerage_id, phone, source, created_at) select brokerage_id, $1, 'test', now() from brokerage")
        .bind(LEAD)
        .execute(&app.db.pool)
        .await
        .expect("suppress");
    hold(&app).await;
    app.drain().await;
    assert_eq!(creates(&app), 0);
    assert_eq!(
        app.jobs().await[0],
        (
            "text_back".into(),
            "skipped".into(),
            Some("opted_out".into())
        )
    );
}

/// Template variants: each contact gets one, always the same, recorded with the message.
#[tokio::test]
async fn each_contact_gets_a_stable_template_variant() {
    let setup = DEMO.replace(
        "template = \"Hi {first_name|there}, this is {agent_first_name} at {brokerage}. Sorry we missed your call about {listing|one of our homes}. How can we help? Reply STOP to opt out.\"",
        "template = [\"A: {brokerage}. Reply STOP to opt out.\", \"B: {brokerage}. Reply STOP to opt out.\"]",
    );
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..Default::default()
    })
    .await;
    let callers: Vec<String> = (0..8).map(|i| format!("+1617555{:04}", 4000 + i)).collect();
    // Two episodes two days apart, the second in the reverse order: each contact must get the
    // same variant both times, whatever the order (issue 15 §8: the test never called anyone
    // twice, so a variant picked per call would have passed).
    for caller in &callers {
        missed_call(&app, caller, MAIN_ST).await;
    }
    hold(&app).await;
    app.drain().await;
    app.clock.advance(Duration::days(2));
    for caller in callers.iter().rev() {
        missed_call(&app, caller, MAIN_ST).await;
    }
    hold(&app).await;
    app.drain().await;
    let variants: Vec<(String, Option<i32>, String)> = sqlx::query_as(
        "select to_raw, template_variant, body from message where kind = 'text_back' order by message_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("m");
    assert_eq!(variants.len(), 16, "two text-backs each");
    for (to, variant, body) in &variants {
        let expected = if *variant == Some(0) { "A:" } else { "B:" };
        assert!(body.starts_with(expected), "{variant:?} {body}");
        let theirs: std::collections::BTreeSet<Option<i32>> = variants
            .iter()
            .filter(|(t, _, _)| t == to)
            .map(|(_, v, _)| *v)
            .collect();
        assert_eq!(
            theirs.len(),
            1,
            "{to} got one variant every time: {theirs:?}"
        );
    }
    assert!(variants.iter().any(|v| v.1 == Some(0)) && variants.iter().any(|v| v.1 == Some(1)));
}

/// An inbound text whose sid we do not know, from a recipient of an unsettled send, makes that
/// send's reconcile run at once.
#[tokio::test]
async fn a_status_callback_for_an_unsettled_send_hurries_its_reconcile() {
    let app = spawn_app().await;
    app.fake.set_callback_plan(CallbackPlan::disabled());
    app.fake.inject(
        Fault::Status {
            http: 500,
            code: None,
            recorded: true,
            retry_after: None,
        },
        Scope::Next(1),
    );
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    let reconcile_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select run_at from job where kind = 'reconcile'")
            .fetch_one(&app.db.pool)
            .await
            .expect("r");
    let sid = app.fake.messages()[0].sid.clone();
    let callback = with(
        with(
            with(fixture("sms-status-delivered.txt"), "MessageSid", &sid),
            "SmsSid",
            &sid,
        ),
        "To",
        LEAD,
    );
    assert_eq!(
        app.post_signed("/twilio/sms/status", &callback)
            .await
            .status,
        200
    );
    let hurried: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select run_at from job where kind = 'reconcile'")
            .fetch_one(&app.db.pool)
            .await
            .expect("r");
    assert!(hurried < reconcile_at, "{hurried} < {reconcile_at}");
    app.drain().await;
    assert_eq!(app.jobs().await[0].1, "sent");
}

/// The fake calls back at once, often before the send's record commits: no status is lost
/// (orphan callbacks are kept and adopted when the sid is linked).
#[tokio::test]
async fn status_callbacks_that_race_the_record_are_not_lost() {
    let app = spawn_app().await;
    let leads: Vec<String> = (0..30)
        .map(|i| format!("+1617555{:04}", 5000 + i))
        .collect();
    for lead in &leads {
        missed_call(&app, lead, MAIN_ST).await;
    }
    hold(&app).await;
    app.drain().await;
    app.drain().await;
    let statuses: Vec<Option<String>> = sqlx::query_scalar(
        "select carrier_status from message where direction = 'outbound' order by message_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("messages");
    assert_eq!(statuses.len(), 30);
    assert!(
        statuses.iter().all(|s| s.as_deref() == Some("delivered")),
        "{statuses:?}"
    );
    let orphans: i64 =
        sqlx::query_scalar("select count(*) from message_status_event where message_id is null")
            .fetch_one(&app.db.pool)
            .await
            .expect("o");
    assert_eq!(orphans, 0, "every orphan was adopted");
    assert_eq!(creates(&app), 30);
}

/// The last message the carrier accepted for `to` comes back `undelivered` with `code` (a
/// signed status callback, as Twilio sends it).
async fn undelivered(app: &TestApp, to: &str, code: &str) {
    let sid = app
        .fake
        .messages()
        .into_iter()
        .rev()
        .find(|m| m.to == to)
        .expect("sent")
        .sid;
    let callback = with(
        with(
            with(
                with(
                    fixture("sms-status-undelivered-30006.txt"),
                    "MessageSid",
                    &sid,
                ),
                "SmsSid",
                &sid,
            ),
            "To",
            to,
        ),
        "ErrorCode",
        code,
    );
    assert_eq!(
        app.post_signed("/twilio/sms/status", &callback)
            .await
            .status,
        200
    );
}

async fn jobs_of(app: &TestApp, kind: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as("select state, reason from job where kind = $1 order by job_id")
        .bind(kind)
        .fetch_all(&app.db.pool)
        .await
        .expect("jobs")
}

/// Issue 15 §3: after the text-back came back undelivered with 30006 (landline or unreachable
/// carrier) or 30005 (unknown handset), the follow-up still went 3 s later and the next
/// episode texted the number again. Now the sequence stops (`cancelled(cannot_text)`), the
/// number is marked unable to take texts, and the next miss becomes a callback task without
/// a Lookup; an inbound text from the number proves otherwise and clears the mark.
#[tokio::test]
async fn a_number_the_carrier_calls_dead_gets_no_more_automated_texts() {
    for code in ["30006", "30005"] {
        let app = spawn_app().await;
        app.fake.set_callback_plan(CallbackPlan::disabled());
        missed_call(&app, LEAD, MAIN_ST).await;
        hold(&app).await;
        app.drain().await;
        assert_eq!(creates(&app), 1, "{code}: the text-back");
        undelivered(&app, LEAD, code).await;
        assert_eq!(
            jobs_of(&app, "follow_up").await,
            vec![("cancelled".into(), Some("cannot_text".into()))],
            "{code}"
        );
        // The next episode, two days later: a callback task, no Lookup, no text.
        app.clock.advance(Duration::days(2));
        let lookups_before = app
            .fake
            .requests()
            .iter()
            .filter(|r| r.path.contains("/PhoneNumbers/"))
            .count();
        missed_call(&app, LEAD, MAIN_ST).await;
        hold(&app).await;
        app.run_until_quiet(Duration::hours(1)).await;
        assert_eq!(creates(&app), 1, "{code}: nothing more went to the number");
        assert_eq!(
            jobs_of(&app, "text_back").await[1],
            ("skipped".into(), Some("cannot_receive".into())),
            "{code}"
        );
        let lookups_after = app
            .fake
            .requests()
            .iter()
            .filter(|r| r.path.contains("/PhoneNumbers/"))
            .count();
        assert_eq!(lookups_after, lookups_before, "{code}: nothing paid for");
        let open: Vec<(String, Option<String>)> =
            sqlx::query_as("select reason, detail from task where state = 'open'")
                .fetch_all(&app.db.pool)
                .await
                .expect("tasks");
        assert_eq!(open, vec![("cannot_receive".into(), Some(code.into()))]);
        // The lead texts: the number takes texts after all. The next episode is texted.
        app.text_in(LEAD, MAIN_ST, "This is my cell, you can text me")
            .await;
        app.drain().await;
        app.clock.advance(Duration::days(2));
        missed_call(&app, LEAD, MAIN_ST).await;
        hold(&app).await;
        app.drain().await;
        assert_eq!(creates(&app), 2, "{code}: texted again after the proof");
    }
}

/// Issue 15 §3: a filtered text (30007) ends the contact's sequence (a second text to a number
/// whose first was filtered hurts the sender's reputation), and the admins are told.
#[tokio::test]
async fn a_filtered_text_ends_the_sequence() {
    let app = spawn_app().await;
    app.fake.set_callback_plan(CallbackPlan::disabled());
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    undelivered(&app, LEAD, "30007").await;
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![("cancelled".into(), Some("filtered".into()))]
    );
    app.run_until_quiet(Duration::days(3)).await;
    assert_eq!(creates(&app), 1);
    let alerts: i64 =
        sqlx::query_scalar("select count(*) from alert where reason = 'carrier_filtered'")
            .fetch_one(&app.db.pool)
            .await
            .expect("alerts");
    assert_eq!(alerts, 1);
}

/// A 30007 that arrives while the follow-up is already claimed (running, so the callback's
/// cancellation of scheduled steps does not reach it) still stops it: the step checks the
/// text-back's error when it runs.
#[tokio::test]
async fn a_filtered_text_stops_a_follow_up_claimed_before_the_callback() {
    let app = spawn_app().await;
    app.fake.set_callback_plan(CallbackPlan::disabled());
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    // The follow-up is claimed when the callback comes …
    let claim = |state: &'static str| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query(
                "update job set state = $1, lease_until = case when $1 = 'running' then now() + interval '1 hour' end
                  where kind = 'follow_up'",
            )
            .bind(state)
            .execute(&pool)
            .await
            .expect("claim");
        }
    };
    claim("running").await;
    undelivered(&app, LEAD, "30007").await;
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![("running".into(), None)],
        "the callback cannot cancel a claimed step"
    );
    // … and runs after it.
    claim("scheduled").await;
    app.run_until_quiet(Duration::days(3)).await;
    assert_eq!(creates(&app), 1, "no second text to a filtered number");
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![("cancelled".into(), Some("filtered".into()))]
    );
}

/// Issue 15 §3: 30003 (handset unreachable: off, no signal) may pass: a callback task, and the
/// next step still goes; two 30003s in a row end the sequence (`cancelled(unreachable)`).
#[tokio::test]
async fn two_unreachable_texts_in_a_row_end_the_sequence() {
    let setup = format!(
        "{DEMO}\n[[follow_ups]]\nafter = \"3d\"\ntemplate = \"{{brokerage}}: one last note about {{listing|our homes}}. Reply STOP to opt out.\"\n"
    );
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await;
    // Only the callbacks the test sends: an `undelivered` never follows a `delivered`.
    app.fake.set_callback_plan(CallbackPlan::disabled());
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app).await;
    app.drain().await;
    undelivered(&app, LEAD, "30003").await;
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![("scheduled".into(), None), ("scheduled".into(), None)],
        "one 30003: the sequence goes on"
    );
    // The first follow-up goes, and comes back 30003 too.
    let first_due: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select min(run_at) from job where kind = 'follow_up'")
            .fetch_one(&app.db.pool)
            .await
            .expect("due");
    app.clock.set(first_due);
    app.drain().await;
    assert_eq!(creates(&app), 2, "the first follow-up went");
    undelivered(&app, LEAD, "30003").await;
    let follow_ups = jobs_of(&app, "follow_up").await;
    assert_eq!(follow_ups[0].0, "sent");
    assert_eq!(
        follow_ups[1],
        ("cancelled".into(), Some("unreachable".into()))
    );
    app.run_until_quiet(Duration::days(5)).await;
    assert_eq!(creates(&app), 2);
    let tasks: i64 =
        sqlx::query_scalar("select count(*) from task where reason = 'cannot_receive'")
            .fetch_one(&app.db.pool)
            .await
            .expect("tasks");
    assert_eq!(tasks, 1, "one open callback task for the contact");
}

/// Issue 15 §4: with `caller_name_lookup = true` the greeting took the first word of the CNAM
/// string ("Hi WIRELESS"). A name is used only for a consumer whose CNAM reads as a person's
/// name one way (surname first or not), title-cased; else the template's fallback.
#[tokio::test]
async fn the_caller_name_greeting_uses_only_a_consumers_first_name() {
    let setup = DEMO.replace("caller_name_lookup = false", "caller_name_lookup = true");
    assert_ne!(setup, DEMO);
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await;
    let callers = [
        ("+16175550141", "SMITH,JOHN", "CONSUMER", "Hi John,"),
        ("+16175550142", "GARCIA MARIA", "CONSUMER", "Hi Maria,"),
        ("+16175550143", "WIRELESS CALLER", "CONSUMER", "Hi there,"),
        ("+16175550144", "BOSTON MA", "CONSUMER", "Hi there,"),
        ("+16175550145", "SMITH JOHN", "BUSINESS", "Hi there,"),
        ("+16175550146", "JORDAN LEE", "CONSUMER", "Hi there,"),
    ];
    for (phone, cnam, kind, _) in callers {
        app.fake.set_caller(phone, cnam, kind);
        missed_call(&app, phone, MAIN_ST).await;
    }
    hold(&app).await;
    app.drain().await;
    for (phone, cnam, _, greeting) in callers {
        let texts = texts_to(&app, phone);
        assert_eq!(texts.len(), 1, "{cnam}");
        assert!(texts[0].starts_with(greeting), "{cnam}: {}", texts[0]);
    }
}
