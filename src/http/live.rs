//! Live inbox updates over server-sent events (docs/inbox.md). The process's listener
//! (`crate::live`) hears every change; each open page gets only the conversations its person
//! may see, and then fetches the fresh HTML itself (through the same scoped pages), so nothing
//! but an id travels on the stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use sqlx::PgPool;
use tokio::sync::{broadcast, watch};

use super::auth::Viewer;
use super::{AppState, Result};
use crate::domain::access::{self, Role, Scope};
use crate::store::{inbox, users};

/// How long a page's stream trusts what it learned: whether a conversation is the person's
/// to see, and whether the session is still valid.
const RECHECK: Duration = Duration::from_secs(30);

/// One page's stream: its receiver and what it remembers between events.
struct Watch {
    rx: broadcast::Receiver<(i64, i64)>,
    stopping: watch::Receiver<bool>,
    pool: PgPool,
    scope: Scope,
    session_hash: Vec<u8>,
    session_checked: Instant,
    clock: crate::clock::SharedClock,
    /// Conversation → (visible, when learned): one query per conversation and half-minute, not
    /// one per notification (the pool is shared with the webhooks).
    visible: HashMap<i64, (bool, Instant)>,
}

impl Watch {
    async fn sees(&mut self, conversation: i64) -> bool {
        if self.scope.role == Role::Admin {
            return true;
        }
        if let Some((v, at)) = self.visible.get(&conversation)
            && at.elapsed() < RECHECK
        {
            return *v;
        }
        let v = match self.pool.acquire().await {
            Ok(mut conn) => inbox::visible(&mut conn, &self.scope, conversation)
                .await
                .unwrap_or(false),
            Err(_) => false,
        };
        self.visible.insert(conversation, (v, Instant::now()));
        v
    }

    /// False once the session was logged out, timed out (idle or absolute), or its person
    /// removed. A database that cannot answer right now does not end it (the next check will).
    async fn session_valid(&mut self) -> bool {
        if self.session_checked.elapsed() < RECHECK {
            return true;
        }
        self.session_checked = Instant::now();
        let Ok(mut conn) = self.pool.acquire().await else {
            return true;
        };
        match users::session(&mut conn, &self.session_hash).await {
            Ok(Some(s)) => {
                s.agent_active
                    && matches!(
                        access::session_state(s.created_at, s.last_seen_at, self.clock.now()),
                        access::SessionState::Valid { .. }
                    )
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }
}

/// `GET /inbox/events`: `event: change` with a conversation id for each change the person
/// may see (`*` when changes were dropped for a slow reader: reload everything). Ends when the
/// server shuts down or the session ends.
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let watch = Watch {
        rx: state.live.subscribe(&state.pool).await,
        stopping: state.stopping.subscribe(),
        pool: state.pool.clone(),
        scope: viewer.scope(),
        session_hash: viewer.session_hash.clone(),
        session_checked: Instant::now(),
        clock: state.clock.clone(),
        visible: HashMap::new(),
    };
    let stream = futures_util::stream::unfold(watch, |mut w: Watch| async move {
        loop {
            let next = tokio::select! {
                _ = w.stopping.wait_for(|s| *s) => return None,
                next = w.rx.recv() => Some(next),
                // No news for a while: is the session still good? (checked below)
                () = tokio::time::sleep(RECHECK) => None,
            };
            let Some(next) = next else {
                if !w.session_valid().await {
                    return None;
                }
                continue;
            };
            let data = match next {
                Ok((b, c)) if b == w.scope.brokerage_id => {
                    if !w.sees(c).await {
                        continue;
                    }
                    c.to_string()
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => "*".to_owned(),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if !w.session_valid().await {
                return None;
            }
            let event = Event::default().event("change").data(data);
            return Some((Ok(event), w));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
