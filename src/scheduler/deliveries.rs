//! The deliveries' lane of the worker (docs/webhooks.md "Delivery"): outbound webhooks and
//! Follow Up Boss, claimed from their own queue (`webhook_delivery`) with their own slots, so
//! a receiver that stalls for a minute, answers 10 MB or redirects holds a delivery's slot for
//! at most the webhook timeout and never a text's.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::sync::{Semaphore, watch};

use crate::context::AppState;
use crate::domain::webhooks::{next_attempt, should_pause};
use crate::effects::webhooks::Answer;
use crate::effects::{Deliver, fub, raise_alert, webhooks};
use crate::store::webhooks::{self as store, Attempt, Claimed};
use crate::store::{BrokerageId, alerts};

/// What the event triggers and the page's actions notify (migration 0014).
const CHANNEL: &str = "textback_delivery";

fn lease(state: &AppState) -> Duration {
    Duration::from_std(state.timing.webhook_timeout * 3).unwrap_or(Duration::minutes(1))
}

/// Runs until `shutdown`, then lets the deliveries in flight end (at most the webhook timeout).
pub(super) async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let slots = state.timing.webhook_concurrency.max(1);
    let permits = Arc::new(Semaphore::new(slots));
    let mut listener = super::listen_on(&state.pool, CHANNEL).await;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let free = permits.available_permits();
        let mut full = false;
        if free > 0 {
            match claim(&state, free).await {
                Ok(claimed) => {
                    full = claimed.len() == free;
                    for d in claimed {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            break;
                        };
                        let state = state.clone();
                        tokio::spawn(async move {
                            deliver_one(&state, d).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = format!("{e:#}"), "could not claim deliveries"),
            }
        }
        if full {
            continue;
        }
        let wait = if free == 0 {
            StdDuration::from_millis(20)
        } else {
            state.timing.poll_interval
        };
        super::wait_for_work(&state.pool, &mut shutdown, wait, &mut listener, CHANNEL).await;
    }
    let all = u32::try_from(slots).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(state.timing.webhook_timeout, permits.acquire_many(all)).await;
}

async fn claim(state: &AppState, limit: usize) -> anyhow::Result<Vec<Claimed>> {
    let mut conn = state.pool.acquire().await?;
    Ok(store::claim(
        &mut conn,
        state.clock.now(),
        lease(state),
        i64::try_from(limit).unwrap_or(i64::MAX),
    )
    .await?)
}

/// Delivers everything due now (by the server's clock), in rounds, until nothing is: for the
/// tests and the demo ([`super::Scheduler::drain`]).
pub(super) async fn drain(state: &AppState) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let claimed = claim(state, 64).await?;
        if claimed.is_empty() {
            return Ok(total);
        }
        total += claimed.len();
        futures_util::future::join_all(claimed.into_iter().map(|d| deliver_one(state, d))).await;
    }
}

/// One attempt, and its record: delivered, or tried again on the schedule, or (three days on)
/// failed; a subscription that has failed for a day is paused and its admins alerted.
async fn deliver_one(state: &AppState, d: Claimed) {
    // Within two thirds of the lease (a Follow Up Boss delivery makes several calls), so it is
    // recorded before another worker may claim it again.
    let within = state.timing.webhook_timeout * 2;
    let attempt = async {
        match d.kind.as_str() {
            "follow_up_boss" => fub::deliver(state, &d).await,
            _ => webhooks::deliver(state, &d).await,
        }
    };
    let answer = tokio::time::timeout(within, attempt)
        .await
        .unwrap_or_else(|_| Answer::refused(format!("no answer within {} s", within.as_secs())));
    let outcome = if answer.ok() { "delivered" } else { "failed" };
    state.metrics.delivery(&d.kind, outcome);
    tracing::info!(
        delivery = d.delivery_id,
        subscription = %d.name,
        event = %d.event_type,
        attempt = d.attempts,
        status = answer.status,
        error = answer.error.as_deref(),
        outcome,
        "delivery attempt"
    );
    if let Err(e) = record(state, &d, &answer).await {
        // The lease runs out and the delivery is claimed again: at least once.
        tracing::warn!(
            delivery = d.delivery_id,
            error = format!("{e:#}"),
            "could not record a delivery attempt"
        );
    }
}

async fn record(state: &AppState, d: &Claimed, answer: &Answer) -> anyhow::Result<()> {
    let now = state.clock.now();
    let attempt = Attempt {
        status: answer.status.map(i32::from),
        answer: answer.excerpt.as_deref(),
        error: answer.error.as_deref(),
        now,
        attempt: d.attempts,
    };
    let mut tx = state.pool.begin().await?;
    store::lock_subscription(&mut tx, d.subscription_id).await?;
    if answer.ok() {
        store::delivered(&mut tx, d.delivery_id, &attempt).await?;
    } else {
        let attempts = u32::try_from(d.attempts).unwrap_or(0);
        let retry_after = answer
            .retry_after
            .and_then(|s| i64::try_from(s).ok())
            .map(Duration::seconds);
        let next = next_attempt(attempts, d.queued_at.max(d.event_at), now, retry_after);
        let failing = store::failed(
            &mut tx,
            d.delivery_id,
            &attempt,
            next,
            "gave_up_after_3_days",
        )
        .await?;
        if let Some((subscription, since)) = failing
            && should_pause(Some(since), now)
            && let Some(name) = store::pause(&mut tx, subscription, now).await?
        {
            tracing::warn!(subscription = %name, "a subscription failed for a day and is paused");
            raise_alert(
                &mut tx,
                BrokerageId(d.brokerage_id),
                &alerts::NewAlert {
                    audience: "admins",
                    reason: "webhook_paused",
                    detail: Some(&name),
                    contact_id: None,
                    message_id: None,
                    call_id: None,
                    now,
                },
                Deliver::Yes { number_id: None },
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
