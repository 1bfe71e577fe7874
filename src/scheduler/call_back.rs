//! The `call_back` job (docs/calls.md): places a callback's call to the agent's phone at most
//! once, then watches it until it ends.
//!
//! A call created twice rings an agent twice, so the create follows the send protocol of
//! docs/reliability.md §2: the callback is marked `creating` (with the time) and committed before
//! the request leaves; a certain refusal (no connection, 429, 503) goes back to `queued`; an
//! answer that was lost (a timeout, a reset, a 5xx) leaves it `unknown`, and the next run lists
//! the account's calls from the brokerage number to the agent since then instead of creating
//! again. Once the carrier has the call, the job looks again after the ring timeout and then
//! every few minutes: a callback whose end no webhook reported (the server was down when the
//! agent's leg ended) is settled from the carrier's record of the call.

use chrono::Duration;

use super::{Outcome, crash_point, send};
use crate::context::AppState;
use crate::domain::callback::{self, Ended, Origin, Stage};
use crate::effects;
use crate::store::jobs::{self, JobState};
use crate::store::{BrokerageId, callbacks};
use crate::twilio::client::{NewCall, SendOutcome};

/// How long after its create a call whose create answer was lost may take to show in the list.
const LIST_PATIENCE_SECS: i64 = 60;
/// A callback the carrier could not be reached for this long is given up (a callback minutes
/// late rings an agent who has moved on).
const GIVE_UP_SECS: i64 = 120;
/// How often a live call is looked at.
const WATCH_SECS: i64 = 300;

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// A transaction holding the job (fenced on its attempt) and the callback, both locked; or how
/// the job ends when it cannot (another worker took it, the callback is gone).
async fn hold(
    state: &AppState,
    job: &jobs::Claimed,
    callback_id: i64,
) -> anyhow::Result<Result<(Tx, callbacks::CallbackRow), Outcome>> {
    let mut tx = state.pool.begin().await?;
    if !jobs::lock_if_held(&mut tx, job.job_id, job.attempt).await? {
        return Ok(Err(Outcome::Persisted {
            label: "lost_lease",
        }));
    }
    match callbacks::get_for_update(&mut tx, job.brokerage_id, callback_id).await? {
        Some(cb) => Ok(Ok((tx, cb))),
        None => Ok(Err(Outcome::Dead("the callback is gone".into()))),
    }
}

/// When a placed call is looked at first: once its agent's phone has rung out.
fn after_ring(cb: &callbacks::CallbackRow) -> Duration {
    Duration::seconds(i64::from(cb.ring_timeout_secs) + 90)
}

pub(super) async fn run(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let p: jobs::payload::CallBack = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let (mut tx, cb) = match hold(state, job, p.callback_id).await? {
        Ok(held) => held,
        Err(outcome) => return Ok(outcome),
    };
    match cb.state.as_str() {
        "ended" => Ok(Outcome::Done(format!(
            "ended_{}",
            cb.outcome.as_deref().unwrap_or("unknown")
        ))),
        "queued" => place(state, job, tx, cb).await,
        "creating" | "unknown" => {
            // An earlier attempt's create may have reached the carrier: never create again.
            callbacks::set_unknown(&mut tx, cb.callback_id).await?;
            tx.commit().await?;
            reconcile(state, job, cb).await
        }
        _ => {
            drop(tx);
            watch(state, job, cb).await
        }
    }
}

/// Ends the callback (once), with what follows (docs/calls.md).
async fn end_now(
    conn: &mut sqlx::PgConnection,
    cb: &callbacks::CallbackRow,
    ended: Ended,
    detail: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    effects::callbacks::end(conn, cb, ended, detail, None, None, now).await?;
    Ok(())
}

async fn finish(
    tx: &mut sqlx::PgConnection,
    job: &jobs::Claimed,
    reason: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    send::finish(tx, job, JobState::Done, Some(reason), None, now).await?;
    Ok(())
}

async fn again(
    tx: &mut sqlx::PgConnection,
    job: &jobs::Claimed,
    after: Duration,
    reason: &str,
    error: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    jobs::reschedule(
        tx,
        job.job_id,
        job.attempt,
        JobState::Running,
        now + after,
        reason,
        error,
        None,
        now,
    )
    .await?;
    Ok(())
}

/// The call rule once more (the contact may have been deleted or put on the do-not-call list
/// since the click), then the create.
async fn place(
    state: &AppState,
    job: &jobs::Claimed,
    mut tx: Tx,
    cb: callbacks::CallbackRow,
) -> anyhow::Result<Outcome> {
    let brokerage: BrokerageId = cb.brokerage_id;
    let now = state.clock.now();
    let origin = Origin::parse(&cb.origin).unwrap_or(Origin::Auto);
    let refusal = if !cb.number_active {
        Some("the number was removed from the setup file".to_owned())
    } else if !cb.agent_active {
        Some("the agent is no longer active".to_owned())
    } else {
        match effects::callbacks::call_rule(
            &mut tx,
            brokerage,
            cb.contact_id,
            cb.number_id,
            origin,
            now,
        )
        .await?
        {
            callback::CallRule::Allow => None,
            refused => Some(refused.words()),
        }
    };
    if let Some(why) = refusal {
        end_now(&mut tx, &cb, Ended::Refused, Some(&why), now).await?;
        finish(&mut tx, job, "refused", now).await?;
        tx.commit().await?;
        tracing::info!(callback_id = cb.callback_id, reason = %why, "callback refused when placed");
        return Ok(Outcome::Persisted { label: "refused" });
    }
    callbacks::start_create(&mut tx, cb.callback_id, now).await?;
    let creds = state.credentials_on(&mut tx, brokerage).await?;
    tx.commit().await?;
    crash_point("before_call_create");

    let base = &state.config.public_url;
    let url = base.join(&format!("/twilio/voice/callback?cb={}", cb.callback_id));
    let status = base.join(&format!(
        "/twilio/voice/callback/status?cb={}",
        cb.callback_id
    ));
    let outcome = match creds {
        Ok(creds) => {
            state
                .twilio
                .create_call(
                    &creds,
                    &NewCall {
                        to: &cb.agent_phone,
                        from: &cb.number_e164,
                        url: &url,
                        status_callback: &status,
                        timeout_secs: u32::try_from(cb.ring_timeout_secs).unwrap_or(20),
                    },
                )
                .await
        }
        Err(why) => SendOutcome::Rejected {
            http: 0,
            code: None,
            message: why,
        },
    };
    crash_point("after_call_create");
    let now = state.clock.now();
    // Another worker may hold the job now: it finds the callback `creating` and lists.
    let (mut tx, cb) = match hold(state, job, cb.callback_id).await? {
        Ok(held) => held,
        Err(outcome) => return Ok(outcome),
    };
    let label = match outcome {
        SendOutcome::Accepted { sid, .. } => {
            callbacks::placed(&mut tx, cb.callback_id, &sid).await?;
            again(&mut tx, job, after_ring(&cb), "placed", None, now).await?;
            tracing::info!(
                callback_id = cb.callback_id,
                "callback placed: the agent's phone rings"
            );
            "placed"
        }
        SendOutcome::NotSent {
            reason,
            retry_after,
        } => {
            if now - cb.created_at > Duration::seconds(GIVE_UP_SECS) {
                let why = format!("the carrier could not be reached: {reason}");
                callbacks::requeue(&mut tx, cb.callback_id).await?;
                end_now(&mut tx, &cb, Ended::NotPlaced, Some(&why), now).await?;
                finish(&mut tx, job, "not_placed", now).await?;
                "not_placed"
            } else {
                callbacks::requeue(&mut tx, cb.callback_id).await?;
                let wait = retry_after
                    .and_then(|d| Duration::from_std(d).ok())
                    .unwrap_or(Duration::seconds(5))
                    .max(Duration::seconds(2));
                again(&mut tx, job, wait, "retry", Some(&reason), now).await?;
                "retry"
            }
        }
        SendOutcome::Rejected {
            http,
            code,
            message,
        } => {
            let why = match code {
                Some(code) => {
                    format!("the carrier refused the call (HTTP {http}, {code}): {message}")
                }
                None => format!("the carrier refused the call (HTTP {http}): {message}"),
            };
            callbacks::requeue(&mut tx, cb.callback_id).await?;
            end_now(&mut tx, &cb, Ended::NotPlaced, Some(&why), now).await?;
            finish(&mut tx, job, "not_placed", now).await?;
            tracing::warn!(
                callback_id = cb.callback_id,
                http,
                code,
                "the carrier refused a callback's call"
            );
            "not_placed"
        }
        SendOutcome::Unknown { reason } => {
            callbacks::set_unknown(&mut tx, cb.callback_id).await?;
            again(
                &mut tx,
                job,
                Duration::seconds(5),
                "reconcile",
                Some(&reason),
                now,
            )
            .await?;
            tracing::warn!(callback_id = cb.callback_id, reason = %reason, "a callback's create has no known outcome; the carrier's list settles it");
            "unknown"
        }
    };
    tx.commit().await?;
    Ok(Outcome::Persisted { label })
}

/// A create whose answer was lost: the carrier's list of calls from the number to the agent
/// since the create left says whether it exists. Found: adopted. Absent for longer than the
/// list's lag: no call was placed, and none is placed now (an agent may click again).
async fn reconcile(
    state: &AppState,
    job: &jobs::Claimed,
    cb: callbacks::CallbackRow,
) -> anyhow::Result<Outcome> {
    let since = cb.create_started_at.unwrap_or(cb.created_at);
    let creds = state.credentials(cb.brokerage_id).await?;
    let listed = match &creds {
        Ok(creds) => state
            .twilio
            .list_calls(creds, &cb.agent_phone, &cb.number_e164)
            .await
            .map_err(|e| e.to_string()),
        Err(why) => Err(why.clone()),
    };
    let now = state.clock.now();
    let (mut tx, cb) = match hold(state, job, cb.callback_id).await? {
        Ok(held) => held,
        Err(outcome) => return Ok(outcome),
    };
    if cb.agent_call_sid.is_some() || cb.state == "ended" {
        // A webhook of the agent's leg found it first.
        again(&mut tx, job, after_ring(&cb), "placed", None, now).await?;
        tx.commit().await?;
        return Ok(Outcome::Persisted { label: "placed" });
    }
    let label = match listed {
        Err(why) => {
            again(
                &mut tx,
                job,
                Duration::seconds(10),
                "reconcile",
                Some(&why),
                now,
            )
            .await?;
            "reconcile"
        }
        Ok(calls) => {
            let mut found = None;
            for c in calls {
                let recent = c
                    .created_at()
                    .is_some_and(|at| at >= since - Duration::seconds(30));
                if recent && !callbacks::sid_taken(&mut tx, &c.sid).await? {
                    found = Some(c);
                    break;
                }
            }
            match found {
                Some(c) => {
                    callbacks::placed(&mut tx, cb.callback_id, &c.sid).await?;
                    again(&mut tx, job, after_ring(&cb), "placed", None, now).await?;
                    tracing::info!(
                        callback_id = cb.callback_id,
                        "a callback's call was found in the carrier's list"
                    );
                    "found"
                }
                None if now - since >= Duration::seconds(LIST_PATIENCE_SECS) => {
                    end_now(
                        &mut tx,
                        &cb,
                        Ended::NotPlaced,
                        Some("the carrier has no record of the call; it is not placed again, so no phone rings twice"),
                        now,
                    )
                    .await?;
                    finish(&mut tx, job, "absent", now).await?;
                    "absent"
                }
                None => {
                    again(&mut tx, job, Duration::seconds(15), "reconcile", None, now).await?;
                    "reconcile"
                }
            }
        }
    };
    tx.commit().await?;
    Ok(Outcome::Persisted { label })
}

/// A live callback: its end is normally reported by the agent leg's status callback; when it
/// was not (the server was down), the carrier's record of the call settles it.
async fn watch(
    state: &AppState,
    job: &jobs::Claimed,
    cb: callbacks::CallbackRow,
) -> anyhow::Result<Outcome> {
    let Some(sid) = cb.agent_call_sid.clone() else {
        return Ok(Outcome::Dead("a placed callback without its call".into()));
    };
    let creds = state.credentials(cb.brokerage_id).await?;
    let fetched = match &creds {
        Ok(creds) => state
            .twilio
            .fetch_call(creds, &sid)
            .await
            .map_err(|e| e.to_string()),
        Err(why) => Err(why.clone()),
    };
    let now = state.clock.now();
    let (mut tx, cb) = match hold(state, job, cb.callback_id).await? {
        Ok(held) => held,
        Err(outcome) => return Ok(outcome),
    };
    let stage = Stage::from_state(&cb.state);
    let label = match (stage, fetched) {
        (None, _) => {
            finish(&mut tx, job, "ended", now).await?;
            "done"
        }
        (Some(stage), Ok(call)) => {
            match call
                .status
                .as_deref()
                .and_then(|s| callback::leg_ended(stage, s))
            {
                Some(ended) => {
                    let detail = format!(
                        "settled from the carrier's record of the call ({})",
                        call.status.as_deref().unwrap_or("")
                    );
                    end_now(&mut tx, &cb, ended, Some(&detail), now).await?;
                    finish(&mut tx, job, "settled", now).await?;
                    "settled"
                }
                None => {
                    again(
                        &mut tx,
                        job,
                        Duration::seconds(WATCH_SECS),
                        "watching",
                        None,
                        now,
                    )
                    .await?;
                    "watching"
                }
            }
        }
        (Some(_), Err(why)) => {
            if now - cb.created_at > Duration::hours(6) {
                end_now(
                    &mut tx,
                    &cb,
                    Ended::NotBridged,
                    Some(&format!("the call's end was never learned: {why}")),
                    now,
                )
                .await?;
                finish(&mut tx, job, "given_up", now).await?;
                "given_up"
            } else {
                again(
                    &mut tx,
                    job,
                    Duration::seconds(60),
                    "watching",
                    Some(&why),
                    now,
                )
                .await?;
                "watching"
            }
        }
    };
    tx.commit().await?;
    Ok(Outcome::Persisted { label })
}
