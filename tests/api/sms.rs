//! Inbound texts and outbound status callbacks (docs/security.md §3 rows 15–18; docs/twilio.md §3.3).

use crate::helpers::*;

const LEAD: &str = "+16175550123";

fn inbound(sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    let p = with(fixture("sms-inbound-reply.txt"), "MessageSid", sid);
    let p = with(with(p, "SmsSid", sid), "SmsMessageSid", sid);
    with(with(p, "From", from), "Body", body)
}

#[tokio::test]
async fn an_inbound_text_is_stored_verbatim_in_the_contacts_conversation() {
    let app = spawn_app().await;
    let r = app
        .post_signed("/twilio/sms", &fixture("sms-inbound-reply.txt"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type(), "text/xml; charset=utf-8");
    assert!(
        twiml_verbs(&r.body).is_empty(),
        "replies never go out as TwiML: {}",
        r.body
    );
    let (body, direction, phone): (String, String, String) =
        sqlx::query_as("select m.body, m.direction, c.phone from message m join contact c using (brokerage_id, contact_id)")
            .fetch_one(&app.db.pool)
            .await
            .expect("stored with its contact");
    assert_eq!(
        body,
        "Yes! Is the 3 bed on Main St still available? Could I see it Saturday around 11?"
    );
    assert_eq!((direction.as_str(), phone.as_str()), ("inbound", LEAD));
}

/// docs/security.md §3 row 18.
#[tokio::test]
async fn unusual_bodies_are_stored_exactly_as_received() {
    let app = spawn_app().await;
    let long = "x".repeat(1600);
    let bodies = [
        "",
        long.as_str(),
        "👍🏽🏠",
        "\u{200F}STOP",
        "مرحبا\u{200F} hi",
        "line1\r\nline2\ttab",
        "  padded  ",
    ];
    for body in bodies {
        let sid = new_sid("SM");
        let r = app
            .post_signed(
                "/twilio/sms",
                &with(
                    inbound(&sid, LEAD, body),
                    "NumMedia",
                    if body.is_empty() { "1" } else { "0" },
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{body:?}");
        let (stored, media): (String, i32) =
            sqlx::query_as("select body, num_media from message where sid = $1")
                .bind(&sid)
                .fetch_one(&app.db.pool)
                .await
                .expect("stored");
        assert_eq!(stored, body);
        assert_eq!(media, i32::from(body.is_empty()));
    }
}

#[tokio::test]
async fn the_carriers_opt_out_type_is_kept() {
    let app = spawn_app().await;
    app.post_signed("/twilio/sms", &fixture("sms-inbound-stop.txt"))
        .await;
    let t: Option<String> = sqlx::query_scalar("select opt_out_type from message")
        .fetch_one(&app.db.pool)
        .await
        .expect("stored");
    assert_eq!(t.as_deref(), Some("STOP"));
}

#[tokio::test]
async fn a_sender_without_an_e164_number_is_stored_without_a_contact() {
    let app = spawn_app().await;
    let r = app
        .post_signed(
            "/twilio/sms",
            &inbound(&new_sid("SM"), "22395", "Your code is 1234"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.count("message").await, 1);
    assert_eq!(app.count("contact").await, 0);
}

#[tokio::test]
async fn a_replayed_text_is_stored_once() {
    let app = spawn_app().await;
    let params = fixture("sms-inbound-reply.txt");
    let answers =
        futures_util::future::join_all((0..10).map(|_| app.post_signed("/twilio/sms", &params)))
            .await;
    assert!(
        answers
            .iter()
            .all(|r| r.status == 200 && r.body == answers[0].body)
    );
    assert_eq!(app.count("message").await, 1);
    assert_eq!(app.webhook_count("/twilio/sms", "duplicate"), 9);
}

fn status(sid: &str, to: &str, status: &str, error_code: Option<&str>) -> Vec<(String, String)> {
    let p = with(fixture("sms-status-delivered.txt"), "MessageSid", sid);
    let p = with(with(p, "SmsSid", sid), "To", to);
    let p = with(with(p, "MessageStatus", status), "SmsStatus", status);
    let p = without(p, "ErrorCode");
    match error_code {
        Some(code) => with(p, "ErrorCode", code),
        None => p,
    }
}

async fn message_state(app: &TestApp, id: i64) -> (Option<String>, Option<i32>) {
    sqlx::query_as("select carrier_status, error_code from message where message_id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .expect("message")
}

/// docs/security.md §3 row 17; docs/reliability.md F10.
#[tokio::test]
async fn message_statuses_only_move_forward() {
    let app = spawn_app().await;
    let a = new_sid("SM");
    let id = seed_sent_message(&app, &a, LEAD).await;
    for s in ["sent", "delivered", "sent", "queued"] {
        assert_eq!(
            app.post_signed("/twilio/sms/status", &status(&a, LEAD, s, None))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        message_state(&app, id).await,
        (Some("delivered".into()), None)
    );
    app.post_signed("/twilio/sms/status", &status(&a, LEAD, "read", None))
        .await;
    assert_eq!(message_state(&app, id).await.0.as_deref(), Some("read"));

    let b = new_sid("SM");
    let id = seed_sent_message(&app, &b, "+16175550124").await;
    app.post_signed(
        "/twilio/sms/status",
        &status(&b, "+16175550124", "undelivered", Some("30006")),
    )
    .await;
    app.post_signed(
        "/twilio/sms/status",
        &status(&b, "+16175550124", "sent", None),
    )
    .await;
    app.post_signed(
        "/twilio/sms/status",
        &status(&b, "+16175550124", "delivered", None),
    )
    .await;
    assert_eq!(
        message_state(&app, id).await,
        (Some("undelivered".into()), Some(30006)),
        "terminal states do not replace each other"
    );
}

#[tokio::test]
async fn a_duplicate_status_is_recorded_once() {
    let app = spawn_app().await;
    let sid = new_sid("SM");
    seed_sent_message(&app, &sid, LEAD).await;
    let params = status(&sid, LEAD, "delivered", None);
    let answers = futures_util::future::join_all(
        (0..10).map(|_| app.post_signed("/twilio/sms/status", &params)),
    )
    .await;
    assert!(answers.iter().all(|r| r.status == 200 && r.body.is_empty()));
    assert_eq!(app.count("message_status_event").await, 1);
    assert_eq!(app.webhook_count("/twilio/sms/status", "duplicate"), 9);
}

/// A garbage ErrorCode does not use up the (message, status) key: the well-formed callback
/// that follows still counts.
#[tokio::test]
async fn a_garbage_error_code_does_not_swallow_a_later_good_one() {
    let app = spawn_app().await;
    let sid = new_sid("SM");
    let id = seed_sent_message(&app, &sid, LEAD).await;
    app.post_signed(
        "/twilio/sms/status",
        &status(&sid, LEAD, "undelivered", Some("abc")),
    )
    .await;
    app.post_signed(
        "/twilio/sms/status",
        &status(&sid, LEAD, "undelivered", Some("30006")),
    )
    .await;
    app.post_signed(
        "/twilio/sms/status",
        &status(&sid, LEAD, "undelivered", Some("30006")),
    )
    .await;
    assert_eq!(
        message_state(&app, id).await,
        (Some("undelivered".into()), Some(30006))
    );
    assert_eq!(app.count("message_status_event").await, 2);
}

/// docs/security.md §3 row 16.
#[tokio::test]
async fn unknown_statuses_and_garbage_error_codes_are_kept_raw_and_move_nothing() {
    let app = spawn_app().await;
    let sid = new_sid("SM");
    let id = seed_sent_message(&app, &sid, LEAD).await;
    app.post_signed("/twilio/sms/status", &status(&sid, LEAD, "sent", None))
        .await;
    let r = app
        .post_signed(
            "/twilio/sms/status",
            &status(&sid, LEAD, "teleported", None),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .post_signed(
            "/twilio/sms/status",
            &status(&sid, LEAD, "undelivered", Some("abc")),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(message_state(&app, id).await, (Some("sent".into()), None));
    let raw: Vec<(String, Option<String>)> = sqlx::query_as(
        "select status, error_code_raw from message_status_event order by message_status_event_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("events");
    assert_eq!(
        raw,
        vec![
            ("sent".into(), None),
            ("teleported".into(), None),
            ("undelivered".into(), Some("abc".into()))
        ]
    );
}

/// docs/security.md §3 row 15.
#[tokio::test]
async fn a_status_for_an_unknown_message_is_acknowledged_and_ignored() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let r = app
        .post_signed("/twilio/sms/status", &fixture("sms-status-delivered.txt"))
        .await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.webhook_count("/twilio/sms/status", "unknown_sid"), 1);
}

/// A status callback is matched within the brokerage that sent the message (found by `From`,
/// our number): another brokerage's number cannot move it.
#[tokio::test]
async fn a_status_sent_from_another_brokerages_number_cannot_touch_the_message() {
    let app = spawn_app().await;
    apply_setup(&app.db.pool, OTHER_BROKERAGE).await;
    let sid = new_sid("SM");
    let id = seed_sent_message(&app, &sid, LEAD).await;
    let before = app.snapshot().await;
    let r = app
        .post_signed(
            "/twilio/sms/status",
            &with(
                status(&sid, LEAD, "delivered", None),
                "From",
                "+15555550200",
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.snapshot().await, before);
    assert_eq!(message_state(&app, id).await.0.as_deref(), Some("queued"));
}

/// Issue 15 §1: a signed STOP whose body holds a form feed (GSM 03.38 has one; a pasted text
/// can) was answered 400 and lost, and Twilio never retries an inbound text. It is stored as
/// received and opts the number out; a NUL, which PostgreSQL cannot store, becomes U+FFFD.
#[tokio::test]
async fn a_signed_stop_with_a_control_character_opts_the_number_out() {
    let app = spawn_app().await;
    for (from, body, stored_as) in [
        ("+16175550123", "STOP\u{c}", "STOP\u{c}"),
        ("+16175550124", "\u{c}stop\u{1b}", "\u{c}stop\u{1b}"),
        ("+16175550125", "Stop\u{0}", "Stop\u{FFFD}"),
    ] {
        let sid = new_sid("SM");
        let r = app
            .post_signed("/twilio/sms", &inbound(&sid, from, body))
            .await;
        assert_eq!(r.status, 200, "{body:?}: {}", r.body);
        let (stored, class): (String, Option<String>) =
            sqlx::query_as("select body, keyword_class from message where sid = $1")
                .bind(&sid)
                .fetch_one(&app.db.pool)
                .await
                .expect("stored");
        assert_eq!(stored, stored_as);
        assert_eq!(class.as_deref(), Some("opt_out"), "{body:?}");
        let suppressed: bool = sqlx::query_scalar(
            "select exists (select 1 from suppression where phone = $1 and lifted_at is null)",
        )
        .bind(from)
        .fetch_one(&app.db.pool)
        .await
        .expect("suppression");
        assert!(suppressed, "{body:?} opts {from} out");
    }
    assert_eq!(app.webhook_count("/twilio/sms", "bad_request"), 0);
}
