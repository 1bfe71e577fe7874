//! Logins and sessions for the people's pages (docs/security.md §2).
//!
//! * Passwords: Argon2id with the `argon2` crate's defaults (m = 19456 KiB, t = 2, p = 1),
//!   verified off the async threads; rehashed at login when the parameters change.
//! * Sessions: a 256-bit id from the OS CSPRNG in a cookie; the server keeps only its SHA-256
//!   (`user_session`), with a per-session CSRF token, an 8-hour idle and a 7-day absolute
//!   timeout read from the server's clock. A new id at every login; logout deletes the row.
//!   (`tower-sessions` was considered: it reads the system clock, so the timeouts could not
//!   run on the server's clock or be tested with it, stores ids as they are, and cannot find a
//!   person's sessions to end them when the setup file removes them.)
//! * Cookies: `__Host-tb_session` (Secure, HttpOnly, SameSite=Lax, Path=/); on a plain-http
//!   public URL (the demo, tests on loopback) `tb_session` without Secure.
//! * CSRF: every form carries the session's token, compared in constant time; the login form a
//!   pre-session token bound to a short-lived cookie; a cross-site `Origin` or
//!   `Sec-Fetch-Site` is refused.
//! * Throttling: 5 failures per account in 15 minutes, 20 attempts per client address a
//!   minute, counted in PostgreSQL so the limits hold across instances.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use askama::Template;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono_tz::Tz;
use ipnet::IpNet;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{AppState, Error, Result};
use crate::domain::access::{self, Role, Scope, SessionState};
use crate::domain::password;
use crate::store::{BrokerageId, users};

/// Most bytes a page form may have.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The cookie names: `__Host-` prefixed and `Secure` on an https public URL; plain on http
/// (docs/security.md §2 "cookies").
#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    pub secure: bool,
}

impl Cookies {
    pub fn of(state: &AppState) -> Cookies {
        Cookies {
            secure: state.config.public_url.is_https(),
        }
    }

    pub fn session(self) -> &'static str {
        if self.secure {
            "__Host-tb_session"
        } else {
            "tb_session"
        }
    }

    pub fn login(self) -> &'static str {
        if self.secure {
            "__Host-tb_login"
        } else {
            "tb_login"
        }
    }

    fn build(self, name: &'static str, value: String, max_age: Option<i64>) -> Cookie<'static> {
        let mut c = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure);
        if let Some(secs) = max_age {
            c = c.max_age(cookie_duration(secs));
        }
        c.build()
    }

    fn removal(self, name: &'static str) -> Cookie<'static> {
        self.build(name, String::new(), Some(0))
    }
}

fn cookie_duration(secs: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(secs)
}

/// 256 random bits from the OS, base64url without padding (43 characters).
pub fn random_token() -> std::result::Result<String, Error> {
    Ok(crate::context::tokens::random_token()?)
}

use crate::context::tokens::{is_token, token_hash as session_hash};

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The person behind a request, from their session. Every page and action takes one.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: i64,
    pub brokerage: BrokerageId,
    pub agent_id: i64,
    pub office_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub csrf: String,
    pub brokerage_name: String,
    pub office_name: String,
    pub tz: Tz,
    /// The SHA-256 of the session's id (long-lived responses check it is still valid).
    pub session_hash: Vec<u8>,
}

impl Viewer {
    pub fn scope(&self) -> Scope {
        Scope {
            brokerage_id: self.brokerage.0,
            role: self.role,
            office_id: self.office_id,
            agent_id: self.agent_id,
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer> {
        // What the page's script fetches by itself (live updates) is not the person's activity:
        // it must not keep an unattended tab's session alive past the idle timeout.
        let by_itself =
            parts.uri.path() == "/inbox/events" || parts.headers.contains_key(LIVE_HEADER);
        viewer(&parts.headers, state, !by_itself).await
    }
}

/// The header `static/app.js` sends on the requests it makes by itself.
pub const LIVE_HEADER: &str = "x-textback-live";

/// The person whose session cookie `headers` carry, or `LoginRequired`. `activity`: the
/// request is the person's doing and moves the idle timeout.
async fn viewer(headers: &HeaderMap, state: &AppState, activity: bool) -> Result<Viewer> {
    {
        let jar = CookieJar::from_headers(headers);
        let Some(token) = jar.get(Cookies::of(state).session()).map(Cookie::value) else {
            return Err(Error::LoginRequired);
        };
        if !is_token(token) {
            return Err(Error::LoginRequired);
        }
        let hash = session_hash(token);
        let now = state.clock.now();
        let mut conn = state.pool.acquire().await?;
        let Some(s) = users::session(&mut conn, &hash).await? else {
            return Err(Error::LoginRequired);
        };
        let role = Role::parse(&s.role);
        let ended = match access::session_state(s.created_at, s.last_seen_at, now) {
            SessionState::Valid { touch } => {
                if touch && activity && s.agent_active {
                    users::touch_session(&mut conn, &hash, now).await?;
                }
                !s.agent_active || role.is_none()
            }
            SessionState::IdleExpired | SessionState::Expired => true,
        };
        let Some(role) = role.filter(|_| !ended) else {
            users::delete_session(&mut conn, &hash).await?;
            tracing::info!(
                user_id = s.user_id,
                "session ended (timed out or login removed)"
            );
            return Err(Error::LoginRequired);
        };
        Ok(Viewer {
            user_id: s.user_id,
            brokerage: s.brokerage_id,
            agent_id: s.agent_id,
            office_id: s.office_id,
            email: s.email,
            name: s.name,
            role,
            csrf: s.csrf_token,
            brokerage_name: s.brokerage_name,
            office_name: s.office_name,
            tz: s.time_zone.parse().unwrap_or(chrono_tz::America::New_York),
            session_hash: hash,
        })
    }
}

/// The public origin (`scheme://host[:port]`) forms must come from.
fn public_origin(state: &AppState) -> String {
    url::Url::parse(state.config.public_url.as_str())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// docs/security.md §2 CSRF: a POST whose `Origin` is present and is not ours, or that the browser
/// says is cross-site, is refused before anything else.
pub(super) fn check_origin(headers: &HeaderMap, state: &AppState) -> Result<()> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(Error::Forbidden("a form from another site"));
    }
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.to_str().ok() != Some(public_origin(state).as_str())
    {
        return Err(Error::Forbidden("a form from another site"));
    }
    Ok(())
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

/// A form POSTed by a logged-in person: the origin checked, the session found, the CSRF token
/// compared in constant time, the body (at most 64 KiB) decoded into `T`.
pub struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Posted<T>> {
        let (parts, body) = req.into_parts();
        check_origin(&parts.headers, state)?;
        let viewer = viewer(&parts.headers, state, true).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| Error::BadRequest("The form is too large.".into()))?;
        let form = checked_form(&viewer, &bytes)?;
        Ok(Posted { viewer, form })
    }
}

/// The CSRF token compared, no control character in any field, the fields decoded into `T`.
fn checked_form<T: serde::de::DeserializeOwned>(viewer: &Viewer, bytes: &[u8]) -> Result<T> {
    let token: CsrfField = serde_urlencoded::from_bytes(bytes)
        .map_err(|_| Error::BadRequest("The form could not be read.".into()))?;
    if !token.csrf.as_deref().is_some_and(|t| same(t, &viewer.csrf)) {
        tracing::warn!(
            user_id = viewer.user_id,
            "form refused: missing or wrong CSRF token"
        );
        return Err(Error::Forbidden(
            "This form has expired. Reload the page and try again.",
        ));
    }
    if let Some(field) = field_with_control_character(bytes) {
        tracing::info!(
            user_id = viewer.user_id,
            field = %field,
            "form refused: a control character in a field"
        );
        return Err(Error::BadRequest(format!(
            "{} contains a control character (such as NUL) that cannot be stored or sent. Remove it and try again; nothing was changed.",
            field_label(&field)
        )));
    }
    serde_urlencoded::from_bytes(bytes)
        .map_err(|_| Error::BadRequest("The form could not be read.".into()))
}

/// The most a form with a file may weigh: the largest file (README.md "Pictures") and the
/// form's fields.
pub const MAX_UPLOAD_FORM_BYTES: usize = crate::domain::media::MAX_BYTES + MAX_FORM_BYTES;

/// A form that may carry a file (`multipart/form-data`; a plain form works too): the checks of
/// [`Posted`] on its text fields, and the bytes of its files (empty file inputs left out). The
/// route sets the body limit ([`MAX_UPLOAD_FORM_BYTES`]).
pub struct PostedFiles<T> {
    pub viewer: Viewer,
    pub form: T,
    pub files: Vec<Vec<u8>>,
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<AppState> for PostedFiles<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<PostedFiles<T>> {
        let multipart = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("multipart/form-data"));
        if !multipart {
            let Posted { viewer, form } = Posted::from_request(req, state).await?;
            return Ok(PostedFiles {
                viewer,
                form,
                files: Vec::new(),
            });
        }
        let (parts, body) = req.into_parts();
        check_origin(&parts.headers, state)?;
        let viewer = viewer(&parts.headers, state, true).await?;
        let unreadable = |e: axum::extract::multipart::MultipartError| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::BadRequest(format!(
                    "The file is too large: a photo can be at most {} MB.",
                    crate::domain::media::MAX_BYTES / (1024 * 1024)
                ))
            } else {
                Error::BadRequest("The form could not be read.".into())
            }
        };
        let mut multipart =
            axum::extract::Multipart::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(|_| Error::BadRequest("The form could not be read.".into()))?;
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut files = Vec::new();
        let mut field_bytes = 0usize;
        while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
            let name = field.name().unwrap_or_default().to_owned();
            if field.file_name().is_some() {
                let bytes = field.bytes().await.map_err(unreadable)?;
                if !bytes.is_empty() {
                    files.push(bytes.to_vec());
                }
            } else {
                let value = field.text().await.map_err(unreadable)?;
                field_bytes += name.len() + value.len();
                if field_bytes > MAX_FORM_BYTES {
                    return Err(Error::BadRequest("The form is too large.".into()));
                }
                fields.push((name, value));
            }
        }
        let encoded = serde_urlencoded::to_string(&fields)
            .map_err(|_| Error::BadRequest("The form could not be read.".into()))?;
        let form = checked_form(&viewer, encoded.as_bytes())?;
        Ok(PostedFiles {
            viewer,
            form,
            files,
        })
    }
}

/// The first field of a submitted form whose value holds a control character other than tab
/// and line breaks: what a person types never needs one, PostgreSQL refuses NUL, and a carrier
/// would refuse or mangle the rest (docs/security.md §2 "typed input"). Checked for every form, so no field is left
/// out.
fn field_with_control_character(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(_, v)| v.chars().any(crate::domain::sms_text::is_stray_control))
        .map(|(k, _)| k.into_owned())
}

/// How a form field is named to the person who filled it in.
fn field_label(field: &str) -> String {
    match field {
        "body" => "The text".to_owned(),
        "name" => "The name".to_owned(),
        "phone" => "The phone number".to_owned(),
        "email" => "The email".to_owned(),
        other => format!("The field \u{201c}{other}\u{201d}"),
    }
}

/// The client address for throttling: the socket peer, or, when the peer is a trusted proxy,
/// the right-most `X-Forwarded-For` entry that is not one (docs/security.md §2).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// Argon2id with the crate's defaults (docs/security.md: m = 19456, t = 2, p = 1).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

/// The prefix of a hash made with today's parameters; another prefix is rehashed at login.
pub fn current_hash_prefix() -> String {
    let p = argon2::Params::default();
    format!(
        "$argon2id$v=19$m={},t={},p={}$",
        p.m_cost(),
        p.t_cost(),
        p.p_cost()
    )
}

fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, checked when the email is unknown so that an unknown user and
/// a wrong password take the same time (docs/security.md §2).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = random_token().unwrap_or_else(|_| "textback-dummy-password".to_owned());
        hash_password(&random).unwrap_or_default()
    })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

/// The login form. A failed attempt keeps its pre-session token and does not echo the email:
/// an unknown email and a wrong password get byte-identical pages (docs/security.md §2).
fn login_page(
    state: &AppState,
    status: StatusCode,
    token: Option<&str>,
    error: Option<&str>,
) -> Result<Response> {
    let cookies = Cookies::of(state);
    let token = match token {
        Some(t) => t.to_owned(),
        None => random_token()?,
    };
    let body = LoginPage {
        csrf: &token,
        error,
    }
    .render()?;
    let jar = CookieJar::new().add(cookies.build(cookies.login(), token, Some(3600)));
    Ok((status, jar, Html(body)).into_response())
}

/// `GET /login`: the form, with a fresh pre-session CSRF token in a short-lived cookie.
pub async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if viewer(&headers, &state, false).await.is_ok() {
        return Ok(Redirect::to("/inbox").into_response());
    }
    login_page(&state, StatusCode::OK, None, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The one answer for an unknown email, a wrong password, a removed login (docs/security.md §2).
const FAILED: &str = "Email or password is incorrect.";

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response> {
    check_origin(&headers, &state)?;
    if body.len() > MAX_FORM_BYTES {
        return Err(Error::BadRequest("The form is too large.".into()));
    }
    let form: LoginForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| Error::BadRequest("The form could not be read.".into()))?;
    let cookies = Cookies::of(&state);
    let expected = jar.get(cookies.login()).map(Cookie::value).unwrap_or("");
    if expected.is_empty() || !same(&form.csrf, expected) {
        tracing::warn!("login refused: missing or wrong pre-session CSRF token");
        return Err(Error::Forbidden(
            "This form has expired. Reload the page and try again.",
        ));
    }
    let ip = client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    let email: String = form.email.trim().to_lowercase();
    let key: String = email
        .chars()
        .filter(|c| !c.is_control())
        .take(320)
        .collect();
    let now = state.clock.now();

    // The throttle: count and record under a lock, so parallel attempts cannot all pass.
    let mut tx = state.pool.begin().await?;
    users::lock_attempts(&mut tx, &key, &ip.to_string()).await?;
    let (failures, from_ip) = users::recent_attempts(
        &mut tx,
        &key,
        &ip.to_string(),
        now - access::ACCOUNT_WINDOW,
        now - access::IP_WINDOW,
    )
    .await?;
    if let Err(retry_after) = access::throttle(&failures, &from_ip, now) {
        tx.commit().await?;
        tracing::warn!(client = %ip, retry_after, "login throttled");
        return Err(Error::TooMany { retry_after });
    }
    let attempt = users::begin_attempt(&mut tx, &key, &ip.to_string(), now).await?;
    let login = if email.chars().any(char::is_control) {
        None
    } else {
        users::login_by_email(&mut tx, &email).await?
    };
    tx.commit().await?;

    // Checked off the async threads; an unknown email checks a dummy hash in the same time;
    // a password too long to be real is not hashed at all.
    let too_long = password::too_long_to_try(&form.password);
    let (phc, usable) = match &login {
        Some(l) if l.agent_active => (l.password_hash.clone(), true),
        _ => (dummy_hash().to_owned(), false),
    };
    let candidate = form.password.clone();
    let matched = if too_long {
        false
    } else {
        tokio::task::spawn_blocking(move || verify_password(&candidate, &phc))
            .await
            .unwrap_or(false)
    };
    let ok = matched && usable;
    let mut conn = state.pool.acquire().await?;
    users::end_attempt(&mut conn, attempt, ok).await?;
    if attempt % 100 == 0 {
        users::prune_attempts(&mut conn, now - chrono::Duration::days(1)).await?;
    }
    let Some(login) = login.filter(|_| ok) else {
        tracing::info!(client = %ip, "login failed");
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(expected),
            Some(FAILED),
        );
    };
    if !login.password_hash.starts_with(&current_hash_prefix()) {
        let password = form.password.clone();
        if let Ok(Ok(new)) = tokio::task::spawn_blocking(move || hash_password(&password)).await {
            users::rehash(&mut conn, login.brokerage_id, login.user_id, &new, now).await?;
        }
    }
    let jar = start_session(&mut conn, cookies, jar, login.user_id, now).await?;
    tracing::info!(user_id = login.user_id, client = %ip, "logged in");
    Ok((jar, Redirect::to("/inbox")).into_response())
}

/// A new session for `user_id` (a new id at every sign-in: a password or an alert's sign-in
/// link), its cookie added to `jar` and the pre-session cookie removed.
pub(super) async fn start_session(
    conn: &mut sqlx::PgConnection,
    cookies: Cookies,
    jar: CookieJar,
    user_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<CookieJar> {
    let token = random_token()?;
    let csrf = random_token()?;
    users::create_session(conn, user_id, &session_hash(&token), &csrf, now).await?;
    Ok(jar
        .add(cookies.removal(cookies.login()))
        .add(cookies.build(cookies.session(), token, None)))
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /logout`: the session row is deleted, so the old cookie is worth nothing.
pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    Posted { viewer, .. }: Posted<Empty>,
) -> Result<Response> {
    let cookies = Cookies::of(&state);
    if let Some(token) = jar.get(cookies.session()).map(Cookie::value) {
        let mut conn = state.pool.acquire().await?;
        users::delete_session(&mut conn, &session_hash(token)).await?;
    }
    tracing::info!(user_id = viewer.user_id, "logged out");
    let jar = jar.add(cookies.removal(cookies.session()));
    Ok((jar, Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(
                "x-forwarded-for",
                v.parse().unwrap_or(header::HeaderValue::from_static("")),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap_or_default()];
        // An untrusted peer's X-Forwarded-For is ignored (a forgery changes nothing).
        assert_eq!(
            client_ip(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &trusted),
            ip("203.0.113.9")
        );
        // A trusted proxy: the right-most entry that is not a trusted proxy.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &headers(&["1.2.3.4, 198.51.100.7, 10.0.0.5"]),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &headers(&["1.2.3.4", "198.51.100.7"]),
                &trusted
            ),
            ip("198.51.100.7")
        );
        // Nothing usable: the peer.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers(&["garbage"]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers(&[]), &[]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn tokens_are_256_bits_and_checked_in_shape() {
        let t = random_token().unwrap_or_default();
        assert!(is_token(&t), "{t}");
        assert_ne!(t, random_token().unwrap_or_default());
        assert!(!is_token("short"));
        assert!(!is_token(&format!("{}!", &t[..42])));
        assert_eq!(session_hash(&t).len(), 32);
    }

    #[test]
    fn hashes_use_argon2id_with_the_defaults_of_security_md() {
        let h = hash_password("correct horse battery").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(h.starts_with(&current_hash_prefix()));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
