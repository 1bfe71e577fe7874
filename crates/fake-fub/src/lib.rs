//! A fake Follow Up Boss (FUB) for tests and the demo, speaking the shapes of its public v1
//! API (docs.followupboss.com/reference): HTTP Basic with the API key as the user name and an
//! empty password, `X-System` on every request and `X-System-Key` where FUB restricts an
//! endpoint to registered systems (`/v1/textMessages`); `{"errorMessage": …}` on errors.
//!
//! - `POST /v1/events`: a lead event; the person is matched by phone (created: 201, updated:
//!   200) and returned;
//! - `GET /v1/people/{id}`, `PUT /v1/people/{id}[?mergeTags=true]` (tags replaced, or merged);
//! - `POST /v1/calls` and `POST /v1/textMessages`: logged to a person, 201 with the record.
//!
//! It can be taken down (every request answered 503) and brought back, and it records every
//! request it accepted, for the tests to read.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

/// A request FUB accepted: method and path, and its JSON body.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: &'static str,
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    people: Vec<Value>,
    log: Vec<Logged>,
    down: bool,
    /// Paths answered 500 (after the checks), as a FUB half up.
    failing: Vec<String>,
    next_id: i64,
}

#[derive(Clone)]
struct Shared {
    api_key: String,
    system_key: String,
    inner: Arc<Mutex<Inner>>,
}

/// A running fake FUB.
pub struct FakeFub {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeFub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "errorMessage": message }))).into_response()
}

impl FakeFub {
    /// Starts on a free local port; requests must carry `api_key` and, to log texts,
    /// `system_key`.
    pub async fn start(api_key: &str, system_key: &str) -> anyhow::Result<FakeFub> {
        let shared = Shared {
            api_key: api_key.to_owned(),
            system_key: system_key.to_owned(),
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1001,
                ..Inner::default()
            })),
        };
        let app = Router::new()
            .route("/v1/events", post(events))
            .route("/v1/people/{id}", get(get_person).put(put_person))
            .route("/v1/calls", post(calls))
            .route("/v1/textMessages", post(text_messages))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeFub { addr, shared, task })
    }

    /// The base URL (`[follow_up_boss] url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// While down, every request is answered 503 and nothing is recorded.
    pub fn set_down(&self, down: bool) {
        if let Ok(mut i) = self.shared.inner.lock() {
            i.down = down;
        }
    }

    /// While set, requests to `path` (`/v1/calls`) are answered 500 and not recorded.
    pub fn set_failing(&self, path: &str, failing: bool) {
        if let Ok(mut i) = self.shared.inner.lock() {
            i.failing.retain(|p| p != path);
            if failing {
                i.failing.push(path.to_owned());
            }
        }
    }

    pub fn people(&self) -> Vec<Value> {
        self.shared
            .inner
            .lock()
            .map(|i| i.people.clone())
            .unwrap_or_default()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.shared
            .inner
            .lock()
            .map(|i| i.log.clone())
            .unwrap_or_default()
    }
}

/// A request refused: FUB's status and `errorMessage`.
struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// The checks every request passes first: up, the API key, `X-System`.
fn admit(s: &Shared, headers: &HeaderMap, needs_system_key: bool) -> Result<(), Refusal> {
    let down = s.inner.lock().map(|i| i.down).unwrap_or(true);
    if down {
        return Err(Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
        ));
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:", s.api_key))
    );
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != expected {
        return Err(Refusal(StatusCode::UNAUTHORIZED, "Invalid API key"));
    }
    let system = headers.get("x-system").and_then(|v| v.to_str().ok());
    if system.is_none_or(str::is_empty) {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "X-System header is required",
        ));
    }
    if needs_system_key {
        let key = headers.get("x-system-key").and_then(|v| v.to_str().ok());
        if key != Some(s.system_key.as_str()) {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                "This endpoint is restricted to registered systems",
            ));
        }
    }
    Ok(())
}

fn body_json(body: &Bytes) -> Result<Value, Refusal> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or(Refusal(StatusCode::BAD_REQUEST, "Invalid JSON body"))
}

fn digits(phone: &str) -> String {
    let d: String = phone.chars().filter(char::is_ascii_digit).collect();
    d.strip_prefix('1')
        .filter(|r| r.len() == 10)
        .map_or(d.clone(), str::to_owned)
}

const TYPES: &[&str] = &[
    "Registration",
    "Inquiry",
    "Seller Inquiry",
    "Property Inquiry",
    "General Inquiry",
    "Visited Open House",
    "Viewed Property",
    "Saved Property",
    "Visited Website",
    "Incoming Call",
    "Unsubscribed",
    "Property Search",
    "Saved Property Search",
    "Viewed Page",
];

async fn events(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers, false) {
        return r.into_response();
    }
    let event = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    if event
        .get("source")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return error(StatusCode::BAD_REQUEST, "source is required");
    }
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    if !TYPES.contains(&kind) {
        return error(StatusCode::BAD_REQUEST, "Invalid event type");
    }
    let Some(person) = event.get("person").filter(|p| p.is_object()) else {
        return error(StatusCode::BAD_REQUEST, "person is required");
    };
    let phones: Vec<String> = person
        .get("phones")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("value").and_then(Value::as_str))
                .map(digits)
                .collect()
        })
        .unwrap_or_default();
    if phones.is_empty() {
        return error(StatusCode::BAD_REQUEST, "person needs an email or a phone");
    }
    let Ok(mut i) = s.inner.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "lock");
    };
    let existing = i.people.iter_mut().find(|p| {
        p["phones"].as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x["value"]
                    .as_str()
                    .map(digits)
                    .is_some_and(|d| phones.contains(&d))
            })
        })
    });
    let (status, out) = match existing {
        Some(p) => {
            for k in ["firstName", "lastName"] {
                if let Some(v) = person.get(k) {
                    p[k] = v.clone();
                }
            }
            (StatusCode::OK, p.clone())
        }
        None => {
            let id = i.next_id;
            i.next_id += 1;
            let p = json!({
                "id": id,
                "firstName": person.get("firstName").cloned().unwrap_or(json!("")),
                "lastName": person.get("lastName").cloned().unwrap_or(json!("")),
                "phones": person.get("phones").cloned().unwrap_or(json!([])),
                "tags": [],
                "source": event["source"].clone(),
                "stage": "Lead",
            });
            i.people.push(p.clone());
            (StatusCode::CREATED, p)
        }
    };
    i.log.push(Logged {
        method: "POST",
        path: "/v1/events".into(),
        body: event,
    });
    (status, axum::Json(out)).into_response()
}

async fn get_person(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    if let Err(r) = admit(&s, &headers, false) {
        return r.into_response();
    }
    let found = s
        .inner
        .lock()
        .ok()
        .and_then(|i| i.people.iter().find(|p| p["id"] == id).cloned());
    match found {
        Some(p) => axum::Json(p).into_response(),
        None => error(StatusCode::NOT_FOUND, "Person not found"),
    }
}

async fn put_person(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(&s, &headers, false) {
        return r.into_response();
    }
    let change = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let merge = q.get("mergeTags").is_some_and(|v| v == "true");
    let Ok(mut i) = s.inner.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "lock");
    };
    let Some(p) = i.people.iter_mut().find(|p| p["id"] == id) else {
        return error(StatusCode::NOT_FOUND, "Person not found");
    };
    if let Some(tags) = change.get("tags").and_then(Value::as_array) {
        let mut now: Vec<Value> = if merge {
            p["tags"].as_array().cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        for t in tags {
            if !now.contains(t) {
                now.push(t.clone());
            }
        }
        p["tags"] = Value::Array(now);
    }
    let out = p.clone();
    i.log.push(Logged {
        method: "PUT",
        path: format!("/v1/people/{id}"),
        body: change,
    });
    axum::Json(out).into_response()
}

/// A record logged to a person: `required` fields present, the person known.
fn log_to_person(s: &Shared, path: &str, body: &Bytes, required: &[&str]) -> Response {
    let record_in = match body_json(body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    for f in required {
        if record_in.get(*f).is_none_or(Value::is_null) {
            return error(StatusCode::BAD_REQUEST, &format!("{f} is required"));
        }
    }
    let Ok(mut i) = s.inner.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "lock");
    };
    let person = record_in["personId"].as_i64();
    if !i.people.iter().any(|p| p["id"].as_i64() == person) {
        return error(StatusCode::BAD_REQUEST, "Invalid personId");
    }
    let id = i.next_id;
    i.next_id += 1;
    let mut out = record_in.clone();
    out["id"] = json!(id);
    i.log.push(Logged {
        method: "POST",
        path: path.to_owned(),
        body: record_in,
    });
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn calls(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers, false) {
        return r.into_response();
    }
    if s.inner
        .lock()
        .map(|i| i.failing.iter().any(|p| p == "/v1/calls"))
        .unwrap_or(true)
    {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error");
    }
    log_to_person(&s, "/v1/calls", &body, &["personId", "phone", "isIncoming"])
}

async fn text_messages(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admit(&s, &headers, true) {
        return r.into_response();
    }
    log_to_person(
        &s,
        "/v1/textMessages",
        &body,
        &["personId", "message", "toNumber", "fromNumber"],
    )
}
