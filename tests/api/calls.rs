//! The call side (docs/calls.md): callbacks through the brokerage number from the inbox, from
//! an alert's link and automatically after a miss; the call rule; voicemails. The fake carrier
//! plays both legs of every call textback creates, with Twilio's shapes and signatures.

use crate::helpers::*;
use textback_fake_twilio::{AgentAction, CallPlan, Fault, LeadAction, Scope};

const LEAD: &str = "+16175550123";
const MAIN_ST: &str = "+15555550100"; // rings Sam, then Ava; listing 123 Main St
const SAM: &str = "+15555550101";
const AVA: &str = "+15555550102";

async fn conversation_of(app: &TestApp, phone: &str) -> i64 {
    sqlx::query_scalar(
        "select c.conversation_id from conversation c join contact ct using (contact_id) where ct.phone = $1",
    )
    .bind(phone)
    .fetch_one(&app.db.pool)
    .await
    .expect("conversation")
}

#[derive(Debug, sqlx::FromRow)]
struct Cb {
    origin: String,
    agent_phone: String,
    state: String,
    outcome: Option<String>,
    detail: Option<String>,
    talk_secs: Option<i32>,
}

async fn callbacks(app: &TestApp) -> Vec<Cb> {
    sqlx::query_as(
        "select cb.origin, a.phone as agent_phone, cb.state, cb.outcome, cb.detail, cb.talk_secs
           from callback cb join agent a using (agent_id) order by cb.callback_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("callbacks")
}

fn call_creates(app: &TestApp) -> Vec<textback_fake_twilio::RecordedRequest> {
    app.fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/Calls.json"))
        .collect()
}

async fn text_back_state(app: &TestApp) -> (String, Option<String>) {
    sqlx::query_as(
        "select state, reason from job where kind = 'text_back' order by job_id desc limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("text-back")
}

/// A miss from LEAD on 123 Main St (its text-back waits 20 s), and Sam logged in on it.
async fn missed_and_sam(app: &TestApp) -> (Person, i64) {
    app.missed_call(LEAD, MAIN_ST).await;
    let id = conversation_of(app, LEAD).await;
    let sam = app.person("harbor", "sam@harbor.example").await;
    (sam, id)
}

#[tokio::test]
async fn a_callback_from_the_inbox_rings_the_agent_then_bridges_the_lead_through_the_number_called()
{
    let app = spawn_app().await;
    app.fake.set_default_call_plan(Some(CallPlan::connects(42)));
    let (mut sam, id) = missed_and_sam(&app).await;
    let r = sam.get(&format!("/inbox/c/{id}")).await;
    assert!(
        r.body.contains("id=\"call-back\""),
        "the thread offers the call back"
    );
    let r = sam.post(&format!("/inbox/c/{id}/callback"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    app.drain().await;

    // One create: the agent's phone, from the number the lead called, with the four events.
    let creates = call_creates(&app);
    assert_eq!(creates.len(), 1);
    let p = |k: &str| {
        creates[0]
            .params
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(p("To"), [SAM]);
    assert_eq!(p("From"), [MAIN_ST]);
    assert_eq!(
        p("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(p("Timeout"), ["18"]);
    assert!(p("Url")[0].contains("/twilio/voice/callback?cb="));
    // On 1 the lead was dialled, with the brokerage number as caller ID.
    let dialed = app.fake.dialed();
    assert_eq!(dialed.len(), 1);
    assert_eq!(dialed[0].1, LEAD);
    let steps: Vec<String> = app
        .fake
        .call_log()
        .into_iter()
        .map(|s| {
            assert_eq!(s.answer, Ok(200), "{}", s.what);
            s.what
        })
        .collect();
    assert!(
        steps.contains(&"digits:1".to_owned()) && steps.contains(&"dial:completed".to_owned()),
        "{steps:?}"
    );

    let cbs = callbacks(&app).await;
    assert_eq!(cbs.len(), 1);
    assert_eq!(
        (cbs[0].origin.as_str(), cbs[0].agent_phone.as_str()),
        ("inbox", SAM)
    );
    assert_eq!(
        (cbs[0].state.as_str(), cbs[0].outcome.as_deref()),
        ("ended", Some("connected"))
    );
    assert_eq!(cbs[0].talk_secs, Some(42));
    // A connected bridge is an answered call: the pending text-back is cancelled, the lead's
    // "call connected" moves.
    assert_eq!(
        text_back_state(&app).await,
        ("cancelled".into(), Some("called_back".into()))
    );
    let answered: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select answered_at from lead")
            .fetch_one(&app.db.pool)
            .await
            .expect("lead");
    assert!(answered.is_some());
    let r = sam.get(&format!("/inbox/c/{id}")).await;
    assert!(
        r.body
            .contains("Called back by Sam Rivera: connected, 0:42"),
        "{}",
        r.body
    );
    // The job watched the call and ended once the carrier's record said so.
    app.run_until_quiet(chrono::Duration::minutes(10)).await;
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("select state, reason from job where kind = 'call_back'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("done", Some("ended_connected"))
    );
}

#[tokio::test]
async fn each_way_a_callback_can_fail_is_recorded_and_leaves_the_text_back_as_it_was() {
    let cases = [
        (CallPlan::agent(AgentAction::NoAnswer), "agent_no_answer", 0),
        (CallPlan::agent(AgentAction::Busy), "agent_no_answer", 0),
        (
            CallPlan::agent(AgentAction::PressesNothing),
            "agent_declined",
            0,
        ),
        (
            CallPlan::agent(AgentAction::Presses("2".into())),
            "agent_declined",
            0,
        ),
        (CallPlan::lead(LeadAction::Busy), "lead_busy", 1),
        (CallPlan::lead(LeadAction::NoAnswer), "lead_no_answer", 1),
        (CallPlan::lead(LeadAction::Fails), "lead_failed", 1),
    ];
    for (plan, want, dialled) in cases {
        let app = spawn_app().await;
        app.fake.set_default_call_plan(Some(plan.clone()));
        let (mut sam, id) = missed_and_sam(&app).await;
        sam.get(&format!("/inbox/c/{id}")).await;
        let r = sam.post(&format!("/inbox/c/{id}/callback"), &[]).await;
        assert_eq!(r.status, 303, "{}", r.body);
        app.drain().await;
        let cbs = callbacks(&app).await;
        assert_eq!(cbs.len(), 1, "{plan:?}");
        assert_eq!(cbs[0].outcome.as_deref(), Some(want), "{plan:?}");
        assert_eq!(app.fake.dialed().len(), dialled, "{plan:?}");
        assert_eq!(
            text_back_state(&app).await.0,
            "scheduled",
            "{plan:?}: the text-back still goes"
        );
        let r = sam.get(&format!("/inbox/c/{id}")).await;
        assert!(
            r.body.contains("Callback to Sam Rivera&#39;s phone")
                || r.body.contains("Callback to Sam Rivera's phone"),
            "{plan:?}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn the_call_rule_refuses_with_the_reason_and_places_nothing() {
    let app = spawn_app().await;
    app.fake.set_default_call_plan(Some(CallPlan::connects(10)));
    let (_, id) = missed_and_sam(&app).await;

    // 23:30 in Boston: outside the lead's calling hours.
    app.clock.set("2026-06-13T03:30:00Z".parse().expect("time"));
    let mut sam = app.log_in("sam@harbor.example", PASSWORD).await;
    sam.get(&format!("/inbox/c/{id}")).await;
    let r = sam.post(&format!("/inbox/c/{id}/callback"), &[]).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.contains("data-reason=\"call_rule\"") && r.body.contains("calling hours"),
        "{}",
        r.body
    );

    // Back in the day: a text opt-out does not stop a person returning the lead's call...
    app.clock.set("2026-06-12T15:00:00Z".parse().expect("time"));
    let mut sam = app.log_in("sam@harbor.example", PASSWORD).await;
    sam.get(&format!("/inbox/c/{id}")).await;
    app.text_in(LEAD, MAIN_ST, "STOP").await;
    app.drain().await;
    let r = sam.post(&format!("/inbox/c/{id}/callback"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    // ...and a second click while it is under way places nothing new.
    let r = sam.post(&format!("/inbox/c/{id}/callback"), &[]).await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("callback_live"));
    app.drain().await;
    assert_eq!(call_creates(&app).len(), 1);

    // The brokerage's do-not-call list refuses every callback.
    sqlx::query("update suppression set source = 'import' where phone = $1")
        .bind(LEAD)
        .execute(&app.db.pool)
        .await
        .expect("dnc");
    let r = sam.post(&format!("/inbox/c/{id}/callback"), &[]).await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("do-not-call list"), "{}", r.body);
    app.drain().await;
    assert_eq!(
        call_creates(&app).len(),
        1,
        "nothing placed after the refusals"
    );
}

fn with_number(setup: &str, extra: &str) -> String {
    setup.replace(
        "missed_message = \"Sorry we missed you. We will text you in a moment.\"",
        &format!(
            "missed_message = \"Sorry we missed you. We will text you in a moment.\"\n{extra}"
        ),
    )
}

#[tokio::test]
async fn an_automatic_callback_tries_the_agents_in_ring_order_and_the_first_to_press_1_is_bridged()
{
    let app = spawn_app_with(AppOptions {
        setup: Some(with_number(DEMO, "callback = \"auto\"")),
        ..AppOptions::default()
    })
    .await;
    app.fake
        .set_call_plan(SAM, CallPlan::agent(AgentAction::NoAnswer));
    app.fake.set_call_plan(AVA, CallPlan::connects(30));
    app.missed_call(LEAD, MAIN_ST).await;
    app.drain().await;
    app.drain().await;
    let creates: Vec<String> = call_creates(&app)
        .iter()
        .filter_map(|r| {
            r.params
                .iter()
                .find(|(k, _)| k == "To")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(creates, [SAM, AVA], "one at a time, in ring order");
    let cbs = callbacks(&app).await;
    let outcomes: Vec<_> = cbs
        .iter()
        .map(|c| (c.origin.as_str(), c.outcome.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("auto", Some("agent_no_answer")),
            ("auto", Some("connected"))
        ]
    );
    // Connected before the hold ended: the text-back never goes.
    assert_eq!(
        text_back_state(&app).await,
        ("cancelled".into(), Some("called_back".into()))
    );
    app.run_until_quiet(chrono::Duration::minutes(10)).await;
    assert!(
        app.fake.messages().iter().all(|m| m.to != LEAD),
        "no text to the lead after the bridge"
    );
}

#[tokio::test]
async fn an_offered_callback_link_places_one_call_for_its_agent_and_refuses_every_other_use() {
    let app = spawn_app_with(AppOptions {
        setup: Some(with_number(DEMO, "callback = \"offer\"")),
        ..AppOptions::default()
    })
    .await;
    app.fake.set_default_call_plan(Some(CallPlan::connects(12)));
    app.missed_call(LEAD, MAIN_ST).await;
    app.drain().await;
    let alert = app
        .alerts_to(SAM)
        .into_iter()
        .find(|b| b.contains("missed call"))
        .expect("Sam is alerted of the miss");
    let link = alert
        .split_whitespace()
        .find(|w| w.contains("/cb/"))
        .expect("the alert carries the callback link")
        .to_owned();
    assert!(alert.contains("about 123 Main St"), "{alert}");
    let path = link.trim_start_matches(&app.public_url).to_owned();

    // Opening it (as a phone's link preview does) places nothing.
    let r = app.get(&path).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Call me now"));
    app.drain().await;
    assert!(call_creates(&app).is_empty());

    // Another agent, signed in, cannot use Sam's link.
    let ava = app.person("harbor", "ava@harbor.example").await;
    let r = ava.post_raw(&path, &[], &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("another_agent"));

    let r = app
        .http
        .post(format!("{}{path}", app.base_url))
        .send()
        .await
        .expect("post");
    let r = read(r).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Calling your phone"));
    app.drain().await;
    let cbs = callbacks(&app).await;
    assert_eq!(cbs.len(), 1);
    assert_eq!(
        (
            cbs[0].origin.as_str(),
            cbs[0].agent_phone.as_str(),
            cbs[0].outcome.as_deref()
        ),
        ("link", SAM, Some("connected"))
    );

    // Used once: a second use is a clear page and no call.
    let r = read(
        app.http
            .post(format!("{}{path}", app.base_url))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(r.status, 410);
    assert!(r.body.contains("used already"));
    // A made-up token, and an expired one.
    let r = app
        .get("/cb/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(r.status, 404);
    app.missed_call(LEAD, MAIN_ST).await;
    app.clock.advance(chrono::Duration::minutes(6));
    app.drain().await;
    let second = app
        .alerts_to(SAM)
        .into_iter()
        .rfind(|b| b.contains("/cb/"))
        .expect("a second link");
    let path2 = second
        .split_whitespace()
        .find(|w| w.contains("/cb/"))
        .expect("link")
        .trim_start_matches(&app.public_url)
        .to_owned();
    assert_ne!(path2, path);
    app.clock.advance(chrono::Duration::hours(3));
    let r = read(
        app.http
            .post(format!("{}{path2}", app.base_url))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(r.status, 410);
    assert!(r.body.contains("expired"));
    app.drain().await;
    assert_eq!(call_creates(&app).len(), 1);
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_in_the_list_and_never_placed_twice() {
    let app = spawn_app().await;
    app.fake.set_default_call_plan(Some(CallPlan::connects(5)));
    app.fake
        .inject_call_fault(Fault::Reset { recorded: true }, Scope::Next(1));
    let (mut sam, id) = missed_and_sam(&app).await;
    sam.get(&format!("/inbox/c/{id}")).await;
    sam.post(&format!("/inbox/c/{id}/callback"), &[]).await;
    app.run_until_quiet(chrono::Duration::minutes(10)).await;
    assert_eq!(call_creates(&app).len(), 1, "one create, never repeated");
    assert_eq!(app.fake.calls().len(), 1);
    let cbs = callbacks(&app).await;
    assert_eq!(cbs[0].outcome.as_deref(), Some("connected"));

    // A create that never reached the carrier: absent from the list, given up, not repeated.
    let app = spawn_app().await;
    app.fake
        .inject_call_fault(Fault::Reset { recorded: false }, Scope::Next(1));
    let (mut sam, id) = missed_and_sam(&app).await;
    sam.get(&format!("/inbox/c/{id}")).await;
    sam.post(&format!("/inbox/c/{id}/callback"), &[]).await;
    app.run_until_quiet(chrono::Duration::minutes(10)).await;
    assert_eq!(call_creates(&app).len(), 1);
    assert!(app.fake.calls().is_empty());
    let cbs = callbacks(&app).await;
    assert_eq!(cbs[0].outcome.as_deref(), Some("not_placed"));
    assert!(
        cbs[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("no record")),
        "{:?}",
        cbs[0].detail
    );
}

#[tokio::test]
async fn a_voicemail_lands_in_the_thread_stops_the_follow_ups_and_plays_only_for_people_who_may_see_it()
 {
    let app = spawn_app_with(AppOptions {
        setup: Some(with_number(DEMO, "voicemail = true")),
        ..AppOptions::default()
    })
    .await;
    let sid = new_sid("CA");
    let r = app
        .post_signed(
            "/twilio/voice",
            &TestApp::incoming_params(&sid, LEAD, MAIN_ST),
        )
        .await;
    assert_eq!(r.status, 200);
    let dial = with(
        TestApp::dial_params(&sid, LEAD, MAIN_ST, "no-answer", "false"),
        "CallStatus",
        "in-progress",
    );
    let r = app.post_signed("/twilio/voice/dial", &dial).await;
    assert_eq!(r.status, 200);
    assert_eq!(twiml_verbs(&r.body), ["Say", "Record"], "{}", r.body);
    assert!(
        r.body.contains("recordingStatusCallback=") && r.body.contains("transcribeCallback="),
        "{}",
        r.body
    );

    let player = app.fake.player(&app.public_url);
    app.fake
        .voicemail(
            &player,
            &sid,
            LEAD,
            MAIN_ST,
            42,
            Some("Hi, this is Jordan about the house on Main. Call me back please."),
        )
        .await
        .expect("voicemail webhooks");
    let (secs, transcript): (Option<i32>, Option<String>) =
        sqlx::query_as("select duration_secs, transcript from voicemail")
            .fetch_one(&app.db.pool)
            .await
            .expect("voicemail");
    assert_eq!(secs, Some(42));
    assert!(transcript.is_some_and(|t| t.contains("Jordan")));
    assert_eq!(
        app.count("voicemail").await,
        1,
        "the action and the status callback record it once"
    );
    // The text-back still goes; the agents hear of it with the transcript.
    assert_eq!(text_back_state(&app).await.0, "scheduled");
    app.drain().await;
    let alert = app
        .alerts_to(SAM)
        .into_iter()
        .find(|b| b.contains("voicemail"))
        .expect("alerted");
    assert!(
        alert.contains("voicemail (0:42)") && alert.contains("Hi, this is Jordan"),
        "{alert}"
    );

    let id = conversation_of(&app, LEAD).await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let r = sam.get(&format!("/inbox/c/{id}")).await;
    assert!(
        r.body.contains("Voicemail, 0:42") && r.body.contains("<audio"),
        "{}",
        r.body
    );
    let vm: i64 = sqlx::query_scalar("select voicemail_id from voicemail")
        .fetch_one(&app.db.pool)
        .await
        .expect("id");
    let audio = sam.get(&format!("/inbox/voicemails/{vm}/audio")).await;
    assert_eq!(audio.status, 200);
    assert_eq!(audio.content_type(), "audio/mpeg");
    // Jo works at the waterfront office: not hers to hear.
    let mut jo = app.person("harbor", "jo@harbor.example").await;
    assert_eq!(
        jo.get(&format!("/inbox/voicemails/{vm}/audio"))
            .await
            .status,
        404
    );
    // A recording for a call we never saw changes nothing.
    let before = app.count("voicemail").await;
    let other = new_sid("CA");
    app.fake
        .voicemail(&player, &other, LEAD, MAIN_ST, 9, None)
        .await
        .expect("posted");
    assert_eq!(app.count("voicemail").await, before);
}

#[tokio::test]
async fn a_voicemail_asking_to_stop_is_an_opt_out_request_and_ends_the_follow_ups() {
    let app = spawn_app_with(AppOptions {
        setup: Some(
            with_number(DEMO, "voicemail = true").replace("delay_secs = 20", "delay_secs = 0"),
        ),
        ..AppOptions::default()
    })
    .await;
    let sid = app.missed_call(LEAD, MAIN_ST).await;
    app.drain().await; // the text-back goes; the follow-up waits a day
    let player = app.fake.player(&app.public_url);
    app.fake
        .voicemail(
            &player,
            &sid,
            LEAD,
            MAIN_ST,
            8,
            Some("Please stop calling and texting me."),
        )
        .await
        .expect("voicemail");
    let follow_up: (String, Option<String>) =
        sqlx::query_as("select state, reason from job where kind = 'follow_up'")
            .fetch_one(&app.db.pool)
            .await
            .expect("follow-up");
    assert_eq!(follow_up.0, "cancelled", "{follow_up:?}");
    let (held, suppressed): (bool, bool) = sqlx::query_as(
        "select ct.review_hold_at is not null, exists (select 1 from suppression s where s.phone = ct.phone and s.lifted_at is null)
           from contact ct where ct.phone = $1",
    )
    .bind(LEAD)
    .fetch_one(&app.db.pool)
    .await
    .expect("contact");
    assert!(
        held || suppressed,
        "held for review or suppressed as a text would be"
    );
}

#[tokio::test]
async fn an_automatic_callback_waits_for_the_offices_hours_a_person_does_not() {
    // Downtown opens at 11:00; the test clock reads 10:00 in Boston.
    let setup = with_number(DEMO, "callback = \"auto\"").replace(
        "slug = \"downtown\"\nname = \"Downtown\"\n",
        "slug = \"downtown\"\nname = \"Downtown\"\nhours = \"11:00-18:00\"\n",
    );
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await;
    app.fake.set_default_call_plan(Some(CallPlan::connects(9)));
    app.missed_call(LEAD, MAIN_ST).await;
    app.drain().await;
    let cbs = callbacks(&app).await;
    assert_eq!(cbs.len(), 1);
    assert_eq!(
        (cbs[0].origin.as_str(), cbs[0].outcome.as_deref()),
        ("auto", Some("refused"))
    );
    assert!(
        cbs[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("office is closed")),
        "{:?}",
        cbs[0].detail
    );
    assert!(call_creates(&app).is_empty());
    // A person may still call back before the office opens.
    let id = conversation_of(&app, LEAD).await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    sam.get(&format!("/inbox/c/{id}")).await;
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/callback"), &[])
            .await
            .status,
        303
    );
    app.drain().await;
    assert_eq!(call_creates(&app).len(), 1);
}

#[tokio::test]
async fn a_deleted_contact_is_never_called_back() {
    let app = spawn_app_with(AppOptions {
        setup: Some(with_number(DEMO, "callback = \"offer\"")),
        ..AppOptions::default()
    })
    .await;
    app.fake.set_default_call_plan(Some(CallPlan::connects(9)));
    let (mut sam, id) = missed_and_sam(&app).await;
    app.drain().await;
    let link = app
        .alerts_to(SAM)
        .into_iter()
        .find_map(|b| {
            b.split_whitespace()
                .find(|w| w.contains("/cb/"))
                .map(str::to_owned)
        })
        .expect("a callback link");
    let path = link.trim_start_matches(&app.public_url).to_owned();
    sam.get(&format!("/inbox/c/{id}")).await;
    let r = sam
        .post(&format!("/inbox/c/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The thread is gone, and so is its button; the link says why and places nothing.
    assert_eq!(
        sam.post(&format!("/inbox/c/{id}/callback"), &[])
            .await
            .status,
        404
    );
    let r = read(
        app.http
            .post(format!("{}{path}", app.base_url))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(r.status, 410);
    assert!(r.body.contains("deleted"), "{}", r.body);
    app.drain().await;
    assert!(call_creates(&app).is_empty());
}
