//! Delivering an outbound webhook (docs/webhooks.md): an HTTP client that never follows a
//! redirect, never waits past its timeout, never reads more of an answer than the log keeps,
//! and (unless the subscription allows it) never connects to this machine or a private network,
//! whatever a DNS answer says; and the Standard Webhooks request itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{Value, json};

use crate::context::AppState;
use crate::domain::webhooks::{Secret, answer_excerpt, is_public};
use crate::store::webhooks::Claimed;

/// The most of an answer read: a 10 MB answer costs this much, then the connection is dropped.
const READ_AT_MOST: usize = 4096;

/// The two clients: one that refuses private addresses, one (for subscriptions that allow
/// them) that does not.
#[derive(Clone)]
pub struct Outbound {
    public: reqwest::Client,
    private: reqwest::Client,
}

/// Resolves as the system does, then keeps only public addresses: a name that resolves to a
/// private one only is an error (no connection is made).
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Addrs = Box::new(public_addrs(&host).await?.into_iter());
            Ok(addrs)
        })
    }
}

/// `host`'s addresses as the system resolves them, keeping the public ones only; an error
/// when none is left (the connection is never made).
pub async fn public_addrs(host: &str) -> Result<Vec<SocketAddr>, String> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("{host} cannot be resolved ({e})"))?
        .collect();
    let public: Vec<SocketAddr> = all.iter().copied().filter(|a| is_public(a.ip())).collect();
    if public.is_empty() {
        let first = all.first().map(|a| a.ip().to_string()).unwrap_or_default();
        return Err(format!(
            "refused: {host} resolves to a private address ({first}); allow_private_addresses = true allows it"
        ));
    }
    Ok(public)
}

impl Outbound {
    pub fn new(timeout: Duration) -> Outbound {
        let build = |public: bool| {
            let b = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A proxy would resolve the host itself, past the public-address check.
                .no_proxy()
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .timeout(timeout)
                .pool_idle_timeout(Duration::from_secs(30))
                .user_agent(concat!("textback-webhooks/", env!("CARGO_PKG_VERSION")));
            let b = if public {
                b.dns_resolver(Arc::new(PublicOnly))
            } else {
                b
            };
            b.build().unwrap_or_default()
        };
        Outbound {
            public: build(true),
            private: build(false),
        }
    }

    pub fn client(&self, allow_private: bool) -> &reqwest::Client {
        if allow_private {
            &self.private
        } else {
            &self.public
        }
    }
}

/// What a receiver answered, or why there was no answer.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: Option<u16>,
    pub excerpt: Option<String>,
    pub error: Option<String>,
    /// A 429's or 503's `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn refused(why: impl Into<String>) -> Answer {
        Answer {
            error: Some(why.into()),
            ..Answer::default()
        }
    }
}

/// A URL whose host is an address literal must be public unless allowed (the resolver only
/// sees names).
pub fn check_literal(url: &reqwest::Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
        Some(url::Host::Domain(d)) if d == "localhost" || d.ends_with(".localhost") => {
            return Err(format!("refused: {d} is this machine"));
        }
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "refused: {ip} is a private address; allow_private_addresses = true allows it"
        ))
    }
}

/// Sends `request` and reads at most [`READ_AT_MOST`] bytes of the answer.
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    read(request, READ_AT_MOST).await.0
}

/// Sends `request` and reads at most `at_most` bytes of the answer, which it also returns (a
/// receiver's JSON, for Follow Up Boss).
pub async fn read(request: reqwest::RequestBuilder, at_most: usize) -> (Answer, Vec<u8>) {
    let mut resp = match request.send().await {
        Ok(r) => r,
        Err(e) => return (Answer::refused(describe(&e)), Vec::new()),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut body = Vec::new();
    let mut error = None;
    while body.len() < at_most {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                error = Some(describe(&e));
                break;
            }
        }
    }
    body.truncate(at_most);
    if resp.status().is_redirection() {
        error = Some(format!("redirect ({status}) not followed"));
    }
    let answer = Answer {
        status: Some(status),
        excerpt: Some(answer_excerpt(&body)).filter(|s| !s.is_empty()),
        error,
        retry_after,
    };
    (answer, body)
}

/// An error in words, with its causes (reqwest's `Display` names the URL only).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut why = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    if why.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {why}")
    }
}

/// The body every receiver of event `d` gets, on every attempt the same bytes: the Standard
/// Webhooks envelope (`type`, `timestamp`, `data`), with a link to the conversation.
pub fn body(state: &AppState, d: &Claimed) -> Vec<u8> {
    let mut data = d.data.clone();
    if let (Some(id), Value::Object(map)) = (d.conversation_id, &mut data) {
        let url = state.config.public_url.join(&format!("/inbox/c/{id}"));
        map.insert("conversation_url".into(), Value::String(url));
    }
    let envelope = json!({
        "type": d.event_type,
        "timestamp": d.event_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// One attempt at a Standard Webhooks delivery: `webhook-id` the event's id (the same on every
/// attempt), `webhook-timestamp` the attempt's time by the real clock (the receiver compares
/// it with its own to refuse replays, so it is never a test's or a replay's clock), and
/// `webhook-signature`.
pub async fn deliver(state: &AppState, d: &Claimed) -> Answer {
    let secret = match d.secret_source() {
        Some(source) => {
            match crate::twilio::credentials::read_secret(&source, &state.config.twilio.env) {
                Ok(raw) => {
                    use secrecy::ExposeSecret as _;
                    match Secret::parse(raw.expose_secret()) {
                        Ok(s) => s,
                        Err(why) => {
                            return Answer::refused(format!(
                                "the signing secret in {source} {why}"
                            ));
                        }
                    }
                }
                Err(why) => return Answer::refused(format!("no signing secret: {why}")),
            }
        }
        None => return Answer::refused("no signing secret is named"),
    };
    let url = match reqwest::Url::parse(&d.url) {
        Ok(u) => u,
        Err(e) => return Answer::refused(format!("the URL cannot be read ({e})")),
    };
    if let Err(why) = check_literal(&url, d.allow_private) {
        return Answer::refused(why);
    }
    let body = body(state, d);
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| i64::try_from(t.as_secs()).unwrap_or(0));
    let signature = secret.sign(&d.public_id, timestamp, &body);
    let request = state
        .outbound
        .client(d.allow_private)
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.public_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body);
    send(request).await
}
