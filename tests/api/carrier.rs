//! The fake carrier against the real server: its player's webhooks and its status callbacks
//! pass our signature guard exactly as Twilio's would, and land where they should.

use std::time::Duration;

use chrono::Utc;
use textback::store::{BrokerageId, messages};
use textback_fake_twilio::{DialResult, FakeTwilio, new_call_sid, new_message_sid};

use crate::helpers::*;

const LEAD: &str = "+16175550123";
const LANDLINE: &str = "+16175550124";
const MAIN_ST: &str = "+15555550100";

/// The app's fake carrier, which signs with the server's token.
fn fake_for(app: &TestApp) -> &FakeTwilio {
    assert_eq!(app.fake.auth_token(), TOKEN);
    assert_eq!(
        app.state
            .config
            .twilio
            .api_base
            .as_str()
            .trim_end_matches('/'),
        app.fake.base_url()
    );
    assert_eq!(
        app.state
            .config
            .twilio
            .lookup_base
            .as_str()
            .trim_end_matches('/'),
        app.fake.base_url()
    );
    &app.fake
}

#[tokio::test]
async fn the_players_webhooks_are_accepted_and_recorded() {
    let app = spawn_app().await;
    let fake = fake_for(&app);
    let player = fake.player(&app.public_url);
    let call = new_call_sid();
    let r = player
        .incoming_call(&call, LEAD, MAIN_ST)
        .await
        .expect("voice");
    assert_eq!(r.status, 200);
    assert_eq!(twiml_verbs(&r.body), vec!["Dial"]);
    let r = player
        .dial_result(&call, LEAD, MAIN_ST, DialResult::no_answer())
        .await
        .expect("dial");
    assert_eq!(twiml_verbs(&r.body), vec!["Say", "Hangup"]);
    assert_eq!(
        player
            .call_status(&call, LEAD, MAIN_ST, "completed", 0)
            .await
            .expect("status")
            .status,
        200
    );
    let r = player
        .inbound_sms(
            &new_message_sid(),
            LEAD,
            MAIN_ST,
            "Is it still available?",
            0,
            None,
        )
        .await
        .expect("sms");
    assert_eq!(r.status, 200);

    let outcome: String = sqlx::query_scalar("select outcome from call where call_sid = $1")
        .bind(&call)
        .fetch_one(&app.db.pool)
        .await
        .expect("call");
    assert_eq!(outcome, "missed");
    assert_eq!(app.count("call_event").await, 1);
    assert_eq!(app.count("message").await, 1);
    for endpoint in [
        "/twilio/voice",
        "/twilio/voice/dial",
        "/twilio/voice/status",
        "/twilio/sms",
    ] {
        let endpoint = textback::http::twilio_guard::ENDPOINTS
            .iter()
            .find(|e| **e == endpoint)
            .expect("endpoint");
        assert_eq!(app.webhook_count(endpoint, "ok"), 1, "{endpoint}");
        assert_eq!(
            app.webhook_count(endpoint, "bad_signature"),
            0,
            "{endpoint}"
        );
    }
}

/// A message created at the fake with our StatusCallback: the fake's signed callbacks move
/// our record forward, including a landline's `undelivered` with 30006.
#[tokio::test]
async fn the_fakes_status_callbacks_move_our_messages_forward() {
    let app = spawn_app().await;
    let fake = fake_for(&app);
    fake.set_line_type(LANDLINE, "landline");
    // Callbacks wait a moment, as Twilio's do: this test records the sid only after the 201.
    // (A callback that beats the record is the pipeline's reconcile case, docs/reliability.md §2.)
    fake.set_callback_plan(
        textback_fake_twilio::CallbackPlan::default().with_delay(Duration::from_millis(300)),
    );
    let http = reqwest::Client::new();
    let mut conn = app.db.pool.acquire().await.expect("conn");
    let brokerage = BrokerageId(
        sqlx::query_scalar("select brokerage_id from brokerage")
            .fetch_one(&mut *conn)
            .await
            .expect("b"),
    );
    let number_id: i64 = sqlx::query_scalar("select number_id from number where e164 = $1")
        .bind(MAIN_ST)
        .fetch_one(&mut *conn)
        .await
        .expect("n");

    let mut ids = Vec::new();
    for to in [LEAD, LANDLINE] {
        let body = "Hi there, this is Sam at Harbor Realty. Reply STOP to opt out.";
        let id = messages::insert_outbound_sending(
            &mut conn,
            brokerage,
            &messages::NewOutbound {
                number_id,
                contact_id: None,
                from: MAIN_ST,
                to,
                body,
                idempotency_key: &new_sid("k"),
                job_id: None,
                attempt: None,
                template_variant: None,
                kind: "text_back",
                counts_for_cap: true,
                started_at: Utc::now(),
            },
        )
        .await
        .expect("pre-send");
        let created: serde_json::Value = http
            .post(format!(
                "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
                fake.base_url()
            ))
            .basic_auth(ACCOUNT_SID, Some(TOKEN))
            .form(&[
                ("To", to),
                ("From", MAIN_ST),
                ("Body", body),
                (
                    "StatusCallback",
                    &format!("{}/twilio/sms/status", app.public_url),
                ),
            ])
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let sid = created["sid"].as_str().expect("a sid");
        assert!(
            messages::mark_accepted(&mut conn, brokerage, id, sid, "queued")
                .await
                .expect("accepted")
        );
        ids.push(id);
    }
    drop(conn);
    tokio::time::timeout(Duration::from_secs(10), fake.settle())
        .await
        .expect("callbacks delivered");
    assert!(
        fake.callbacks().iter().all(|c| c.result == Ok(200)),
        "{:?}",
        fake.callbacks()
    );

    let state = |id: textback::store::MessageId| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_as::<_, (Option<String>, Option<i32>)>(
                "select carrier_status, error_code from message where message_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("message")
        }
    };
    assert_eq!(state(ids[0]).await, (Some("delivered".into()), None));
    assert_eq!(
        state(ids[1]).await,
        (Some("undelivered".into()), Some(30006))
    );
    assert_eq!(app.webhook_count("/twilio/sms/status", "ok"), 4);
}
