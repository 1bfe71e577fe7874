//! The one layer in front of every `/twilio/*` route: docs/security.md §1.1 steps 1–5, in that
//! order, before anything is stored or parsed into typed structs.
//!
//! 1. method is POST (405) · 2. body ≤ 64 KiB and complete within 10 s (413 / 408) ·
//! 3. form content type (415) · 4. the body decodes strictly (400) ·
//! 5. `X-Twilio-Signature` is valid for `TEXTBACK_PUBLIC_URL` + path + query (403).
//!
//! Steps 6–8 (required fields, the brokerage number, idempotency) belong to the handlers,
//! which report their outcome back through a response extension; this layer counts every
//! answer once in `textback_webhooks_total{endpoint,outcome}`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use secrecy::ExposeSecret;

use super::AppState;
use crate::twilio::webhook::{FieldError, Params};
use crate::twilio::{form, signature};

/// Largest webhook body accepted (docs/security.md §1.1 step 2).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The whole body must arrive within this.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The endpoints, as metric labels.
pub const ENDPOINTS: [&str; 7] = [
    "/twilio/voice",
    "/twilio/voice/dial",
    "/twilio/voice/status",
    "/twilio/voice/screen",
    "/twilio/voice/screen/answer",
    "/twilio/sms",
    "/twilio/sms/status",
];

/// The decoded pairs of a body whose signature checked out, and the account whose key checked
/// it. Only this layer creates it, and the spool's replay from what this layer verified.
#[derive(Clone)]
pub struct VerifiedForm {
    pairs: Arc<Vec<(String, String)>>,
    signed_by: Option<String>,
}

impl VerifiedForm {
    /// A spooled webhook's form, verified when it arrived (README.md "When the database goes
    /// away").
    pub(super) fn replayed(record: crate::spool::Record) -> VerifiedForm {
        VerifiedForm {
            pairs: Arc::new(record.pairs),
            signed_by: record.signed_by,
        }
    }
}

/// How a handler's answer is counted when it is not a plain `ok`.
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub &'static str);

/// Sets the outcome label of a webhook answer.
pub fn with_outcome(mut response: Response, outcome: &'static str) -> Response {
    response.extensions_mut().insert(Outcome(outcome));
    response
}

struct Rejection {
    status: StatusCode,
    outcome: &'static str,
    message: &'static str,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message).into_response();
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

const fn reject(status: StatusCode, outcome: &'static str, message: &'static str) -> Rejection {
    Rejection {
        status,
        outcome,
        message,
    }
}

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // The webhook's whole answer, its checks included, keeps within Twilio's 15 s.
    let entered = tokio::time::Instant::now();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| ENDPOINTS.iter().find(|e| **e == m.as_str()))
        .copied()
        .unwrap_or("other");
    let (parts, body) = request.into_parts();
    match check(&state, &parts, body, endpoint).await {
        Err(rejection) => {
            state.metrics.webhook(endpoint, rejection.outcome);
            rejection.into_response()
        }
        Ok(verified) => {
            // Store and forward (README.md "When the database goes away"): while earlier
            // webhooks wait in the spool this one joins them, so they are applied in the
            // order they came; one that cannot reach the database in time joins them too.
            let record = crate::spool::Record {
                arrived_at: state.clock.now(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                pairs: verified.pairs.as_ref().clone(),
                signed_by: verified.signed_by.clone(),
            };
            if state.spool.has_pending() {
                // Joins the spool, unless the replay emptied it meanwhile (checked with the
                // write, under the file's lock): then it goes on live.
                let spool = state.spool.clone();
                let r = record.clone();
                match tokio::task::spawn_blocking(move || spool.append_if_pending(&r)).await {
                    Ok(Ok(true)) => return spooled(&state, endpoint, &record),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => return spool_failed(&state, endpoint, &e.to_string()),
                    Err(e) => return spool_failed(&state, endpoint, &e.to_string()),
                }
            }
            let mut request = Request::from_parts(parts, Body::empty());
            request.extensions_mut().insert(verified);
            let left = HANDLER_DEADLINE.saturating_sub(entered.elapsed());
            let response = match tokio::time::timeout(left, next.run(request)).await {
                Ok(r)
                    if r.extensions()
                        .get::<super::error::DbUnavailable>()
                        .is_none() =>
                {
                    r
                }
                Ok(_) => return spool(&state, endpoint, record).await,
                Err(_) => {
                    tracing::warn!(endpoint, "a webhook's handler took too long; spooled");
                    return spool(&state, endpoint, record).await;
                }
            };
            let outcome = response.extensions().get::<Outcome>().map_or("ok", |o| o.0);
            state.metrics.webhook(endpoint, outcome);
            response
        }
    }
}

/// How long a webhook may take, from its arrival, before it is spooled instead: Twilio waits
/// 15 s for an answer. A handler cut short rolls back (or, if its commit had gone, is applied
/// again by the replay and found already there: every webhook is idempotent by its SIDs).
pub const HANDLER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(8);

/// Appends a verified webhook to the spool, flushed to disk, then answers what its call needs
/// now; 503 when the spool cannot be written (then Twilio's own retries are the last chance).
async fn spool(state: &AppState, endpoint: &'static str, record: crate::spool::Record) -> Response {
    let spool = state.spool.clone();
    let r = record.clone();
    match tokio::task::spawn_blocking(move || spool.append(&r)).await {
        Ok(Ok(())) => spooled(state, endpoint, &record),
        Ok(Err(e)) => spool_failed(state, endpoint, &e.to_string()),
        Err(e) => spool_failed(state, endpoint, &e.to_string()),
    }
}

fn spooled(state: &AppState, endpoint: &'static str, record: &crate::spool::Record) -> Response {
    state.metrics.webhook(endpoint, "spooled");
    tracing::info!(endpoint, pending = state.spool.pending(), "webhook spooled");
    // Said in a header too, for whoever reads the answer (Twilio's request inspector, the
    // failover test): this webhook is on disk, not yet in the database.
    let mut response = super::spooled::answer(state, &record.path, &record.pairs);
    response.headers_mut().insert(
        "x-textback-spooled",
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

fn spool_failed(state: &AppState, endpoint: &'static str, error: &str) -> Response {
    tracing::error!(
        endpoint,
        error,
        "the spool cannot be written; webhook answered 503"
    );
    state.metrics.webhook(endpoint, "spool_failed");
    (StatusCode::SERVICE_UNAVAILABLE, "service unavailable\n").into_response()
}

async fn check(
    state: &AppState,
    parts: &Parts,
    body: Body,
    endpoint: &'static str,
) -> Result<VerifiedForm, Rejection> {
    // 1. method
    if parts.method != Method::POST {
        return Err(reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
            "method not allowed: Twilio webhooks are POST\n",
        ));
    }

    // 2. size, refused before reading when announced; otherwise cut at the limit.
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "payload too large: webhook bodies are limited to 64 KiB\n",
        ));
    }
    let bytes =
        match tokio::time::timeout(BODY_DEADLINE, Limited::new(body, MAX_BODY_BYTES).collect())
            .await
        {
            Err(_) => {
                return Err(reject(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    "request timeout: the body did not arrive within 10 s\n",
                ));
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(reject(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "payload too large: webhook bodies are limited to 64 KiB\n",
                ));
            }
            Ok(Err(_)) => {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    "bad request: the body could not be read\n",
                ));
            }
            Ok(Ok(collected)) => collected.to_bytes(),
        };

    // 3. content type (a charset parameter is allowed)
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type",
            "unsupported media type: expected application/x-www-form-urlencoded\n",
        ));
    }

    // 4. strict decoding
    let pairs = form::decode(&bytes).map_err(|e| {
        tracing::warn!(endpoint, error = %e, "rejected a webhook whose body does not decode");
        reject(
            StatusCode::BAD_REQUEST,
            "malformed",
            "bad request: the form body does not decode\n",
        )
    })?;

    // 5. signature, over the public URL Twilio called (never the Host header)
    let mut url = state.config.public_url.join(parts.uri.path());
    if let Some(query) = parts.uri.query() {
        url.push('?');
        url.push_str(query);
    }
    let header = parts
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    // The key: the auth token of the account the webhook names (a brokerage's own, else the
    // deployment's), or the shared key Twilio says it signed with (docs/security.md
    // "Accounts and keys"). `AccountSid` is only a hint here; the signature proves it.
    let settings = parts
        .headers
        .get("x-twilio-webhooks-signature-settings")
        .map(|v| signature::Settings::parse(v.to_str().unwrap_or_default()));
    let account = pairs
        .iter()
        .find(|(k, _)| k == "AccountSid")
        .map(|(_, v)| v.as_str());
    let forbidden = || {
        reject(
            StatusCode::FORBIDDEN,
            "bad_signature",
            "forbidden: invalid X-Twilio-Signature\n",
        )
    };
    let keys = match state.webhook_keys(account, settings.as_ref()).await {
        Ok(keys) => keys,
        Err(reason) => {
            tracing::warn!(endpoint, %reason, "rejected a webhook: no key to check its signature");
            return Err(forbidden());
        }
    };
    let valid = keys.into_iter().find(|key| {
        signature::is_valid_with(
            key.algorithm,
            key.secret.expose_secret().as_bytes(),
            &url,
            &pairs,
            header,
        )
    });
    let Some(key) = valid else {
        tracing::warn!(
            endpoint,
            has_signature = header.is_some(),
            shared_key = settings.as_ref().and_then(|s| s.key.as_deref()),
            "rejected a webhook with a missing or invalid X-Twilio-Signature"
        );
        return Err(forbidden());
    };
    Ok(VerifiedForm {
        pairs: Arc::new(pairs),
        signed_by: key.account,
    })
}

/// A webhook payload checked for step 6 (no conflicting values of a field it reads, required
/// fields present and well-formed; control characters are kept, docs/security.md §1.2): the
/// only way handlers get at a request's fields.
pub struct TwilioForm<T>(pub T);

/// Built from the signature-checked form pairs.
pub trait FromParams: Sized {
    fn from_params(params: &Params) -> Result<Self, FieldError>;
}

macro_rules! from_params {
    ($($t:ty),*) => {$(
        impl FromParams for $t {
            fn from_params(params: &Params) -> Result<Self, FieldError> {
                <$t>::from_params(params)
            }
        }
    )*};
}
from_params!(
    crate::twilio::webhook::VoiceIncoming,
    crate::twilio::webhook::DialResult,
    crate::twilio::webhook::CallStatus,
    crate::twilio::webhook::ScreenLeg,
    crate::twilio::webhook::SmsInbound,
    crate::twilio::webhook::MessageStatus,
    crate::twilio::webhook::CallbackLeg,
    crate::twilio::webhook::Recording,
    crate::twilio::webhook::Transcription
);

impl<S: Send + Sync, T: FromParams> FromRequestParts<S> for TwilioForm<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(VerifiedForm { pairs, signed_by }) =
            parts.extensions.get::<VerifiedForm>().cloned()
        else {
            // Only reachable if a route were added without the guard: fail closed.
            tracing::error!(
                path = parts.uri.path(),
                "a Twilio handler ran without the signature guard"
            );
            return Err(with_outcome(
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
                "error",
            ));
        };
        let parsed = Params::new(pairs.as_ref().clone())
            .and_then(|p| T::from_params(&p.signed_by(signed_by)));
        parsed.map(TwilioForm).map_err(|e| {
            // The field is named, never its value.
            tracing::warn!(path = parts.uri.path(), problem = %e, "rejected a signed webhook with bad fields");
            with_outcome((StatusCode::BAD_REQUEST, format!("bad request: {e}\n")).into_response(), "bad_request")
        })
    }
}
