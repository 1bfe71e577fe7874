//! Follow Up Boss (docs/webhooks.md "Follow Up Boss"): an event of the brokerage's becomes
//! calls to FUB's API (`https://api.followupboss.com/v1`, HTTP Basic with the API key as the
//! user name, `X-System` and `X-System-Key` naming the integration):
//!
//! - the lead and its calls: `POST /v1/events` (source textback), which creates or updates
//!   the person and starts the brokerage's lead flow; it answers with the person, whose id is
//!   kept (`fub_person`); a call is also logged with `POST /v1/calls`;
//! - texts both ways: `POST /v1/textMessages` (logged to the person; FUB sends nothing);
//! - an opt-out: the tag "Texts: opted out" on the person (`PUT /v1/people/{id}`, tags merged);
//!   an opt-in removes it.
//!
//! Every step is at least once: a failed delivery is tried again from its start, and the
//! person's id, once known, is not asked for again.

use base64::Engine as _;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::webhooks::{Answer, check_literal, read, send};
use crate::context::AppState;
use crate::store::BrokerageId;
use crate::store::webhooks::{self as store, Claimed};

/// The tag an opted-out lead carries in FUB.
pub const OPTED_OUT_TAG: &str = "Texts: opted out";

struct Fub<'a> {
    state: &'a AppState,
    base: String,
    auth: String,
    system: String,
    system_key: Option<String>,
    allow_private: bool,
}

impl Fub<'_> {
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, String> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| format!("the URL cannot be read ({e})"))?;
        check_literal(&url, self.allow_private)?;
        let mut r = self
            .state
            .outbound
            .client(self.allow_private)
            .request(method, url)
            .header("authorization", &self.auth)
            .header("x-system", &self.system)
            .header("accept", "application/json");
        if let Some(k) = &self.system_key {
            r = r.header("x-system-key", k);
        }
        Ok(r)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: &Value) -> Answer {
        match self.request(method, path) {
            Ok(r) => send(r.json(body)).await,
            Err(why) => Answer::refused(why),
        }
    }
}

/// One attempt at the FUB side of event `d`.
pub async fn deliver(state: &AppState, d: &Claimed) -> Answer {
    let env = &state.config.twilio.env;
    let key = match d
        .secret_source()
        .map(|s| crate::twilio::credentials::read_secret(&s, env))
    {
        Some(Ok(k)) => k,
        Some(Err(why)) => return Answer::refused(format!("no Follow Up Boss API key: {why}")),
        None => return Answer::refused("no Follow Up Boss API key is named"),
    };
    let system_key = match d
        .system_key_source()
        .map(|s| crate::twilio::credentials::read_secret(&s, env))
    {
        Some(Ok(k)) => Some(k.expose_secret().to_owned()),
        Some(Err(why)) => return Answer::refused(format!("no Follow Up Boss system key: {why}")),
        None => None,
    };
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:", key.expose_secret()))
    );
    let fub = Fub {
        state,
        base: d.url.trim_end_matches('/').to_owned(),
        auth,
        system: d.fub_system.clone().unwrap_or_else(|| "textback".into()),
        system_key,
        allow_private: d.allow_private,
    };
    match run(&fub, d).await {
        Ok(answer) | Err(answer) => answer,
    }
}

/// `Ok`: the last step's answer (a success, or nothing to do); `Err`: the step that failed.
async fn run(fub: &Fub<'_>, d: &Claimed) -> Result<Answer, Answer> {
    let brokerage = BrokerageId(d.brokerage_id);
    let data = &d.data;
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    let Some(contact_id) = d.contact_id else {
        return Ok(nothing("the event has no lead"));
    };
    let phone = text("phone").unwrap_or_default();
    // A database error is retried, never read as "FUB does not know them".
    let known = person(fub.state, brokerage, contact_id).await?;

    let is_lead_event = matches!(
        d.event_type.as_str(),
        "lead.created" | "call.missed" | "call.answered"
    );
    // A call's event posted on an earlier attempt (whose call log then failed) is not posted
    // again.
    let posted = d.progress.as_deref() == Some("event_posted");
    let post_event = match d.event_type.as_str() {
        "lead.created" => true,
        "call.missed" | "call.answered" => !posted,
        _ => known.is_none() && matches!(d.event_type.as_str(), "text.sent" | "reply.received"),
    };
    let mut person_id = known;
    if post_event {
        let (answer, person) = post_lead_event(fub, d, &phone).await;
        if !answer.ok() {
            return Err(answer);
        }
        if answer.status == Some(204) {
            return Ok(Answer {
                excerpt: Some(
                    "FUB ignored it: the lead flow of source textback is archived".into(),
                ),
                ..answer
            });
        }
        match person {
            Some(id) => {
                person_id = Some(id);
                let mut conn = match fub.state.pool.acquire().await {
                    Ok(c) => c,
                    Err(e) => return Err(Answer::refused(format!("database: {e}"))),
                };
                let now = fub.state.clock.now();
                if let Err(e) =
                    store::save_fub_person(&mut conn, brokerage, contact_id, id, now).await
                {
                    return Err(Answer::refused(format!("database: {e}")));
                }
                if let Err(e) = store::mark_progress(&mut conn, d.delivery_id, "event_posted").await
                {
                    return Err(Answer::refused(format!("database: {e}")));
                }
            }
            None => {
                return Err(Answer {
                    error: Some("FUB's answer named no person id".into()),
                    ..answer
                });
            }
        }
        if d.event_type == "lead.created" {
            return Ok(answer);
        }
    }
    let Some(person_id) = person_id else {
        return Ok(nothing("no FUB person for this lead yet"));
    };
    let our_number = text("number").unwrap_or_default();
    match d.event_type.as_str() {
        "call.missed" | "call.answered" => {
            let mut call = json!({
                "personId": person_id,
                "phone": phone,
                "toNumber": our_number,
                "fromNumber": phone,
                "isIncoming": true,
                "duration": data.get("duration_secs").and_then(Value::as_i64).unwrap_or(0),
                "note": if d.event_type == "call.missed" { "Missed call; textback texted the caller back" } else { "Answered call" },
            });
            if d.event_type == "call.missed" {
                call["outcome"] = json!("No Answer");
            }
            ok_or_err(fub.call(reqwest::Method::POST, "/v1/calls", &call).await)
        }
        "text.sent" | "reply.received" => {
            let incoming = d.event_type == "reply.received";
            // A photo alone is logged as one (README.md "Pictures"): FUB wants words.
            let words = text("body").unwrap_or_default();
            let has_media = data.get("num_media").and_then(Value::as_i64).unwrap_or(0) > 0;
            let message = match (words.trim().is_empty(), has_media) {
                (true, true) => "[photo]".to_owned(),
                (false, true) => format!("{words} [photo]"),
                _ => words,
            };
            let body = json!({
                "personId": person_id,
                "message": message,
                "toNumber": if incoming { our_number.clone() } else { phone.clone() },
                "fromNumber": if incoming { phone.clone() } else { our_number.clone() },
                "isIncoming": incoming,
                "externalLabel": "textback",
                "externalUrl": d.conversation_id.map(|id| fub.state.config.public_url.join(&format!("/inbox/c/{id}"))),
            });
            ok_or_err(
                fub.call(reqwest::Method::POST, "/v1/textMessages", &body)
                    .await,
            )
        }
        "opt_out" => {
            let body = json!({ "tags": [OPTED_OUT_TAG] });
            ok_or_err(
                fub.call(
                    reqwest::Method::PUT,
                    &format!("/v1/people/{person_id}?mergeTags=true"),
                    &body,
                )
                .await,
            )
        }
        "opt_in" => {
            // Tags are replaced as a whole without mergeTags: read them, drop ours, write back.
            let (answer, tags) = get_tags(fub, person_id).await;
            let Some(tags) = tags else { return Err(answer) };
            if !tags.iter().any(|t| t == OPTED_OUT_TAG) {
                return Ok(nothing("the person carries no opt-out tag"));
            }
            let kept: Vec<&String> = tags.iter().filter(|t| *t != OPTED_OUT_TAG).collect();
            ok_or_err(
                fub.call(
                    reqwest::Method::PUT,
                    &format!("/v1/people/{person_id}"),
                    &json!({ "tags": kept }),
                )
                .await,
            )
        }
        _ if is_lead_event => Ok(nothing("logged")),
        other => Ok(nothing(&format!("{other} is not sent to FUB"))),
    }
}

fn ok_or_err(a: Answer) -> Result<Answer, Answer> {
    if a.ok() { Ok(a) } else { Err(a) }
}

/// Done with no call made: recorded as delivered with why.
fn nothing(why: &str) -> Answer {
    Answer {
        status: Some(200),
        excerpt: Some(format!("nothing to send: {why}")),
        ..Answer::default()
    }
}

async fn person(
    state: &AppState,
    brokerage: BrokerageId,
    contact_id: i64,
) -> Result<Option<i64>, Answer> {
    let db = |e: &dyn std::fmt::Display| Answer::refused(format!("database: {e}"));
    let mut conn = state.pool.acquire().await.map_err(|e| db(&e))?;
    store::fub_person(&mut conn, brokerage, contact_id)
        .await
        .map_err(|e| db(&e))
}

/// `POST /v1/events` for the lead: its type from what happened (a call is "Incoming Call", a
/// lead with a listing "Property Inquiry", else "General Inquiry"). Returns the person's id.
async fn post_lead_event(fub: &Fub<'_>, d: &Claimed, phone: &str) -> (Answer, Option<i64>) {
    let data = &d.data;
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    let listing = text("listing");
    let kind = match d.event_type.as_str() {
        "call.missed" | "call.answered" => "Incoming Call",
        _ if listing.is_some() => "Property Inquiry",
        _ => "General Inquiry",
    };
    let name = text("name").unwrap_or_default();
    let (first, last) = match name.trim().split_once(' ') {
        Some((f, l)) => (f.to_owned(), l.trim().to_owned()),
        None => (name.trim().to_owned(), String::new()),
    };
    let mut person = json!({ "phones": [{ "value": phone, "type": "mobile" }] });
    if !first.is_empty() {
        person["firstName"] = json!(first);
    }
    if !last.is_empty() {
        person["lastName"] = json!(last);
    }
    let message = match d.event_type.as_str() {
        "lead.created" => text("message"),
        "call.missed" => Some("Called and was not answered; textback texted them back.".into()),
        "call.answered" => Some("Called and was answered.".into()),
        _ => Some("Texted the brokerage.".into()),
    };
    let mut event = json!({
        "source": "textback",
        "system": fub.system,
        "type": kind,
        "person": person,
        "occurredAt": d.event_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    if let Some(m) = message {
        event["message"] = json!(m);
    }
    if let Some(source) = text("source") {
        event["description"] = json!(format!("Lead source: {source}"));
    }
    if let Some(l) = listing {
        event["property"] = json!({ "street": l });
    }
    let r = match fub.request(reqwest::Method::POST, "/v1/events") {
        Ok(r) => r.json(&event),
        Err(why) => return (Answer::refused(why), None),
    };
    read_json(r).await
}

async fn get_tags(fub: &Fub<'_>, person_id: i64) -> (Answer, Option<Vec<String>>) {
    let r = match fub.request(
        reqwest::Method::GET,
        &format!("/v1/people/{person_id}?fields=tags"),
    ) {
        Ok(r) => r,
        Err(why) => return (Answer::refused(why), None),
    };
    let (answer, json) = read_json_value(r).await;
    let tags = json.and_then(|v| {
        v.get("tags").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
    });
    (answer, tags)
}

/// Sends and reads a JSON answer's `id` (a person).
async fn read_json(r: reqwest::RequestBuilder) -> (Answer, Option<i64>) {
    let (answer, json) = read_json_value(r).await;
    let id = json.and_then(|v| v.get("id").and_then(Value::as_i64));
    (answer, id)
}

/// FUB's answers are small JSON; at most 256 KB of one is read.
async fn read_json_value(r: reqwest::RequestBuilder) -> (Answer, Option<Value>) {
    let (answer, body) = read(r, 256 * 1024).await;
    (answer, serde_json::from_slice::<Value>(&body).ok())
}
