//! `/healthz`, `/readyz`, `/metrics`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use textback::clock::SystemClock;
use textback::config::Config;

use crate::db_proxy::DbProxy;
use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let h = app.get("/healthz").await;
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    let r = app.get("/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));
    assert_eq!(app.get("/nowhere").await.status, 404);
}

#[tokio::test]
async fn metrics_count_webhooks_and_hold_no_personal_data() {
    let app = spawn_app().await;
    app.post_signed("/twilio/voice", &fixture("voice-incoming.txt"))
        .await;
    app.post_signed("/twilio/voice", &fixture("voice-incoming.txt"))
        .await;
    app.post_raw(
        "/twilio/voice",
        b"To=%2B15555550100".to_vec(),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    app.post_signed(
        "/twilio/sms",
        &with(fixture("sms-inbound-reply.txt"), "To", "+15555550999"),
    )
    .await;
    let m = app.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.content_type().starts_with("application/openmetrics-text"),
        "{}",
        m.content_type()
    );
    for line in [
        r#"textback_webhooks_total{endpoint="/twilio/voice",outcome="ok"} 1"#,
        r#"textback_webhooks_total{endpoint="/twilio/voice",outcome="duplicate"} 1"#,
        r#"textback_webhooks_total{endpoint="/twilio/voice",outcome="bad_signature"} 1"#,
        r#"textback_webhooks_total{endpoint="/twilio/sms",outcome="unknown_number"} 1"#,
    ] {
        assert!(m.body.contains(line), "{line} missing from:\n{}", m.body);
    }
    assert!(!m.body.contains("+1"), "no phone number in /metrics");
    assert!(!m.body.contains("555"), "no phone number in /metrics");
}

/// docs/reliability.md F1's first half: 503 while the database is unreachable, 200 once it is back,
/// and the process keeps answering throughout.
#[tokio::test]
async fn readyz_is_503_while_the_database_is_unreachable() {
    let db = TestDb::new().await;
    let (proxy, url) = DbProxy::in_front_of(&db.url).await;
    let url = url.to_string();
    let pool = textback::db::pool(&url)
        .await
        .expect("pool through the proxy");
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", url.clone()),
        ("TWILIO_AUTH_TOKEN", TOKEN.to_owned()),
        ("TEXTBACK_SPOOL_DIR", spool_dir()),
    ]);
    let config = Config::from_lookup(move |k| vars.get(k).cloned()).expect("config");
    let app = textback::build(config, pool, Arc::new(SystemClock)).expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(textback::serve(listener, app, std::future::pending()));
    let http = reqwest::Client::new();
    let ready = || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .expect("answers")
            .status()
            .as_u16()
    };

    assert_eq!(ready().await, 200);
    proxy.down();
    assert_eq!(ready().await, 503);
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .expect("answers")
            .status()
            .as_u16(),
        200,
        "the process is still up"
    );
    proxy.up().await;
    let mut status = 0;
    for _ in 0..50 {
        status = ready().await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "ready again once the database is back");
    server.abort();
}
