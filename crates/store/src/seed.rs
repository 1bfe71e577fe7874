//! A year of history for `textback-bench dashboard`: calls, text-backs, replies, agents'
//! answers, conversations, waits and gate decisions, written in bulk by `generate_series` so
//! that a million calls take a minute, not an hour. Benchmarks only: nothing else calls it.
//!
//! The mix: a third of the calls on the second number; 60 % missed; of the misses' text-backs
//! 70 % sent, 10 % landline, 10 % reconnected, 5 % opted out, 5 % texted first; 30 % of the
//! texted reply, two thirds of those are answered by an agent (7 minutes later) and the rest
//! still wait; 2 % of texts undelivered.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{BrokerageId, Result};

pub struct Seed {
    pub brokerage: BrokerageId,
    /// The two numbers (the first takes two calls of three) and their agents.
    pub numbers: [i64; 2],
    pub agents: [i64; 2],
    pub calls: i64,
    pub contacts: i64,
    pub now: DateTime<Utc>,
}

/// Writes the history; returns how many rows of each kind exist afterwards.
pub async fn history(pool: &PgPool, s: &Seed) -> Result<Vec<(String, i64)>> {
    let mut tx = pool.begin().await?;
    // Bulk rows need no live notifications (nobody is watching) and no per-row triggers.
    set_inbox_triggers(&mut tx, "disable").await?;
    sqlx::query(
        "insert into contact (brokerage_id, phone) select $1, '+1617' || lpad(g::text, 7, '0') from generate_series(1, $2) g",
    )
    .bind(s.brokerage)
    .bind(s.contacts)
    .execute(&mut *tx)
    .await?;
    let first: i64 =
        sqlx::query_scalar("select min(contact_id) from contact where brokerage_id = $1")
            .bind(s.brokerage)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "insert into call (brokerage_id, number_id, contact_id, call_sid, from_raw, started_at, call_status,
                           outcome, outcome_source, outcome_at, created_at)
         select $1, case when g % 3 = 0 then $3 else $2 end, c.contact_id, 'CA' || md5('seed' || g), c.phone, t,
                'completed', case when g % 10 < 6 then 'missed' else 'answered' end, 'dial', t + interval '25 seconds', $7
           from generate_series(1, $4) g
           cross join lateral (select $7 - (g::float8 / $4) * interval '365 days' as t) tt
           join contact c on c.contact_id = $5 + (g * 7919) % $6",
    )
    .bind(s.brokerage)
    .bind(s.numbers[0])
    .bind(s.numbers[1])
    .bind(s.calls)
    .bind(first)
    .bind(s.contacts)
    .bind(s.now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("analyze call, contact")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into job (brokerage_id, kind, state, contact_id, call_id, run_at, due_at, reason, attempt,
                          created_at, updated_at, finished_at)
         select brokerage_id, 'text_back',
                case when m < 14 then 'sent' when m in (14, 15, 18) then 'skipped' else 'cancelled' end,
                contact_id, call_id, outcome_at + interval '20 seconds', outcome_at + interval '20 seconds',
                case when m < 14 then null when m in (14, 15) then 'line_type' when m in (16, 17) then 'answered_call'
                     when m = 18 then 'opted_out' else 'inbound_text' end,
                1, outcome_at, outcome_at + interval '21 seconds', outcome_at + interval '21 seconds'
           from (select *, call_id % 20 as m from call where brokerage_id = $1 and outcome = 'missed') c",
    )
    .bind(s.brokerage)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into message (brokerage_id, number_id, contact_id, direction, sid, from_raw, to_raw, body, body_sha256,
                              send_state, idempotency_key, job_id, attempt, carrier_status, occurred_at, kind,
                              counts_for_cap, template_variant)
         select j.brokerage_id, ca.number_id, j.contact_id, 'outbound', 'SM' || md5('t' || j.job_id), n.e164, ct.phone,
                'Hi there, this is Sam at Harbor Realty. Sorry we missed your call. Reply STOP to opt out.', 'seed',
                'sent', 'seed:' || j.job_id, j.job_id, 1,
                case when j.job_id % 50 = 0 then 'undelivered' else 'delivered' end,
                j.finished_at - interval '1 second', 'text_back', true, 0
           from job j
           join call ca on ca.call_id = j.call_id
           join number n on n.number_id = ca.number_id
           join contact ct on ct.contact_id = j.contact_id
          where j.brokerage_id = $1 and j.kind = 'text_back' and j.state = 'sent'",
    )
    .bind(s.brokerage)
    .execute(&mut *tx)
    .await?;
    // Replies five minutes after 30 % of the texts; answers to two thirds of them.
    sqlx::query(
        "insert into message (brokerage_id, number_id, contact_id, direction, sid, from_raw, to_raw, body, body_sha256,
                              occurred_at, keyword_class)
         select m.brokerage_id, m.number_id, m.contact_id, 'inbound', 'SM' || md5('r' || m.message_id), m.to_raw, m.from_raw,
                'Yes! Is it still available?', 'seed', m.occurred_at + interval '5 minutes', 'reply'
           from message m
          where m.brokerage_id = $1 and m.kind = 'text_back' and m.job_id % 10 < 3",
    )
    .bind(s.brokerage)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into message (brokerage_id, number_id, contact_id, direction, sid, from_raw, to_raw, body, body_sha256,
                              send_state, idempotency_key, carrier_status, occurred_at, kind, counts_for_cap)
         select m.brokerage_id, m.number_id, m.contact_id, 'outbound', 'SM' || md5('a' || m.message_id), m.to_raw, m.from_raw,
                'Yes, want to see it Saturday?', 'seed', 'sent', 'seed:a:' || m.message_id, 'delivered',
                m.occurred_at + interval '7 minutes', 'manual', false
           from message m
          where m.brokerage_id = $1 and m.direction = 'inbound' and m.message_id % 3 < 2",
    )
    .bind(s.brokerage)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into conversation (brokerage_id, contact_id, number_id, assigned_agent_id, last_activity_at, last_inbound_at, created_at)
         select c.brokerage_id, c.contact_id, x.number_id, case when x.number_id = $2 then $3 else $4 end, x.at, x.at, x.at
           from contact c
           join lateral (select number_id, started_at as at from call
                          where brokerage_id = c.brokerage_id and contact_id = c.contact_id
                          order by started_at desc limit 1) x on true
          where c.brokerage_id = $1",
    )
    .bind(s.brokerage)
    .bind(s.numbers[0])
    .bind(s.agents[0])
    .bind(s.agents[1])
    .execute(&mut *tx)
    .await?;
    // Fresh statistics before the joins below: planned on an empty table's, they would walk
    // the messages once per message.
    sqlx::query("analyze call, job, message, contact, conversation")
        .execute(&mut *tx)
        .await?;
    // The leads, with the milestones the seed made: the reply to each text (found by the
    // seed's sids), the agent's answer to it, a reconnect a minute after the miss.
    sqlx::query(
        "insert into lead (job_id, brokerage_id, contact_id, number_id, office_id, agent_id, missed_at, created_at,
                           state, reason, finished_at, texted_at, variant, replied_at, human_at, answered_at)
         select j.job_id, j.brokerage_id, j.contact_id, ca.number_id, n.office_id,
                case when ca.number_id = $2 then $3 else $4 end, ca.outcome_at, j.created_at,
                j.state, j.reason, j.finished_at, t.occurred_at, t.template_variant,
                r.occurred_at, h.occurred_at,
                case when j.reason = 'answered_call' then ca.outcome_at + interval '1 minute' end
           from job j
           join call ca on ca.call_id = j.call_id
           join number n on n.number_id = ca.number_id
           left join message t on t.job_id = j.job_id and t.kind = 'text_back'
           left join message r on r.sid = 'SM' || md5('r' || t.message_id)
           left join message h on h.sid = 'SM' || md5('a' || r.message_id)
          where j.brokerage_id = $1 and j.kind = 'text_back'",
    )
    .bind(s.brokerage)
    .bind(s.numbers[0])
    .bind(s.agents[0])
    .bind(s.agents[1])
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into reply_wait (brokerage_id, conversation_id, number_id, agent_id, message_id, waiting_since,
                                 answered_at, answered_by)
         select m.brokerage_id, cv.conversation_id, m.number_id, cv.assigned_agent_id, m.message_id, m.occurred_at,
                case when m.message_id % 3 < 2 then m.occurred_at + interval '7 minutes' end,
                case when m.message_id % 3 < 2 then 'sam@harbor.example' end
           from message m join conversation cv on cv.contact_id = m.contact_id
          where m.brokerage_id = $1 and m.direction = 'inbound'",
    )
    .bind(s.brokerage)
    .execute(&mut *tx)
    .await?;
    // The latest unanswered reply of each conversation keeps it waiting.
    sqlx::query(
        "update conversation c set waiting_since = w.waiting_since
           from (select distinct on (conversation_id) conversation_id, waiting_since, answered_at
                   from reply_wait where brokerage_id = $1 order by conversation_id, waiting_since desc) w
          where c.conversation_id = w.conversation_id and w.answered_at is null",
    )
    .bind(s.brokerage)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into gate_decision (brokerage_id, contact_id, number_id, job_id, attempt, kind, decided_at, decision, rule, reason)
         select j.brokerage_id, j.contact_id, ca.number_id, j.job_id, 1, 'text_back', j.finished_at, 'skip',
                case j.reason when 'line_type' then 'R8' else 'R1' end, j.reason
           from job j join call ca on ca.call_id = j.call_id
          where j.brokerage_id = $1 and j.kind = 'text_back' and j.state = 'skipped'",
    )
    .bind(s.brokerage)
    .execute(&mut *tx)
    .await?;
    set_inbox_triggers(&mut tx, "enable").await?;
    tx.commit().await?;
    sqlx::query("analyze").execute(pool).await?;
    let mut counts = Vec::new();
    for table in [
        "contact",
        "call",
        "job",
        "job_transition",
        "message",
        "lead",
        "conversation",
        "reply_wait",
        "gate_decision",
    ] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(pool)
                .await?;
        counts.push((table.to_owned(), n));
    }
    Ok(counts)
}

/// The live-inbox notification triggers of migrations/0004, off for the bulk load.
async fn set_inbox_triggers(conn: &mut sqlx::PgConnection, how: &'static str) -> Result<()> {
    for (table, trigger) in [
        ("message", "message_inbox"),
        ("message", "message_inbox_status"),
        ("task", "task_inbox"),
        ("gate_decision", "gate_decision_inbox"),
        ("conversation", "conversation_inbox"),
        ("call", "call_inbox"),
        ("job", "job_inbox"),
        ("job", "job_inbox_end"),
        ("consent_event", "consent_event_inbox"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "alter table {table} {how} trigger {trigger}"
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
