//! The lead API (README.md "Leads from your website", docs/leads.md): `POST /api/v1/leads`
//! with a brokerage's API key, and its OpenAPI 3.1 description at `/api/v1/openapi.json`,
//! generated from this module's types by utoipa.
//!
//! Checks run in this order, each answered in JSON: the key (401), the key's rate (429 with
//! `Retry-After`), the body's size (413), its fields (422 naming the field), the
//! `Idempotency-Key` (the same key again: the first answer; with another body: 422). A lead
//! that passes is stored with its consent, routed and texted in one transaction (201).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use utoipa::{OpenApi, ToSchema};

use super::AppState;
use crate::context::tokens;
use crate::domain::lead_intake::{self, FieldError};
use crate::effects::web_leads::{self as effect, Received, Sender};
use crate::store::{numbers, web_leads};

/// The largest body accepted.
pub const MAX_BODY: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/leads",
            post(create_lead).fallback(method_not_allowed),
        )
        .route("/api/v1/openapi.json", get(openapi))
}

/// The lead the API takes (docs/leads.md). Only `phone` and `consent` are required.
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = Lead)]
#[allow(dead_code)] // the description of what `lead_intake::parse` reads
#[serde(deny_unknown_fields)]
struct LeadBody {
    /// The lead's mobile number: E.164 (`+16175550123`) or a US number as people write it
    /// (`(617) 555-0123`).
    #[schema(example = "+16175550123", min_length = 1, max_length = 40)]
    phone: String,
    /// The lead's name, as they gave it.
    #[schema(example = "Alex Morgan", max_length = 100)]
    name: Option<String>,
    /// Where the lead came from (a portal, a campaign).
    #[schema(example = "Zillow", max_length = 60)]
    source: Option<String>,
    /// The listing they asked about.
    #[schema(example = "123 Main St", max_length = 200)]
    listing: Option<String>,
    /// What they wrote.
    #[schema(example = "Is it still available?", max_length = 2000)]
    message: Option<String>,
    /// Which of the brokerage's numbers they hear from (E.164); default: the first number of
    /// the setup file.
    #[schema(example = "+15555550100", max_length = 40)]
    number: Option<String>,
    consent: ConsentBody,
}

/// The consent the lead gave to be texted, exactly as they saw it: it goes into the consent
/// ledger as written consent (docs/compliance.md R12).
#[derive(serde::Deserialize, ToSchema)]
#[schema(as = Consent)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    /// The wording the lead agreed to, exactly as shown to them.
    #[schema(
        example = "I agree to receive texts from Harbor Realty about my inquiry. Msg & data rates may apply. Reply STOP to opt out.",
        min_length = 1,
        max_length = 2000
    )]
    text: String,
    /// The http(s) address of the page where they gave it.
    #[schema(
        example = "https://harbor.example/listings/123-main",
        format = "uri",
        max_length = 2000
    )]
    url: String,
    /// When they gave it (RFC 3339 with its offset).
    #[schema(example = "2026-06-12T14:02:00Z", format = DateTime)]
    at: String,
    /// The IPv4 or IPv6 address it came from.
    #[schema(example = "203.0.113.9", max_length = 45)]
    ip: String,
}

/// The lead was received: stored, its consent recorded, and its text on its way through the
/// compliance gate.
#[derive(Serialize, ToSchema)]
struct Created {
    /// The lead's id.
    id: i64,
    /// The conversation it is answered in (`/inbox/c/{conversation_id}`).
    conversation_id: i64,
}

/// What went wrong, in words for the developer, and the field when one is to blame.
#[derive(Serialize, ToSchema)]
struct ApiError {
    error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
struct ErrorBody {
    /// `unauthorized`, `rate_limited`, `too_large`, `invalid_field`, `idempotency_key_reused`,
    /// `method_not_allowed` or `internal`.
    #[schema(example = "invalid_field")]
    code: &'static str,
    /// The field to blame (`consent.url`, `Idempotency-Key`, `body`).
    #[schema(example = "consent.url")]
    field: Option<String>,
    #[schema(example = "must be the http(s) address of the page where the lead gave consent")]
    message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "textback lead API",
        description = "Leads from a brokerage's website and lead sources: each is stored with the consent it came with, routed to the brokerage's agents and texted at once through the compliance gate. README.md \"Leads from your website\" and docs/leads.md.",
    ),
    paths(create_lead),
    components(schemas(LeadBody, ConsentBody, Created, ApiError, ErrorBody)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A key from `textback api-key create --brokerage SLUG --name NAME`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The description, as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

fn error(status: StatusCode, code: &'static str, field: Option<&str>, message: &str) -> Response {
    let body = ApiError {
        error: ErrorBody {
            code,
            field: field.map(str::to_owned),
            message: message.to_owned(),
        },
    };
    (status, axum::Json(body)).into_response()
}

fn invalid(e: &FieldError) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some(&e.field),
        &format!("{} {}", e.field, e.message),
    )
}

fn unauthorized(message: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", None, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"textback\""),
    );
    r
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "the lead API failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        None,
        "the lead could not be stored; nothing was kept. Try again with the same Idempotency-Key.",
    )
}

async fn method_not_allowed() -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
        "only POST",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

/// The key of `Authorization: Bearer KEY`, when it has a key's shape; else why not.
fn bearer(headers: &HeaderMap) -> Result<&str, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("send the brokerage's API key as Authorization: Bearer KEY");
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| {
            k.strip_prefix(tokens::API_KEY_PREFIX)
                .is_some_and(tokens::is_token)
        });
    key.ok_or("the API key is not valid")
}

/// Create a lead
///
/// Stores the lead with its consent (written consent in the consent ledger), gives it a
/// conversation routed like a missed call's lead, and texts it at once through the compliance
/// gate, from the brokerage's number. The same `Idempotency-Key` again gets the same answer
/// and changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/leads",
    request_body(content = LeadBody, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Any string of 1 to 255 visible ASCII characters; a retry with the same key gets the first answer and stores nothing new.", max_length = 255),
    ),
    responses(
        (status = 201, description = "Received: stored, routed, its text on its way through the gate", body = Created),
        (status = 401, description = "No API key, or a key that is unknown or revoked", body = ApiError,
            headers(("WWW-Authenticate" = String, description = "Bearer"))),
        (status = 400, description = "The body could not be read (the connection broke)", body = ApiError),
        (status = 413, description = "The body is over 64 KiB", body = ApiError),
        (status = 422, description = "A field is missing or wrong (named in `error.field`), the body is not a JSON object, or the Idempotency-Key came with another body", body = ApiError),
        (status = 429, description = "Over the key's rate: bursts of 30, then 60 a minute", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Nothing was stored; try again with the same Idempotency-Key", body = ApiError),
    ),
    security(("api_key" = [])),
)]
async fn create_lead(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (Ok(r) | Err(r)) = receive(&state, &headers, body).await;
    let outcome = match r.status() {
        StatusCode::CREATED if r.headers().contains_key("idempotent-replayed") => "replayed",
        StatusCode::CREATED => "created",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        _ => "error",
    };
    state.metrics.webhook("/api/v1/leads", outcome);
    r
}

async fn receive(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, Response> {
    let now = state.clock.now();
    // 1. The key.
    let presented = bearer(headers).map_err(unauthorized)?;
    let hash = tokens::token_hash(presented);
    let mut conn = state.pool.acquire().await.map_err(internal)?;
    let key = web_leads::key_by_hash(&mut conn, &hash)
        .await
        .map_err(internal)?
        .ok_or_else(|| unauthorized("the API key is not valid (unknown or revoked)"))?;
    // 2. Its rate.
    if let Err(not_until) = state.api_limiter.check_key(&key.api_key_id) {
        let wait = not_until
            .wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
            .as_secs()
            .max(1);
        tracing::warn!(key = %key.name, retry_after = wait, "lead API rate limited");
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            None,
            &format!("too many requests for this key; try again in {wait} s"),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(r);
    }
    web_leads::touch_key(&mut conn, key.api_key_id, now)
        .await
        .map_err(internal)?;
    drop(conn);
    // 3. The body, bounded.
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                Some("body"),
                "the body is over 64 KiB",
            )
        } else {
            error(
                StatusCode::BAD_REQUEST,
                "unreadable",
                Some("body"),
                "the body could not be read",
            )
        }
    })?;
    // 4. Its fields, and the Idempotency-Key.
    let lead = lead_intake::parse(&bytes, now).map_err(|e| invalid(&e))?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(lead_intake::idempotency_key(v.as_bytes()).map_err(|e| invalid(&e))?),
    };
    let request_hash = Sha256::digest(&bytes).to_vec();
    let brokerage = key.brokerage_id;
    let mut tx = state.pool.begin().await.map_err(internal)?;
    if let Some(k) = idempotency_key
        && let Some(first) = web_leads::replayed(&mut tx, brokerage, key.api_key_id, k)
            .await
            .map_err(internal)?
    {
        return Ok(replay(&first, &request_hash));
    }
    let number = lead.number.as_ref().map(|n| n.as_e164());
    let Some(number_id) = numbers::for_web_lead(&mut tx, brokerage, number)
        .await
        .map_err(internal)?
    else {
        let e = FieldError {
            field: "number".into(),
            message: if number.is_some() {
                "is not one of the brokerage's numbers".into()
            } else {
                "is needed: the brokerage has no active number".into()
            },
        };
        return Err(invalid(&e));
    };
    let sender = Sender::ApiKey {
        api_key_id: key.api_key_id,
        name: &key.name,
    };
    let received = effect::on_web_lead(
        &mut tx,
        brokerage,
        sender,
        &lead,
        number_id,
        idempotency_key,
        &request_hash,
        now,
    )
    .await
    .map_err(internal)?;
    match received {
        Received::Created {
            web_lead_id,
            conversation_id,
        } => {
            tx.commit().await.map_err(internal)?;
            tracing::info!(
                key = %key.name,
                lead = web_lead_id,
                to = %lead.phone.masked(),
                "web lead received"
            );
            Ok(created(web_lead_id, conversation_id, false))
        }
        Received::Replay => {
            // A concurrent request with the same key won: answer as it did.
            drop(tx);
            let k = idempotency_key.unwrap_or_default();
            let mut conn = state.pool.acquire().await.map_err(internal)?;
            match web_leads::replayed(&mut conn, brokerage, key.api_key_id, k)
                .await
                .map_err(internal)?
            {
                Some(first) => Ok(replay(&first, &request_hash)),
                None => Err(internal("an Idempotency-Key conflict without its lead")),
            }
        }
    }
}

/// The answer to a lead sent again with its `Idempotency-Key`: the first one, or a refusal
/// when the body differs.
fn replay(first: &web_leads::Replayed, request_hash: &[u8]) -> Response {
    if first.request_hash != request_hash {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            Some("Idempotency-Key"),
            "Idempotency-Key was used already with another body; use a new key for a new lead",
        );
    }
    created(first.web_lead_id, first.conversation_id, true)
}

fn created(id: i64, conversation_id: i64, replayed: bool) -> Response {
    let mut r = (
        StatusCode::CREATED,
        axum::Json(Created {
            id,
            conversation_id,
        }),
    )
        .into_response();
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}
