//! The one way a text to a lead leaves (docs/reliability.md §2, docs/compliance.md §2): the pre-send
//! transaction (contact locked, job fenced on its attempt, supersession re-checked, the whole
//! gate run and its decision recorded, the outbound row inserted `sending` with its
//! idempotency key), the send with bounded timeouts, and the record of the carrier's answer.
//! The text-back, follow-ups, keyword responses and agent replies all go through here.

use chrono::{DateTime, Utc};

use super::{Outcome, after, crash_point, jitter};
use crate::context::AppState;
use crate::domain::backoff;
use crate::domain::carrier;
use crate::domain::gate::{self, Decision, KeywordFacts};
use crate::domain::phone::{PhoneNumber, mask};
use crate::domain::{quiet_hours, sequence, zones};
use crate::effects;
use crate::store::jobs::JobState;
use crate::store::{self, BrokerageId, CallId, ContactId, MessageId, contacts, jobs, messages};
use crate::twilio::client::SendOutcome;
use crate::twilio::credentials::Credentials;

/// A text ready to go, as the job that sends it prepared it.
pub(super) struct Outgoing<'a> {
    pub kind: gate::Kind,
    pub contact_id: ContactId,
    pub to: &'a PhoneNumber,
    pub number_id: i64,
    pub from: &'a str,
    pub body: &'a str,
    pub template_variant: Option<i32>,
    pub keyword: Option<KeywordFacts>,
    /// The missed call this answers (R7's `after_hours = "send"`; the delay metric; tasks).
    pub call_id: Option<CallId>,
    pub call_ended_at: Option<DateTime<Utc>>,
    /// For the text-back: when the miss was recorded (`textback_text_back_delay_seconds`).
    pub missed_at: Option<DateTime<Utc>>,
    /// An answered call or an inbound text since this instant supersedes the text.
    pub superseded_since: Option<DateTime<Utc>>,
    /// The agent who texted this reply from their phone: told by text when the gate skips or
    /// holds it (README.md "Agents on their phones").
    pub by_text: Option<i64>,
    /// Attachments' addresses, sent as `MediaUrl` (README.md "Pictures").
    pub media_urls: &'a [String],
}

/// What a sending job starts from: the contact it texts, on a connection the job may go on
/// using. An earlier attempt's live send is settled first, never repeated (docs/reliability.md F7).
pub(super) enum Start {
    Go {
        conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
        contact: contacts::ContactRow,
        to: PhoneNumber,
    },
    Done(Outcome),
}

/// The missed call an automated text answers (the text-back's, or the follow-up's sequence's),
/// or how the job ends: `dead` without its call, `cancelled(number_removed)` when the number
/// it would go from left the setup file.
pub(super) async fn the_call(
    conn: &mut sqlx::PgConnection,
    job: &jobs::Claimed,
) -> anyhow::Result<Result<store::calls::TextBackContext, Outcome>> {
    let Some(call_id) = job.call_id else {
        return Ok(Err(Outcome::Dead(format!(
            "a {} job without its call",
            job.kind
        ))));
    };
    let Some(call) = store::calls::text_back_context(conn, job.brokerage_id, call_id).await? else {
        return Ok(Err(Outcome::Dead(format!(
            "the call a {} job answers is gone",
            job.kind
        ))));
    };
    if !call.number_active {
        return Ok(Err(Outcome::Cancelled("number_removed".into())));
    }
    Ok(Ok(call))
}

pub(super) async fn start(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Start> {
    let Some(contact_id) = job.contact_id else {
        return Ok(Start::Done(Outcome::Dead(format!(
            "a {} job without its contact",
            job.kind
        ))));
    };
    let mut conn = state.pool.acquire().await?;
    if let Some(previous) = messages::live_send_for_job(&mut conn, job.job_id).await? {
        drop(conn);
        return Ok(Start::Done(settle_previous(state, job, previous).await?));
    }
    let Some(contact) = contacts::get(&mut conn, job.brokerage_id, contact_id).await? else {
        return Ok(Start::Done(Outcome::Dead("the contact is gone".into())));
    };
    let to = PhoneNumber::parse(&contact.phone)
        .map_err(|e| anyhow::anyhow!("a stored contact phone is not E.164: {e}"))?;
    Ok(Start::Go { conn, contact, to })
}

/// The job's payload, or the job ends `dead`: a payload this build cannot read will not
/// become readable by retrying.
pub(super) fn payload<T: jobs::JobPayload>(job: &jobs::Claimed) -> Result<T, Outcome> {
    job.payload::<T>().map_err(Outcome::Dead)
}

/// The pre-send transaction, the send and its record.
pub(super) async fn gate_and_send(
    state: &AppState,
    job: &jobs::Claimed,
    out: &Outgoing<'_>,
    rules: &store::gate::BrokerageRules,
) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    contacts::lock(&mut tx, brokerage, out.contact_id).await?;
    if !jobs::lock_if_held(&mut tx, job.job_id, job.attempt).await? {
        return Ok(Outcome::Persisted {
            label: "lost_lease",
        });
    }
    let stopped = if out.kind == gate::Kind::FollowUp {
        // R12 under the contact's lock: a take-over or close that committed first wins; so does
        // the carrier filtering the text-back (30007, docs/reliability.md §3), whose callback
        // takes the same lock.
        match store::conversations::automation_stopped(&mut tx, brokerage, out.contact_id).await? {
            Some(reason) => Some(reason),
            None => match job.payload::<jobs::payload::FollowUp>() {
                Ok(step) => messages::outbound(&mut tx, brokerage, step.text_back_message_id)
                    .await?
                    .is_some_and(|m| m.error_code == Some(30007))
                    .then_some("filtered"),
                Err(_) => None,
            },
        }
    } else {
        None
    };
    // One lead text a day per person, decided under the contact's lock: two leads' jobs for one
    // number may run at once (a form and the API, or both woken by the morning's window).
    let stopped = match stopped {
        None if out.kind == gate::Kind::LeadText
            && store::web_leads::texted_since(
                &mut tx,
                brokerage,
                out.contact_id,
                now - chrono::Duration::hours(24),
            )
            .await? =>
        {
            Some("lead_texted_today")
        }
        other => other,
    };
    let superseded_now = match out.superseded_since {
        Some(since) => superseded(&mut tx, brokerage, out.contact_id, since).await?,
        None => None,
    };
    if let Some(reason) = stopped.or(superseded_now) {
        finish(&mut tx, job, JobState::Cancelled, Some(reason), None, now).await?;
        tx.commit().await?;
        return Ok(Outcome::Persisted { label: "cancelled" });
    }

    let facts = store::gate::contact_facts(&mut tx, brokerage, out.contact_id, now).await?;
    let zone = zones::lookup(out.to.as_e164());
    let tz = rules
        .time_zone
        .parse::<chrono_tz::Tz>()
        .unwrap_or(chrono_tz::America::New_York);
    let daily = if out.kind.is_automated() {
        let (midnight, next_midnight) = sequence::local_day(now, tz);
        store::gate::lock_daily_recipients(&mut tx, out.number_id).await?;
        let (count, already) =
            store::gate::daily_recipients(&mut tx, out.number_id, out.contact_id, midnight).await?;
        Some(gate::Daily {
            recipients_today: u32::try_from(count).unwrap_or(u32::MAX),
            limit: rules.compliance.daily_unique_recipients,
            contact_already_today: already,
            next_midnight,
        })
    } else {
        None
    };
    let blackouts = rules.blackouts();
    let data = data_hashes();
    let verdict = match quiet_hours::profiles() {
        Ok(profiles) => {
            let input = gate::Input {
                kind: out.kind,
                recipient: out.to,
                zone: &zone,
                profile: profiles.get(zone.state),
                blackouts: &blackouts,
                number: facts.number_flags(),
                keyword: out.keyword,
                inquiry: facts.inquiry.clone(),
                written_consent: facts.written_consent,
                followups_need_written_consent: rules.compliance.followups_need_written_consent,
                live_conversation: facts.live_conversation,
                counted: &facts.counted,
                cap_24h: rules.compliance.cap_24h,
                daily,
                after_hours_send: rules.after_hours_send,
                call_ended_at: out.call_ended_at,
            };
            gate::decide(&input, now)
        }
        // Fail closed (docs/compliance.md §2): no window data, no text.
        Err(_) => gate::Verdict {
            decision: Decision::Skip {
                rule: "R7",
                reason: "gate_error",
            },
            facts: gate::Facts::default(),
        },
    };
    let d = &verdict.decision;
    state
        .metrics
        .gate(d.label(), d.rule_for(out.kind), d.reason());
    let at = store::gate::DecisionRef {
        contact_id: Some(out.contact_id),
        number_id: Some(out.number_id),
        job_id: Some(job.job_id),
        message_id: None,
        attempt: Some(job.attempt),
    };
    match d {
        Decision::Skip { reason, .. } => {
            store::gate::record(&mut tx, brokerage, &at, out.kind, &verdict, &data, now).await?;
            if *reason == "no_window" {
                raise_admin_alert(
                    &mut tx,
                    brokerage,
                    "no_window",
                    None,
                    (Some(out.contact_id), out.number_id),
                    now,
                )
                .await?;
            }
            if let Some(agent) = out.by_text {
                let words = crate::domain::decision_text::why(reason, out.to.as_e164());
                crate::effects::notify(
                    &mut tx,
                    brokerage,
                    agent,
                    Some(out.contact_id),
                    &format!("Your text to {} was not sent: {words}.", out.to.masked()),
                    now,
                )
                .await?;
            }
            finish(&mut tx, job, JobState::Skipped, Some(reason), None, now).await?;
            tx.commit().await?;
            tracing::info!(kind = out.kind.as_str(), to = %out.to.masked(), reason, "the gate skipped the text");
            return Ok(Outcome::Persisted { label: "skipped" });
        }
        Decision::Defer { until, reason, .. } => {
            store::gate::record(&mut tx, brokerage, &at, out.kind, &verdict, &data, now).await?;
            if *reason == "daily_recipient_limit" {
                // One alert per number and local day (the unique index drops the others).
                let day = now.with_timezone(&tz).date_naive();
                let detail = format!("{} {}", mask(out.from), day);
                // About the sending number, not this contact.
                raise_admin_alert(
                    &mut tx,
                    brokerage,
                    "daily_recipient_limit",
                    Some(&detail),
                    (None, out.number_id),
                    now,
                )
                .await?;
            }
            if let Some(agent) = out.by_text {
                let words = crate::domain::decision_text::why(reason, out.to.as_e164());
                let local = until.with_timezone(&tz).format("%a %-I:%M %p");
                crate::effects::notify(
                    &mut tx,
                    brokerage,
                    agent,
                    Some(out.contact_id),
                    &format!(
                        "Your text to {} waits until {local}: {words}.",
                        out.to.masked()
                    ),
                    now,
                )
                .await?;
            }
            jobs::reschedule(
                &mut tx,
                job.job_id,
                job.attempt,
                JobState::Running,
                *until,
                reason,
                None,
                None,
                now,
            )
            .await?;
            tx.commit().await?;
            tracing::info!(kind = out.kind.as_str(), to = %out.to.masked(), reason, until = %until, "the gate deferred the text");
            return Ok(Outcome::Persisted { label: "deferred" });
        }
        Decision::Allow { .. } => {}
    }
    let counts_for_cap = matches!(
        out.kind,
        gate::Kind::TextBack | gate::Kind::FollowUp | gate::Kind::LeadText
    ) || (out.kind == gate::Kind::Manual && !facts.live_conversation);
    // In the pre-send transaction, before its record: a database that cannot say whose account
    // to use fails the job (it runs again) rather than a text that was recorded `sending`.
    let creds = state.credentials_on(&mut tx, brokerage).await?;
    let key = format!("{}:{}", job.job_id, job.attempt);
    let message_id = messages::insert_outbound_sending(
        &mut tx,
        brokerage,
        &messages::NewOutbound {
            number_id: out.number_id,
            contact_id: Some(out.contact_id),
            from: out.from,
            to: out.to.as_e164(),
            body: out.body,
            idempotency_key: &key,
            job_id: Some(job.job_id),
            attempt: Some(job.attempt),
            template_variant: out.template_variant,
            kind: out.kind.as_str(),
            counts_for_cap,
            started_at: now,
        },
    )
    .await?;
    let at = store::gate::DecisionRef {
        message_id: Some(message_id),
        ..at
    };
    store::gate::record(&mut tx, brokerage, &at, out.kind, &verdict, &data, now).await?;
    tx.commit().await?;
    let sent = Sent {
        media_urls: out.media_urls,
        kind: out.kind.as_str(),
        to: out.to.as_e164(),
        from: out.from,
        body: out.body,
        contact_id: Some(out.contact_id),
        number_id: out.number_id,
        call_id: out.call_id,
        missed_at: out.missed_at,
    };
    send_and_record(state, job, message_id, &sent, creds).await
}

/// A text whose pre-send record is committed, as the send and its record need it.
pub(super) struct Sent<'a> {
    /// The message kind (`text_back`, …, `agent_alert`).
    pub kind: &'static str,
    pub to: &'a str,
    pub from: &'a str,
    pub body: &'a str,
    /// Attachments' addresses (`MediaUrl`).
    pub media_urls: &'a [String],
    /// The lead texted; `None` for a text to the brokerage's own people.
    pub contact_id: Option<ContactId>,
    pub number_id: i64,
    pub call_id: Option<CallId>,
    pub missed_at: Option<DateTime<Utc>>,
}

/// The send, with bounded timeouts, and the record of the carrier's answer (docs/reliability.md
/// §2 steps 3 and 4). The pre-send record (`message_id`, `sending`) is committed.
/// `creds` were resolved before the pre-send record: the account to send from, or why there is
/// none.
pub(super) async fn send_and_record(
    state: &AppState,
    job: &jobs::Claimed,
    message_id: MessageId,
    sent: &Sent<'_>,
    creds: Result<Credentials, String>,
) -> anyhow::Result<Outcome> {
    crash_point("after_presend");
    let callback = state.config.public_url.join("/twilio/sms/status");
    let outcome = match creds {
        Ok(creds) => {
            state
                .twilio
                .send_message(
                    &creds,
                    &crate::twilio::client::NewMessage {
                        to: sent.to,
                        from: sent.from,
                        body: sent.body,
                        media_urls: sent.media_urls,
                        status_callback: &callback,
                    },
                )
                .await
        }
        // No account to send from: nothing left, certainly (the admins must act).
        Err(why) => SendOutcome::Rejected {
            http: 0,
            code: None,
            message: why,
        },
    };
    record(state, job, message_id, sent, outcome).await
}

/// The decision record's `data`: short hashes of the reference data the gate read.
fn data_hashes() -> String {
    format!(
        "nanp_tz:{} state_windows:{}",
        zones::data_hash(),
        quiet_hours::data_hash()
    )
}

/// Records a decision the text-back or lead-text job takes before its pre-send transaction
/// (docs/compliance.md §2: the free checks and the line-type policy), with the recipient's
/// zones and state, in the caller's transaction (R13: every gate decision is recorded, skips
/// included).
#[allow(clippy::too_many_arguments)]
pub(super) async fn record_early(
    conn: &mut sqlx::PgConnection,
    kind: gate::Kind,
    job: &jobs::Claimed,
    contact_id: ContactId,
    number_id: i64,
    recipient: &PhoneNumber,
    decision: Decision,
    now: DateTime<Utc>,
) -> store::Result<()> {
    let zone = zones::lookup(recipient.as_e164());
    let state = match quiet_hours::profiles() {
        Ok(profiles) => profiles.get(zone.state).key().to_owned(),
        Err(_) => "strictest".to_owned(),
    };
    let verdict = gate::Verdict {
        decision,
        facts: gate::Facts {
            zones: zone.zones.iter().map(|z| z.name().to_owned()).collect(),
            state,
            country: zone.country.map(str::to_owned),
            ..gate::Facts::default()
        },
    };
    let at = store::gate::DecisionRef {
        contact_id: Some(contact_id),
        number_id: Some(number_id),
        job_id: Some(job.job_id),
        message_id: None,
        attempt: Some(job.attempt),
    };
    store::gate::record(
        conn,
        job.brokerage_id,
        &at,
        kind,
        &verdict,
        &data_hashes(),
        now,
    )
    .await?;
    Ok(())
}

pub(super) async fn finish(
    conn: &mut sqlx::PgConnection,
    job: &jobs::Claimed,
    to: JobState,
    reason: Option<&str>,
    last_error: Option<&str>,
    now: DateTime<Utc>,
) -> store::Result<bool> {
    jobs::transition(
        conn,
        job.job_id,
        Some(job.attempt),
        JobState::Running,
        to,
        reason,
        last_error,
        now,
    )
    .await
}

async fn raise_admin_alert(
    conn: &mut sqlx::PgConnection,
    brokerage: BrokerageId,
    reason: &str,
    detail: Option<&str>,
    (contact_id, number_id): (Option<ContactId>, i64),
    now: DateTime<Utc>,
) -> store::Result<()> {
    effects::raise_alert(
        conn,
        brokerage,
        &store::alerts::NewAlert {
            audience: "admins",
            reason,
            detail,
            contact_id,
            message_id: None,
            call_id: None,
            now,
        },
        effects::Deliver::Yes {
            number_id: Some(number_id),
        },
    )
    .await?;
    Ok(())
}

/// An answered call or an inbound text since `since` means a person has the lead now.
pub(super) async fn superseded(
    conn: &mut sqlx::PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    since: DateTime<Utc>,
) -> store::Result<Option<&'static str>> {
    let (answered, wrote) = contacts::activity_since(conn, brokerage, contact_id, since).await?;
    Ok(if answered {
        Some("answered_call")
    } else if wrote {
        Some("inbound_text")
    } else {
        None
    })
}

/// Records a send's outcome in one transaction with its effects (docs/reliability.md §2 step 4).
async fn record(
    state: &AppState,
    job: &jobs::Claimed,
    message_id: MessageId,
    out: &Sent<'_>,
    outcome: SendOutcome,
) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let kind = out.kind;
    let to = out.to;
    let now = state.clock.now();
    let t = &state.timing;
    let mut tx = state.pool.begin().await?;
    // The contact's lock first, as every writer of its rows takes it (docs/reliability.md §4): the
    // record below ends the job (its lead follows by trigger) and arms follow-ups, which an
    // answered call or a reply for the same contact also touch.
    if let Some(contact_id) = out.contact_id {
        contacts::lock(&mut tx, brokerage, contact_id).await?;
    }
    let label = match outcome {
        SendOutcome::Accepted { sid, status } => {
            messages::mark_accepted(&mut tx, brokerage, message_id, &sid, &status).await?;
            finish(&mut tx, job, JobState::Sent, None, None, now).await?;
            if let Some(contact_id) = out.contact_id {
                // The conversation moves up the inbox once the text is on its way.
                store::conversations::touch_outbound(&mut tx, brokerage, contact_id, now).await?;
            }
            effects::adopt_orphan_statuses(&mut tx, brokerage, message_id, &sid).await?;
            effects::after_sent(&mut tx, brokerage, job.job_id, message_id, now).await?;
            tx.commit().await?;
            state.metrics.text(kind, "accepted");
            if let Some(missed_at) = out.missed_at {
                let settings_delay = (job.due_at - missed_at).num_milliseconds().max(0);
                let waited = (now - missed_at).num_milliseconds() - settings_delay;
                state.metrics.text_back_delay(waited.max(0) as f64 / 1000.0);
            }
            tracing::info!(kind, to = %mask(to), "text accepted by the carrier");
            return Ok(Outcome::Persisted { label: "sent" });
        }
        SendOutcome::NotSent {
            reason,
            retry_after,
        } => {
            messages::settle(
                &mut tx,
                brokerage,
                message_id,
                &["sending"],
                "failed_certain",
                None,
                None,
            )
            .await?;
            state.metrics.text(kind, "failed_certain");
            let retry = u32::try_from(job.attempt).unwrap_or(u32::MAX);
            let next = after(
                now,
                backoff::delay(retry, t.backoff_base, t.backoff_cap, retry_after, jitter()),
            );
            if next > after(job.due_at, t.retry_budget) {
                finish(
                    &mut tx,
                    job,
                    JobState::Dead,
                    Some("stale"),
                    Some(&reason),
                    now,
                )
                .await?;
                "dead"
            } else {
                jobs::reschedule(
                    &mut tx,
                    job.job_id,
                    job.attempt,
                    JobState::Running,
                    next,
                    "retry",
                    Some(&reason),
                    None,
                    now,
                )
                .await?;
                tracing::info!(%reason, retry_at = %next, "carrier did not take the text; retrying");
                "retry"
            }
        }
        SendOutcome::Rejected {
            http,
            code,
            message,
        } => {
            let code_i32 = code.and_then(|c| i32::try_from(c).ok());
            messages::settle(
                &mut tx,
                brokerage,
                message_id,
                &["sending"],
                "rejected",
                code_i32,
                None,
            )
            .await?;
            state.metrics.text(kind, "rejected");
            let code_text = match code {
                Some(c) => c.to_string(),
                // Not sent at all: the server cannot send (no account configured).
                None if http == 0 => message.clone(),
                None => format!("http_{http}"),
            };
            let effect = carrier::sync_effect(http, code);
            let target = effects::Target {
                is_staff: out.contact_id.is_none(),
                contact_id: out.contact_id,
                phone: to,
                number_id: out.number_id,
                message_id: Some(message_id),
                call_id: out.call_id,
            };
            effects::apply_code_effect(&mut tx, brokerage, effect, &code_text, &target, now)
                .await?;
            finish(
                &mut tx,
                job,
                JobState::Dead,
                Some(&code_text),
                Some(&message),
                now,
            )
            .await?;
            tracing::warn!(kind, code = %code_text, "carrier rejected the text");
            "dead"
        }
        SendOutcome::Unknown { reason } => {
            messages::settle(
                &mut tx,
                brokerage,
                message_id,
                &["sending"],
                "unknown",
                None,
                None,
            )
            .await?;
            state.metrics.text(kind, "unknown");
            finish(
                &mut tx,
                job,
                JobState::Reconciling,
                Some("unknown_outcome"),
                Some(&reason),
                now,
            )
            .await?;
            enqueue_reconcile(
                &mut tx,
                brokerage,
                message_id,
                job.job_id,
                after(now, t.reconcile_first_look),
                now,
            )
            .await?;
            tracing::warn!(kind, %reason, "the text's outcome is unknown; reconciling with the carrier's list");
            "reconciling"
        }
    };
    tx.commit().await?;
    Ok(Outcome::Persisted { label })
}

/// A re-claimed job found the send of an earlier attempt (docs/reliability.md F7): never resend.
pub(super) async fn settle_previous(
    state: &AppState,
    job: &jobs::Claimed,
    previous: messages::Outbound,
) -> anyhow::Result<Outcome> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let label = match previous.send_state.as_deref() {
        Some("sent") => {
            finish(&mut tx, job, JobState::Sent, None, None, now).await?;
            "sent"
        }
        Some("needs_review") => {
            finish(&mut tx, job, JobState::NeedsReview, None, None, now).await?;
            "needs_review"
        }
        _ => {
            finish(
                &mut tx,
                job,
                JobState::Reconciling,
                Some("unsettled_send"),
                None,
                now,
            )
            .await?;
            if jobs::pending_reconcile_for(&mut tx, job.brokerage_id, previous.message_id)
                .await?
                .is_none()
            {
                let first = after(now, state.timing.reconcile_first_look);
                enqueue_reconcile(
                    &mut tx,
                    job.brokerage_id,
                    previous.message_id,
                    job.job_id,
                    first,
                    now,
                )
                .await?;
            }
            tracing::warn!("an earlier attempt's send is unsettled: reconciling, not resending");
            "reconciling"
        }
    };
    tx.commit().await?;
    Ok(Outcome::Persisted { label })
}

pub(super) async fn enqueue_reconcile(
    conn: &mut sqlx::PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
    text_job_id: i64,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> store::Result<i64> {
    use jobs::JobPayload as _;
    let job = jobs::payload::Reconcile {
        message_id,
        text_job_id: store::JobId(text_job_id),
        absent: Vec::new(),
    }
    .enqueue(conn, brokerage, jobs::Place::at(run_at, now))
    .await?;
    Ok(job.0)
}
