//! Live inbox updates over server-sent events (DESIGN.md "People-facing pages"). PostgreSQL
//! notifies `textback_inbox` with `brokerage:conversation` when a conversation, message, note,
//! task or gate decision changes (migrations/0004's triggers, delivered at commit); one
//! listener per process fans the notices out to the open pages, each of which gets only the
//! conversations its person may see, and then fetches the fresh HTML itself (through the same
//! scoped pages), so nothing but an id travels on the stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{OnceCell, broadcast, watch};

use super::auth::Viewer;
use super::{AppState, Result};
use crate::domain::access::Role;
use crate::store::inbox;

/// The process's one listener and its fan-out.
#[derive(Debug, Default)]
pub struct Hub {
    sender: OnceCell<broadcast::Sender<(i64, i64)>>,
}

impl Hub {
    /// A receiver of `(brokerage, conversation)` changes; the listener starts with the first.
    pub async fn subscribe(&self, pool: &PgPool) -> broadcast::Receiver<(i64, i64)> {
        let sender = self
            .sender
            .get_or_init(|| async {
                let (tx, _) = broadcast::channel(1024);
                tokio::spawn(listen(pool.clone(), tx.clone()));
                tx
            })
            .await;
        sender.subscribe()
    }
}

async fn listen(pool: PgPool, tx: broadcast::Sender<(i64, i64)>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if listener.listen("textback_inbox").await.is_ok() {
                    while let Ok(n) = listener.recv().await {
                        if let Some((b, c)) = n.payload().split_once(':')
                            && let (Ok(b), Ok(c)) = (b.parse::<i64>(), c.parse::<i64>())
                        {
                            // No open page is not an error.
                            let _ = tx.send((b, c));
                        }
                    }
                }
                tracing::warn!("inbox notifications interrupted; listening again");
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for inbox notifications; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `GET /inbox/events`: `event: change` with a conversation id for each change the person
/// may see (`*` when changes were dropped for a slow reader: reload everything). Ends when the
/// server shuts down.
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let rx = state.live.subscribe(&state.pool).await;
    let stopping = state.stopping.subscribe();
    let scope = viewer.scope();
    let pool = state.pool.clone();
    let stream = futures_util::stream::unfold(
        (rx, stopping, pool),
        move |(mut rx, mut stopping, pool): (
            broadcast::Receiver<(i64, i64)>,
            watch::Receiver<bool>,
            PgPool,
        )| async move {
            loop {
                let next = tokio::select! {
                    _ = stopping.wait_for(|s| *s) => return None,
                    next = rx.recv() => next,
                };
                let data = match next {
                    Ok((b, c)) if b == scope.brokerage_id => {
                        let visible = scope.role == Role::Admin
                            || match pool.acquire().await {
                                Ok(mut conn) => {
                                    inbox::visible(&mut conn, &scope, c).await.unwrap_or(false)
                                }
                                Err(_) => false,
                            };
                        if !visible {
                            continue;
                        }
                        c.to_string()
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => "*".to_owned(),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                let event = Event::default().event("change").data(data);
                return Some((Ok(event), (rx, stopping, pool)));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
