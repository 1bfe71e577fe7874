//! Twilio's REST API: Messages (create, list, fetch) and Lookup v2, against configurable base
//! URLs (the fake carrier in tests and the demo).
//!
//! Every send ends in one of four classes (docs/reliability.md §3), decided by [`classify_response`]
//! (pure, on the status, headers and body) and [`classify_error`] (on the transport error):
//! accepted, certainly not sent (retry), rejected (a Twilio code; never retried), unknown
//! (reconcile by listing; never resent blindly).

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::credentials::Credentials;
use serde::Deserialize;
use url::Url;

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx with a readable `sid`: Twilio has the message.
    Accepted { sid: String, status: String },
    /// Certainly not created: no connection, 429, 503. Retry after the backoff, never before
    /// `retry_after`.
    NotSent {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// A 4xx with a Twilio code (21610, 21211, …; 401/403/404 too): not created, not retried.
    Rejected {
        http: u16,
        code: Option<u32>,
        message: String,
    },
    /// The request may have been processed: a timeout or reset after it was written, another
    /// 5xx, a 2xx without a readable `sid`. Settled by listing the carrier's messages.
    Unknown { reason: String },
}

/// The parts of a Message resource we read.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiMessage {
    pub sid: String,
    pub to: Option<String>,
    pub from: Option<String>,
    pub body: Option<String>,
    pub status: Option<String>,
    pub direction: Option<String>,
    pub date_created: Option<String>,
}

impl ApiMessage {
    /// `date_created` (RFC 2822, as Twilio writes it).
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.date_created
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc))
    }
}

#[derive(Debug, Deserialize)]
struct MessagePage {
    messages: Vec<ApiMessage>,
    next_page_uri: Option<String>,
}

/// A page of a list: its items and the next page's URI.
trait Paged: serde::de::DeserializeOwned {
    type Item;
    fn split(self) -> (Vec<Self::Item>, Option<String>);
}

impl Paged for MessagePage {
    type Item = ApiMessage;
    fn split(self) -> (Vec<ApiMessage>, Option<String>) {
        (self.messages, self.next_page_uri)
    }
}

/// The largest JSON answer read (a page of 100 messages is about 100 KB).
const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct ApiError {
    code: Option<u32>,
    message: Option<String>,
}

/// A Lookup v2 answer, reduced to what the pipeline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub valid: bool,
    /// `line_type_intelligence.type` (`mobile`, `landline`, …); `None` when the package did
    /// not answer.
    pub line_type: Option<String>,
    pub caller_name: Option<String>,
    /// `caller_name.caller_type`: `CONSUMER`, `BUSINESS` or `UNDETERMINED`.
    pub caller_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LookupBody {
    valid: Option<bool>,
    line_type_intelligence: Option<LineTypeIntelligence>,
    caller_name: Option<CallerName>,
}

#[derive(Debug, Deserialize)]
struct LineTypeIntelligence {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CallerName {
    caller_name: Option<String>,
    caller_type: Option<String>,
}

/// A read (list, fetch, lookup) that did not work. Reads are safe to retry.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the carrier could not be reached: {0}")]
    Transport(String),
    #[error("the carrier answered HTTP {status}")]
    Status { status: u16 },
    #[error("the carrier's answer could not be read: {0}")]
    Body(String),
    #[error("no account to use: {0}")]
    NoAccount(String),
    #[error("the answer is larger than {max} bytes")]
    TooLarge { max: usize },
}

/// A message to create.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub body: &'a str,
    /// Public addresses Twilio fetches the attachments from.
    pub media_urls: &'a [String],
    pub status_callback: &'a str,
}

/// Timeouts of the REST calls (docs/reliability.md §2 "Timing knobs").
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(15),
        }
    }
}

/// The REST client. It holds no account: each call is made with the credentials of the
/// brokerage it is for (`twilio::credentials`).
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    api_base: Url,
    lookup_base: Url,
    messaging_base: Url,
    timeouts: ClientTimeouts,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("api_base", &self.api_base.as_str())
            .finish_non_exhaustive()
    }
}

impl TwilioClient {
    pub fn new(api_base: Url, lookup_base: Url, timeouts: ClientTimeouts) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .pool_idle_timeout(Duration::from_secs(60))
            // A send must never be repeated by the client itself (at-most-once).
            .retry(reqwest::retry::never())
            // Only a media fetch is redirected (to Twilio's content store): a few hops, never
            // from https down to http.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let downgrade = attempt.url().scheme() == "http"
                    && attempt.previous().iter().any(|u| u.scheme() == "https");
                if attempt.previous().len() > 3 {
                    attempt.error("too many redirects")
                } else if downgrade {
                    attempt.error("a redirect from https to http")
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let messaging_base =
            Url::parse("https://messaging.twilio.com").unwrap_or_else(|_| api_base.clone());
        TwilioClient {
            http,
            api_base,
            lookup_base,
            messaging_base,
            timeouts,
        }
    }

    /// The Messaging API's base (Messaging Services, A2P 10DLC campaigns).
    pub fn with_messaging_base(mut self, base: Url) -> Self {
        self.messaging_base = base;
        self
    }

    fn messages_url(&self, account: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{account}/Messages.json",
            self.api_base.as_str().trim_end_matches('/')
        )
    }

    /// `POST …/Messages.json`. Classified, never retried here. An empty body with media is
    /// sent without `Body` (docs/twilio.md §3.2: one of `Body` / `MediaUrl`).
    pub async fn send_message(&self, creds: &Credentials, m: &NewMessage<'_>) -> SendOutcome {
        let url = self.messages_url(creds.account_sid.as_str());
        let mut form = vec![("To", m.to), ("From", m.from)];
        if !m.body.is_empty() || m.media_urls.is_empty() {
            form.push(("Body", m.body));
        }
        form.extend(m.media_urls.iter().map(|u| ("MediaUrl", u.as_str())));
        form.push(("StatusCallback", m.status_callback));
        self.create(creds, url, &form).await
    }

    /// A create (`POST` of a form): classified, never retried here (docs/reliability.md §3).
    async fn create(&self, creds: &Credentials, url: String, form: &[(&str, &str)]) -> SendOutcome {
        let account = creds.account_sid.as_str();
        let request = self
            .http
            .post(url)
            .basic_auth(account, Some(creds.auth_token.expose_secret()))
            .timeout(self.timeouts.total)
            .form(form);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return classify_error(&e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match response.bytes().await {
            Ok(bytes) => classify_response(status, retry_after.as_deref(), &bytes),
            // The status line arrived but the body did not: if it was a 2xx the message may
            // exist. Only a refusal status is certain.
            Err(e) => match status {
                429 | 503 => SendOutcome::NotSent {
                    reason: format!("HTTP {status}"),
                    retry_after: parse_retry_after(retry_after.as_deref()),
                },
                _ => SendOutcome::Unknown {
                    reason: format!("HTTP {status}, body unreadable: {e}"),
                },
            },
        }
    }

    /// Every message `from` → `to`, newest first, following the pages. No `DateSent` filter:
    /// a message still queued may have no `date_sent`, and whether the filter then matches it
    /// is undocumented (docs/twilio.md §11 #9), so reconciliation must not depend on it.
    pub async fn list_messages(
        &self,
        creds: &Credentials,
        to: &str,
        from: &str,
    ) -> Result<Vec<ApiMessage>, ReadError> {
        let account = creds.account_sid.as_str();
        let mut url =
            Url::parse(&self.messages_url(account)).map_err(|e| ReadError::Body(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("To", to)
            .append_pair("From", from)
            .append_pair("PageSize", "100");
        self.all_pages::<MessagePage>(url.to_string(), creds, 50, "messages")
            .await
    }

    /// Lookup v2 with line type intelligence (and caller name when asked; it costs more).
    pub async fn lookup(
        &self,
        creds: &Credentials,
        e164: &str,
        caller_name: bool,
    ) -> Result<Lookup, ReadError> {
        let fields = if caller_name {
            "line_type_intelligence,caller_name"
        } else {
            "line_type_intelligence"
        };
        let mut url =
            Url::parse(self.lookup_base.as_str()).map_err(|e| ReadError::Body(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| ReadError::Body("TWILIO_LOOKUP_BASE cannot be a base".into()))?
            .pop_if_empty()
            .extend(["v2", "PhoneNumbers", e164]);
        url.query_pairs_mut().append_pair("Fields", fields);
        let body: LookupBody = self.get_json(url.as_str(), creds).await?;
        Ok(Lookup {
            valid: body.valid.unwrap_or(false),
            line_type: body.line_type_intelligence.and_then(|l| l.kind),
            caller_type: body
                .caller_name
                .as_ref()
                .and_then(|c| c.caller_type.clone()),
            caller_name: body.caller_name.and_then(|c| c.caller_name),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        creds: &Credentials,
    ) -> Result<T, ReadError> {
        let bytes = self.get_bytes(url, creds, MAX_JSON_BYTES).await?;
        serde_json::from_slice(&bytes).map_err(|e| ReadError::Body(e.to_string()))
    }

    /// A `GET` with the account's credentials, read up to `max` bytes (a larger answer is an
    /// error, and is not read further).
    async fn get_bytes(
        &self,
        url: &str,
        creds: &Credentials,
        max: usize,
    ) -> Result<Vec<u8>, ReadError> {
        Ok(self.get_bytes_typed(url, creds, max).await?.0)
    }

    /// [`Self::get_bytes`] with the answer's `Content-Type`.
    async fn get_bytes_typed(
        &self,
        url: &str,
        creds: &Credentials,
        max: usize,
    ) -> Result<(Vec<u8>, Option<String>), ReadError> {
        let mut response = self
            .http
            .get(url)
            .basic_auth(&creds.account_sid, Some(creds.auth_token.expose_secret()))
            .timeout(self.timeouts.total)
            .send()
            .await
            .map_err(|e| ReadError::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(ReadError::Status { status });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(ReadError::TooLarge { max });
        }
        let mut out = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ReadError::Transport(e.without_url().to_string()))?
        {
            if out.len() + chunk.len() > max {
                return Err(ReadError::TooLarge { max });
            }
            out.extend_from_slice(&chunk);
        }
        Ok((out, content_type))
    }

    /// Every item of a paged list, following `next_page_uri` for at most `max_pages` pages.
    async fn all_pages<P: Paged>(
        &self,
        first: String,
        creds: &Credentials,
        max_pages: usize,
        what: &str,
    ) -> Result<Vec<P::Item>, ReadError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(page_url) = next.take() {
            pages += 1;
            if pages > max_pages {
                return Err(ReadError::Body(format!(
                    "more than {max_pages} pages of {what} between two numbers"
                )));
            }
            let page: P = self.get_json(&page_url, creds).await?;
            let (items, next_uri) = page.split();
            out.extend(items);
            next = next_uri
                .map(|uri| format!("{}{uri}", self.api_base.as_str().trim_end_matches('/')));
        }
        Ok(out)
    }
}

/// The parts of a Call resource we read (docs/twilio.md §5).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiCall {
    pub sid: String,
    pub to: Option<String>,
    pub from: Option<String>,
    pub status: Option<String>,
    pub direction: Option<String>,
    pub date_created: Option<String>,
    /// Seconds, as a string (`"42"`); null until the call ends.
    pub duration: Option<String>,
}

impl ApiCall {
    /// `date_created` (RFC 2822, as Twilio writes it).
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.date_created
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc))
    }
}

#[derive(Debug, Deserialize)]
struct CallPage {
    calls: Vec<ApiCall>,
    next_page_uri: Option<String>,
}

impl Paged for CallPage {
    type Item = ApiCall;
    fn split(self) -> (Vec<ApiCall>, Option<String>) {
        (self.calls, self.next_page_uri)
    }
}

/// What `POST …/Calls.json` is asked to do: call `to` from `from`, fetch `url` for the TwiML
/// when it is answered, report to `status_callback` at every event.
#[derive(Debug, Clone)]
pub struct NewCall<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub url: &'a str,
    pub status_callback: &'a str,
    /// Ring seconds before `no-answer` (5–600).
    pub timeout_secs: u32,
}

/// The largest recording textback relays to a person (a 10-minute MP3 at Twilio's 32 kbit/s
/// is about 2.4 MB).
pub const MAX_RECORDING_BYTES: usize = 20 * 1024 * 1024;

impl TwilioClient {
    fn calls_url(&self, account: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{account}/Calls.json",
            self.api_base.as_str().trim_end_matches('/')
        )
    }

    /// `POST …/Calls.json` with the four status events (one form field each, docs/twilio.md
    /// §5). Classified like a message create, never retried here: a call created twice rings
    /// an agent twice.
    pub async fn create_call(&self, creds: &Credentials, call: &NewCall<'_>) -> SendOutcome {
        let account = creds.account_sid.as_str();
        let timeout = call.timeout_secs.clamp(5, 600).to_string();
        let form: Vec<(&str, &str)> = vec![
            ("To", call.to),
            ("From", call.from),
            ("Url", call.url),
            ("Method", "POST"),
            ("StatusCallback", call.status_callback),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("Timeout", &timeout),
        ];
        self.create(creds, self.calls_url(account), &form).await
    }

    /// Every call `from` → `to`, newest first, following the pages. No `StartTime` filter: it
    /// filters on `start_time`, which is empty until a call is dialled (Twilio's Call resource),
    /// so a call still `queued` would not be listed; the caller compares `date_created` itself.
    pub async fn list_calls(
        &self,
        creds: &Credentials,
        to: &str,
        from: &str,
    ) -> Result<Vec<ApiCall>, ReadError> {
        let account = creds.account_sid.as_str();
        let mut url =
            Url::parse(&self.calls_url(account)).map_err(|e| ReadError::Body(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("To", to)
            .append_pair("From", from)
            .append_pair("PageSize", "100");
        self.all_pages::<CallPage>(url.to_string(), creds, 20, "calls")
            .await
    }

    /// `GET …/Calls/{sid}.json`.
    pub async fn fetch_call(&self, creds: &Credentials, sid: &str) -> Result<ApiCall, ReadError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls/{sid}.json",
            self.api_base.as_str().trim_end_matches('/'),
            creds.account_sid
        );
        self.get_json(&url, creds).await
    }

    /// A recording's audio as MP3 (`GET …/Recordings/{sid}.mp3`), built from its SID and the
    /// account, never from a URL a webhook carried. At most [`MAX_RECORDING_BYTES`].
    pub async fn recording_mp3(
        &self,
        creds: &Credentials,
        recording_sid: &str,
    ) -> Result<Vec<u8>, ReadError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{recording_sid}.mp3",
            self.api_base.as_str().trim_end_matches('/'),
            creds.account_sid
        );
        self.get_bytes(&url, creds, MAX_RECORDING_BYTES).await
    }
}

impl TwilioClient {
    /// The carrier API's host (and port, when it has one), which a webhook's `MediaUrlN` must
    /// name.
    pub fn api_host(&self) -> &str {
        let (start, end) = (url::Position::BeforeHost, url::Position::AfterPort);
        &self.api_base[start..end]
    }

    /// An inbound text's media item (`GET …/Messages/{sid}/Media/{media_sid}`; Twilio answers
    /// with a redirect to its content store, which the client follows without the credentials),
    /// built from the SIDs and the account, never from the URL a webhook carried. At most
    /// `max` bytes; returns the bytes and the `Content-Type` the store gave.
    pub async fn media(
        &self,
        creds: &Credentials,
        message_sid: &str,
        media_sid: &str,
        max: usize,
    ) -> Result<(Vec<u8>, Option<String>), ReadError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages/{message_sid}/Media/{media_sid}",
            self.api_base.as_str().trim_end_matches('/'),
            creds.account_sid
        );
        let (bytes, content_type) = self.get_bytes_typed(&url, creds, max).await?;
        Ok((bytes, content_type))
    }
}

/// The class of a send whose transport failed (docs/reliability.md §3): no connection established
/// is certain; anything after the request may have left is unknown.
pub fn classify_error(e: &reqwest::Error) -> SendOutcome {
    if e.is_connect() {
        SendOutcome::NotSent {
            reason: format!("no connection: {e}"),
            retry_after: None,
        }
    } else if e.is_timeout() {
        SendOutcome::Unknown {
            reason: "timed out after the request was sent".into(),
        }
    } else {
        SendOutcome::Unknown {
            reason: format!("connection failed after the request was sent: {e}"),
        }
    }
}

/// The class of an HTTP answer to `POST Messages.json` (docs/reliability.md §3). Pure.
pub fn classify_response(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendOutcome {
    match status {
        200..=299 => {
            #[derive(Deserialize)]
            struct Created {
                sid: Option<String>,
                status: Option<String>,
            }
            match serde_json::from_slice::<Created>(body) {
                Ok(Created {
                    sid: Some(sid),
                    status,
                }) if !sid.is_empty() => SendOutcome::Accepted {
                    sid,
                    status: status.unwrap_or_else(|| "queued".into()),
                },
                _ => SendOutcome::Unknown {
                    reason: format!("HTTP {status} without a readable sid"),
                },
            }
        }
        429 | 503 => SendOutcome::NotSent {
            reason: format!("HTTP {status}"),
            retry_after: parse_retry_after(retry_after),
        },
        400..=499 => {
            let err = serde_json::from_slice::<ApiError>(body).ok();
            SendOutcome::Rejected {
                http: status,
                code: err.as_ref().and_then(|e| e.code),
                message: err.and_then(|e| e.message).unwrap_or_default(),
            }
        }
        _ => SendOutcome::Unknown {
            reason: format!("HTTP {status}"),
        },
    }
}

/// `Retry-After` in seconds (the form Twilio would use); an HTTP date or garbage is ignored and
/// the backoff alone decides.
pub fn parse_retry_after(raw: Option<&str>) -> Option<Duration> {
    raw.and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &[u8] = include_bytes!("../../../fixtures/twilio/message-create-201.json");
    const E21610: &[u8] = include_bytes!("../../../fixtures/twilio/error-21610.json");
    const E21211: &[u8] = include_bytes!("../../../fixtures/twilio/error-21211.json");
    const E429: &[u8] = include_bytes!("../../../fixtures/twilio/error-429.json");

    #[test]
    fn the_classes_of_reliability_md_section_3() {
        let sid = serde_json::from_slice::<serde_json::Value>(CREATED).expect("json")["sid"]
            .as_str()
            .expect("sid")
            .to_owned();
        assert_eq!(
            classify_response(201, None, CREATED),
            SendOutcome::Accepted {
                sid,
                status: "queued".into()
            }
        );
        assert_eq!(
            classify_response(429, Some("2"), E429),
            SendOutcome::NotSent {
                reason: "HTTP 429".into(),
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            classify_response(429, None, E429),
            SendOutcome::NotSent {
                reason: "HTTP 429".into(),
                retry_after: None
            }
        );
        assert!(matches!(
            classify_response(503, None, b""),
            SendOutcome::NotSent { .. }
        ));
        assert!(matches!(
            classify_response(400, None, E21610),
            SendOutcome::Rejected {
                http: 400,
                code: Some(21610),
                ..
            }
        ));
        assert!(matches!(
            classify_response(400, None, E21211),
            SendOutcome::Rejected {
                http: 400,
                code: Some(21211),
                ..
            }
        ));
        assert!(matches!(
            classify_response(
                401,
                None,
                br#"{"code":20003,"message":"Authenticate","status":401}"#
            ),
            SendOutcome::Rejected {
                http: 401,
                code: Some(20003),
                ..
            }
        ));
        assert!(matches!(
            classify_response(404, None, b"not json"),
            SendOutcome::Rejected {
                http: 404,
                code: None,
                ..
            }
        ));
        for unknown in [500, 502, 504] {
            assert!(
                matches!(
                    classify_response(unknown, None, b""),
                    SendOutcome::Unknown { .. }
                ),
                "{unknown}"
            );
        }
        assert!(
            matches!(
                classify_response(201, None, b"{}"),
                SendOutcome::Unknown { .. }
            ),
            "2xx without a sid"
        );
        assert!(matches!(
            classify_response(200, None, b"<html>"),
            SendOutcome::Unknown { .. }
        ));
        assert!(matches!(
            classify_response(201, None, br#"{"sid":""}"#),
            SendOutcome::Unknown { .. }
        ));
    }

    #[test]
    fn retry_after_is_seconds() {
        assert_eq!(parse_retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(Some(" 30 ")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn api_messages_read_their_creation_time() {
        let m: ApiMessage = serde_json::from_slice(CREATED).expect("parses");
        assert!(m.created_at().is_some());
        assert_eq!(m.direction.as_deref(), Some("outbound-api"));
    }
}

/// A number of the account (`IncomingPhoneNumbers`), the parts `twilio connect` and `doctor`
/// read: where its calls, texts and call statuses go. An application SID or a SIP trunk, when
/// set, wins over the URLs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct IncomingNumber {
    pub sid: String,
    pub phone_number: String,
    pub voice_url: Option<String>,
    pub voice_method: Option<String>,
    pub sms_url: Option<String>,
    pub sms_method: Option<String>,
    pub status_callback: Option<String>,
    pub status_callback_method: Option<String>,
    pub voice_application_sid: Option<String>,
    pub sms_application_sid: Option<String>,
    pub trunk_sid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IncomingNumberPage {
    incoming_phone_numbers: Vec<IncomingNumber>,
    next_page_uri: Option<String>,
}

impl Paged for IncomingNumberPage {
    type Item = IncomingNumber;
    fn split(self) -> (Vec<IncomingNumber>, Option<String>) {
        (self.incoming_phone_numbers, self.next_page_uri)
    }
}

/// The account, as `doctor` checks it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AccountInfo {
    pub sid: String,
    pub status: Option<String>,
    pub friendly_name: Option<String>,
}

impl TwilioClient {
    fn numbers_url(&self, account: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{account}/IncomingPhoneNumbers",
            self.api_base.as_str().trim_end_matches('/')
        )
    }

    /// The account's numbers that are `e164` (`GET …/IncomingPhoneNumbers.json?PhoneNumber=`).
    pub async fn incoming_numbers(
        &self,
        creds: &Credentials,
        e164: &str,
    ) -> Result<Vec<IncomingNumber>, ReadError> {
        let mut url = Url::parse(&format!("{}.json", self.numbers_url(&creds.account_sid)))
            .map_err(|e| ReadError::Body(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("PhoneNumber", e164)
            .append_pair("PageSize", "50");
        self.all_pages::<IncomingNumberPage>(url.to_string(), creds, 5, "numbers")
            .await
    }

    /// Updates a number's settings (`POST …/IncomingPhoneNumbers/{sid}.json`) and returns it
    /// as the carrier now has it.
    pub async fn update_incoming_number(
        &self,
        creds: &Credentials,
        sid: &str,
        form: &[(&str, &str)],
    ) -> Result<IncomingNumber, ReadError> {
        let url = format!("{}/{sid}.json", self.numbers_url(&creds.account_sid));
        let response = self
            .http
            .post(url)
            .basic_auth(&creds.account_sid, Some(creds.auth_token.expose_secret()))
            .timeout(self.timeouts.total)
            .form(form)
            .send()
            .await
            .map_err(|e| ReadError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(ReadError::Status { status });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ReadError::Transport(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| ReadError::Body(e.to_string()))
    }

    /// The account itself (`GET /2010-04-01/Accounts/{sid}.json`): the credentials work when
    /// this answers 200.
    pub async fn fetch_account(&self, creds: &Credentials) -> Result<AccountInfo, ReadError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}.json",
            self.api_base.as_str().trim_end_matches('/'),
            creds.account_sid
        );
        self.get_json(&url, creds).await
    }
}

/// A Messaging Service, as `doctor` reads it: where its inbound texts go.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MessagingService {
    pub sid: String,
    pub friendly_name: Option<String>,
    pub inbound_request_url: Option<String>,
    /// True: each number's own SMS URL gets the service's inbound texts ("Defer to sender's
    /// webhook"); false: the service's `inbound_request_url` does.
    pub use_inbound_webhook_on_number: Option<bool>,
}

/// A service's A2P 10DLC campaign (`Compliance/Usa2p`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct A2pCampaign {
    pub sid: Option<String>,
    /// `VERIFIED`, `IN_PROGRESS`, `PENDING`, `FAILED`, `SUSPENDED`, …
    pub campaign_status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ServicesPage {
    services: Vec<MessagingService>,
}

#[derive(Debug, Deserialize)]
struct ServiceNumber {
    phone_number: String,
}

#[derive(Debug, Deserialize)]
struct ServiceNumbersPage {
    phone_numbers: Vec<ServiceNumber>,
}

#[derive(Debug, Deserialize)]
struct CampaignsPage {
    compliance: Vec<A2pCampaign>,
}

impl TwilioClient {
    fn messaging_url(&self, path: &str) -> String {
        format!(
            "{}/v1/{path}",
            self.messaging_base.as_str().trim_end_matches('/')
        )
    }

    /// The account's Messaging Services (the first 1,000), with the numbers of each.
    pub async fn messaging_services(
        &self,
        creds: &Credentials,
    ) -> Result<Vec<(MessagingService, Vec<String>)>, ReadError> {
        let page: ServicesPage = self
            .get_json(&self.messaging_url("Services?PageSize=1000"), creds)
            .await?;
        let mut out = Vec::new();
        for service in page.services {
            let numbers: ServiceNumbersPage = self
                .get_json(
                    &self.messaging_url(&format!(
                        "Services/{}/PhoneNumbers?PageSize=1000",
                        service.sid
                    )),
                    creds,
                )
                .await?;
            out.push((
                service,
                numbers
                    .phone_numbers
                    .into_iter()
                    .map(|n| n.phone_number)
                    .collect(),
            ));
        }
        Ok(out)
    }

    /// A Messaging Service's A2P 10DLC campaigns.
    pub async fn a2p_campaigns(
        &self,
        creds: &Credentials,
        service_sid: &str,
    ) -> Result<Vec<A2pCampaign>, ReadError> {
        let page: CampaignsPage = self
            .get_json(
                &self.messaging_url(&format!("Services/{service_sid}/Compliance/Usa2p")),
                creds,
            )
            .await?;
        Ok(page.compliance)
    }
}
