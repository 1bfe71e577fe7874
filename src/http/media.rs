//! Pictures (README.md "Pictures"): a thread's media, shown only to the people who may see the
//! conversation (`/inbox/media/{id}`), and a reply's photo, fetched by Twilio at its
//! unguessable address until it expires (`/media/{token}`). Never a link to Twilio.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::Viewer;
use super::{AppState, Error, Result};
use crate::store::media;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox/media/{id}", get(for_viewer))
        .route("/media/{token}", get(for_twilio))
}

/// The headers of a file textback serves: its type as its bytes told (never the sender's
/// word), no sniffing, no script, not kept by shared caches.
fn file_response(content_type: String, bytes: Vec<u8>, cache: &'static str) -> Response {
    let disposition = if content_type == "application/pdf" {
        "attachment; filename=\"file.pdf\""
    } else {
        "inline"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition.to_owned()),
            (header::CACHE_CONTROL, cache.to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox; frame-ancestors 'none'".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /inbox/media/{id}`: a stored item, to a person who may see its conversation; 404 to
/// anyone else (as for an id that does not exist).
async fn for_viewer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    viewer: Viewer,
) -> Result<Response> {
    let id: i64 = id.parse().map_err(|_| Error::NotFound)?;
    let mut conn = state.pool.acquire().await?;
    let Some(item) = media::content(&mut conn, viewer.brokerage, id).await? else {
        return Err(Error::NotFound);
    };
    let visible =
        super::inbox::contact_visible(&mut conn, &viewer, item.contact_id, item.at).await?;
    drop(conn);
    if !visible {
        tracing::info!(
            user_id = viewer.user_id,
            media_id = id,
            "media not found or not visible"
        );
        return Err(Error::NotFound);
    }
    Ok(file_response(
        item.content_type,
        item.bytes,
        "private, max-age=3600",
    ))
}

/// `GET /media/{token}`: a reply's photo, for Twilio to fetch when it sends the text; 404 once
/// it has expired, for a token of the wrong shape, or one that was never given.
async fn for_twilio(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response> {
    if !crate::context::tokens::is_token(&token) {
        return Err(Error::NotFound);
    }
    let now = state.clock.now();
    let mut conn = state.pool.acquire().await?;
    let Some((content_type, bytes)) = media::by_token(&mut conn, &token, now).await? else {
        tracing::info!("a photo's address was asked for and is unknown or expired");
        return Err(Error::NotFound);
    };
    tracing::info!(bytes = bytes.len(), "a reply's photo fetched");
    Ok(file_response(content_type, bytes, "no-store"))
}
