//! Hosted lead forms (README.md "Leads from your website", docs/leads.md): `/f/{brokerage}/{form}`
//! from the setup file's `[[forms]]`, a small page that works on a phone and inside an iframe of
//! the sites the form lists (every other page keeps `frame-ancestors 'none'`). A submission is a
//! lead like the API's, its consent the form's wording exactly as shown, the page's address, the
//! time and the visitor's address. Spam is held back by a honeypot field and a rate per address;
//! a double submission (the same page's token) is one lead.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::auth::{check_origin, client_ip};
use super::{AppState, Error, Result};
use crate::context::tokens;
use crate::domain::lead_intake::{self, Consent, Lead};
use crate::effects::web_leads::{self as effect, Received, Sender};
use crate::store::web_leads::{self, FormRow};

/// The largest submission read.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// Longest name and message a form takes (the API's limits).
const NAME_MAX: usize = lead_intake::NAME_MAX;
const MESSAGE_MAX: usize = lead_intake::MESSAGE_MAX;

pub fn router() -> Router<AppState> {
    Router::new().route("/f/{brokerage}/{form}", get(show).post(submit))
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage {
    title: String,
    brokerage: String,
    consent: String,
    action: String,
    once: String,
    /// A digest of the consent wording shown: a submission of other wording is not consent.
    shown: String,
    name: String,
    phone: String,
    message: String,
    /// What is wrong, by field: `phone`, `consent`, `message`, `name`.
    errors: Vec<(&'static str, String)>,
    sent: bool,
}

impl FormPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Deserialize)]
struct Shown {
    sent: Option<String>,
}

/// What the form posts. Unknown fields are ignored (a browser extension may add some).
#[derive(Deserialize, Default)]
struct Submitted {
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    message: String,
    consent: Option<String>,
    /// The honeypot: hidden from people, filled in by bots.
    #[serde(default)]
    website: String,
    /// The digest of the consent wording the page showed.
    #[serde(default)]
    shown: String,
    #[serde(default)]
    once: String,
}

async fn find(state: &AppState, brokerage: &str, form: &str) -> Result<FormRow> {
    // The slugs are the public address: anything else is simply not found.
    if brokerage.len() > 63 || form.len() > 63 {
        return Err(Error::NotFound);
    }
    let mut conn = state.pool.acquire().await?;
    web_leads::form(&mut conn, brokerage, form)
        .await?
        .ok_or(Error::NotFound)
}

fn page(form: &FormRow, once: String) -> FormPage {
    FormPage {
        title: form
            .title
            .clone()
            .unwrap_or_else(|| format!("Text with {}", form.brokerage_name)),
        brokerage: form.brokerage_name.clone(),
        consent: form.consent_text.clone(),
        action: String::new(),
        once,
        shown: wording_digest(&form.consent_text),
        name: String::new(),
        phone: String::new(),
        message: String::new(),
        errors: Vec::new(),
        sent: false,
    }
}

/// The page, with the CSP that lets the form's sites (and no other) show it in a frame.
fn render(status: StatusCode, form: &FormRow, mut p: FormPage, path: &str) -> Result<Response> {
    p.action = path.to_owned();
    let html = p.render()?;
    let ancestors = if form.frame_origins.is_empty() {
        "'none'".to_owned()
    } else {
        form.frame_origins.join(" ")
    };
    let csp = super::pages::CSP.replace(
        "frame-ancestors 'none'",
        &format!("frame-ancestors {ancestors}"),
    );
    let mut r = (status, Html(html)).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(r)
}

async fn show(
    State(state): State<AppState>,
    Path((brokerage, slug)): Path<(String, String)>,
    Query(shown): Query<Shown>,
) -> Result<Response> {
    let form = find(&state, &brokerage, &slug).await?;
    let mut p = page(&form, tokens::random_token()?);
    p.sent = shown.sent.is_some();
    render(StatusCode::OK, &form, p, &format!("/f/{brokerage}/{slug}"))
}

async fn submit(
    State(state): State<AppState>,
    Path((brokerage, slug)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response> {
    // Only the form's own page may submit it (it is same-origin inside an iframe too): another
    // site cannot make its visitors' browsers send leads, and consent, in their name.
    check_origin(&headers, &state)?;
    let form = find(&state, &brokerage, &slug).await?;
    let path = format!("/f/{brokerage}/{slug}");
    let ip = client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    // A rate per address (an IPv6 network's /64 counts as one), before anything is read.
    let rate_key = match ip {
        IpAddr::V6(a) => {
            let mut o = a.octets();
            o[8..].fill(0);
            IpAddr::V6(o.into())
        }
        v4 => v4,
    };
    if let Err(not_until) = state.form_limiter.check_key(&rate_key) {
        let wait = not_until
            .wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
            .as_secs()
            .max(1);
        tracing::warn!(form = %slug, retry_after = wait, "lead form rate limited");
        state.metrics.webhook("/f", "rate_limited");
        return Err(Error::TooMany { retry_after: wait });
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| Error::BadRequest("The form is too large.".into()))?;
    let sent: Submitted = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| Error::BadRequest("The form could not be read.".into()))?;
    // The honeypot: people never see the field, so whoever filled it is not one. They get the
    // thanks page (nothing tells a bot it was caught) and nothing is kept.
    if !sent.website.trim().is_empty() {
        tracing::info!(form = %slug, "lead form honeypot filled: not kept");
        state.metrics.webhook("/f", "honeypot");
        return Ok(Redirect::to(&format!("{path}?sent=1")).into_response());
    }
    let now = state.clock.now();
    let mut p = page(&form, sent.once.clone());
    p.name = sent.name.clone();
    p.phone = sent.phone.clone();
    p.message = sent.message.clone();
    let phone = lead_intake::lead_phone(sent.phone.trim());
    if phone.is_none() {
        p.errors.push((
            "phone",
            if sent.phone.trim().is_empty() {
                "Your mobile number, so we can text you.".to_owned()
            } else {
                "This is not a mobile number we can text. Try (617) 555-0123.".to_owned()
            },
        ));
    }
    if sent.name.chars().count() > NAME_MAX || sent.name.chars().any(char::is_control) {
        p.errors
            .push(("name", format!("At most {NAME_MAX} characters.")));
    }
    let message_ok = |c: char| !c.is_control() || matches!(c, '\n' | '\r' | '\t');
    if sent.message.chars().count() > MESSAGE_MAX || !sent.message.chars().all(message_ok) {
        p.errors
            .push(("message", format!("At most {MESSAGE_MAX} characters.")));
    }
    if sent.consent.as_deref() == Some("yes") && sent.shown != p.shown {
        // The setup file changed the wording after the page was shown: what they ticked is
        // not what would be recorded. They read the new wording and tick again.
        p.errors.push((
            "consent",
            "The wording above changed since this page was loaded: please read it and tick the box again.".to_owned(),
        ));
    } else if sent.consent.as_deref() != Some("yes") {
        p.errors.push((
            "consent",
            "Tick the box to agree to texts: we text only people who asked us to.".to_owned(),
        ));
    }
    let (Some(phone), true) = (phone, p.errors.is_empty()) else {
        state.metrics.webhook("/f", "invalid");
        return render(StatusCode::UNPROCESSABLE_ENTITY, &form, p, &path);
    };
    let Some(number_id) = form.number_id else {
        return Err(Error::Internal(anyhow::anyhow!(
            "form {slug} of {brokerage}: the brokerage has no active number"
        )));
    };
    let blank = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let lead = Lead {
        phone,
        name: blank(&sent.name),
        source: Some(format!("form {}", form.slug)),
        listing: form.listing.clone(),
        message: blank(&sent.message),
        number: None,
        consent: Consent {
            // The wording exactly as the page showed it, and the page's own address.
            text: form.consent_text.clone(),
            url: state.config.public_url.join(&path),
            at: now,
            ip,
        },
    };
    // The page's one-time token makes a double submission one lead.
    let once = lead_intake::idempotency_key(sent.once.as_bytes()).ok();
    let hash = Sha256::digest(&bytes).to_vec();
    let mut tx = state.pool.begin().await?;
    let received = effect::on_web_lead(
        &mut tx,
        form.brokerage_id,
        Sender::Form {
            web_form_id: form.web_form_id,
            slug: &form.slug,
        },
        &lead,
        number_id,
        once,
        &hash,
        now,
    )
    .await?;
    match received {
        Received::Created { web_lead_id, .. } => {
            tx.commit().await?;
            state.metrics.webhook("/f", "created");
            tracing::info!(form = %slug, lead = web_lead_id, to = %lead.phone.masked(), "lead form received");
        }
        Received::Replay => {
            drop(tx);
            state.metrics.webhook("/f", "replayed");
        }
    }
    Ok(Redirect::to(&format!("{path}?sent=1")).into_response())
}

/// The first 16 hex digits of the SHA-256 of the consent wording.
fn wording_digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
        .chars()
        .take(16)
        .collect()
}
