//! Outbound webhooks and Follow Up Boss (docs/webhooks.md): subscriptions as the setup file
//! gives them, the deliveries the event triggers queue (migration 0014), claimed like jobs
//! (`FOR UPDATE SKIP LOCKED`, a lease, re-claimed when a worker dies), in order per
//! conversation, and the log the admins' page shows.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use textback_core::setup::SetupFile;
use textback_core::setup::twilio::SecretSource;

use super::{BrokerageId, Result};

/// The name a brokerage's Follow Up Boss subscription goes by (setup names are slugs of
/// `[[webhooks]]`; this one cannot clash: it has an underscore).
pub const FUB_NAME: &str = "follow_up_boss";

fn source_json(s: &SecretSource) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// A subscription as written: name, kind, url, events, secret, FUB system and its key,
/// private addresses allowed.
type Row = (
    String,
    &'static str,
    String,
    Vec<String>,
    Value,
    Option<String>,
    Option<Value>,
    bool,
);

/// `[[webhooks]]` and `[follow_up_boss]`: upserted by name (a paused subscription stays paused
/// until an admin resumes it); one the file no longer lists is removed and its open deliveries
/// end failed with the reason `subscription_removed`. Returns the changes, in words.
pub async fn apply(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    file: &SetupFile,
) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut rows: Vec<Row> = file
        .webhooks
        .iter()
        .map(|w| {
            (
                w.name.clone(),
                "webhook",
                w.url.clone(),
                w.events.clone(),
                source_json(&w.secret),
                None,
                None,
                w.allow_private_addresses,
            )
        })
        .collect();
    if let Some(f) = &file.follow_up_boss {
        rows.push((
            FUB_NAME.to_owned(),
            "follow_up_boss",
            f.url.clone(),
            textback_core::domain::webhooks::FUB_EVENTS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
            source_json(&f.api_key),
            Some(f.system.clone()),
            f.system_key.as_ref().map(source_json),
            f.allow_private_addresses,
        ));
    }
    for (name, kind, url, events, secret, system, system_key, allow_private) in rows {
        let row: Option<bool> = sqlx::query_scalar(
            "insert into webhook_subscription as x (brokerage_id, name, kind, url, events, secret, fub_system,
                                                    fub_system_key, allow_private, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now())
             on conflict (brokerage_id, name) do update
                set kind = excluded.kind, url = excluded.url, events = excluded.events,
                    secret = excluded.secret, fub_system = excluded.fub_system,
                    fub_system_key = excluded.fub_system_key, allow_private = excluded.allow_private,
                    state = case x.state when 'removed' then 'active' else x.state end,
                    failing_since = case x.state when 'removed' then null else x.failing_since end,
                    paused_at = case x.state when 'removed' then null else x.paused_at end,
                    updated_at = now()
              where (x.kind, x.url, x.events, x.secret, x.fub_system, x.fub_system_key, x.allow_private,
                     x.state = 'removed')
                    is distinct from
                    (excluded.kind, excluded.url, excluded.events, excluded.secret, excluded.fub_system,
                     excluded.fub_system_key, excluded.allow_private, false)
             returning (xmax = 0)",
        )
        .bind(brokerage)
        .bind(&name)
        .bind(kind)
        .bind(&url)
        .bind(&events)
        .bind(&secret)
        .bind(&system)
        .bind(&system_key)
        .bind(allow_private)
        .fetch_optional(&mut *conn)
        .await?;
        let what = if kind == "webhook" {
            "webhook"
        } else {
            "Follow Up Boss"
        };
        if let Some(inserted) = row {
            changes.push(format!(
                "{what} {name}: {}",
                if inserted { "created" } else { "updated" }
            ));
        }
        names.push(name);
    }
    let gone: Vec<(i64, String)> = sqlx::query_as(
        "update webhook_subscription set state = 'removed', updated_at = now()
          where brokerage_id = $1 and state <> 'removed' and not (name = any($2))
         returning subscription_id, name",
    )
    .bind(brokerage)
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    for (id, name) in gone {
        sqlx::query(
            "update webhook_delivery set state = 'failed', reason = 'subscription_removed', lease_until = null
              where subscription_id = $1 and state in ('pending', 'held', 'delivering')",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        changes.push(format!("webhook {name}: removed (no longer in the file)"));
    }
    Ok(changes)
}

/// A delivery claimed for one attempt, with what it needs to be made.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub delivery_id: i64,
    pub brokerage_id: i64,
    pub subscription_id: i64,
    pub attempts: i32,
    pub kind: String,
    pub name: String,
    pub url: String,
    pub secret: Value,
    pub fub_system: Option<String>,
    pub fub_system_key: Option<Value>,
    pub allow_private: bool,
    pub event_id: i64,
    pub public_id: String,
    pub event_type: String,
    pub conversation_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub data: Value,
    pub event_at: DateTime<Utc>,
    pub progress: Option<String>,
    /// When the delivery was queued (again, after a resume or "Send again"): its three days
    /// count from here.
    pub queued_at: DateTime<Utc>,
}

/// Where a subscription's secret and FUB system key are read from (stored as JSON).
fn source(v: &Value) -> Option<SecretSource> {
    serde_json::from_value(v.clone()).ok()
}

impl Claimed {
    pub fn secret_source(&self) -> Option<SecretSource> {
        source(&self.secret)
    }

    pub fn system_key_source(&self) -> Option<SecretSource> {
        self.fub_system_key.as_ref().and_then(source)
    }
}

/// Claims up to `limit` due deliveries (and ones whose lease ran out: their worker died) under
/// a lease. A delivery waits while an earlier event of its conversation is still open for the
/// same subscription: receivers see a conversation's events in order.
pub async fn claim(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Claimed>> {
    Ok(sqlx::query_as(
        "with due as (
             select d.delivery_id from webhook_delivery d
               join webhook_subscription s on s.subscription_id = d.subscription_id
              where s.state = 'active'
                -- a `held` row of an active subscription was written while it was being
                -- resumed: it is due like a pending one
                and ((d.state in ('pending', 'held') and d.run_at <= $1)
                     or (d.state = 'delivering' and d.lease_until < $1))
                and not exists (
                    select 1 from webhook_delivery e
                     where d.conversation_id is not null
                       and e.subscription_id = d.subscription_id
                       and e.conversation_id = d.conversation_id
                       and e.event_id < d.event_id
                       and e.state in ('pending', 'delivering', 'held'))
              order by d.run_at, d.delivery_id
              limit $2
              for update of d skip locked)
         update webhook_delivery d
            set state = 'delivering', lease_until = $1 + $3, attempts = d.attempts + 1
           from due, webhook_subscription s, outbound_event e
          where d.delivery_id = due.delivery_id
            and s.subscription_id = d.subscription_id
            and e.event_id = d.event_id
         returning d.delivery_id, d.brokerage_id, d.subscription_id, d.attempts, s.kind, s.name, s.url,
                   s.secret, s.fub_system, s.fub_system_key, s.allow_private, e.event_id, e.public_id,
                   e.type as event_type, e.conversation_id, e.contact_id, e.data, e.at as event_at,
                   d.progress, d.created_at as queued_at",
    )
    .bind(now)
    .bind(limit)
    .bind(lease)
    .fetch_all(conn)
    .await?)
}

/// The earliest time a pending delivery is due (the worker sleeps until then or a NOTIFY).
pub async fn next_due(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar("select min(run_at) from webhook_delivery where state = 'pending'")
            .fetch_one(conn)
            .await?,
    )
}

/// Locks the subscription for the record of an attempt, before the delivery's row: every
/// recorder and a pause take their locks in this order (no deadlock when a pause holds every
/// delivery of the subscription).
pub async fn lock_subscription(conn: &mut PgConnection, subscription_id: i64) -> Result<()> {
    sqlx::query("select 1 from webhook_subscription where subscription_id = $1 for no key update")
        .bind(subscription_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub status: Option<i32>,
    pub answer: Option<&'a str>,
    pub error: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// The claim's attempt number: the record is fenced on it, so a worker whose lease ran out
    /// (and whose delivery was claimed again) records nothing.
    pub attempt: i32,
}

/// The receiver took it (2xx): the delivery is done and the subscription's failing streak
/// ends. Fenced on the attempt (a delivery re-claimed after a stall is not finished twice).
pub async fn delivered(conn: &mut PgConnection, delivery_id: i64, a: &Attempt<'_>) -> Result<bool> {
    let sub: Option<i64> = sqlx::query_scalar(
        "update webhook_delivery
            set state = 'delivered', lease_until = null, delivered_at = $2, last_status = $3,
                last_answer = $4, last_error = null, last_attempt_at = $2
          where delivery_id = $1 and state = 'delivering' and attempts = $5
         returning subscription_id",
    )
    .bind(delivery_id)
    .bind(a.now)
    .bind(a.status)
    .bind(a.answer)
    .bind(a.attempt)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(sub) = sub else { return Ok(false) };
    sqlx::query(
        "update webhook_subscription set failing_since = null, last_success_at = $2 where subscription_id = $1",
    )
    .bind(sub)
    .bind(a.now)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// The attempt failed: tried again at `next`, or (none) ended `failed` with `reason`. The
/// subscription's failing streak starts now if it had none. Returns the streak's start.
pub async fn failed(
    conn: &mut PgConnection,
    delivery_id: i64,
    a: &Attempt<'_>,
    next: Option<DateTime<Utc>>,
    reason: &str,
) -> Result<Option<(i64, DateTime<Utc>)>> {
    let sub: Option<i64> = sqlx::query_scalar(
        "update webhook_delivery
            set state = case when $5::timestamptz is null then 'failed' else 'pending' end,
                run_at = coalesce($5, run_at), lease_until = null, last_status = $3,
                last_answer = $4, last_error = $6, last_attempt_at = $2,
                reason = case when $5::timestamptz is null then $7 end
          where delivery_id = $1 and state = 'delivering' and attempts = $8
         returning subscription_id",
    )
    .bind(delivery_id)
    .bind(a.now)
    .bind(a.status)
    .bind(a.answer)
    .bind(next)
    .bind(a.error)
    .bind(reason)
    .bind(a.attempt)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(sub) = sub else { return Ok(None) };
    let since: DateTime<Utc> = sqlx::query_scalar(
        "update webhook_subscription set failing_since = coalesce(failing_since, $2)
          where subscription_id = $1 returning failing_since",
    )
    .bind(sub)
    .bind(a.now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some((sub, since)))
}

/// Pauses a subscription that has failed for a day: its open deliveries are held (kept, in
/// order) until an admin resumes it. Returns its name, or `None` if it was not active.
pub async fn pause(
    conn: &mut PgConnection,
    subscription_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let name: Option<String> = sqlx::query_scalar(
        "update webhook_subscription set state = 'paused', paused_at = $2, updated_at = $2
          where subscription_id = $1 and state = 'active' returning name",
    )
    .bind(subscription_id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if name.is_some() {
        sqlx::query(
            "update webhook_delivery set state = 'held', lease_until = null
              where subscription_id = $1 and state in ('pending', 'delivering')",
        )
        .bind(subscription_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(name)
}

/// An admin resumes a paused subscription: its held deliveries are due now, in their order.
pub async fn resume(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    subscription_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update webhook_subscription set state = 'active', paused_at = null, failing_since = null, updated_at = $3
          where brokerage_id = $1 and subscription_id = $2 and state = 'paused'",
    )
    .bind(brokerage)
    .bind(subscription_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if done {
        sqlx::query(
            "update webhook_delivery set state = 'pending', run_at = $2, created_at = $2
              where subscription_id = $1 and state = 'held'",
        )
        .bind(subscription_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        notify(conn).await?;
    }
    Ok(done)
}

/// Wakes the deliveries' workers (as the event triggers do) when this transaction commits.
async fn notify(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("select pg_notify('textback_delivery', '')")
        .execute(conn)
        .await?;
    Ok(())
}

/// "Send again": a delivered or failed delivery is queued once more, due now, with the same
/// `webhook-id` (the receiver deduplicates). Only for a subscription that is not removed.
pub async fn send_again(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    delivery_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "update webhook_delivery d
            set state = case s.state when 'paused' then 'held' else 'pending' end,
                run_at = $3, created_at = $3, reason = null
           from webhook_subscription s
          where d.brokerage_id = $1 and d.delivery_id = $2 and d.state in ('delivered', 'failed')
            and s.subscription_id = d.subscription_id and s.state <> 'removed'",
    )
    .bind(brokerage)
    .bind(delivery_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if done {
        notify(conn).await?;
    }
    Ok(done)
}

/// A subscription as the admins' page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscription {
    pub subscription_id: i64,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub events: Vec<String>,
    pub state: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// Where the secret is read from (never the secret).
    pub secret: Value,
    pub fub_system_key: Option<Value>,
    pub pending: i64,
    pub held: i64,
    pub failed: i64,
}

impl Subscription {
    pub fn secret_source(&self) -> Option<SecretSource> {
        source(&self.secret)
    }

    pub fn system_key_source(&self) -> Option<SecretSource> {
        self.fub_system_key.as_ref().and_then(source)
    }
}

pub async fn subscriptions(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<Vec<Subscription>> {
    Ok(sqlx::query_as(
        "select s.subscription_id, s.name, s.kind, s.url, s.events, s.state, s.failing_since,
                s.paused_at, s.last_success_at, s.secret, s.fub_system_key,
                count(*) filter (where d.state in ('pending', 'delivering')) as pending,
                count(*) filter (where d.state = 'held') as held,
                count(*) filter (where d.state = 'failed') as failed
           from webhook_subscription s
           left join webhook_delivery d on d.subscription_id = s.subscription_id
          where s.brokerage_id = $1 and s.state <> 'removed'
          group by s.subscription_id
          order by s.kind desc, s.name",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

/// A line of the delivery log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogLine {
    pub delivery_id: i64,
    pub subscription: String,
    pub event_type: String,
    pub public_id: String,
    pub conversation_id: Option<i64>,
    pub state: String,
    pub attempts: i32,
    pub run_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_answer: Option<String>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub event_at: DateTime<Utc>,
}

/// The latest deliveries, newest first; `state` keeps one state only.
pub async fn log(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<LogLine>> {
    Ok(sqlx::query_as(
        "select d.delivery_id, s.name as subscription, e.type as event_type, e.public_id, d.conversation_id,
                d.state, d.attempts, d.run_at, d.last_status, d.last_answer, d.last_error, d.last_attempt_at,
                d.reason, e.at as event_at
           from webhook_delivery d
           join webhook_subscription s using (subscription_id)
           join outbound_event e using (event_id)
          where d.brokerage_id = $1 and ($2::text is null or d.state = $2)
          order by d.delivery_id desc
          limit $3",
    )
    .bind(brokerage)
    .bind(state)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// A step of a multi-call delivery is done (Follow Up Boss's lead event): a retry skips it.
pub async fn mark_progress(conn: &mut PgConnection, delivery_id: i64, step: &str) -> Result<()> {
    sqlx::query("update webhook_delivery set progress = $2 where delivery_id = $1")
        .bind(delivery_id)
        .bind(step)
        .execute(conn)
        .await?;
    Ok(())
}

/// The Follow Up Boss person a contact is, once known.
pub async fn fub_person(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: i64,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "select person_id from fub_person where brokerage_id = $1 and contact_id = $2",
    )
    .bind(brokerage)
    .bind(contact_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn save_fub_person(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: i64,
    person_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into fub_person (brokerage_id, contact_id, person_id, created_at) values ($1, $2, $3, $4)
         on conflict (brokerage_id, contact_id) do update set person_id = excluded.person_id",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(person_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
