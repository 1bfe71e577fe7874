//! Request handling: one axum fallback handler that records the request, then routes it by
//! path segments. Routing by hand (rather than axum paths) keeps every request — unknown
//! paths, wrong methods, undecodable bodies — recorded and answered in Twilio's error shape.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::faults::Fault;
use super::shapes::{self, LookupFacts};
use super::{FakeCall, FakeMessage, FetchedMedia, Shared, StoredMessage, callbacks, calls, player};
use textback_core::domain::phone::{PhoneNumber, mask};
use textback_twilio::form;

/// Response extension: close the connection instead of answering (see `serve_connection`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResetConnection;

/// The service error that makes hyper drop a connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection closed without a response (Fault::Reset)")]
pub(crate) struct ResetError;

/// Largest body the fake reads (Twilio bodies are at most a few kB: a 1600-char `Body`,
/// percent-encoded, plus a few parameters).
const MAX_BODY: usize = 64 * 1024;
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;
/// Code for list parameters and bodies the fake cannot read. Twilio's exact code for these
/// is not documented in our sources; 20001 is its generic "invalid parameter" family.
const BAD_PARAMETER: u32 = 20001;

type Params = [(String, String)];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A response and the words the request log keeps for it.
struct Reply {
    response: Response,
    outcome: String,
}

impl Reply {
    fn json(status: StatusCode, body: Value, outcome: impl Into<String>) -> Reply {
        Reply {
            response: (status, Json(body)).into_response(),
            outcome: outcome.into(),
        }
    }

    /// Twilio's error JSON; the outcome names the status and code.
    fn error(status: StatusCode, code: u32, message: &str) -> Reply {
        let body = shapes::error_body(status.as_u16(), code, message);
        Reply::json(status, body, format!("{} code {code}", status.as_u16()))
    }

    fn reset(outcome: String) -> Reply {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(ResetConnection);
        Reply { response, outcome }
    }
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let body = axum::body::to_bytes(body, MAX_BODY).await;
    // Only POST bodies carry parameters; a GET body is ignored like Twilio does.
    let params = match (&parts.method, body) {
        (&Method::POST, Ok(bytes)) => form::decode(&bytes).map_err(|e| e.to_string()),
        (&Method::POST, Err(_)) => Err(format!("body over {MAX_BODY} bytes or unreadable")),
        _ => Ok(Vec::new()),
    };
    let idx = s.record(
        parts.method.as_str(),
        &path,
        &query,
        params.as_deref().unwrap_or_default(),
    );
    let reply = match params {
        Ok(params) => {
            route(
                &s,
                idx,
                &parts.method,
                &parts.headers,
                &path,
                &query,
                &params,
            )
            .await
        }
        Err(why) => {
            tracing::info!(%why, "fake twilio: undecodable form body");
            Reply::error(
                StatusCode::BAD_REQUEST,
                BAD_PARAMETER,
                "The request body is not a valid form",
            )
        }
    };
    let answered = reply
        .response
        .extensions()
        .get::<ResetConnection>()
        .is_none();
    let status = answered.then(|| reply.response.status().as_u16());
    s.finish(idx, status, &reply.outcome);
    tracing::info!(method = %parts.method, route = route_name(&path), ?status, outcome = %reply.outcome, "fake twilio request");
    reply.response
}

/// A name for the log that does not carry the phone number of a Lookup path.
fn route_name(path: &str) -> &'static str {
    if path.ends_with("/Messages.json") {
        "messages"
    } else if path.contains("/Messages/") {
        "message"
    } else if path.ends_with("/Calls.json") {
        "calls"
    } else if path.contains("/Calls/") {
        "call"
    } else if path.contains("/Recordings/") {
        "recording"
    } else if path.starts_with("/v2/PhoneNumbers/") {
        "lookup"
    } else {
        "unknown"
    }
}

async fn route(
    s: &Arc<Shared>,
    idx: usize,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: &str,
    params: &Params,
) -> Reply {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        ["2010-04-01", "Accounts", account, "Messages.json"] => {
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            match *method {
                Method::POST => create_message(s, idx, params, &account).await,
                Method::GET => list_messages(s, path, query, &account),
                _ => method_not_allowed(),
            }
        }
        [
            "2010-04-01",
            "Accounts",
            account,
            "Messages",
            message_sid,
            "Media",
            sid,
        ] => {
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            let found = s.lock().media.iter().any(|m| {
                m.account_sid == account && m.message_sid == *message_sid && m.sid == *sid
            });
            match (method, found) {
                // Twilio answers with a redirect to its content store.
                (&Method::GET, true) => {
                    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
                    if let Ok(v) = HeaderValue::from_str(&format!("/cdn/{sid}?Expires=3600")) {
                        response.headers_mut().insert(header::LOCATION, v);
                    }
                    Reply {
                        response,
                        outcome: format!("307 media {sid}"),
                    }
                }
                (&Method::GET, false) => not_found(path),
                _ => method_not_allowed(),
            }
        }
        ["cdn", sid] => {
            let found = s.lock().media.iter().find(|m| m.sid == *sid).cloned();
            match (method, found) {
                (&Method::GET, Some(m)) => {
                    let mut response = m.bytes.into_response();
                    if let Ok(v) = HeaderValue::from_str(&m.content_type) {
                        response.headers_mut().insert(header::CONTENT_TYPE, v);
                    }
                    Reply {
                        response,
                        outcome: format!("200 media content {sid}"),
                    }
                }
                (&Method::GET, None) => not_found(path),
                _ => method_not_allowed(),
            }
        }
        ["2010-04-01", "Accounts", account, "Messages", file] => {
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            match *method {
                Method::GET => fetch_message(s, path, file, &account),
                _ => method_not_allowed(),
            }
        }
        ["v1", "Services", rest @ ..] => {
            if authorized(s, headers, None).is_none() {
                return unauthorized();
            }
            if *method != Method::GET {
                return method_not_allowed();
            }
            let not_found = || {
                Reply::error(
                    StatusCode::NOT_FOUND,
                    20404,
                    "The requested resource was not found",
                )
            };
            let state = s.lock();
            match rest {
                [] => {
                    let list: Vec<Value> = state
                        .services
                        .iter()
                        .map(|m| {
                            json!({
                                "sid": m.sid,
                                "friendly_name": m.friendly_name,
                                "inbound_request_url": m.inbound_request_url,
                                "use_inbound_webhook_on_number": m.use_inbound_webhook_on_number,
                            })
                        })
                        .collect();
                    Reply::json(
                        StatusCode::OK,
                        json!({ "services": list, "meta": { "next_page_url": null } }),
                        "200 services",
                    )
                }
                [sid, "PhoneNumbers"] => match state.services.iter().find(|m| m.sid == *sid) {
                    Some(m) => {
                        let list: Vec<Value> = m
                            .numbers
                            .iter()
                            .map(|n| json!({ "phone_number": n, "service_sid": m.sid }))
                            .collect();
                        Reply::json(
                            StatusCode::OK,
                            json!({ "phone_numbers": list, "meta": { "next_page_url": null } }),
                            "200 service numbers",
                        )
                    }
                    None => not_found(),
                },
                [sid, "Compliance", "Usa2p"] => {
                    match state.services.iter().find(|m| m.sid == *sid) {
                        Some(m) => {
                            let list: Vec<Value> = m
                                .campaign_status
                                .iter()
                                .map(
                                    |c| json!({ "sid": "QE0", "campaign_status": c, "errors": [] }),
                                )
                                .collect();
                            Reply::json(
                                StatusCode::OK,
                                json!({ "compliance": list, "meta": { "next_page_url": null } }),
                                "200 campaigns",
                            )
                        }
                        None => not_found(),
                    }
                }
                _ => not_found(),
            }
        }
        [
            "2010-04-01",
            "Accounts",
            account,
            "IncomingPhoneNumbers.json",
        ] => {
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            match *method {
                Method::GET => {
                    let q = form::decode(query.as_bytes()).unwrap_or_default();
                    let wanted = q
                        .iter()
                        .find(|(k, _)| k == "PhoneNumber")
                        .map(|(_, v)| v.clone());
                    let list: Vec<Value> = s
                        .lock()
                        .numbers
                        .iter()
                        .filter(|n| n.account_sid == account)
                        .filter(|n| wanted.as_ref().is_none_or(|w| *w == n.phone_number))
                        .map(shapes::number_json)
                        .collect();
                    let body = json!({
                        "incoming_phone_numbers": list,
                        "next_page_uri": null,
                        "page": 0,
                        "page_size": 50,
                        "uri": format!("{path}?{query}"),
                    });
                    Reply::json(StatusCode::OK, body, "200 listed numbers")
                }
                _ => method_not_allowed(),
            }
        }
        [
            "2010-04-01",
            "Accounts",
            account,
            "IncomingPhoneNumbers",
            file,
        ] => {
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            let sid = file.strip_suffix(".json").unwrap_or(file).to_owned();
            let mut state = s.lock();
            let Some(n) = state
                .numbers
                .iter_mut()
                .find(|n| n.sid == sid && n.account_sid == account)
            else {
                return Reply::error(
                    StatusCode::NOT_FOUND,
                    20404,
                    "The requested resource was not found",
                );
            };
            if *method != Method::POST && *method != Method::GET {
                return method_not_allowed();
            }
            if *method == Method::POST {
                for (k, v) in params {
                    let v = v.clone();
                    let opt = || Some(v.clone()).filter(|x| !x.is_empty());
                    match k.as_str() {
                        "VoiceUrl" => n.voice_url = opt(),
                        "VoiceMethod" => n.voice_method = v,
                        "SmsUrl" => n.sms_url = opt(),
                        "SmsMethod" => n.sms_method = v,
                        "StatusCallback" => n.status_callback = opt(),
                        "StatusCallbackMethod" => n.status_callback_method = v,
                        "VoiceApplicationSid" => n.voice_application_sid = opt(),
                        "SmsApplicationSid" => n.sms_application_sid = opt(),
                        _ => {}
                    }
                }
            }
            Reply::json(
                StatusCode::OK,
                shapes::number_json(n),
                format!("200 number {sid}"),
            )
        }
        ["2010-04-01", "Accounts", file] if file.ends_with(".json") => {
            let account = file.trim_end_matches(".json");
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            match *method {
                Method::GET => Reply::json(
                    StatusCode::OK,
                    json!({
                        "sid": account,
                        "status": "active",
                        "friendly_name": "Fake account",
                        "type": "Full",
                    }),
                    "200 account",
                ),
                _ => method_not_allowed(),
            }
        }
        ["2010-04-01", "Accounts", account, "Calls.json"] => {
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            match *method {
                Method::POST => create_call(s, idx, params, &account).await,
                Method::GET => {
                    let q = form::decode(query.as_bytes()).unwrap_or_default();
                    let body = calls::list_body(s, &account, &q, path);
                    Reply::json(StatusCode::OK, body, "200 listed calls")
                }
                _ => method_not_allowed(),
            }
        }
        ["2010-04-01", "Accounts", account, "Calls", file] => {
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            let sid = file.strip_suffix(".json").unwrap_or(file);
            let found = s
                .lock()
                .calls
                .iter()
                .find(|c| c.sid == sid && c.account_sid == account)
                .cloned();
            match (method, found) {
                (&Method::GET, Some(c)) => Reply::json(
                    StatusCode::OK,
                    shapes::call_json(&c, &account),
                    format!("200 fetched {sid}"),
                ),
                (&Method::GET, None) => not_found(path),
                _ => method_not_allowed(),
            }
        }
        ["2010-04-01", "Accounts", account, "Recordings", file] => {
            let Some(account) = authorized(s, headers, Some(account)) else {
                return unauthorized();
            };
            let Some(sid) = file.strip_suffix(".mp3") else {
                return not_found(path);
            };
            let found = s
                .lock()
                .recordings
                .iter()
                .find(|r| r.sid == sid && r.account_sid == account)
                .cloned();
            match (method, found) {
                (&Method::GET, Some(r)) => {
                    // About 26 ms per frame: a few frames per second of the message.
                    let frames = usize::try_from(r.duration_secs.clamp(1, 600)).unwrap_or(1) * 38;
                    let mut response = calls::silent_mp3(frames).into_response();
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
                    Reply {
                        response,
                        outcome: format!("200 recording {sid}"),
                    }
                }
                (&Method::GET, None) => not_found(path),
                _ => method_not_allowed(),
            }
        }
        ["v2", "PhoneNumbers", number] => {
            if authorized(s, headers, None).is_none() {
                return unauthorized();
            }
            match *method {
                Method::GET => lookup(s, number, query),
                _ => method_not_allowed(),
            }
        }
        _ => not_found(path),
    }
}

/// HTTP Basic `AccountSid:AuthToken` of an account the fake knows, and the account in the path
/// (when there is one) must be that account. Returns the account.
fn authorized(s: &Shared, headers: &HeaderMap, path_account: Option<&str>) -> Option<String> {
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())?;
    let (user, password) = credentials.split_once(':')?;
    let known = s
        .lock()
        .accounts
        .get(user)
        .is_some_and(|a| a.auth_token == password);
    (known && path_account.is_none_or(|a| a == user)).then(|| user.to_owned())
}

fn unauthorized() -> Reply {
    let mut reply = Reply::error(
        StatusCode::UNAUTHORIZED,
        20003,
        &shapes::error_message(20003, ""),
    );
    reply.response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Twilio API\""),
    );
    reply
}

fn not_found(path: &str) -> Reply {
    Reply::error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

fn method_not_allowed() -> Reply {
    Reply::error(StatusCode::METHOD_NOT_ALLOWED, 20004, "Method not allowed")
}

/// The first value of a parameter, like Twilio reads single-valued parameters.
fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A present, non-empty parameter.
fn given<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    param(params, name).filter(|v| !v.is_empty())
}

/// Validates a create (in Twilio's order: `To`, `From`, `Body`) and builds the message it
/// would store. Validation comes before any fault, so an invalid create never uses up a
/// `Scope::Next` and a `recorded` fault always has a whole message to store.
/// The error is the Twilio code and the `To` its message names.
fn new_message(s: &Shared, params: &Params, account: &str) -> Result<FakeMessage, (u32, String)> {
    let bad = |code: u32, to: &str| (code, to.to_owned());
    let Some(to) = given(params, "To") else {
        return Err(bad(21604, ""));
    };
    if PhoneNumber::parse(to).is_err() {
        return Err(bad(21211, to));
    }
    let from = given(params, "From");
    let service = given(params, "MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return Err(bad(21603, to));
    }
    let num_media = params.iter().filter(|(k, _)| k == "MediaUrl").count();
    let body = param(params, "Body").unwrap_or("");
    if body.is_empty() && num_media == 0 {
        return Err(bad(21602, to));
    }
    if body.chars().count() > 1600 {
        return Err(bad(21617, to));
    }
    let now = s.clock.now();
    let kept = s.lock().kept_body.apply(body);
    let body = kept.as_str();
    Ok(FakeMessage {
        sid: player::new_message_sid(),
        account_sid: account.to_owned(),
        to: to.to_owned(),
        from: from.map(str::to_owned),
        messaging_service_sid: service.map(str::to_owned),
        body: body.to_owned(),
        // A Messaging Service send starts `accepted`, before a sender is picked (§3.3).
        status: if from.is_none() { "accepted" } else { "queued" }.to_owned(),
        status_callback: given(params, "StatusCallback").map(str::to_owned),
        date_created: now,
        date_updated: now,
        date_sent: None,
        // No sender assigned yet on a service send: Twilio reports 0 segments (§3.2).
        num_segments: if from.is_none() {
            0
        } else {
            shapes::num_segments(body)
        },
        num_media: u32::try_from(num_media).unwrap_or(u32::MAX),
        error_code: None,
        media_urls: params
            .iter()
            .filter(|(k, _)| k == "MediaUrl")
            .map(|(_, v)| v.clone())
            .collect(),
    })
}

/// Keeps the message and starts its status callbacks.
fn store(s: &Arc<Shared>, msg: &FakeMessage) {
    let mut state = s.lock();
    let listed_from = msg.date_created + state.list_lag;
    state.messages.push(StoredMessage {
        msg: msg.clone(),
        dup_sid: player::new_message_sid(),
        listed_from,
    });
    drop(state);
    fetch_media(s, msg);
    callbacks::schedule(s, &msg.sid);
}

/// Fetches a created message's `MediaUrl`s as Twilio does when it sends them: a plain GET,
/// no credentials, following redirects; what came back is recorded.
fn fetch_media(s: &Arc<Shared>, msg: &FakeMessage) {
    for url in &msg.media_urls {
        let (s2, url, sid) = (s.clone(), url.clone(), msg.sid.clone());
        let task = tokio::spawn(async move {
            let fetched = match s2.http.get(&url).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let content_type = r
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let bytes = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                    FetchedMedia {
                        url,
                        status: Some(status),
                        content_type,
                        bytes,
                    }
                }
                Err(_) => FetchedMedia {
                    url,
                    status: None,
                    content_type: None,
                    bytes: Vec::new(),
                },
            };
            s2.fetched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((sid, fetched));
        });
        s.tasks().push(task);
    }
}

fn internal_error() -> Reply {
    Reply::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        20500,
        &shapes::error_message(20500, ""),
    )
}

fn recorded_note(recorded: bool, sid: &str) -> String {
    if recorded {
        format!("recorded {sid}")
    } else {
        "not recorded".to_owned()
    }
}

async fn create_message(s: &Arc<Shared>, idx: usize, params: &Params, account: &str) -> Reply {
    let msg = match new_message(s, params, account) {
        Ok(msg) => msg,
        Err((code, to)) => {
            let message = shapes::error_message(code, &to);
            return Reply::error(StatusCode::BAD_REQUEST, code, &message);
        }
    };
    let fault = s.lock().faults.take_create(&msg.to);
    tracing::debug!(to = %mask(&msg.to), sid = %msg.sid, ?fault, "fake twilio create");
    let body = shapes::message_json(&msg);
    answer_create(s, idx, fault, &msg.sid, &msg.to, body, || store(s, &msg)).await
}

/// How a create (a message's or a call's) answers under `fault`: `keep` stores what the
/// carrier then has, `body` is the 201's JSON. A fault with `recorded: true` keeps it although
/// the answer says otherwise.
async fn answer_create(
    s: &Shared,
    idx: usize,
    fault: Option<Fault>,
    sid: &str,
    to: &str,
    body: Value,
    keep: impl FnOnce(),
) -> Reply {
    let note = |recorded| recorded_note(recorded, sid);
    let delayed = |recorded: bool, body: Value, note: String| {
        if recorded {
            Reply::json(StatusCode::CREATED, body, format!("201 {note}"))
        } else {
            let mut reply = internal_error();
            reply.outcome = format!("{} ({note})", reply.outcome);
            reply
        }
    };
    match fault {
        None | Some(Fault::ListFail | Fault::ListDup) => {
            keep();
            Reply::json(StatusCode::CREATED, body, format!("201 created {sid}"))
        }
        Some(Fault::Status {
            http,
            code,
            recorded,
            retry_after,
        }) => {
            if recorded {
                keep();
            }
            let status = StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = code.unwrap_or(20000 + u32::from(status.as_u16()));
            let mut reply = Reply::error(status, code, &shapes::error_message(code, to));
            if let Some(secs) = retry_after {
                reply
                    .response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            reply.outcome = format!(
                "{} code {code} (fault, {})",
                status.as_u16(),
                note(recorded)
            );
            reply
        }
        Some(Fault::Delay { ms, recorded }) => {
            if recorded {
                keep();
            }
            s.set_outcome(idx, format!("delaying {ms} ms"));
            tokio::time::sleep(Duration::from_millis(ms)).await;
            delayed(
                recorded,
                body,
                format!("after {ms} ms delay, {}", note(recorded)),
            )
        }
        Some(Fault::Hold { recorded }) => {
            if recorded {
                keep();
            }
            let (release, released) = oneshot::channel();
            s.lock().held.push(release);
            s.set_outcome(idx, format!("held ({})", note(recorded)));
            // A dropped sender (the fake itself dropped) counts as a release too.
            let _ = released.await;
            delayed(recorded, body, format!("after hold, {}", note(recorded)))
        }
        Some(Fault::Reset { recorded }) => {
            if recorded {
                keep();
            }
            Reply::reset(format!("reset, no response ({})", note(recorded)))
        }
    }
}

fn fetch_message(s: &Shared, path: &str, file: &str, account: &str) -> Reply {
    let Some(sid) = file.strip_suffix(".json") else {
        return not_found(path);
    };
    let state = s.lock();
    match state
        .messages
        .iter()
        .find(|m| m.msg.sid == sid && m.msg.account_sid == account)
    {
        Some(m) => Reply::json(
            StatusCode::OK,
            shapes::message_json(&m.msg),
            format!("200 {sid}"),
        ),
        None => not_found(path),
    }
}

/// A `DateSent` filter value: a day (`YYYY-MM-DD`, as the brief and Twilio's docs use) or an
/// instant (RFC 3339, as twilio-python sends datetimes).
#[derive(Debug, Clone, Copy)]
enum DateBound {
    Day(NaiveDate),
    At(DateTime<Utc>),
}

impl DateBound {
    fn parse(v: &str) -> Option<DateBound> {
        if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            return Some(DateBound::Day(day));
        }
        DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| DateBound::At(t.with_timezone(&Utc)))
    }
}

/// The filters of `GET Messages.json`.
///
/// `DateSent` matches the day of `date_sent`; `DateSent<` means on or before, `DateSent>` on
/// or after (Twilio's `DateSent<=` / `DateSent>=` as the helper libraries write them; a day
/// bound compares days, an instant bound compares instants).
///
/// **A message whose `date_sent` is still null (queued, or callbacks disabled) never matches
/// a `DateSent` filter.** Whether Twilio's list does the same is unknown (docs/twilio.md §11 #9);
/// the fake takes the pessimistic reading so that a reconciliation that relies on `DateSent`
/// fails in tests rather than in production.
#[derive(Debug, Default)]
struct ListFilter {
    to: Option<String>,
    from: Option<String>,
    on: Option<DateBound>,
    before: Option<DateBound>,
    after: Option<DateBound>,
}

impl ListFilter {
    fn matches(&self, m: &FakeMessage) -> bool {
        if self.to.as_deref().is_some_and(|to| to != m.to) {
            return false;
        }
        if self
            .from
            .as_deref()
            .is_some_and(|from| Some(from) != m.from.as_deref())
        {
            return false;
        }
        if self.on.is_none() && self.before.is_none() && self.after.is_none() {
            return true;
        }
        let Some(sent) = m.date_sent else {
            return false;
        };
        let day = sent.date_naive();
        let on = self.on.is_none_or(|b| match b {
            DateBound::Day(d) => day == d,
            DateBound::At(t) => day == t.date_naive(),
        });
        let before = self.before.is_none_or(|b| match b {
            DateBound::Day(d) => day <= d,
            DateBound::At(t) => sent <= t,
        });
        let after = self.after.is_none_or(|b| match b {
            DateBound::Day(d) => day >= d,
            DateBound::At(t) => sent >= t,
        });
        on && before && after
    }
}

fn bad_parameter(name: &str, value: &str) -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        BAD_PARAMETER,
        &format!("Invalid value for {name}: {value}"),
    )
}

/// `GET …/Messages.json`: filtered, newest first, paged (docs/twilio.md §3.1).
///
/// Paging: `Page` × `PageSize` is the offset, unless `PageToken` (`PA` + the `sid` of the
/// previous page's last message, as the fake's own `next_page_uri` carries) says where the
/// previous page ended; the token keeps paging stable while new messages arrive at the top.
fn list_messages(s: &Shared, path: &str, query: &str, account: &str) -> Reply {
    let Ok(q) = form::decode(query.as_bytes()) else {
        return bad_parameter("query string", "(undecodable)");
    };
    let mut filter = ListFilter::default();
    let mut filter_pairs: Vec<(&str, &str)> = Vec::new();
    let mut page_size = DEFAULT_PAGE_SIZE;
    let mut page = 0usize;
    let mut token: Option<&str> = None;
    for (name, value) in &q {
        match name.as_str() {
            "To" => filter.to = Some(value.clone()),
            "From" => filter.from = Some(value.clone()),
            "DateSent" | "DateSent<" | "DateSent>" => {
                let Some(bound) = DateBound::parse(value) else {
                    return bad_parameter(name, value);
                };
                match name.as_str() {
                    "DateSent" => filter.on = Some(bound),
                    "DateSent<" => filter.before = Some(bound),
                    _ => filter.after = Some(bound),
                }
            }
            "PageSize" => match value.parse::<usize>() {
                Ok(n) => page_size = n.clamp(1, MAX_PAGE_SIZE),
                Err(_) => return bad_parameter(name, value),
            },
            "Page" => match value.parse::<usize>() {
                Ok(n) => page = n,
                Err(_) => return bad_parameter(name, value),
            },
            "PageToken" => token = Some(value.as_str()),
            // Unknown parameters are ignored, like Twilio does.
            _ => {}
        }
        if matches!(
            name.as_str(),
            "To" | "From" | "DateSent" | "DateSent<" | "DateSent>"
        ) {
            filter_pairs.push((name.as_str(), value.as_str()));
        }
    }

    let mut state = s.lock();
    let faults = state.faults.take_list(filter.to.as_deref());
    if faults.fail {
        let mut reply = internal_error();
        reply.outcome = format!("{} (ListFail fault)", reply.outcome);
        return reply;
    }
    // Newest first: by creation time, ties (a clock standing still) by arrival.
    let now = s.clock.now();
    let mut matching: Vec<&StoredMessage> = state
        .messages
        .iter()
        .filter(|m| m.msg.account_sid == account && m.listed_from <= now && filter.matches(&m.msg))
        .collect();
    matching.reverse();
    matching.sort_by_key(|m| std::cmp::Reverse(m.msg.date_created));
    let mut listed: Vec<FakeMessage> = Vec::with_capacity(matching.len());
    for m in matching {
        listed.push(m.msg.clone());
        if faults.dup {
            let mut twin = m.msg.clone();
            twin.sid = m.dup_sid.clone();
            listed.push(twin);
        }
    }
    drop(state);

    let start = match token {
        Some(token) => {
            let after = token
                .strip_prefix("PA")
                .and_then(|sid| listed.iter().position(|m| m.sid == sid));
            match after {
                Some(i) => i + 1,
                None => return bad_parameter("PageToken", token),
            }
        }
        None => page.saturating_mul(page_size),
    };
    let page_items: Vec<&FakeMessage> = listed.iter().skip(start).take(page_size).collect();
    let end_index = start + page_items.len();

    let page_uri = |page: usize, token: Option<&str>| {
        let mut pairs: Vec<(&str, String)> = filter_pairs
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        pairs.push(("PageSize", page_size.to_string()));
        pairs.push(("Page", page.to_string()));
        if let Some(token) = token {
            pairs.push(("PageToken", token.to_owned()));
        }
        format!("{path}?{}", form::encode(&pairs))
    };
    let next_page_uri = match page_items.last() {
        Some(last) if end_index < listed.len() => {
            Value::String(page_uri(page + 1, Some(&format!("PA{}", last.sid))))
        }
        _ => Value::Null,
    };
    let previous_page_uri = if page > 0 {
        Value::String(page_uri(page - 1, None))
    } else {
        Value::Null
    };
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let count = page_items.len();
    let body = json!({
        "end": if count == 0 { start } else { end_index - 1 },
        "first_page_uri": page_uri(0, None),
        "messages": page_items.into_iter().map(shapes::message_json).collect::<Vec<_>>(),
        "next_page_uri": next_page_uri,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": previous_page_uri,
        "start": start,
        "uri": uri,
    });
    let dup_note = if faults.dup { " (ListDup fault)" } else { "" };
    Reply::json(
        StatusCode::OK,
        body,
        format!("200 listed {count} of {}{dup_note}", listed.len()),
    )
}

/// `POST …/Calls.json` (docs/twilio.md §5): 201 `queued`, unless a call fault says otherwise.
/// A call the fake keeps is played by its [`calls::CallPlan`], when one applies.
async fn create_call(s: &Arc<Shared>, idx: usize, params: &Params, account: &str) -> Reply {
    let bad = |code: u32, message: &str| Reply::error(StatusCode::BAD_REQUEST, code, message);
    let Some(to) = given(params, "To") else {
        return bad(21201, "No 'To' number is specified");
    };
    // `client:` and `sip:` targets are legal for calls; phone numbers must be E.164.
    let is_address = to.starts_with("client:") || to.starts_with("sip:");
    if !is_address && PhoneNumber::parse(to).is_err() {
        return bad(21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    let Some(from) = given(params, "From") else {
        return bad(21213, "No 'From' number is specified");
    };
    let url = given(params, "Url");
    let twiml = given(params, "Twiml");
    if url.is_none() && twiml.is_none() && given(params, "ApplicationSid").is_none() {
        // Twilio's exact code for a missing Url is not in our sources; 21205 is its
        // "Url" error.
        return bad(21205, "Url parameter is required");
    }
    let call = FakeCall {
        sid: player::new_call_sid(),
        account_sid: account.to_owned(),
        to: to.to_owned(),
        from: from.to_owned(),
        url: url.map(str::to_owned),
        twiml: twiml.map(str::to_owned),
        status_callback: given(params, "StatusCallback").map(str::to_owned),
        status_callback_events: params
            .iter()
            .filter(|(k, _)| k == "StatusCallbackEvent")
            .map(|(_, v)| v.clone())
            .collect(),
        timeout: given(params, "Timeout").map(str::to_owned),
        status: "queued".to_owned(),
        phone_number_sid: format!("PN{:032x}", rand::random::<u128>()),
        date_created: s.clock.now(),
        duration: None,
    };
    let body = shapes::call_json(&call, account);
    let fault = s.lock().call_faults.take_create(&call.to);
    tracing::debug!(to = %mask(&call.to), sid = %call.sid, ?fault, "fake twilio call create");
    let keep = || {
        let plan = {
            let mut state = s.lock();
            state.calls.push(call.clone());
            state
                .call_plans
                .get(&call.to)
                .cloned()
                .or_else(|| state.default_call_plan.clone())
        };
        if let Some(plan) = plan {
            let task = tokio::spawn(calls::play(
                s.clone(),
                call.account_sid.clone(),
                call.clone(),
                plan,
            ));
            s.tasks().push(task);
        }
    };
    answer_create(s, idx, fault, &call.sid, &call.to, body, keep).await
}

/// `GET /v2/PhoneNumbers/{number}?Fields=…` (docs/twilio.md §4).
fn lookup(s: &Shared, raw_number: &str, query: &str) -> Reply {
    // The number arrives percent-encoded (`%2B1617…`). A segment that does not decode is
    // looked up as it came, which makes it an invalid number (`NOT_A_NUMBER`).
    let number = percent_decode(raw_number).unwrap_or_else(|| raw_number.to_owned());
    let fields = form::decode(query.as_bytes())
        .ok()
        .and_then(|q| q.into_iter().find(|(k, _)| k == "Fields").map(|(_, v)| v))
        .unwrap_or_default();
    let state = s.lock();
    let body = shapes::lookup_json(&LookupFacts {
        number: &number,
        fields: &fields,
        marked_invalid: state.invalid.contains(&number),
        line_type: state.line_type(&number),
        caller_name: state
            .caller_names
            .get(&number)
            .map(|(name, kind)| (name.as_str(), kind.as_str())),
        base_url: &s.base_url,
    });
    drop(state);
    let valid = body.get("valid") == Some(&Value::Bool(true));
    Reply::json(
        StatusCode::OK,
        body,
        format!("200 lookup {} valid={valid}", mask(&number)),
    )
}

/// Strict percent-decoding of a path segment (`+` stays `+`). `None` on a bad escape or
/// invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Shared {
    /// Appends a request to the log; returns its index for [`Shared::finish`].
    fn record(&self, method: &str, path: &str, query: &str, params: &Params) -> usize {
        let at = self.clock.now();
        let mut state = self.lock();
        state.requests.push(super::RecordedRequest {
            at,
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            params: params.to_vec(),
            status: None,
            outcome: "pending".to_owned(),
        });
        state.requests.len() - 1
    }

    fn set_outcome(&self, idx: usize, outcome: String) {
        if let Some(r) = self.lock().requests.get_mut(idx) {
            r.outcome = outcome;
        }
    }

    fn finish(&self, idx: usize, status: Option<u16>, outcome: &str) {
        if let Some(r) = self.lock().requests.get_mut(idx) {
            r.status = status;
            outcome.clone_into(&mut r.outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_is_strict() {
        assert_eq!(
            percent_decode("%2B16175550123").as_deref(),
            Some("+16175550123")
        );
        assert_eq!(percent_decode("+1617").as_deref(), Some("+1617"));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%ZZ1"), None);
        assert_eq!(percent_decode("%FF"), None);
        // A multi-byte character after a '%' must not panic on a char boundary.
        assert_eq!(percent_decode("%é"), None);
    }
}
