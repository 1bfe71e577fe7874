//! The process's one listener for inbox changes. PostgreSQL notifies `textback_inbox` with
//! `brokerage:conversation` when a conversation, message, note, task or gate decision changes
//! (migrations/0004's triggers, delivered at commit); the hub fans the notices out to whoever
//! subscribed (the pages' live streams, `http::live`).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{OnceCell, broadcast};

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
        // Read before connecting: a listener opened just before a move is opened again.
        let moves = crate::store::failover::switches();
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if listener.listen("textback_inbox").await.is_ok() {
                    // A listener opened before the primary moved is opened again on the new
                    // one (crates/store/src/failover.rs), checked at least every 2 s.
                    loop {
                        let n = match tokio::time::timeout(Duration::from_secs(2), listener.recv())
                            .await
                        {
                            Ok(Ok(n)) => n,
                            Ok(Err(_)) => break,
                            Err(_) if moves != crate::store::failover::switches() => break,
                            Err(_) => continue,
                        };
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
