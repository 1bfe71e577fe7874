//! The job table (docs/architecture.md "The scheduler"). Enqueue functions take the caller's connection, so
//! a job is enqueued in the transaction of the event that caused it. Transitions are written
//! by triggers (migrations/0002), so no path can change a state without its record.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::{BrokerageId, CallId, ContactId, JobId, MessageId, Result};

mod types;

pub use types::{JobKind, JobPayload, JobState, Place};

/// The payload of each kind, each with its `enqueue` ([`JobPayload::enqueue`]).
pub mod payload {
    pub use super::types::{
        AgentAlert, AgentReply, CallBack, ClaimTimeout, Escalation, FollowUp, KeywordReply,
        LeadText, MediaFetch, Reconcile, TextBack,
    };
}

/// Kinds cancelled when a human reached the contact, or the contact wrote (the automation).
pub const AUTOMATION: &[JobKind] = &[JobKind::TextBack, JobKind::FollowUp, JobKind::LeadText];

/// Kinds cancelled by an opt-out (docs/compliance.md R2): everything pending that would text the
/// contact, scheduled manual messages and escalations included.
pub const ON_OPT_OUT: &[JobKind] = &[
    JobKind::TextBack,
    JobKind::FollowUp,
    JobKind::KeywordReply,
    JobKind::AgentReply,
    JobKind::Escalation,
];

/// The one insert behind [`JobPayload::enqueue`].
async fn insert(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    kind: JobKind,
    place: Place,
    payload: &Value,
) -> Result<JobId> {
    Ok(JobId(sqlx::query_scalar(
        "insert into job (brokerage_id, kind, contact_id, call_id, run_at, due_at, payload, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $5, $6, $7, $7)
         returning job_id",
    )
    .bind(brokerage)
    .bind(kind)
    .bind(place.contact)
    .bind(place.call)
    .bind(place.run_at)
    .bind(payload)
    .bind(place.now)
    .fetch_one(conn)
    .await?))
}

/// No-op jobs (benchmarks, scheduler tests), one due at each `run_at`, in one statement.
/// Returns their ids.
pub async fn enqueue_noops(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    run_at: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "insert into job (brokerage_id, kind, run_at, due_at, created_at, updated_at)
         select $1, 'noop', r, r, $3, $3 from unnest($2::timestamptz[]) as r
         returning job_id",
    )
    .bind(brokerage)
    .bind(run_at)
    .bind(now)
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub job_id: i64,
    pub state: JobState,
    pub finished_at: Option<DateTime<Utc>>,
    pub run_at: DateTime<Utc>,
    pub call_id: Option<CallId>,
}

/// The contact's most recent job of `kind`.
pub async fn latest(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    kind: JobKind,
) -> Result<Option<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(
        "select job_id, state, finished_at, run_at, call_id from job
          where brokerage_id = $1 and contact_id = $2 and kind = $3
          order by job_id desc limit 1",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(kind)
    .fetch_optional(conn)
    .await?)
}

/// Whether the contact has a job of `kind` not yet ended (scheduled, running or reconciling).
pub async fn pending_of_kind(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    kind: JobKind,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from job
                         where brokerage_id = $1 and contact_id = $2 and kind = $3
                           and state in ('scheduled', 'running', 'reconciling'))",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(kind)
    .fetch_one(conn)
    .await?)
}

/// Moves a still-scheduled job to `run_at` and makes it answer `call_id` (a further miss in
/// the episode). False when it is no longer scheduled.
pub async fn rearm(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    job_id: i64,
    run_at: DateTime<Utc>,
    call_id: CallId,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update job set run_at = $3, due_at = $3, call_id = $4, reason = 'rearmed', updated_at = $5
          where brokerage_id = $1 and job_id = $2 and state = 'scheduled'",
    )
    .bind(brokerage)
    .bind(job_id)
    .bind(run_at)
    .bind(call_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels the contact's scheduled jobs of these kinds, whatever the backlog: one statement.
/// Returns how many were cancelled.
pub async fn cancel_scheduled(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    kinds: &[JobKind],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let done = sqlx::query(
        "update job set state = 'cancelled', reason = $4, finished_at = $5, updated_at = $5
          where brokerage_id = $1 and contact_id = $2 and kind = any($3) and state = 'scheduled'",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(kinds)
    .bind(reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A job a worker now holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job_id: i64,
    pub brokerage_id: BrokerageId,
    pub kind: JobKind,
    pub attempt: i32,
    pub contact_id: Option<ContactId>,
    pub call_id: Option<CallId>,
    pub payload: Value,
    pub run_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// `running` when this is a re-claim after an expired lease (the earlier worker died or
    /// stalled); `scheduled` otherwise.
    pub prev_state: JobState,
}

impl Claimed {
    /// The job's payload as its kind's type; an error says what is wrong (a row of another
    /// kind, or a payload this build cannot read).
    pub fn payload<P: JobPayload>(&self) -> std::result::Result<P, String> {
        if self.kind != P::KIND {
            return Err(format!("a {} job read as a {} job", self.kind, P::KIND));
        }
        serde_json::from_value(self.payload.clone())
            .map_err(|e| format!("a {} job with an unreadable payload: {e}", self.kind))
    }
}

/// The claim statement (see [`claim`]). The batch comes back as one row of arrays: a thousand
/// rows cost the database far more to send than one (measured: a fifth of the claim throughput).
const CLAIM: &str = "-- expired leases first (a dead worker's jobs have waited longest), then due jobs up
     -- to the same limit in all: never more jobs than the caller has slots to start
     with expired as materialized (
         select job_id, state as prev_state from job
          where state = 'running' and lease_until < $1
          order by lease_until limit $2
            for update skip locked),
     due as materialized (
         select job_id, state as prev_state from job
          where state = 'scheduled' and run_at <= $1 and run_at >= coalesce($4, '-infinity'::timestamptz)
          order by run_at limit greatest($2 - (select count(*) from expired), 0)
            for update skip locked),
     c as materialized (select * from due union all select * from expired),
     claimed as (
         update job set state = 'running', attempt = job.attempt + 1, lease_until = $1 + $3, updated_at = $1
           from c
          -- `= any(array(…))` drives the primary key index; a plain join can be planned as a
          -- hash of the whole table, which a deep backlog makes slow.
          where job.job_id = any(array(select job_id from c)) and job.job_id = c.job_id
         returning job.job_id, job.brokerage_id, job.kind, job.attempt, job.contact_id, job.call_id, job.payload,
                   job.run_at, job.due_at, c.prev_state)
     select coalesce(array_agg(job_id), '{}') as job_id, coalesce(array_agg(brokerage_id), '{}') as brokerage_id,
            coalesce(array_agg(kind), '{}') as kind, coalesce(array_agg(attempt), '{}') as attempt,
            coalesce(array_agg(contact_id), '{}') as contact_id, coalesce(array_agg(call_id), '{}') as call_id,
            coalesce(array_agg(payload), '{}') as payload, coalesce(array_agg(run_at), '{}') as run_at,
            coalesce(array_agg(due_at), '{}') as due_at, coalesce(array_agg(prev_state), '{}') as prev_state
       from claimed";

/// Claims up to `limit` jobs, those whose lease expired first, then due ones, for `lease`, and
/// commits at once (docs/reliability.md §2 step 1). The locking selects are materialized CTEs so
/// they run once; each reads its own partial index in order, so a deep backlog is not sorted.
///
/// `from`: where in `run_at` order the scan for due jobs may start (the end of the caller's
/// previous full claim). Entries just claimed stay in the index until no snapshot can see
/// them, and a scan from the start would walk past all of them on every claim; the caller
/// passes `None` whenever a claim came back short, so nothing due is ever skipped.
pub async fn claim(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
    from: Option<DateTime<Utc>>,
) -> Result<Vec<Claimed>> {
    let row: ClaimedArrays = sqlx::query_as::<_, ClaimedArrays>(CLAIM)
        .bind(now)
        .bind(limit)
        .bind(lease)
        .bind(from)
        .fetch_one(conn)
        .await?;
    Ok(row.into_jobs())
}

#[derive(sqlx::FromRow)]
struct ClaimedArrays {
    job_id: Vec<i64>,
    brokerage_id: Vec<i64>,
    kind: Vec<JobKind>,
    attempt: Vec<i32>,
    contact_id: Vec<Option<i64>>,
    call_id: Vec<Option<i64>>,
    payload: Vec<Value>,
    run_at: Vec<DateTime<Utc>>,
    due_at: Vec<DateTime<Utc>>,
    prev_state: Vec<JobState>,
}

impl ClaimedArrays {
    /// The arrays were aggregated from the same rows, so they have one length.
    fn into_jobs(self) -> Vec<Claimed> {
        let mut brokerage_id = self.brokerage_id.into_iter();
        let mut kind = self.kind.into_iter();
        let mut attempt = self.attempt.into_iter();
        let mut contact_id = self.contact_id.into_iter();
        let mut call_id = self.call_id.into_iter();
        let mut payload = self.payload.into_iter();
        let mut run_at = self.run_at.into_iter();
        let mut due_at = self.due_at.into_iter();
        let mut prev_state = self.prev_state.into_iter();
        let mut jobs = Vec::with_capacity(self.job_id.len());
        for job_id in self.job_id {
            let (
                Some(b),
                Some(k),
                Some(a),
                Some(contact),
                Some(call),
                Some(p),
                Some(r),
                Some(d),
                Some(prev),
            ) = (
                brokerage_id.next(),
                kind.next(),
                attempt.next(),
                contact_id.next(),
                call_id.next(),
                payload.next(),
                run_at.next(),
                due_at.next(),
                prev_state.next(),
            )
            else {
                break;
            };
            jobs.push(Claimed {
                job_id,
                brokerage_id: BrokerageId(b),
                kind: k,
                attempt: a,
                contact_id: contact.map(ContactId),
                call_id: call.map(CallId),
                payload: p,
                run_at: r,
                due_at: d,
                prev_state: prev,
            });
        }
        jobs
    }
}

/// Prepares the worker's claim and batch-finish statements on this connection (parsed once,
/// kept in the connection's statement cache), so the first claim after a start does not pay
/// for them, nor for reading the job table's catalog entries, while a backlog waits.
pub async fn prepare_worker(conn: &mut PgConnection) -> Result<()> {
    use sqlx::Executor as _;
    for sql in [CLAIM, FINISH_BATCH] {
        (&mut *conn)
            .prepare(sqlx::SqlSafeStr::into_sql_str(sql))
            .await?;
    }
    Ok(())
}

/// When the next job becomes due, or the next lease expires.
pub async fn next_wake(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "select least((select min(run_at) from job where state = 'scheduled'),
                      -- running ⇔ a lease (a check constraint), said so the partial index applies
                      (select min(lease_until) from job where lease_until is not null))",
    )
    .fetch_one(conn)
    .await?)
}

/// A terminal outcome for a batch of jobs of one (state, reason).
pub struct Finish<'a> {
    pub state: JobState,
    pub reason: Option<&'a str>,
    pub last_error: Option<&'a str>,
}

const FINISH_BATCH: &str = "update job set state = $3, reason = $4, last_error = coalesce($5, job.last_error),
                                                finished_at = $6, updated_at = $6, lease_until = null
                             where job.job_id = any($1) and job.attempt = $2 and job.state = 'running'";

/// Ends every listed job still `running` at `attempt` in `finish.state`, in one statement.
/// Returns how many rows it ended; a job re-claimed meanwhile (another attempt) is left alone.
/// (`job_id = any($1)` drives the primary key index; callers group jobs by attempt.)
pub async fn finish_batch(
    conn: &mut PgConnection,
    job_ids: &[i64],
    attempt: i32,
    finish: &Finish<'_>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let done = sqlx::query(FINISH_BATCH)
        .bind(job_ids)
        .bind(attempt)
        .bind(finish.state)
        .bind(finish.reason)
        .bind(finish.last_error)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// A held job back to `scheduled` at `run_at` (a certain failure's backoff, a deferral, a
/// reconcile's next look), fenced on its attempt. `due_at` moves only when `new_due` (a
/// deferral restarts the retry budget; a backoff does not).
#[allow(clippy::too_many_arguments)]
pub async fn reschedule(
    conn: &mut PgConnection,
    job_id: i64,
    attempt: i32,
    from_state: JobState,
    run_at: DateTime<Utc>,
    reason: &str,
    last_error: Option<&str>,
    payload: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update job set state = 'scheduled', run_at = $4, reason = $5, last_error = coalesce($6, last_error),
                        payload = coalesce($7, payload), lease_until = null, updated_at = $8
          where job_id = $1 and attempt = $2 and state = $3",
    )
    .bind(job_id)
    .bind(attempt)
    .bind(from_state)
    .bind(run_at)
    .bind(reason)
    .bind(last_error)
    .bind(payload)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a job from `from_state` (at `attempt`, when given) to `to_state`. `terminal` sets
/// `finished_at`. The fence of docs/reliability.md §2: false when another worker took the job.
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    conn: &mut PgConnection,
    job_id: i64,
    attempt: Option<i32>,
    from_state: JobState,
    to_state: JobState,
    reason: Option<&str>,
    last_error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let terminal = to_state.is_terminal();
    let done = sqlx::query(
        "update job set state = $4, reason = coalesce($5, reason), last_error = coalesce($6, last_error),
                        finished_at = case when $7 then $8 else null end,
                        lease_until = case when $4 = 'running' then lease_until else null end,
                        updated_at = $8
          where job_id = $1 and ($2::int is null or attempt = $2) and state = $3",
    )
    .bind(job_id)
    .bind(attempt)
    .bind(from_state)
    .bind(to_state)
    .bind(reason)
    .bind(last_error)
    .bind(terminal)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The fence of the pre-send transaction: locks the job row if this worker still holds it.
pub async fn lock_if_held(conn: &mut PgConnection, job_id: i64, attempt: i32) -> Result<bool> {
    let held: Option<i64> = sqlx::query_scalar("select job_id from job where job_id = $1 and attempt = $2 and state = 'running' for update")
        .bind(job_id)
        .bind(attempt)
        .fetch_optional(conn)
        .await?;
    Ok(held.is_some())
}

/// A job's state (tests, reconcile).
pub async fn state_of(
    conn: &mut PgConnection,
    job_id: i64,
) -> Result<Option<(JobState, i32, DateTime<Utc>)>> {
    Ok(
        sqlx::query_as("select state, attempt, due_at from job where job_id = $1")
            .bind(job_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The pending reconcile job of a message, if one exists.
pub async fn pending_reconcile_for(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    message_id: MessageId,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "select job_id from job where brokerage_id = $1 and kind = 'reconcile' and state in ('scheduled', 'running')
            and (payload->>'message_id')::bigint = $2 limit 1",
    )
    .bind(brokerage)
    .bind(message_id)
    .fetch_optional(conn)
    .await?)
}

/// Makes a scheduled job due now (a status callback can settle an unknown send sooner).
pub async fn run_now(conn: &mut PgConnection, job_id: i64, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query("update job set run_at = $2, updated_at = $2 where job_id = $1 and state = 'scheduled' and run_at > $2")
        .bind(job_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The job's kind, contact and call (what happens after a send is recorded depends on them).
pub async fn identity(
    conn: &mut PgConnection,
    job_id: i64,
) -> Result<Option<(JobKind, Option<ContactId>, Option<CallId>)>> {
    Ok(
        sqlx::query_as("select kind, contact_id, call_id from job where job_id = $1")
            .bind(job_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The follow-up steps of the same sequence still waiting before `position` (R15: deferred
/// steps keep their order): the latest `run_at` among them.
pub async fn earlier_steps_pending(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    text_back_message_id: MessageId,
    position: i64,
) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "select max(run_at) from job
          where brokerage_id = $1 and contact_id = $2 and kind = 'follow_up'
            and state in ('scheduled', 'running', 'reconciling')
            and (payload->>'text_back_message_id')::bigint = $3
            and (payload->>'position')::bigint < $4",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(text_back_message_id)
    .bind(position)
    .fetch_one(conn)
    .await?)
}

/// The contact's agent reply queued from a form with this one-time token, if any.
pub async fn agent_reply_with_token(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    once: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "select job_id from job
          where contact_id = $2 and kind = 'agent_reply' and brokerage_id = $1 and payload->>'once' = $3
          limit 1",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(once)
    .fetch_optional(conn)
    .await?)
}
