//! The lead API (README.md "Leads from your website", docs/leads.md): a lead with its consent
//! becomes a conversation, written consent in the ledger and one text through the gate; the
//! same Idempotency-Key changes nothing; keys, rates and bad bodies are refused with nothing
//! stored.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::*;

const LEAD: &str = "+16175550123";
const MAIN_ST: &str = "+15555550100";
const ELM_ST: &str = "+15555550110";
const SAM: &str = "+15555550101";
const CONSENT: &str =
    "I agree to receive texts from Harbor Realty about my inquiry. Reply STOP to opt out.";

/// A live key of brokerage `slug` named `name`, made as `api-key create` makes one.
pub async fn key(app: &TestApp, slug: &str, name: &str) -> String {
    let mut conn = app.db.pool.acquire().await.expect("conn");
    let brokerage = textback::store::brokerages::by_slug(&mut conn, slug)
        .await
        .expect("brokerage")
        .expect("the brokerage exists");
    let k = textback::context::tokens::new_api_key().expect("a key");
    textback::store::web_leads::create_key(
        &mut conn,
        brokerage,
        name,
        &k.prefix,
        &k.hash,
        test_start(),
    )
    .await
    .expect("insert")
    .expect("a new name");
    k.key
}

pub fn lead(phone: &str) -> Value {
    json!({
        "phone": phone,
        "name": "Alex Morgan",
        "source": "Zillow",
        "listing": "9 Ocean Ave",
        "message": "Is it still available? Could we see it Saturday?",
        "consent": {
            "text": CONSENT,
            "url": "https://harbor.example/listings/9-ocean",
            "at": "2026-06-12T14:00:00Z",
            "ip": "203.0.113.9"
        }
    })
}

pub async fn post(app: &TestApp, key: Option<&str>, body: &Value, idem: Option<&str>) -> Resp {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    if let Some(i) = idem {
        headers.push(("idempotency-key", i));
    }
    app.post_raw(
        "/api/v1/leads",
        serde_json::to_vec(body).expect("json"),
        &headers,
    )
    .await
}

fn json_of(r: &Resp) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

/// The domain tables of `snapshot` and those a lead writes: equal means nothing was stored.
async fn everything(app: &TestApp) -> Vec<(String, i64, String)> {
    let mut out = app.snapshot().await;
    // (a key's `last_used_at` moves with any request that presents it: not a change)
    for table in [
        "conversation",
        "conversation_event",
        "consent_event",
        "web_lead",
        "(select api_key_id, name, revoked_at from api_key)",
        "alert",
        "task",
        "suppression",
    ] {
        let (count, digest): (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select count(*), md5(string_agg(t::text, '|' order by t::text)) from {table} t"
        )))
        .fetch_one(&app.db.pool)
        .await
        .expect("digest");
        out.push((table.to_owned(), count, digest.unwrap_or_default()));
    }
    out
}

fn texts_to(app: &TestApp, to: &str) -> Vec<String> {
    app.fake
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| m.body)
        .collect()
}

#[tokio::test]
async fn a_web_lead_is_stored_with_its_consent_routed_and_texted_at_once() {
    let app = spawn_app().await;
    let k = key(&app, "harbor", "website").await;
    let r = post(&app, Some(&k), &lead("(617) 555-0123"), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.content_type().starts_with("application/json"));
    let created = json_of(&r);
    let conversation = created["conversation_id"].as_i64().expect("a conversation");
    assert!(created["id"].as_i64().is_some(), "{created}");
    app.drain().await;

    // One text, from the first number of the setup file, naming the brokerage with the
    // opt-out words, to the lead's first name.
    let texts = app.fake.messages();
    let to_lead: Vec<_> = texts.iter().filter(|m| m.to == LEAD).collect();
    assert_eq!(to_lead.len(), 1, "{texts:?}");
    assert_eq!(to_lead[0].from.as_deref(), Some(MAIN_ST));
    assert!(to_lead[0].body.contains("Alex"), "{}", to_lead[0].body);
    assert!(
        to_lead[0].body.contains("Harbor Realty"),
        "{}",
        to_lead[0].body
    );
    assert!(to_lead[0].body.contains("STOP"), "{}", to_lead[0].body);
    let kind: String = sqlx::query_scalar("select kind from message where to_raw = $1")
        .bind(LEAD)
        .fetch_one(&app.db.pool)
        .await
        .expect("message");
    assert_eq!(kind, "lead_text");
    // The gate allowed it on the written consent (R12), not on an inquiry.
    let basis: Option<String> = sqlx::query_scalar(
        "select d.basis from gate_decision d join contact c using (contact_id) where c.phone = $1",
    )
    .bind(LEAD)
    .fetch_one(&app.db.pool)
    .await
    .expect("decision");
    assert_eq!(basis.as_deref(), Some("written_consent"));

    // The ledger keeps the consent exactly as the lead saw it.
    let (raw, url, ip, who, at): (
        String,
        String,
        String,
        String,
        chrono::DateTime<chrono::Utc>,
    ) = sqlx::query_as(
        "select raw_text, consent_url, host(consent_ip), who, at from consent_event
              where phone = $1 and event = 'written_consent'",
    )
    .bind(LEAD)
    .fetch_one(&app.db.pool)
    .await
    .expect("consent");
    assert_eq!(
        (raw.as_str(), url.as_str(), ip.as_str(), who.as_str()),
        (
            CONSENT,
            "https://harbor.example/listings/9-ocean",
            "203.0.113.9",
            "api:website"
        )
    );
    assert_eq!(at, test_start());

    // Routed like a caller (Sam, the first available), who gets an alert with the lead's words.
    let alerts = texts_to(&app, SAM);
    assert!(
        alerts.iter().any(|a| a.contains(&format!("#{conversation}: new lead from Zillow: Alex Morgan (+1617***0123) about 9 Ocean Ave: \"Is it still available? Could we see it S…\""))),
        "{alerts:?}"
    );

    // The thread shows the lead, its consent in words, and the text.
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let page = sam.get(&format!("/inbox/c/{conversation}")).await;
    assert_eq!(page.status, 200);
    for shown in [
        "Lead from Zillow: Alex Morgan",
        "Is it still available? Could we see it Saturday?",
        "about 9 Ocean Ave",
        "Written consent: “I agree to receive texts from Harbor Rea…” on https://harbor.example/listings/9-ocean at 10:00 am, from 203.0.113.9",
        "Lead text",
    ] {
        assert!(
            page.body.contains(shown),
            "{shown} not in the thread:\n{}",
            page.body
        );
    }
    assert_eq!(app.webhook_count("/api/v1/leads", "created"), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_gets_the_same_answer_and_nothing_new() {
    let app = spawn_app().await;
    let k = key(&app, "harbor", "website").await;
    let first = post(&app, Some(&k), &lead(LEAD), Some("form-123")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    app.drain().await;
    let before = everything(&app).await;
    let again = post(&app, Some(&k), &lead(LEAD), Some("form-123")).await;
    assert_eq!(again.status, 201);
    assert_eq!(json_of(&again), json_of(&first));
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    app.drain().await;
    assert_eq!(everything(&app).await, before, "a replay stores nothing");
    assert_eq!(texts_to(&app, LEAD).len(), 1);
    // The same key with another body: refused, nothing stored.
    let mut other = lead(LEAD);
    other["message"] = json!("Another question");
    let reused = post(&app, Some(&k), &other, Some("form-123")).await;
    assert_eq!(reused.status, 422);
    assert_eq!(json_of(&reused)["error"]["field"], "Idempotency-Key");
    assert_eq!(everything(&app).await, before);
    // Two requests with a new key at once: one lead, the same answer to both.
    let same = lead("+16175550124");
    let (a, b) = tokio::join!(
        post(&app, Some(&k), &same, Some("form-124")),
        post(&app, Some(&k), &same, Some("form-124"))
    );
    assert_eq!((a.status, b.status), (201, 201), "{} / {}", a.body, b.body);
    assert_eq!(json_of(&a), json_of(&b));
    let leads: i64 =
        sqlx::query_scalar("select count(*) from web_lead where idempotency_key = 'form-124'")
            .fetch_one(&app.db.pool)
            .await
            .expect("count");
    assert_eq!(leads, 1);
    // Another key may use the same Idempotency-Key for its own lead.
    let k2 = key(&app, "harbor", "zillow").await;
    let theirs = post(&app, Some(&k2), &lead("+16175550125"), Some("form-123")).await;
    assert_eq!(theirs.status, 201);
    assert_ne!(json_of(&theirs)["id"], json_of(&first)["id"]);
}

#[tokio::test]
async fn without_a_valid_key_nothing_is_stored() {
    let app = spawn_app().await;
    let k = key(&app, "harbor", "website").await;
    let before = everything(&app).await;
    let fake = format!("tb_{}", "A".repeat(43));
    for presented in [
        None,
        Some("not-a-key"),
        Some(fake.as_str()),
        Some(&k[..k.len() - 1]),
    ] {
        let r = post(&app, presented, &lead(LEAD), None).await;
        assert_eq!(r.status, 401, "{presented:?}: {}", r.body);
        assert_eq!(json_of(&r)["error"]["code"], "unauthorized");
        assert!(
            r.headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Bearer")),
            "{:?}",
            r.headers
        );
    }
    // A revoked key is worth nothing.
    let mut conn = app.db.pool.acquire().await.expect("conn");
    let brokerage = textback::store::brokerages::by_slug(&mut conn, "harbor")
        .await
        .expect("q")
        .expect("harbor");
    assert!(
        textback::store::web_leads::revoke_key(&mut conn, brokerage, "website", test_start())
            .await
            .expect("revoke")
    );
    drop(conn);
    let before_revoked = everything(&app).await;
    let r = post(&app, Some(&k), &lead(LEAD), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(everything(&app).await, before_revoked);
    assert_ne!(before, before_revoked, "the revocation itself is recorded");
    app.drain().await;
    assert!(app.fake.messages().is_empty());
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_field_and_store_nothing() {
    let app = spawn_app().await;
    let k = key(&app, "harbor", "website").await;
    let before = everything(&app).await;
    let bearer = format!("Bearer {k}");
    let auth = [("authorization", bearer.as_str())];
    let mut no_consent = lead(LEAD);
    no_consent
        .as_object_mut()
        .expect("object")
        .remove("consent");
    let mut bad_phone = lead(LEAD);
    bad_phone["phone"] = json!("+1 911 555 0123");
    let mut not_ours = lead(LEAD);
    not_ours["number"] = json!("+15555550199");
    let mut bad_url = lead(LEAD);
    bad_url["consent"]["url"] = json!("harbor.example");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"phone=+16175550123".to_vec(), "body"),
        (b"{\"phone\":".to_vec(), "body"),
        (serde_json::to_vec(&no_consent).expect("json"), "consent"),
        (serde_json::to_vec(&bad_phone).expect("json"), "phone"),
        (serde_json::to_vec(&not_ours).expect("json"), "number"),
        (serde_json::to_vec(&bad_url).expect("json"), "consent.url"),
    ];
    for (body, field) in cases {
        let r = app.post_raw("/api/v1/leads", body, &auth).await;
        assert_eq!(r.status, 422, "{field}: {}", r.body);
        let e = json_of(&r);
        assert_eq!(e["error"]["code"], "invalid_field");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    // A bad Idempotency-Key is named too.
    let r = app
        .post_raw(
            "/api/v1/leads",
            serde_json::to_vec(&lead(LEAD)).expect("json"),
            &[
                ("authorization", bearer.as_str()),
                ("idempotency-key", "has spaces in it"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(json_of(&r)["error"]["field"], "Idempotency-Key");
    // Over 64 KiB.
    let mut huge = lead(LEAD);
    huge["message"] = json!("x".repeat(70_000));
    let r = app
        .post_raw(
            "/api/v1/leads",
            serde_json::to_vec(&huge).expect("json"),
            &auth,
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(json_of(&r)["error"]["code"], "too_large");
    // Not a POST.
    let r = app.get("/api/v1/leads").await;
    assert_eq!(r.status, 405);
    assert_eq!(everything(&app).await, before, "nothing stored");
    app.drain().await;
    assert!(app.fake.messages().is_empty());
}

#[tokio::test]
async fn over_its_rate_a_key_gets_429_with_retry_after_and_other_keys_do_not() {
    let app = spawn_app().await;
    let k = key(&app, "harbor", "website").await;
    let other = key(&app, "harbor", "zillow").await;
    let mut limited = Vec::new();
    for _ in 0..45 {
        let r = post(&app, Some(&k), &json!({}), None).await;
        if r.status == 429 {
            limited.push(r);
        } else {
            assert_eq!(r.status, 422, "{}", r.body);
        }
    }
    assert!(
        !limited.is_empty(),
        "45 requests at once were never limited"
    );
    let r = &limited[0];
    assert_eq!(json_of(r)["error"]["code"], "rate_limited");
    let wait: u64 = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(wait >= 1, "{wait}");
    let r = post(&app, Some(&other), &json!({}), None).await;
    assert_eq!(r.status, 422, "another key has its own budget");
}

#[tokio::test]
async fn an_opted_out_lead_is_recorded_but_never_texted_and_a_person_calls_instead() {
    let app = spawn_app().await;
    let k = key(&app, "harbor", "website").await;
    app.text_in(LEAD, MAIN_ST, "STOP").await;
    app.drain().await;
    let before = texts_to(&app, LEAD).len();
    let r = post(&app, Some(&k), &lead(LEAD), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    app.drain().await;
    assert_eq!(
        texts_to(&app, LEAD).len(),
        before,
        "no text after an opt-out"
    );
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("select state, reason from job where kind = 'lead_text'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("skipped", Some("opted_out"))
    );
    let tasks: i64 = sqlx::query_scalar("select count(*) from task where state = 'open'")
        .fetch_one(&app.db.pool)
        .await
        .expect("tasks");
    assert_eq!(tasks, 1, "a person calls the lead back");
    // Written consent on a form does not undo a STOP (R5: only their own START does).
    let suppressed: bool = sqlx::query_scalar(
        "select exists (select 1 from suppression where phone = $1 and lifted_at is null)",
    )
    .bind(LEAD)
    .fetch_one(&app.db.pool)
    .await
    .expect("suppression");
    assert!(suppressed);
}

#[tokio::test]
async fn a_lead_at_night_is_texted_when_the_window_opens_and_only_once_a_day() {
    let app = spawn_app().await;
    let k = key(&app, "harbor", "website").await;
    // 23:30 in Boston.
    app.clock.advance(Duration::minutes(13 * 60 + 30));
    let mut at_night = lead(LEAD);
    at_night["consent"]["at"] = json!("2026-06-13T03:29:00Z");
    at_night["number"] = json!("(555) 555-0110");
    let r = post(&app, Some(&k), &at_night, None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    app.drain().await;
    assert!(texts_to(&app, LEAD).is_empty(), "not at 23:30");
    // 08:00: it goes, from the number the lead named.
    app.clock.advance(Duration::minutes(8 * 60 + 30));
    app.drain().await;
    let sent: Vec<_> = app
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == LEAD)
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from.as_deref(), Some(ELM_ST));
    // The same person fills in another form an hour later: recorded, no second text.
    app.clock.advance(Duration::hours(1));
    let mut again = lead(LEAD);
    again["consent"]["at"] = json!("2026-06-13T13:00:00Z");
    let r = post(&app, Some(&k), &again, None).await;
    assert_eq!(r.status, 201);
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1, "one lead text a day");
    let reasons: Vec<Option<String>> =
        sqlx::query_scalar("select reason from job where kind = 'lead_text' order by job_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("jobs");
    assert_eq!(reasons[1].as_deref(), Some("lead_texted_today"));
}

#[tokio::test]
async fn a_first_to_claim_number_offers_a_web_lead_to_its_agents() {
    let setup = DEMO.replace(
        "missed_message = \"Sorry we missed you. We will text you in a moment.\"",
        "missed_message = \"Sorry we missed you. We will text you in a moment.\"\nrouting = \"first_to_claim\"",
    );
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await;
    let k = key(&app, "harbor", "website").await;
    let r = post(&app, Some(&k), &lead(LEAD), None).await;
    assert_eq!(r.status, 201);
    app.drain().await;
    let to_sam = texts_to(&app, SAM);
    assert_eq!(to_sam.len(), 1, "the offer only: {to_sam:?}");
    assert!(
        to_sam[0].contains("offered to you and others"),
        "{}",
        to_sam[0]
    );
    assert_eq!(
        texts_to(&app, LEAD).len(),
        1,
        "the lead is texted meanwhile"
    );
}

#[tokio::test]
async fn the_api_is_described_in_openapi_3_1_without_a_session() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/openapi.json").await;
    assert_eq!(r.status, 200);
    let doc = json_of(&r);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let op = &doc["paths"]["/api/v1/leads"]["post"];
    for status in ["201", "401", "413", "422", "429"] {
        assert!(op["responses"][status].is_object(), "{status} missing");
    }
    let lead = &doc["components"]["schemas"]["Lead"];
    let required: Vec<&str> = lead["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, vec!["phone", "consent"]);
    assert_eq!(lead["additionalProperties"], json!(false));
    // Every field the parser reads is described, and nothing else.
    let mut described: Vec<&str> = lead["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    described.sort_unstable();
    let mut read: Vec<&str> = textback::domain::lead_intake::FIELDS.to_vec();
    read.sort_unstable();
    assert_eq!(described, read);
}

/// schemathesis from PyPI (`.ci/run` installs it in `target/schemathesis`; or
/// `TEXTBACK_SCHEMATHESIS` names its `st`).
fn schemathesis() -> std::path::PathBuf {
    let st = std::env::var_os("TEXTBACK_SCHEMATHESIS").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/bin/st"),
        std::path::PathBuf::from,
    );
    assert!(
        st.exists(),
        "{} is missing: python3 -m venv target/schemathesis && target/schemathesis/bin/pip install schemathesis==4.32.5 (.ci/run does)",
        st.display()
    );
    st
}

/// The API against its own description: schemathesis generates requests from
/// `/api/v1/openapi.json`, valid and invalid (its examples, coverage and fuzzing phases), and
/// checks every answer: never a 5xx, only documented statuses, headers and bodies as
/// described, and data the description forbids refused. (The per-key rate is lifted here:
/// its 429 has a test of its own.)
#[tokio::test]
async fn schemathesis_finds_no_answer_that_departs_from_the_description() {
    let st = schemathesis();
    let app = spawn_app_with(AppOptions {
        api_burst: Some(1_000_000),
        ..AppOptions::default()
    })
    .await;
    let k = key(&app, "harbor", "website").await;
    let schema = format!("{}/api/v1/openapi.json", app.base_url);
    let report = std::env::temp_dir().join(format!("tb-schemathesis-{}", std::process::id()));
    let auth = format!("Authorization: Bearer {k}");
    // It keeps its own files where it runs: in the report's folder, not the repository.
    std::fs::create_dir_all(&report).expect("report folder");
    // In a blocking thread: this test's runtime goes on serving the requests meanwhile.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&st)
            .args([
                "run",
                &schema,
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection",
                "--header",
                &auth,
                "--max-examples",
                "60",
                "--seed",
                "20261204",
                "--workers",
                "2",
                "--no-color",
                "--generation-database",
                "none",
                "--report-dir",
            ])
            .arg(&report)
            .current_dir(&report)
            .output()
    })
    .await
    .expect("joined")
    .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found departures from the description:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It did test the operation, with answers of both kinds.
    assert!(stdout.contains("POST /api/v1/leads"), "{stdout}");
    let created = app.webhook_count("/api/v1/leads", "created");
    let invalid = app.webhook_count("/api/v1/leads", "invalid");
    assert!(
        invalid > 10,
        "schemathesis sent {invalid} invalid leads:\n{stdout}"
    );
    eprintln!("schemathesis: {created} leads created, {invalid} refused as invalid");
}

/// `textback api-key create | list | revoke` against the app's database: the key only once,
/// on the last line; lists show names and prefixes, never keys; a revoked key is refused.
#[tokio::test]
async fn api_keys_are_made_listed_and_revoked_from_the_command_line() {
    use crate::cli::{run, textback};
    let app = spawn_app().await;
    let url = app.db.url.clone();
    let cli = move |args: &[&str]| {
        let mut cmd = textback();
        cmd.env("DATABASE_URL", &url).arg("api-key").args(args);
        run(&mut cmd)
    };
    let (code, out, err) = cli(&["create", "--brokerage", "harbor", "--name", "website"]);
    assert_eq!(code, 0, "{out}{err}");
    let k = out.lines().last().expect("the key").to_owned();
    assert!(k.starts_with("tb_") && k.len() == 46, "{k}");
    assert_eq!(out.matches(&k).count(), 1, "shown once");
    let stored: i64 =
        sqlx::query_scalar("select count(*) from api_key where key_hash = sha256($1::bytea)")
            .bind(k.as_bytes())
            .fetch_one(&app.db.pool)
            .await
            .expect("hash");
    assert_eq!(stored, 1, "only the key's SHA-256 is kept");
    let r = post(&app, Some(&k), &lead(LEAD), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // The same name again, an unknown brokerage, a bad name: exit 2, nothing made.
    for args in [
        &["create", "--brokerage", "harbor", "--name", "website"][..],
        &["create", "--brokerage", "nowhere", "--name", "x"],
        &["create", "--brokerage", "harbor", "--name", " "],
    ] {
        let (code, _, err) = cli(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from api_key")
            .fetch_one(&app.db.pool)
            .await
            .expect("count"),
        1
    );
    let (code, listed, _) = cli(&["list", "--brokerage", "harbor"]);
    assert_eq!(code, 0);
    assert!(
        listed.contains("website") && listed.contains(&k[..10]),
        "{listed}"
    );
    assert!(
        listed.contains("last used") && listed.contains("live"),
        "{listed}"
    );
    assert!(!listed.contains(&k), "a list never shows a key");
    let (code, out, err) = cli(&["revoke", "--brokerage", "harbor", "--name", "website"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = post(&app, Some(&k), &lead(LEAD), None).await;
    assert_eq!(r.status, 401);
    let (code, _, _) = cli(&["revoke", "--brokerage", "harbor", "--name", "website"]);
    assert_eq!(code, 2, "nothing live to revoke");
    let (_, listed, _) = cli(&["list", "--brokerage", "harbor"]);
    assert!(listed.contains("revoked"), "{listed}");
}

const FORM_CONSENT: &str = "I agree to receive text messages from Harbor Realty about my inquiry at the number above. Message and data rates may apply. Reply STOP to opt out.";

/// The digest of the demo form's consent wording, as its page carries it.
fn demo_shown() -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(Sha256::digest(FORM_CONSENT.as_bytes()))
        .chars()
        .take(16)
        .collect()
}

fn form_fields(phone: &str, consent: bool, once: &str) -> Vec<u8> {
    let shown = demo_shown();
    let mut pairs = vec![
        ("name", "Taylor Reed"),
        ("phone", phone),
        ("message", "Is 9 Ocean Ave still available?"),
        ("website", ""),
        ("once", once),
        ("shown", shown.as_str()),
    ];
    if consent {
        pairs.push(("consent", "yes"));
    }
    serde_urlencoded::to_string(pairs)
        .expect("form")
        .into_bytes()
}

async fn submit(app: &TestApp, body: Vec<u8>) -> Resp {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = http
        .post(format!("{}/f/harbor/contact", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Resp {
        status,
        headers,
        body: r.text().await.unwrap_or_default(),
    }
}

#[tokio::test]
async fn a_hosted_form_is_a_lead_with_its_consent_exactly_as_shown() {
    let app = spawn_app().await;
    let page = app.get("/f/harbor/contact").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Ask Harbor Realty about a home"));
    assert!(
        page.body.contains(FORM_CONSENT),
        "the consent wording is on the page"
    );
    assert!(
        page.body
            .contains(r#"type="checkbox" name="consent" value="yes" required>"#),
        "the consent box is not ticked for them"
    );
    let csp = page
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors https://harbor.example"),
        "{csp}"
    );
    assert!(!csp.contains("'unsafe-inline'"), "{csp}");
    let r = submit(&app, form_fields("(617) 555-0150", true, "page-token-1")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("/f/harbor/contact?sent=1")
    );
    let thanks = app.get("/f/harbor/contact?sent=1").await;
    assert!(thanks.body.contains("Harbor Realty will text you shortly"));
    app.drain().await;
    let texts = texts_to(&app, "+16175550150");
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].starts_with("Hi Taylor"), "{}", texts[0]);
    let (raw, url, who, how, ip): (String, String, String, String, String) = sqlx::query_as(
        "select raw_text, consent_url, who, how, host(consent_ip) from consent_event where event = 'written_consent'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("consent");
    assert_eq!(raw, FORM_CONSENT);
    assert_eq!(url, format!("{}/f/harbor/contact", app.public_url));
    assert_eq!(
        (who.as_str(), how.as_str(), ip.as_str()),
        ("form:contact", "form", "127.0.0.1")
    );
    assert_eq!(app.webhook_count("/f", "created"), 1);
}

#[tokio::test]
async fn a_form_without_consent_or_a_usable_number_keeps_what_was_typed_and_stores_nothing() {
    let app = spawn_app().await;
    let before = everything(&app).await;
    let r = submit(&app, form_fields("(617) 555-0150", false, "t1")).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("Tick the box to agree to texts"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(r#"value="(617) 555-0150""#),
        "the number typed is kept"
    );
    assert!(r.body.contains("Is 9 Ocean Ave still available?"));
    let r = submit(&app, form_fields("555-0150", true, "t2")).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("not a mobile number we can text"),
        "{}",
        r.body
    );
    // What was typed comes back as text, never as markup.
    let evil = serde_urlencoded::to_string([
        ("name", "<script>alert(1)</script>"),
        ("phone", "x"),
        ("once", "t3"),
    ])
    .expect("form");
    let r = submit(&app, evil.into_bytes()).await;
    assert_eq!(r.status, 422);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    assert!(r.body.contains("&#60;script&#62;alert(1)"), "{}", r.body);
    assert_eq!(everything(&app).await, before);
    // An unknown or removed form is not found.
    assert_eq!(app.get("/f/harbor/nope").await.status, 404);
    assert_eq!(app.get("/f/nowhere/contact").await.status, 404);
    // Every other page keeps its frame-ancestors 'none'.
    let login = app.get("/login").await;
    assert!(
        login
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("frame-ancestors 'none'"))
    );
}

#[tokio::test]
async fn the_honeypot_the_rate_and_a_double_click_hold_spam_and_repeats_back() {
    let app = spawn_app().await;
    // A bot fills the hidden field: thanked, nothing kept.
    let before = everything(&app).await;
    let bot = serde_urlencoded::to_string([
        ("name", "Buy now"),
        ("phone", "(617) 555-0151"),
        ("consent", "yes"),
        ("website", "http://spam.example"),
        ("once", "b1"),
    ])
    .expect("form");
    let r = submit(&app, bot.into_bytes()).await;
    assert_eq!(r.status, 303);
    assert_eq!(everything(&app).await, before);
    assert_eq!(app.webhook_count("/f", "honeypot"), 1);
    // A double click: the page's token makes it one lead.
    for _ in 0..2 {
        let r = submit(&app, form_fields("(617) 555-0152", true, "same-page")).await;
        assert_eq!(r.status, 303);
    }
    let leads: i64 = sqlx::query_scalar("select count(*) from web_lead")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(leads, 1);
    // The rate per address: 5 at once (the three above count), then 429 with Retry-After.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = submit(&app, form_fields("(617) 555-0153", false, &format!("r{i}"))).await;
        statuses.push(r.status);
        if r.status == 429 {
            assert!(r.headers.get("retry-after").is_some());
        }
    }
    assert_eq!(statuses, vec![422, 422, 429, 429], "{statuses:?}");
}

/// The dashboard counts the web leads by source: received, texted, replied, answered.
#[tokio::test]
async fn the_dashboard_counts_web_leads_by_source() {
    let app = spawn_app().await;
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    let page = morgan.get("/dashboard").await;
    assert!(
        page.body
            .contains("No lead came from the website or a lead source in this period."),
        "{}",
        page.body
    );
    let k = key(&app, "harbor", "website").await;
    assert_eq!(post(&app, Some(&k), &lead(LEAD), None).await.status, 201);
    let r = submit(&app, form_fields("(617) 555-0150", true, "page-1")).await;
    assert_eq!(r.status, 303);
    app.drain().await;
    app.text_in(LEAD, MAIN_ST, "Yes, Saturday works").await;
    app.drain().await;
    // (The period ends now: what happened at this very instant is counted a moment later.)
    app.clock.advance(Duration::minutes(1));
    let page = morgan.get("/dashboard").await;
    let zillow = r#"<tr><th scope="row">Zillow</th><td class="num" data-label="Received">1</td><td class="num" data-label="Texted">1</td><td class="num" data-label="Replied">1</td><td class="num" data-label="Reply rate">100 %</td><td class="num" data-label="Answered by a person">0</td></tr>"#;
    assert!(page.body.contains(zillow), "{}", page.body);
    let form = r#"<tr><th scope="row">form contact</th><td class="num" data-label="Received">1</td><td class="num" data-label="Texted">1</td><td class="num" data-label="Replied">0</td>"#;
    assert!(page.body.contains(form), "{}", page.body);
    assert!(
        page.body.contains(r#"data-kpi="web-received">2<"#),
        "{}",
        page.body
    );
}

/// Issue 19's review: another site cannot make its visitors' browsers submit the form (and
/// consent) in their name; the form's own page, framed or not, is same-origin.
#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let before = everything(&app).await;
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = app
            .post_raw(
                "/f/harbor/contact",
                form_fields("(617) 555-0150", true, "x1"),
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    (name, value),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{name}: {}", r.body);
    }
    assert_eq!(everything(&app).await, before);
    let own = app.public_url.clone();
    let r = app
        .post_raw(
            "/f/harbor/contact",
            form_fields("(617) 555-0150", true, "x2"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", own.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    // (reqwest follows the redirect to the thanks page)
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("will text you shortly"));
}

/// Issue 19's review: two leads of one person arriving together get one lead text between
/// them, and a listing or name that R11 would refuse never reaches the text.
#[tokio::test]
async fn two_leads_at_once_get_one_text_and_a_lead_cannot_put_a_link_in_it() {
    let app = spawn_app().await;
    let k = key(&app, "harbor", "website").await;
    let mut sneaky = lead(LEAD);
    sneaky["name"] = json!("bit.ly/win Prize");
    sneaky["listing"] = json!("bit.ly/x for $5");
    // 23:30: both wait for the morning's window, then wake together.
    app.clock.advance(Duration::minutes(13 * 60 + 30));
    sneaky["consent"]["at"] = json!("2026-06-13T03:29:00Z");
    assert_eq!(post(&app, Some(&k), &sneaky, None).await.status, 201);
    let r = submit(&app, form_fields("(617) 555-0123", true, "p9")).await;
    assert_eq!(r.status, 303);
    app.drain().await;
    app.clock.advance(Duration::minutes(8 * 60 + 30));
    app.drain().await;
    let texts = texts_to(&app, LEAD);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(!texts[0].contains("bit.ly"), "{}", texts[0]);
    assert!(!texts[0].contains('$'), "{}", texts[0]);
    assert!(texts[0].starts_with("Hi there,"), "{}", texts[0]);
    assert!(
        texts[0].contains("123 Main St"),
        "the number's listing: {}",
        texts[0]
    );
    let leads: i64 = sqlx::query_scalar("select count(*) from web_lead")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(leads, 2, "both leads are kept");
}

/// The consent recorded is the wording the lead saw: a tick given to wording the setup file
/// has changed since the page was shown is asked again, and nothing is stored.
#[tokio::test]
async fn a_tick_given_to_wording_that_changed_since_is_asked_again() {
    let app = spawn_app().await;
    let page = app.get("/f/harbor/contact").await;
    let shown = page
        .body
        .split(r#"name="shown" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's digest")
        .to_owned();
    apply_setup(
        &app.db.pool,
        &DEMO.replace("Message and data rates may apply. ", ""),
    )
    .await;
    let before = everything(&app).await;
    let mut body = serde_urlencoded::to_string([
        ("name", "Taylor Reed"),
        ("phone", "(617) 555-0150"),
        ("consent", "yes"),
        ("once", "w1"),
        ("shown", shown.as_str()),
    ])
    .expect("form")
    .into_bytes();
    let r = submit(&app, body.clone()).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("The wording above changed"), "{}", r.body);
    assert!(!r.body.contains("Message and data rates may apply"));
    assert_eq!(everything(&app).await, before);
    // With the new page's digest it goes.
    let page = app.get("/f/harbor/contact").await;
    let now = page
        .body
        .split(r#"name="shown" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("digest")
        .to_owned();
    assert_ne!(now, shown);
    body = serde_urlencoded::to_string([
        ("name", "Taylor Reed"),
        ("phone", "(617) 555-0150"),
        ("consent", "yes"),
        ("once", "w2"),
        ("shown", now.as_str()),
    ])
    .expect("form")
    .into_bytes();
    assert_eq!(submit(&app, body).await.status, 303);
}
