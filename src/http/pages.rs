//! What every people-facing page shares: the layout's facts, the security headers of
//! docs/security.md §2, and the static assets (served by the binary: no CDN).

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::auth::Viewer;

/// The page frame: who is logged in, where.
pub struct Layout {
    pub brokerage: String,
    pub user_name: String,
    pub role: &'static str,
    pub office: String,
    pub csrf: String,
    pub sees_dashboard: bool,
    /// Admins see the Connections page (docs/webhooks.md).
    pub is_admin: bool,
    pub section: &'static str,
}

impl Layout {
    pub fn of(viewer: &Viewer, section: &'static str) -> Layout {
        Layout {
            brokerage: viewer.brokerage_name.clone(),
            user_name: viewer.name.clone(),
            role: viewer.role.as_str(),
            office: viewer.office_name.clone(),
            csrf: viewer.csrf.clone(),
            sees_dashboard: viewer.role.sees_dashboard(),
            is_admin: viewer.role == crate::domain::access::Role::Admin,
            section,
        }
    }
}

/// No inline script or style anywhere: every page's script and style come from /static.
pub const CSP: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// docs/security.md §2 "headers", on every response; `Cache-Control: no-store` unless the handler
/// chose otherwise (the static assets); HSTS only behind an https public URL.
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    // A hosted lead form sets its own, naming the sites that may frame it (docs/leads.md);
    // every other response gets `frame-ancestors 'none'`.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config.public_url.is_https() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

const APP_CSS: &str = include_str!("../../static/app.css");
const APP_JS: &str = include_str!("../../static/app.js");
/// The web app manifest: a phone can add the inbox to its home screen, where it opens at
/// /inbox without the browser's bars. Public, like the icons it names: a phone reads them
/// without the session's cookie.
const MANIFEST: &str = include_str!("../../static/manifest.webmanifest");
const ICON_SVG: &str = include_str!("../../static/icon.svg");
const ICON_192: &[u8] = include_bytes!("../../static/icon-192.png");
const ICON_512: &[u8] = include_bytes!("../../static/icon-512.png");

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/manifest.webmanifest",
            get(|| async { asset("application/manifest+json", MANIFEST) }),
        )
        .route(
            "/static/icon.svg",
            get(|| async { asset("image/svg+xml", ICON_SVG) }),
        )
        .route(
            "/static/icon-192.png",
            get(|| async { asset("image/png", ICON_192) }),
        )
        .route(
            "/static/icon-512.png",
            get(|| async { asset("image/png", ICON_512) }),
        )
}

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
