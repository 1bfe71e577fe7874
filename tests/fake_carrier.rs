//! The fake Twilio carrier, over real loopback sockets: its REST shapes against
//! `fixtures/twilio/`, its fault modes (docs/reliability.md §6), its signed status callbacks and
//! the webhook player. A small axum receiver plays our server and checks every signature.

// clippy.toml allows unwrap inside #[test] functions only; the helpers below are test code
// too, where a failed unwrap is simply a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::Value;
use textback::clock::{ManualClock, SharedClock};
use textback::twilio::{form, signature};
use textback_fake_twilio::{
    CallbackPlan, DialResult, FakeTwilio, FakeTwilioConfig, Fault, KeptBody, Scope, TRIAL_PREFIX,
    new_call_sid, new_message_sid,
};

const ACCOUNT: &str = "AC4a9f9b8b5c52fcd667586e852d52ac05";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const BROKERAGE: &str = "+15555550100";
const AGENT: &str = "+15555550101";
const LEAD: &str = "+16175550123";
const LANDLINE: &str = "+16175550124";
const OTHER: &str = "+16175550155";
const TEXT_BACK: &str = "Hi Jordan, this is Sam at Harbor Realty. Sorry we missed your call about 123 Main St. How can we help? Reply STOP to opt out.";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// A fake whose clock reads the fixture's creation time.
async fn start_fake() -> (FakeTwilio, Arc<ManualClock>) {
    let clock = ManualClock::new(at("2026-11-22T18:05:02Z"));
    let shared: SharedClock = clock.clone();
    let fake = FakeTwilio::start(FakeTwilioConfig::with_fixture_credentials(shared))
        .await
        .unwrap();
    (fake, clock)
}

fn fixture_text(name: &str) -> String {
    let path = format!("{}/fixtures/twilio/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).unwrap()
}

fn fixture_form_keys(name: &str) -> BTreeSet<String> {
    form::decode(fixture_text(name).as_bytes())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

fn keys(params: &[(String, String)]) -> BTreeSet<String> {
    params.iter().map(|(k, _)| k.clone()).collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences in shape between `actual` and the fixture `expected`: object key sets must be
/// equal at every level; values must be of the same JSON type, except that null is
/// compatible with anything (every Twilio field is nullable); array elements are compared
/// with the fixture's first element.
fn shape_diff(actual: &Value, expected: &Value, at: &str, out: &mut Vec<String>) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let ak: BTreeSet<&String> = a.keys().collect();
            let ek: BTreeSet<&String> = e.keys().collect();
            if ak != ek {
                out.push(format!(
                    "{at}: extra keys {:?}, missing keys {:?}",
                    ak.difference(&ek).collect::<Vec<_>>(),
                    ek.difference(&ak).collect::<Vec<_>>()
                ));
            }
            for k in ak.intersection(&ek) {
                shape_diff(&a[*k], &e[*k], &format!("{at}.{k}"), out);
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let Some(e0) = e.first() {
                for (i, x) in a.iter().enumerate() {
                    shape_diff(x, e0, &format!("{at}[{i}]"), out);
                }
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        _ if kind(actual) == kind(expected) => {}
        _ => out.push(format!(
            "{at}: {} where the fixture has {}",
            kind(actual),
            kind(expected)
        )),
    }
}

#[track_caller]
fn assert_shape(actual: &Value, fixture: &str) {
    let mut diffs = Vec::new();
    shape_diff(actual, &fixture_json(fixture), "$", &mut diffs);
    assert!(
        diffs.is_empty(),
        "shape differs from {fixture}: {diffs:#?}\n{actual:#}"
    );
}

/// The REST client side: Basic auth with the fixture credentials.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(fake: &FakeTwilio) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: fake.base_url(),
        }
    }

    fn messages_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{ACCOUNT}/Messages.json", self.base)
    }

    async fn create(&self, params: &[(&str, &str)]) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.messages_url())
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(params)
            .send()
            .await
    }

    async fn send(&self, to: &str, body: &str) -> reqwest::Result<reqwest::Response> {
        self.create(&[("To", to), ("From", BROKERAGE), ("Body", body)])
            .await
    }

    /// A create that must come back 201; returns the body.
    async fn send_ok(&self, to: &str, body: &str) -> Value {
        let (status, json) = read(self.send(to, body).await.unwrap()).await;
        assert_eq!(status, 201, "{json}");
        json
    }

    /// GET `base + path_and_query` with auth.
    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .send()
            .await
            .unwrap();
        read(resp).await
    }

    async fn list(&self, query: &[(&str, &str)]) -> (u16, Value) {
        let path = format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages.json?{}",
            form::encode(query)
        );
        self.get(&path).await
    }

    /// Every message of a listing, following `next_page_uri` to the end.
    async fn list_all(&self, query: &[(&str, &str)]) -> Vec<Value> {
        let (status, mut page) = self.list(query).await;
        assert_eq!(status, 200, "{page}");
        let mut all = Vec::new();
        loop {
            assert_shape_of_page(&page);
            all.extend(page["messages"].as_array().unwrap().iter().cloned());
            let Some(next) = page["next_page_uri"].as_str() else {
                return all;
            };
            let (status, next_page) = self.get(next).await;
            assert_eq!(status, 200, "{next_page}");
            page = next_page;
        }
    }
}

fn assert_shape_of_page(page: &Value) {
    let got: BTreeSet<&str> = page
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = [
        "end",
        "first_page_uri",
        "messages",
        "next_page_uri",
        "page",
        "page_size",
        "previous_page_uri",
        "start",
        "uri",
    ]
    .into();
    assert_eq!(got, want, "list page keys");
    for m in page["messages"].as_array().unwrap() {
        assert_shape(m, "message-create-201.json");
    }
}

async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

fn sids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["sid"].as_str().unwrap().to_owned())
        .collect()
}

/// Awaits a spawned request, failing the test instead of hanging if it never ends.
async fn within_5s<T>(task: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the request should have ended")
        .unwrap()
}

/// Polls `cond` every 10 ms for up to 5 s.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One request our stand-in server received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    params: Vec<(String, String)>,
}

impl Received {
    fn url(&self, base: &str) -> String {
        match &self.query {
            Some(q) => format!("{base}{}?{q}", self.path),
            None => format!("{base}{}", self.path),
        }
    }

    fn signature(&self) -> Option<&str> {
        self.headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
    }

    /// Valid per `signature::is_valid` at the URL it arrived at, *and* equal to the signature
    /// computed over exactly that URL.
    fn signed_for(&self, base: &str) -> bool {
        let url = self.url(base);
        signature::is_valid(TOKEN.as_bytes(), &url, &self.params, self.signature())
            && self.signature()
                == Some(signature::compute(TOKEN.as_bytes(), &url, &self.params).as_str())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> BTreeSet<String> {
        keys(&self.params)
    }
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A stand-in for our server: records every request, answers an empty TwiML document.
#[derive(Clone)]
struct Receiver {
    base: String,
    inbox: Inbox,
}

impl Receiver {
    async fn start() -> Receiver {
        async fn receive(
            State(inbox): State<Inbox>,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> impl IntoResponse {
            let params = form::decode(&body).unwrap();
            inbox.lock().unwrap().push(Received {
                path: uri.path().to_owned(),
                query: uri.query().map(str::to_owned),
                headers,
                params,
            });
            (
                [(header::CONTENT_TYPE, "text/xml")],
                r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#,
            )
        }
        let inbox: Inbox = Arc::default();
        let app = Router::new().fallback(receive).with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, inbox }
    }

    fn got(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    fn last(&self) -> Received {
        self.got().last().cloned().unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// The checker itself
// ---------------------------------------------------------------------------------------

#[test]
fn the_shape_checker_catches_key_and_type_differences() {
    let fixture = fixture_json("message-create-201.json");
    let mut diffs = Vec::new();
    shape_diff(&fixture, &fixture, "$", &mut diffs);
    assert!(diffs.is_empty());

    let mut extra = fixture.clone();
    extra["extra"] = Value::Null;
    shape_diff(&extra, &fixture, "$", &mut diffs);
    assert_eq!(diffs.len(), 1, "{diffs:?}");

    let mut nested = fixture.clone();
    nested["subresource_uris"]
        .as_object_mut()
        .unwrap()
        .remove("media");
    diffs.clear();
    shape_diff(&nested, &fixture, "$", &mut diffs);
    assert_eq!(diffs.len(), 1, "{diffs:?}");

    let mut wrong_type = fixture.clone();
    wrong_type["num_segments"] = Value::from(1);
    diffs.clear();
    shape_diff(&wrong_type, &fixture, "$", &mut diffs);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
}

// ---------------------------------------------------------------------------------------
// Messages: create, fetch, list
// ---------------------------------------------------------------------------------------

/// With the fixture's clock and inputs, the 201 is the fixture itself apart from the sid.
#[tokio::test]
async fn message_create_is_the_fixture_but_for_the_sid() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);
    let (status, got) = read(
        api.create(&[
            ("To", LEAD),
            ("From", BROKERAGE),
            ("Body", TEXT_BACK),
            (
                "StatusCallback",
                "https://textback.example.com/twilio/sms/status",
            ),
            ("ValidityPeriod", "600"),
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{got}");
    assert_shape(&got, "message-create-201.json");

    let sid = got["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert!(
        sid[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let mut expected = fixture_json("message-create-201.json");
    let fixture_sid = expected["sid"].as_str().unwrap().to_owned();
    let swapped = serde_json::to_string(&expected)
        .unwrap()
        .replace(&fixture_sid, &sid);
    expected = serde_json::from_str(&swapped).unwrap();
    assert_eq!(got, expected);

    let stored = fake.messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sid, sid);
    assert_eq!(stored[0].to, LEAD);
    assert_eq!(stored[0].from.as_deref(), Some(BROKERAGE));
    assert_eq!(stored[0].body, TEXT_BACK);
    assert_eq!(stored[0].status, "queued");
    assert_eq!(
        stored[0].status_callback.as_deref(),
        Some("https://textback.example.com/twilio/sms/status")
    );
    assert_eq!(stored[0].date_created, at("2026-11-22T18:05:02Z"));

    // Fetch by sid gives the same resource.
    let (status, fetched) = api
        .get(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched, got);
}

#[tokio::test]
async fn num_segments_follow_gsm7_and_ucs2() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);
    let digits = |n: usize| "1".repeat(n);
    let cases = [
        (format!("{{{}", digits(158)), "1"),
        (format!("{{{}", digits(159)), "2"),
        (format!("😜{}", digits(68)), "1"),
        (format!("😜{}", digits(69)), "2"),
        ("a".repeat(307), "3"),
    ];
    for (body, segments) in cases {
        let m = api.send_ok(LEAD, &body).await;
        assert_eq!(m["num_segments"], segments, "{body}");
        assert_eq!(m["body"], body.as_str());
    }
}

#[tokio::test]
async fn invalid_creates_get_twilio_errors_and_store_nothing() {
    let (fake, _clock) = start_fake().await;
    let api = Api::new(&fake);

    let (status, body) = read(
        api.create(&[("To", "5551234567"), ("From", BROKERAGE), ("Body", "hi")])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body, fixture_json("error-21211.json"));

    let cases: [(&[(&str, &str)], u64); 4] = [
        (&[("From", BROKERAGE), ("Body", "hi")], 21604),
        (&[("To", LEAD), ("Body", "hi")], 21603),
        (&[("To", LEAD), ("From", BROKERAGE)], 21602),
        (&[("To", LEAD), ("From", BROKERAGE), ("Body", "")], 21602),
    ];
    for (params, code) in cases {
        let (status, body) = read(api.create(params).await.unwrap()).await;
        assert_eq!(status, 400, "{params:?}");
        assert_eq!(body["code"], code, "{params:?}");
        assert_eq!(body["status"], 400);
        assert_shape(&body, "error-21211.json");
    }
    let long = "a".repeat(1601);
    let (status, body) = read(api.send(LEAD, &long).await.unwrap()).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21617)));

    // A body that is not a form: a Twilio-shaped 400, not a panic.
    let resp = api
        .http
        .post(api.messages_url())
        .basic_auth(ACCOUNT, Some(TOKEN))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("To=%ZZ&Body")
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 400);
    assert_shape(&body, "error-21211.json");

    assert!(fake.messages().is_empty());
    let statuses: Vec<Option<u16>> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(400); 7]);
}

#[tokio::test]
async fn bad_credentials_get_401_with_code_20003() {
    let (fake, _clock) = start_fake().await;
    let http = reqwest::Client::new();
    let base = fake.base_url();
    let messages = format!("{base}/2010-04-01/Accounts/{ACCOUNT}/Messages.json");
    let other_account = "AC00000000000000000000000000000000";
    let attempts = vec![
        http.get(&messages).basic_auth(ACCOUNT, Some("wrong")),
        http.get(&messages).basic_auth(other_account, Some(TOKEN)),
        http.get(&messages),
        http.get(&messages)
            .header(header::AUTHORIZATION, "Basic !!notbase64"),
        // Right credentials, someone else's account in the path.
        http.get(format!(
            "{base}/2010-04-01/Accounts/{other_account}/Messages.json"
        ))
        .basic_auth(ACCOUNT, Some(TOKEN)),
        http.post(&messages)
            .basic_auth(ACCOUNT, Some("wrong"))
            .form(&[("To", LEAD), ("From", BROKERAGE), ("Body", "hi")]),
        http.get(format!("{base}/v2/PhoneNumbers/%2B16175550123"))
            .basic_auth(ACCOUNT, Some("wrong")),
    ];
    for req in attempts {
        let resp = req.send().await.unwrap();
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
        let (status, body) = read(resp).await;
        assert_eq!(status, 401);
        assert_eq!(body["code"], 20003);
        assert_eq!(body["status"], 401);
        assert_shape(&body, "error-429.json");
    }
    assert!(fake.messages().is_empty());
    assert!(fake.requests().iter().all(|r| r.status == Some(401)));
}

#[tokio::test]
async fn unknown_paths_and_methods_are_twilio_errors() {
    let (fake, _clock) = start_fake().await;
    let api = Api::new(&fake);
    let (status, body) = api
        .get(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages/SM00000000000000000000000000000000.json"
        ))
        .await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20404)));
    assert_shape(&body, "error-21211.json");
    let (status, body) = api.get("/2010-04-01/Nothing.json").await;
    assert_eq!((status, body["code"].as_u64()), (404, Some(20404)));
    let resp = api
        .http
        .delete(api.messages_url())
        .basic_auth(ACCOUNT, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
}

#[tokio::test]
async fn list_filters_by_to_and_from_newest_first_and_pages_follow() {
    let (fake, clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);
    let mut to_lead = Vec::new();
    for i in 0..5 {
        let m = api.send_ok(LEAD, &format!("lead {i}")).await;
        to_lead.push(m["sid"].as_str().unwrap().to_owned());
        clock.advance(chrono::Duration::minutes(1));
        api.send_ok(OTHER, &format!("other {i}")).await;
    }
    // From another sender too.
    let (status, _) = read(
        api.create(&[("To", LEAD), ("From", AGENT), ("Body", "from the agent")])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);

    let newest_first: Vec<String> = to_lead.iter().rev().cloned().collect();
    let (status, first) = api
        .list(&[("To", LEAD), ("From", BROKERAGE), ("PageSize", "2")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["page"], 0);
    assert_eq!(first["page_size"], 2);
    assert_eq!(first["start"], 0);
    assert_eq!(first["end"], 1);
    assert!(first["previous_page_uri"].is_null());
    assert_eq!(
        sids(first["messages"].as_array().unwrap()),
        newest_first[..2]
    );

    let all = api
        .list_all(&[("To", LEAD), ("From", BROKERAGE), ("PageSize", "2")])
        .await;
    assert_eq!(sids(&all), newest_first);
    assert!(
        all.iter()
            .all(|m| m["to"] == LEAD && m["from"] == BROKERAGE)
    );

    // The second page links back; the first_page_uri is followable too.
    let next = first["next_page_uri"].as_str().unwrap();
    let (_, second) = api.get(next).await;
    assert_eq!(second["page"], 1);
    assert_eq!(second["start"], 2);
    let (status, back) = api.get(second["previous_page_uri"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        sids(back["messages"].as_array().unwrap()),
        newest_first[..2]
    );
    let (_, again) = api.get(first["first_page_uri"].as_str().unwrap()).await;
    assert_eq!(
        sids(again["messages"].as_array().unwrap()),
        newest_first[..2]
    );

    // Plain Page numbers work without a token.
    let (_, third) = api
        .list(&[
            ("To", LEAD),
            ("From", BROKERAGE),
            ("PageSize", "2"),
            ("Page", "2"),
        ])
        .await;
    assert_eq!(
        sids(third["messages"].as_array().unwrap()),
        newest_first[4..]
    );
    assert!(third["next_page_uri"].is_null());

    assert_eq!(api.list_all(&[("To", LEAD)]).await.len(), 6);
    // Same creation time (the clock stands still): newest by arrival first.
    let first_tie = api.send_ok(LANDLINE, "tie 1").await;
    let second_tie = api.send_ok(LANDLINE, "tie 2").await;
    assert_eq!(
        sids(&api.list_all(&[("To", LANDLINE)]).await),
        sids(&[second_tie, first_tie])
    );
    assert_eq!(api.list_all(&[("From", AGENT)]).await.len(), 1);
    assert_eq!(api.list_all(&[]).await.len(), 13);
    let (_, default_page) = api.list(&[]).await;
    assert_eq!(default_page["page_size"], 50);
    let (_, capped) = api.list(&[("PageSize", "5000")]).await;
    assert_eq!(capped["page_size"], 1000);
    let (status, body) = api.list(&[("PageSize", "many")]).await;
    assert_eq!(status, 400);
    assert_shape(&body, "error-21211.json");
}

/// `DateSent` filters compare `date_sent`; messages whose `date_sent` is null (still queued)
/// never match a `DateSent` filter (the fake's documented choice, docs/twilio.md §11 #9).
/// The carrier may keep a message under another body than the one sent: a trial account's
/// prefix, Message Redaction's empty body. The 201, the list and a fetch all show the kept
/// body; a create from before the change keeps its own.
#[tokio::test]
async fn kept_bodies_show_in_the_answer_the_list_and_a_fetch() {
    let (fake, _clock) = start_fake().await;
    let api = Api::new(&fake);
    let plain = api.send_ok(LEAD, TEXT_BACK).await;
    assert_eq!(plain["body"], TEXT_BACK);
    fake.keep_bodies(KeptBody::Prefixed(TRIAL_PREFIX.to_owned()));
    let trial = api.send_ok(LEAD, TEXT_BACK).await;
    let prefixed = format!("{TRIAL_PREFIX}{TEXT_BACK}");
    assert_eq!(trial["body"], prefixed.as_str());
    fake.keep_bodies(KeptBody::Redacted);
    let redacted = api.send_ok(OTHER, TEXT_BACK).await;
    assert_eq!(redacted["body"], "");
    let listed = api.list_all(&[("To", LEAD)]).await;
    let bodies: Vec<&str> = listed.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec![prefixed.as_str(), TEXT_BACK]);
    let sid = redacted["sid"].as_str().unwrap();
    let (status, fetched) = api
        .get(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
        ))
        .await;
    assert_eq!((status, fetched["body"].as_str()), (200, Some("")));
}

/// Twilio's list can lag the create: with a lag set, a new message shows in listings only
/// that long after its creation (by the fake's clock), while a fetch by sid finds it at once.
#[tokio::test]
async fn the_list_can_lag_the_create() {
    let (fake, clock) = start_fake().await;
    let api = Api::new(&fake);
    fake.set_list_lag(chrono::Duration::seconds(5));
    let sent = api.send_ok(LEAD, TEXT_BACK).await;
    assert!(
        api.list_all(&[("To", LEAD)]).await.is_empty(),
        "not listed yet"
    );
    let sid = sent["sid"].as_str().unwrap();
    let (status, _) = api
        .get(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
        ))
        .await;
    assert_eq!(status, 200, "a fetch by sid finds it at once");
    clock.advance(chrono::Duration::seconds(5));
    assert_eq!(
        sids(&api.list_all(&[("To", LEAD)]).await),
        vec![sid.to_owned()]
    );
}

#[tokio::test]
async fn date_sent_filters_and_queued_messages() {
    let (fake, clock) = start_fake().await;
    let api = Api::new(&fake);
    let day1 = api.send_ok(LEAD, "day one").await;
    fake.settle().await;
    clock.set(at("2026-11-23T09:00:00Z"));
    let day2 = api.send_ok(LEAD, "day two").await;
    fake.settle().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let queued = api.send_ok(LEAD, "still queued").await;
    let sid = |m: &Value| m["sid"].as_str().unwrap().to_owned();

    let listed = api.list_all(&[("To", LEAD)]).await;
    assert_eq!(sids(&listed), vec![sid(&queued), sid(&day2), sid(&day1)]);
    assert!(listed[0]["date_sent"].is_null());
    assert_eq!(listed[1]["date_sent"], "Mon, 23 Nov 2026 09:00:00 +0000");
    assert_eq!(listed[1]["status"], "delivered");

    let on = api
        .list_all(&[("To", LEAD), ("DateSent", "2026-11-22")])
        .await;
    assert_eq!(sids(&on), vec![sid(&day1)]);
    let after = api.list_all(&[("DateSent>", "2026-11-23")]).await;
    assert_eq!(sids(&after), vec![sid(&day2)]);
    let before = api.list_all(&[("DateSent<", "2026-11-23")]).await;
    assert_eq!(sids(&before), vec![sid(&day2), sid(&day1)]);
    let none = api.list_all(&[("DateSent<", "2026-11-21")]).await;
    assert!(none.is_empty());
    let instant = api.list_all(&[("DateSent>", "2026-11-22T18:05:03Z")]).await;
    assert_eq!(sids(&instant), vec![sid(&day2)]);
    let (status, body) = api.list(&[("DateSent", "yesterday")]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(20001)));
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_clock_time_and_outcome() {
    let (fake, clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);
    let m = api.send_ok(LEAD, "Hi there, 3 beds & a yard").await;
    clock.advance(chrono::Duration::seconds(30));
    api.list(&[("To", LEAD)]).await;

    let log = fake.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].method, "POST");
    assert_eq!(
        log[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    assert_eq!(log[0].at, at("2026-11-22T18:05:02Z"));
    assert!(
        log[0]
            .params
            .contains(&("Body".to_owned(), "Hi there, 3 beds & a yard".to_owned()))
    );
    assert_eq!(log[0].status, Some(201));
    assert!(
        log[0].outcome.contains(m["sid"].as_str().unwrap()),
        "{}",
        log[0].outcome
    );
    assert_eq!(log[1].method, "GET");
    assert_eq!(log[1].query, "To=%2B16175550123");
    assert_eq!(log[1].at, at("2026-11-22T18:05:32Z"));
    assert_eq!(log[1].status, Some(200));
}

// ---------------------------------------------------------------------------------------
// Lookup v2 and Calls
// ---------------------------------------------------------------------------------------

/// The fixture with `url` pointed at the fake.
fn lookup_fixture(fake: &FakeTwilio, name: &str) -> Value {
    let mut v = fixture_json(name);
    let number = v["phone_number"].as_str().unwrap().to_owned();
    v["url"] = Value::String(format!("{}/v2/PhoneNumbers/{number}", fake.base_url()));
    v
}

#[tokio::test]
async fn lookup_answers_like_the_fixtures() {
    let (fake, _clock) = start_fake().await;
    let api = Api::new(&fake);
    let lti = "?Fields=line_type_intelligence";

    let (status, mobile) = api
        .get(&format!("/v2/PhoneNumbers/%2B16175550123{lti}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(mobile, lookup_fixture(&fake, "lookup-v2-mobile.json"));

    fake.set_line_type(LANDLINE, "landline");
    let (_, landline) = api
        .get(&format!("/v2/PhoneNumbers/%2B16175550124{lti}"))
        .await;
    assert_eq!(landline, lookup_fixture(&fake, "lookup-v2-landline.json"));

    let (_, too_long) = api
        .get(&format!("/v2/PhoneNumbers/%2B161755501234{lti}"))
        .await;
    assert_eq!(too_long, lookup_fixture(&fake, "lookup-v2-invalid.json"));

    fake.set_caller_name(LEAD, "JORDAN LEE");
    let (_, cnam) = api
        .get("/v2/PhoneNumbers/%2B16175550123?Fields=caller_name")
        .await;
    assert_eq!(cnam, lookup_fixture(&fake, "lookup-v2-caller-name.json"));

    // Both packages at once; none when no Fields.
    let (_, both) = api
        .get("/v2/PhoneNumbers/%2B16175550123?Fields=caller_name,line_type_intelligence")
        .await;
    assert_eq!(both["caller_name"], cnam["caller_name"]);
    assert_eq!(
        both["line_type_intelligence"],
        mobile["line_type_intelligence"]
    );
    let (_, basic) = api.get("/v2/PhoneNumbers/%2B16175550123").await;
    assert!(basic["caller_name"].is_null() && basic["line_type_intelligence"].is_null());
    assert_eq!(basic["valid"], true);

    // Types without carrier data get null carrier fields; the shape stays the fixture's.
    fake.set_line_type(OTHER, "tollFree");
    let (_, toll_free) = api
        .get(&format!("/v2/PhoneNumbers/%2B16175550155{lti}"))
        .await;
    assert_shape(&toll_free, "lookup-v2-landline.json");
    let lt = &toll_free["line_type_intelligence"];
    assert_eq!(lt["type"], "tollFree");
    assert!(lt["carrier_name"].is_null() && lt["mobile_country_code"].is_null());

    // Marked invalid, and not E.164 at all: 200 with valid:false.
    fake.set_lookup_invalid(OTHER);
    for path in ["%2B16175550155", "6175550123", "%ZZ"] {
        let (status, invalid) = api.get(&format!("/v2/PhoneNumbers/{path}{lti}")).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(invalid["valid"], false, "{path}");
        assert!(invalid["line_type_intelligence"].is_null());
        assert_shape(&invalid, "lookup-v2-invalid.json");
    }
}

#[tokio::test]
async fn calls_create_is_the_fixture_but_for_the_sids() {
    let (fake, clock) = start_fake().await;
    clock.set(at("2026-11-22T18:06:10Z"));
    let http = reqwest::Client::new();
    let url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
        fake.base_url()
    );
    let twiml = "<Response><Gather numDigits=\"1\"><Say>Press 1</Say></Gather><Hangup/></Response>";
    let resp = http
        .post(&url)
        .basic_auth(ACCOUNT, Some(TOKEN))
        .form(&[
            ("To", AGENT),
            ("From", BROKERAGE),
            ("Twiml", twiml),
            ("Timeout", "20"),
            (
                "StatusCallback",
                "https://textback.example.com/twilio/voice/status",
            ),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
        ])
        .send()
        .await
        .unwrap();
    let (status, got) = read(resp).await;
    assert_eq!(status, 201, "{got}");
    assert_shape(&got, "call-create-201.json");

    let sid = got["sid"].as_str().unwrap();
    assert!(sid.starts_with("CA") && sid.len() == 34);
    let mut expected = fixture_json("call-create-201.json");
    let text = serde_json::to_string(&expected)
        .unwrap()
        .replace("CA2cdcd846aef99b8f9072ed52c97ac38b", sid)
        .replace(
            "PN863d7d1fb41cab65f3037a2fed7f54a6",
            got["phone_number_sid"].as_str().unwrap(),
        );
    expected = serde_json::from_str(&text).unwrap();
    assert_eq!(got, expected);

    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].sid, sid);
    assert_eq!(calls[0].twiml.as_deref(), Some(twiml));
    assert_eq!(
        calls[0].status_callback_events,
        ["initiated", "ringing", "answered", "completed"]
    );

    let resp = http
        .post(&url)
        .basic_auth(ACCOUNT, Some(TOKEN))
        .form(&[("From", BROKERAGE), ("Twiml", twiml)])
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21201)));
    assert_eq!(fake.calls().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn status_fault_21610_and_429_with_retry_after_are_the_fixtures() {
    let (fake, _clock) = start_fake().await;
    let api = Api::new(&fake);
    fake.inject(
        Fault::Status {
            http: 400,
            code: Some(21610),
            recorded: false,
            retry_after: None,
        },
        Scope::Next(1),
    );
    let (status, body) = read(api.send(LEAD, "hi").await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(body, fixture_json("error-21610.json"));
    assert!(fake.messages().is_empty());

    fake.inject(
        Fault::Status {
            http: 429,
            code: None,
            recorded: false,
            retry_after: Some(2),
        },
        Scope::Next(1),
    );
    let resp = api.send(LEAD, "hi").await.unwrap();
    assert_eq!(
        resp.headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let (status, body) = read(resp).await;
    assert_eq!(status, 429);
    assert_eq!(body, fixture_json("error-429.json"));

    // Without retry_after there is no header.
    fake.inject(
        Fault::Status {
            http: 429,
            code: None,
            recorded: false,
            retry_after: None,
        },
        Scope::Next(1),
    );
    let resp = api.send(LEAD, "hi").await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(!resp.headers().contains_key(header::RETRY_AFTER));

    // Faults used up: the next create is accepted.
    api.send_ok(LEAD, "hi").await;
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn status_fault_recorded_shows_in_the_list_not_recorded_does_not() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);
    let fault = |recorded| Fault::Status {
        http: 500,
        code: None,
        recorded,
        retry_after: None,
    };

    fake.inject(fault(true), Scope::Next(1));
    let (status, body) = read(api.send(LEAD, "accepted then 500").await.unwrap()).await;
    assert_eq!((status, body["code"].as_u64()), (500, Some(20500)));
    assert_shape(&body, "error-429.json");
    let listed = api.list_all(&[("To", LEAD)]).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["body"], "accepted then 500");

    fake.inject(fault(false), Scope::Next(1));
    let (status, _) = read(api.send(OTHER, "never processed").await.unwrap()).await;
    assert_eq!(status, 500);
    assert!(api.list_all(&[("To", OTHER)]).await.is_empty());

    fake.inject(
        Fault::Status {
            http: 503,
            code: None,
            recorded: false,
            retry_after: None,
        },
        Scope::Next(1),
    );
    let (status, body) = read(api.send(OTHER, "unavailable").await.unwrap()).await;
    assert_eq!((status, body["code"].as_u64()), (503, Some(20503)));
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn delay_fault_recorded_times_out_the_client_but_keeps_the_message() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);

    fake.inject(
        Fault::Delay {
            ms: 1500,
            recorded: true,
        },
        Scope::Next(1),
    );
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = impatient
        .post(api.messages_url())
        .basic_auth(ACCOUNT, Some(TOKEN))
        .form(&[("To", LEAD), ("From", BROKERAGE), ("Body", "slow")])
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!err.is_connect(), "{err:?}");
    let listed = api.list_all(&[("To", LEAD)]).await;
    assert_eq!(listed.len(), 1, "stored before the answer");

    // A patient client gets the 201 after the delay.
    fake.inject(
        Fault::Delay {
            ms: 300,
            recorded: true,
        },
        Scope::Next(1),
    );
    let started = Instant::now();
    let m = api.send_ok(LEAD, "slow but fine").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(m["status"], "queued");

    // Not recorded: 500 after the delay, nothing stored.
    fake.inject(
        Fault::Delay {
            ms: 300,
            recorded: false,
        },
        Scope::Next(1),
    );
    let started = Instant::now();
    let (status, body) = read(api.send(OTHER, "lost").await.unwrap()).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((status, body["code"].as_u64()), (500, Some(20500)));
    assert_eq!(fake.messages().len(), 2);
}

#[tokio::test]
async fn hold_keeps_the_answer_until_released() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Arc::new(Api::new(&fake));

    fake.inject(Fault::Hold { recorded: true }, Scope::Next(1));
    let pending = tokio::spawn({
        let api = api.clone();
        async move { read(api.send(LEAD, "held").await.unwrap()).await }
    });
    eventually("the create to be held", || fake.held_count() == 1).await;
    // The carrier already has it, the client has no answer yet.
    assert_eq!(api.list_all(&[("To", LEAD)]).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    assert!(fake.requests()[0].outcome.starts_with("held"));
    assert_eq!(fake.requests()[0].status, None);

    fake.release_held();
    let (status, body) = within_5s(pending).await;
    assert_eq!(status, 201);
    assert_eq!(body["sid"].as_str(), Some(fake.messages()[0].sid.as_str()));
    assert_eq!(fake.held_count(), 0);
    assert_eq!(fake.requests()[0].status, Some(201));

    fake.inject(Fault::Hold { recorded: false }, Scope::Next(1));
    let pending = tokio::spawn({
        let api = api.clone();
        async move { read(api.send(OTHER, "held, lost").await.unwrap()).await }
    });
    eventually("the second create to be held", || fake.held_count() == 1).await;
    fake.release_held();
    let (status, body) = within_5s(pending).await;
    assert_eq!((status, body["code"].as_u64()), (500, Some(20500)));
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn reset_closes_the_connection_after_the_request_was_read() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);

    fake.inject(Fault::Reset { recorded: true }, Scope::Next(1));
    let err = api.send(LEAD, "reset but kept").await.unwrap_err();
    assert!(!err.is_connect(), "the connection was made: {err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(fake.messages().len(), 1);

    fake.inject(Fault::Reset { recorded: false }, Scope::Next(1));
    let err = api.send(OTHER, "reset and lost").await.unwrap_err();
    assert!(!err.is_connect(), "{err:?}");
    assert_eq!(fake.messages().len(), 1);

    // One request per send (the client did not retry), answered with nothing.
    let log = fake.requests();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|r| r.status.is_none()));
    assert!(
        log.iter().all(|r| r.outcome.starts_with("reset")),
        "{log:?}"
    );

    // The same client works again afterwards.
    api.send_ok(LEAD, "fine").await;
}

#[tokio::test]
async fn go_down_refuses_connections_and_go_up_serves_the_same_port() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Arc::new(Api::new(&fake));
    let addr = fake.addr();
    api.send_ok(LEAD, "before").await;

    // A create held while the carrier goes down loses its connection.
    fake.inject(Fault::Hold { recorded: true }, Scope::Next(1));
    let pending = tokio::spawn({
        let api = api.clone();
        async move { api.send(LEAD, "in flight").await }
    });
    eventually("the create to be held", || fake.held_count() == 1).await;

    fake.go_down().await;
    let err = within_5s(pending).await.unwrap_err();
    assert!(!err.is_connect(), "it was connected: {err:?}");
    let refused = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let err = api.send(LEAD, "while down").await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let fresh = reqwest::Client::new();
    let err = fresh
        .post(api.messages_url())
        .basic_auth(ACCOUNT, Some(TOKEN))
        .form(&[("To", LEAD), ("From", BROKERAGE), ("Body", "while down")])
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    fake.go_down().await; // twice is harmless

    fake.go_up().await.unwrap();
    fake.go_up().await.unwrap(); // twice is harmless
    assert_eq!(fake.addr(), addr);
    assert_eq!(fake.base_url(), format!("http://{addr}"));
    api.send_ok(LEAD, "after").await;
    let bodies: Vec<String> = fake.messages().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, ["before", "in flight", "after"]);
}

#[tokio::test]
async fn list_fail_and_list_dup() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);
    let a = api.send_ok(LEAD, "one").await;
    let b = api.send_ok(LEAD, "two").await;

    fake.inject(Fault::ListFail, Scope::Next(1));
    let (status, body) = api.list(&[("To", LEAD)]).await;
    assert_eq!((status, body["code"].as_u64()), (500, Some(20500)));
    let (status, _) = api.list(&[("To", LEAD)]).await;
    assert_eq!(status, 200, "ListFail was for one listing");
    // List faults do not touch creates.
    fake.inject(Fault::ListFail, Scope::Always);
    api.send_ok(LEAD, "three").await;
    let (status, _) = api.list(&[]).await;
    assert_eq!(status, 500);
    fake.clear_faults();

    fake.inject(Fault::ListDup, Scope::Always);
    let listed = api.list_all(&[("To", LEAD), ("PageSize", "1")]).await;
    assert_eq!(listed.len(), 6, "each message twice, paging included");
    for pair in listed.chunks(2) {
        assert_ne!(pair[0]["sid"], pair[1]["sid"]);
        for field in ["to", "from", "body", "date_created", "status"] {
            assert_eq!(pair[0][field], pair[1][field], "{field}");
        }
    }
    let bodies: Vec<&str> = listed.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["three", "three", "two", "two", "one", "one"]);
    // The twins exist only in listings.
    let twin = listed[1]["sid"].as_str().unwrap();
    let (status, _) = api
        .get(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages/{twin}.json"
        ))
        .await;
    assert_eq!(status, 404);
    assert_eq!(fake.messages().len(), 3);

    fake.clear_faults();
    let listed = api.list_all(&[("To", LEAD)]).await;
    assert_eq!(listed.len(), 3);
    assert!(sids(&listed).contains(&a["sid"].as_str().unwrap().to_owned()));
    assert!(sids(&listed).contains(&b["sid"].as_str().unwrap().to_owned()));
}

#[tokio::test]
async fn scopes_next_to_and_for() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let api = Api::new(&fake);
    let unavailable = Fault::Status {
        http: 503,
        code: None,
        recorded: false,
        retry_after: None,
    };
    let status_of = |resp: reqwest::Response| resp.status().as_u16();

    fake.inject(unavailable.clone(), Scope::Next(2));
    assert_eq!(status_of(api.send(LEAD, "a").await.unwrap()), 503);
    assert_eq!(status_of(api.send(OTHER, "b").await.unwrap()), 503);
    assert_eq!(status_of(api.send(LEAD, "c").await.unwrap()), 201);

    fake.inject(unavailable.clone(), Scope::To(LANDLINE.to_owned()));
    assert_eq!(status_of(api.send(LEAD, "d").await.unwrap()), 201);
    assert_eq!(status_of(api.send(LANDLINE, "e").await.unwrap()), 503);
    assert_eq!(status_of(api.send(LANDLINE, "f").await.unwrap()), 503);
    fake.clear_faults();
    assert_eq!(status_of(api.send(LANDLINE, "g").await.unwrap()), 201);

    fake.inject(unavailable.clone(), Scope::For(Duration::from_millis(300)));
    assert_eq!(status_of(api.send(LEAD, "h").await.unwrap()), 503);
    assert_eq!(status_of(api.send(LEAD, "i").await.unwrap()), 503);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status_of(api.send(LEAD, "j").await.unwrap()), 201);

    fake.inject(unavailable, Scope::Always);
    assert_eq!(status_of(api.send(LEAD, "k").await.unwrap()), 503);
    assert_eq!(status_of(api.send(OTHER, "l").await.unwrap()), 503);
    fake.clear_faults();

    let bodies: Vec<String> = fake.messages().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, ["c", "d", "g", "j"]);
}

// ---------------------------------------------------------------------------------------
// Status callbacks
// ---------------------------------------------------------------------------------------

/// Creates a message to `to` whose StatusCallback points at the receiver (with a query
/// string, which the signature must cover); returns the sid and the callback URL.
async fn send_with_callback(api: &Api, rx: &Receiver, to: &str) -> (String, String) {
    let callback = format!("{}/twilio/sms/status?attempt=1", rx.base);
    let (status, m) = read(
        api.create(&[
            ("To", to),
            ("From", BROKERAGE),
            ("Body", TEXT_BACK),
            ("StatusCallback", &callback),
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    (m["sid"].as_str().unwrap().to_owned(), callback)
}

fn statuses(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| r.get("MessageStatus").unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn default_plan_sends_signed_sent_then_delivered() {
    let (fake, _clock) = start_fake().await;
    let rx = Receiver::start().await;
    let api = Api::new(&fake);
    let (sid, callback) = send_with_callback(&api, &rx, LEAD).await;
    fake.settle().await;

    let got = rx.got();
    assert_eq!(statuses(&got), ["sent", "delivered"]);
    let delivered_keys = fixture_form_keys("sms-status-delivered.txt");
    let mut sent_keys = delivered_keys.clone();
    sent_keys.remove("RawDlrDoneDate");
    for (r, want) in got.iter().zip([&sent_keys, &delivered_keys]) {
        assert_eq!(r.url(&rx.base), callback);
        assert!(r.signed_for(&rx.base), "signature of {:?}", r.params);
        assert!(
            !signature::is_valid(
                TOKEN.as_bytes(),
                &format!("{}/twilio/sms/status", rx.base),
                &r.params,
                r.signature()
            ),
            "the query string is part of what is signed"
        );
        assert_eq!(&r.keys(), want);
        assert_eq!(
            r.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/x-www-form-urlencoded"
        );
        assert_eq!(r.get("MessageSid"), Some(sid.as_str()));
        assert_eq!(r.get("SmsSid"), Some(sid.as_str()));
        assert_eq!(r.get("SmsStatus"), r.get("MessageStatus"));
        assert_eq!(r.get("AccountSid"), Some(ACCOUNT));
        assert_eq!(r.get("From"), Some(BROKERAGE));
        assert_eq!(r.get("To"), Some(LEAD));
        assert_eq!(r.get("ApiVersion"), Some("2010-04-01"));
    }
    assert_eq!(got[1].get("RawDlrDoneDate"), Some("2611221805"));

    let m = &fake.messages()[0];
    assert_eq!(m.status, "delivered");
    assert_eq!(m.date_sent, Some(at("2026-11-22T18:05:02Z")));
    let attempts = fake.callbacks();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts
            .iter()
            .all(|a| a.result == Ok(200) && a.url == callback)
    );

    let (_, fetched) = api
        .get(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
        ))
        .await;
    assert_eq!(fetched["status"], "delivered");
    assert_eq!(fetched["date_sent"], "Sun, 22 Nov 2026 18:05:02 +0000");
}

#[tokio::test]
async fn landline_gets_undelivered_30006() {
    let (fake, _clock) = start_fake().await;
    let rx = Receiver::start().await;
    let api = Api::new(&fake);
    fake.set_line_type(LANDLINE, "landline");
    let (sid, _) = send_with_callback(&api, &rx, LANDLINE).await;
    fake.settle().await;

    let got = rx.got();
    assert_eq!(statuses(&got), ["sent", "undelivered"]);
    let last = &got[1];
    assert!(last.signed_for(&rx.base));
    assert_eq!(
        last.keys(),
        fixture_form_keys("sms-status-undelivered-30006.txt")
    );
    assert_eq!(last.get("ErrorCode"), Some("30006"));
    assert_eq!(got[0].get("ErrorCode"), None);

    let m = &fake.messages()[0];
    assert_eq!(
        (m.status.as_str(), m.error_code),
        ("undelivered", Some(30006))
    );
    let (_, fetched) = api
        .get(&format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
        ))
        .await;
    assert_eq!(fetched["error_code"], 30006);
    assert_shape(&fetched, "message-create-201.json");
}

#[tokio::test]
async fn duplicated_reversed_delayed_and_disabled_plans() {
    let (fake, _clock) = start_fake().await;
    let rx = Receiver::start().await;
    let api = Api::new(&fake);

    fake.set_callback_plan(CallbackPlan::default().duplicated());
    send_with_callback(&api, &rx, LEAD).await;
    fake.settle().await;
    let got = rx.got();
    assert_eq!(statuses(&got), ["sent", "sent", "delivered", "delivered"]);
    assert!(got.iter().all(|r| r.signed_for(&rx.base)));
    assert_eq!(got[0].params, got[1].params);
    assert_eq!(got[2].params, got[3].params);

    rx.inbox.lock().unwrap().clear();
    fake.set_callback_plan(CallbackPlan::default().reversed());
    let (sid, _) = send_with_callback(&api, &rx, OTHER).await;
    fake.settle().await;
    assert_eq!(statuses(&rx.got()), ["delivered", "sent"]);
    let m = fake.messages().into_iter().find(|m| m.sid == sid).unwrap();
    assert_eq!(
        m.status, "delivered",
        "the late 'sent' does not move it back"
    );

    rx.inbox.lock().unwrap().clear();
    fake.set_callback_plan(CallbackPlan::default().with_delay(Duration::from_millis(150)));
    let started = Instant::now();
    send_with_callback(&api, &rx, LEAD).await;
    assert!(rx.got().is_empty(), "nothing before the first delay");
    fake.settle().await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(statuses(&rx.got()), ["sent", "delivered"]);

    rx.inbox.lock().unwrap().clear();
    fake.set_callback_plan(CallbackPlan::disabled());
    let (sid, _) = send_with_callback(&api, &rx, LEAD).await;
    fake.settle().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.got().is_empty());
    let m = fake.messages().into_iter().find(|m| m.sid == sid).unwrap();
    assert_eq!((m.status.as_str(), m.date_sent), ("queued", None));
}

#[tokio::test]
async fn explicit_status_callbacks() {
    let (fake, _clock) = start_fake().await;
    fake.set_callback_plan(CallbackPlan::disabled());
    let rx = Receiver::start().await;
    let api = Api::new(&fake);
    let (sid, callback) = send_with_callback(&api, &rx, LEAD).await;

    let status = fake
        .send_message_status(&sid, "undelivered", Some(30006))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let r = rx.last();
    assert!(r.signed_for(&rx.base));
    assert_eq!(r.url(&rx.base), callback);
    assert_eq!(
        r.keys(),
        fixture_form_keys("sms-status-undelivered-30006.txt")
    );
    assert_eq!(fake.messages()[0].status, "undelivered");

    // An out-of-order 'sent' is delivered as such but does not move the message back.
    fake.send_message_status(&sid, "sent", None).await.unwrap();
    assert_eq!(rx.last().get("MessageStatus"), Some("sent"));
    assert_eq!(fake.messages()[0].status, "undelivered");

    assert!(
        fake.send_message_status("SM00000000000000000000000000000000", "sent", None)
            .await
            .is_err()
    );
    let no_callback = api.send_ok(LEAD, "no callback").await;
    assert!(
        fake.send_message_status(no_callback["sid"].as_str().unwrap(), "sent", None)
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------
// The player
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn player_webhooks_are_signed_and_shaped_like_the_fixtures() {
    let (fake, _clock) = start_fake().await;
    let rx = Receiver::start().await;
    let player = fake.player(&rx.base);
    let call = new_call_sid();

    struct Case {
        path: &'static str,
        fixture: Option<&'static str>,
    }
    let mut cases: Vec<Case> = Vec::new();
    let mut answers = Vec::new();

    answers.push(player.incoming_call(&call, LEAD, BROKERAGE).await.unwrap());
    cases.push(Case {
        path: "/twilio/voice",
        fixture: Some("voice-incoming.txt"),
    });
    answers.push(
        player
            .dial_result(&call, LEAD, BROKERAGE, DialResult::no_answer())
            .await
            .unwrap(),
    );
    cases.push(Case {
        path: "/twilio/voice/dial",
        fixture: Some("voice-dial-action-no-answer.txt"),
    });
    answers.push(
        player
            .dial_result(&call, LEAD, BROKERAGE, DialResult::answered(64))
            .await
            .unwrap(),
    );
    cases.push(Case {
        path: "/twilio/voice/dial",
        fixture: Some("voice-dial-action-completed.txt"),
    });
    answers.push(
        player
            .call_status(&call, LEAD, BROKERAGE, "completed", 0)
            .await
            .unwrap(),
    );
    cases.push(Case {
        path: "/twilio/voice/status",
        fixture: Some("voice-status-completed.txt"),
    });
    let sms = new_message_sid();
    answers.push(
        player
            .inbound_sms(&sms, LEAD, BROKERAGE, "STOP", 0, Some("STOP"))
            .await
            .unwrap(),
    );
    cases.push(Case {
        path: "/twilio/sms",
        fixture: Some("sms-inbound-stop.txt"),
    });
    answers.push(
        player
            .inbound_sms(
                &new_message_sid(),
                LEAD,
                BROKERAGE,
                "Yes! Saturday?",
                0,
                None,
            )
            .await
            .unwrap(),
    );
    cases.push(Case {
        path: "/twilio/sms",
        fixture: Some("sms-inbound-reply.txt"),
    });
    let out = new_message_sid();
    answers.push(
        player
            .message_status(&out, BROKERAGE, LEAD, "delivered", None)
            .await
            .unwrap(),
    );
    cases.push(Case {
        path: "/twilio/sms/status",
        fixture: Some("sms-status-delivered.txt"),
    });
    answers.push(
        player
            .message_status(&out, BROKERAGE, LANDLINE, "undelivered", Some("30006"))
            .await
            .unwrap(),
    );
    cases.push(Case {
        path: "/twilio/sms/status",
        fixture: Some("sms-status-undelivered-30006.txt"),
    });
    let child = new_call_sid();
    answers.push(player.screen(&child, &call, AGENT, LEAD).await.unwrap());
    cases.push(Case {
        path: "/twilio/voice/screen",
        fixture: None,
    });
    answers.push(
        player
            .screen_answer(&child, &call, AGENT, LEAD, "1")
            .await
            .unwrap(),
    );
    cases.push(Case {
        path: "/twilio/voice/screen/answer",
        fixture: None,
    });

    let got = rx.got();
    assert_eq!(got.len(), cases.len());
    for ((r, case), answer) in got.iter().zip(&cases).zip(&answers) {
        assert_eq!(r.path, case.path);
        assert!(r.signed_for(&rx.base), "{}", case.path);
        assert_eq!(
            r.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/x-www-form-urlencoded"
        );
        assert!(r.headers.contains_key("i-twilio-idempotency-token"));
        if let Some(fixture) = case.fixture {
            assert_eq!(r.keys(), fixture_form_keys(fixture), "{fixture}");
        }
        // What our server answered comes back to the test.
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type(), Some("text/xml"));
        assert!(answer.body.contains("<Response/>"));
    }

    // Values that matter to the server.
    assert_eq!(got[0].get("CallStatus"), Some("ringing"));
    assert_eq!(got[0].get("Direction"), Some("inbound"));
    assert_eq!(got[0].get("Caller"), Some(LEAD));
    assert_eq!(got[0].get("Called"), Some(BROKERAGE));
    assert_eq!(got[0].get("ToZip"), Some(""));
    assert_eq!(got[1].get("DialBridged"), Some("false"));
    assert_eq!(got[1].get("CallStatus"), Some("in-progress"));
    assert_eq!(got[2].get("DialCallDuration"), Some("64"));
    assert_eq!(
        got[3].get("Timestamp"),
        Some("Sun, 22 Nov 2026 18:05:02 +0000")
    );
    assert_eq!(got[3].get("CallDuration"), Some("31"));
    assert_eq!(got[3].get("Duration"), Some("1"));
    assert_eq!(got[4].get("MessageSid"), Some(sms.as_str()));
    assert_eq!(got[4].get("OptOutType"), Some("STOP"));
    assert_eq!(got[5].get("Body"), Some("Yes! Saturday?"));
    let screen_keys = {
        let mut k = fixture_form_keys("voice-incoming.txt");
        k.remove("StirVerstat");
        k.insert("ParentCallSid".to_owned());
        k
    };
    assert_eq!(got[8].keys(), screen_keys);
    assert_eq!(got[8].get("Direction"), Some("outbound-dial"));
    assert_eq!(got[8].get("CallStatus"), Some("in-progress"));
    assert_eq!(got[8].get("ParentCallSid"), Some(call.as_str()));
    assert_eq!(got[8].get("CallSid"), Some(child.as_str()));
    assert_eq!(got[8].get("To"), Some(AGENT));
    let mut answer_keys = screen_keys;
    answer_keys.insert("Digits".to_owned());
    assert_eq!(got[9].keys(), answer_keys);
    assert_eq!(got[9].get("Digits"), Some("1"));
}

#[tokio::test]
async fn player_variants_dial_without_bridged_media_and_forged_signatures() {
    let (fake, _clock) = start_fake().await;
    let rx = Receiver::start().await;
    let player = fake.player(&format!("{}/", rx.base));
    let call = new_call_sid();

    player
        .dial_result(
            &call,
            LEAD,
            BROKERAGE,
            DialResult {
                dial_call_status: "completed",
                bridged: None,
                parent_call_status: "completed",
                dial_call_sid: None,
                dial_call_duration: None,
            },
        )
        .await
        .unwrap();
    let r = rx.last();
    assert!(
        r.signed_for(&rx.base),
        "a trailing slash in public_url is dropped"
    );
    assert_eq!(r.get("DialBridged"), None);
    assert_eq!(r.get("DialCallSid"), None);
    assert_eq!(r.get("DialCallStatus"), Some("completed"));

    player
        .call_status(&call, LEAD, BROKERAGE, "ringing", 1)
        .await
        .unwrap();
    let r = rx.last();
    assert_eq!(r.get("SequenceNumber"), Some("1"));
    assert_eq!(r.get("CallDuration"), None);

    player
        .inbound_sms(&new_message_sid(), LEAD, BROKERAGE, "pic", 2, None)
        .await
        .unwrap();
    let r = rx.last();
    assert_eq!(r.get("NumMedia"), Some("2"));
    assert!(r.get("MediaUrl0").is_some() && r.get("MediaUrl1").is_some());
    assert_eq!(r.get("MediaContentType1"), Some("image/jpeg"));
    assert!(r.signed_for(&rx.base));

    // Anonymous callers carry no StIR verdict.
    player
        .incoming_call(&new_call_sid(), "anonymous", BROKERAGE)
        .await
        .unwrap();
    assert_eq!(rx.last().get("StirVerstat"), None);

    // Forged and missing signatures reach the server as such.
    let params = player.incoming_call_params(&call, LEAD, BROKERAGE);
    player
        .post_with_signature(
            "/twilio/voice",
            &params,
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        )
        .await
        .unwrap();
    assert!(!rx.last().signed_for(&rx.base));
    player
        .post_with_signature("/twilio/voice", &params, None)
        .await
        .unwrap();
    assert_eq!(rx.last().signature(), None);
    // And the same params posted signed validate: the builders are what gets signed.
    player.post_signed("/twilio/voice", &params).await.unwrap();
    assert!(rx.last().signed_for(&rx.base));
    assert_eq!(rx.last().params, params);
}
