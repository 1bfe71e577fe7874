//! Follow Up Boss (README.md "Follow Up Boss", docs/webhooks.md): against a fake FUB that
//! speaks its v1 shapes, a web lead becomes a person through `POST /v1/events` (source
//! textback), its texts both ways are logged, a STOP tags the person and a START removes the
//! tag; an outage of FUB never holds up a text and, once FUB is back, everything arrives once.

use chrono::Duration;
use serde_json::Value;
use textback_fake_fub::FakeFub;

use crate::helpers::*;
use crate::leads;
use crate::webhooks::{now, run_until};

const API_KEY: &str = "fub_test_key_8d1c";
const SYSTEM_KEY: &str = "sys_key_5e2a";
const LEAD: &str = "+16175550123";
const CALLER: &str = "+16175550177";
const MAIN_ST: &str = "+15555550100";

async fn app_with_fub(fub: &FakeFub, key: &str) -> TestApp {
    let setup = format!(
        "{DEMO}\n[follow_up_boss]\napi_key_env = \"HARBOR_FUB_KEY\"\nsystem_key_env = \"HARBOR_FUB_SYSTEM_KEY\"\nurl = \"{}\"\nallow_private_addresses = true\n",
        fub.base_url()
    );
    spawn_app_with(AppOptions {
        setup: Some(setup),
        env: vec![
            ("HARBOR_FUB_KEY", key.to_owned()),
            ("HARBOR_FUB_SYSTEM_KEY", SYSTEM_KEY.to_owned()),
        ],
        ..AppOptions::default()
    })
    .await
}

fn posts<'a>(fub: &'a [textback_fake_fub::Logged], path: &str) -> Vec<&'a Value> {
    fub.iter()
        .filter(|l| l.path == path)
        .map(|l| &l.body)
        .collect()
}

#[tokio::test]
async fn a_web_lead_reaches_fub_with_its_texts_and_its_opt_out() {
    let fub = FakeFub::start(API_KEY, SYSTEM_KEY).await.expect("fake FUB");
    let app = app_with_fub(&fub, API_KEY).await;
    let k = leads::key(&app, "harbor", "website").await;
    let r = leads::post(&app, Some(&k), &leads::lead(LEAD), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    run_until(&app, now(&app) + Duration::minutes(1)).await;

    let people = fub.people();
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(people[0]["firstName"], "Alex");
    assert_eq!(people[0]["lastName"], "Morgan");
    let person_id = people[0]["id"].as_i64().expect("id");
    let log = fub.log();
    let events = posts(&log, "/v1/events");
    assert_eq!(events.len(), 1, "the lead, once: {log:?}");
    assert_eq!(events[0]["source"], "textback");
    assert_eq!(events[0]["system"], "textback");
    assert_eq!(events[0]["type"], "Property Inquiry");
    assert_eq!(events[0]["property"]["street"], "9 Ocean Ave");
    assert_eq!(
        events[0]["message"],
        "Is it still available? Could we see it Saturday?"
    );
    assert_eq!(events[0]["person"]["phones"][0]["value"], LEAD);
    // The lead text, logged to the person as ours.
    let lead_text = app
        .fake
        .messages()
        .into_iter()
        .find(|m| m.to == LEAD)
        .expect("the lead was texted");
    let texts = posts(&log, "/v1/textMessages");
    assert_eq!(texts.len(), 1, "{log:?}");
    assert_eq!(texts[0]["personId"], person_id);
    assert_eq!(texts[0]["isIncoming"], false);
    assert_eq!(texts[0]["message"], lead_text.body.as_str());
    assert_eq!(texts[0]["toNumber"], LEAD);
    assert_eq!(texts[0]["fromNumber"], MAIN_ST);
    let mapped: i64 = sqlx::query_scalar("select person_id from fub_person")
        .fetch_one(&app.db.pool)
        .await
        .expect("mapped");
    assert_eq!(mapped, person_id);

    // A reply, then STOP, then START.
    app.text_in(LEAD, MAIN_ST, "Saturday at 10 works").await;
    run_until(&app, now(&app) + Duration::minutes(1)).await;
    let log = fub.log();
    let texts = posts(&log, "/v1/textMessages");
    let reply = texts.last().expect("the reply");
    assert_eq!(reply["isIncoming"], true);
    assert_eq!(reply["message"], "Saturday at 10 works");
    assert_eq!(reply["fromNumber"], LEAD);

    app.text_in(LEAD, MAIN_ST, "STOP").await;
    run_until(&app, now(&app) + Duration::minutes(1)).await;
    assert_eq!(
        fub.people()[0]["tags"],
        serde_json::json!(["Texts: opted out"])
    );
    app.text_in(LEAD, MAIN_ST, "START").await;
    run_until(&app, now(&app) + Duration::minutes(1)).await;
    assert_eq!(fub.people()[0]["tags"], serde_json::json!([]));
    assert_eq!(
        posts(&fub.log(), "/v1/events").len(),
        1,
        "texts never post a second lead event"
    );
    let states: Vec<String> = sqlx::query_scalar("select distinct state from webhook_delivery")
        .fetch_all(&app.db.pool)
        .await
        .expect("states");
    assert_eq!(states, vec!["delivered"]);
}

/// FUB down: the text-back leaves on time; the deliveries wait and are tried again; when FUB
/// is back the caller arrives once, as an incoming call with its log and its text.
#[tokio::test]
async fn a_fub_outage_never_holds_up_a_text_and_nothing_is_lost() {
    let fub = FakeFub::start(API_KEY, SYSTEM_KEY).await.expect("fake FUB");
    fub.set_down(true);
    let app = app_with_fub(&fub, API_KEY).await;
    let start = now(&app);
    app.missed_call(CALLER, MAIN_ST).await;
    run_until(&app, start + Duration::minutes(2)).await;
    assert!(
        app.fake.messages().iter().any(|m| m.to == CALLER),
        "the text-back went out while FUB was down"
    );
    assert!(fub.log().is_empty());
    let (status, answer): (Option<i32>, Option<String>) = sqlx::query_as(
        "select last_status, last_answer from webhook_delivery order by delivery_id limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("delivery");
    assert_eq!(status, Some(503));
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.contains("Service unavailable")),
        "{answer:?}"
    );

    fub.set_down(false);
    run_until(&app, start + Duration::hours(1)).await;
    let log = fub.log();
    let events = posts(&log, "/v1/events");
    assert_eq!(events.len(), 1, "{log:?}");
    assert_eq!(events[0]["type"], "Incoming Call");
    let calls = posts(&log, "/v1/calls");
    assert_eq!(calls.len(), 1, "{log:?}");
    assert_eq!(calls[0]["outcome"], "No Answer");
    assert_eq!(calls[0]["isIncoming"], true);
    let texts = posts(&log, "/v1/textMessages");
    assert_eq!(texts.len(), 1, "the text-back, logged once: {log:?}");
    // In order: the person before what is logged to them.
    let order: Vec<&str> = log.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(order, vec!["/v1/events", "/v1/calls", "/v1/textMessages"]);
}

/// A wrong API key: FUB's 401 and its message are what the admins see; nothing reaches FUB.
#[tokio::test]
async fn a_wrong_api_key_is_recorded_with_fub_s_answer() {
    let fub = FakeFub::start(API_KEY, SYSTEM_KEY).await.expect("fake FUB");
    let app = app_with_fub(&fub, "not-the-key").await;
    app.missed_call(CALLER, MAIN_ST).await;
    app.drain().await;
    let (state, status, answer): (String, Option<i32>, Option<String>) = sqlx::query_as(
        "select state, last_status, last_answer from webhook_delivery order by delivery_id limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("delivery");
    assert_eq!((state.as_str(), status), ("pending", Some(401)));
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.contains("Invalid API key")),
        "{answer:?}"
    );
    assert!(fub.people().is_empty());
}

/// A call whose lead event went through but whose call log failed is retried without posting
/// the lead event again.
#[tokio::test]
async fn a_retried_call_does_not_post_its_lead_event_twice() {
    let fub = FakeFub::start(API_KEY, SYSTEM_KEY).await.expect("fake FUB");
    fub.set_failing("/v1/calls", true);
    let app = app_with_fub(&fub, API_KEY).await;
    let start = now(&app);
    app.missed_call(CALLER, MAIN_ST).await;
    app.drain().await;
    assert_eq!(posts(&fub.log(), "/v1/events").len(), 1);
    assert!(posts(&fub.log(), "/v1/calls").is_empty());
    fub.set_failing("/v1/calls", false);
    run_until(&app, start + Duration::hours(1)).await;
    let log = fub.log();
    assert_eq!(posts(&log, "/v1/events").len(), 1, "{log:?}");
    assert_eq!(posts(&log, "/v1/calls").len(), 1, "{log:?}");
}
