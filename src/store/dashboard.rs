//! The recovery dashboard's counts (DESIGN.md "People-facing pages"; issue 6 §5).
//!
//! The unit of the funnel is a **missed-call lead**: one `text_back` job, i.e. one missed-call
//! episode (DESIGN.md step 2: further misses in an episode re-arm the same job). For each lead
//! created in the period: texted (the job `sent`) or suppressed by its reason, a landline task,
//! cancelled because the caller reconnected or wrote first; then whether the lead replied after
//! the text, whether a person replied after that, and whether a call with them connected after
//! the miss. Leads are attributed to the number that was called, its office, and the
//! conversation's assigned agent.
//!
//! Every query binds `$1` brokerage, `$2`/`$3` the period, `$4` office, `$5` number, `$6`
//! agent (the last three null for "all"), and reads by period through the indexes of
//! migrations/0004 (`job_text_back_created`, `call_started`, `reply_wait_time`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, Result};

/// Which slice of the brokerage the dashboard shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slice {
    pub office_id: Option<i64>,
    pub number_id: Option<i64>,
    pub agent_id: Option<i64>,
}

/// One funnel row: the whole slice (`group_kind` "all"), or one number, office or agent.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct FunnelRow {
    pub group_kind: String,
    pub group_id: Option<i64>,
    pub missed_calls: i64,
    pub leads: i64,
    pub texted: i64,
    pub maybe_texted: i64,
    pub suppressed: i64,
    pub landline: i64,
    pub reconnected: i64,
    pub wrote_first: i64,
    pub cancelled_other: i64,
    pub pending: i64,
    pub failed: i64,
    pub replied: i64,
    pub human_replied: i64,
    pub answered: i64,
    pub median_text_secs: Option<f64>,
}

/// The funnel for the whole slice and by number, office and agent, in one pass.
pub async fn funnel(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<FunnelRow>> {
    let mut rows = sqlx::query_as::<_, FunnelRow>(
        "with lead as (
            select j.job_id, j.state, j.reason, j.contact_id, j.finished_at, j.call_id,
                   ca.outcome_at as missed_at, n.number_id, n.office_id, cv.assigned_agent_id as agent_id
              from job j
              join call ca on ca.call_id = j.call_id
              join number n on n.brokerage_id = ca.brokerage_id and n.number_id = ca.number_id
              left join conversation c0 on c0.contact_id = j.contact_id
              left join conversation cv on cv.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
             where j.brokerage_id = $1 and j.kind = 'text_back' and j.created_at >= $2 and j.created_at < $3
               and ($4::bigint is null or n.office_id = $4)
               and ($5::bigint is null or n.number_id = $5)
               and ($6::bigint is null or cv.assigned_agent_id = $6)
         ),
         fact as (
            select l.*, tb.occurred_at as texted_at, rep.occurred_at as replied_at,
                   (rep.occurred_at is not null and exists (
                        select 1 from message h
                         where h.brokerage_id = $1 and h.contact_id = l.contact_id and h.direction = 'outbound'
                           and h.kind = 'manual' and h.occurred_at > rep.occurred_at
                           and h.send_state in ('sent', 'sending', 'unknown', 'needs_review'))) as human,
                   exists (select 1 from call a
                            where a.brokerage_id = $1 and a.contact_id = l.contact_id and a.outcome = 'answered'
                              and a.call_id <> l.call_id and a.started_at >= l.missed_at) as answered
              from lead l
              left join lateral (select m.occurred_at from message m
                                  where m.job_id = l.job_id and m.send_state in ('sent', 'needs_review')
                                  order by m.message_id desc limit 1) tb on true
              left join lateral (select r.occurred_at from message r
                                  where r.brokerage_id = $1 and r.contact_id = l.contact_id and r.direction = 'inbound'
                                    and r.keyword_class in ('reply', 'review') and tb.occurred_at is not null
                                    and r.occurred_at > tb.occurred_at
                                  order by r.occurred_at limit 1) rep on true
         )
         select case when grouping(number_id) = 0 then 'number'
                     when grouping(office_id) = 0 then 'office'
                     when grouping(agent_id) = 0 then 'agent'
                     else 'all' end as group_kind,
                coalesce(case when grouping(number_id) = 0 then number_id end,
                         case when grouping(office_id) = 0 then office_id end,
                         case when grouping(agent_id) = 0 then agent_id end) as group_id,
                0::bigint as missed_calls,
                count(*) as leads,
                count(*) filter (where state = 'sent') as texted,
                count(*) filter (where state = 'needs_review') as maybe_texted,
                count(*) filter (where state = 'skipped' and reason <> 'line_type') as suppressed,
                count(*) filter (where state = 'skipped' and reason = 'line_type') as landline,
                count(*) filter (where state = 'cancelled' and reason = 'answered_call') as reconnected,
                count(*) filter (where state = 'cancelled' and reason = 'inbound_text') as wrote_first,
                count(*) filter (where state = 'cancelled' and reason not in ('answered_call', 'inbound_text')) as cancelled_other,
                count(*) filter (where state in ('scheduled', 'running', 'reconciling')) as pending,
                count(*) filter (where state = 'dead') as failed,
                count(*) filter (where replied_at is not null) as replied,
                count(*) filter (where human) as human_replied,
                count(*) filter (where answered) as answered,
                percentile_cont(0.5) within group (order by extract(epoch from finished_at - missed_at))
                    filter (where state = 'sent' and finished_at is not null and missed_at is not null) as median_text_secs
           from fact
          group by grouping sets ((), (number_id), (office_id), (agent_id))",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .fetch_all(&mut *conn)
    .await?;
    // Missed calls (every miss, also from callers who cannot be texted), by the same groups.
    let missed: Vec<(String, Option<i64>, i64)> = sqlx::query_as(
        "select case when grouping(c.number_id) = 0 then 'number'
                     when grouping(n.office_id) = 0 then 'office'
                     when grouping(cv.assigned_agent_id) = 0 then 'agent'
                     else 'all' end,
                coalesce(case when grouping(c.number_id) = 0 then c.number_id end,
                         case when grouping(n.office_id) = 0 then n.office_id end,
                         case when grouping(cv.assigned_agent_id) = 0 then cv.assigned_agent_id end),
                count(*)
           from call c
           join number n on n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
           left join conversation c0 on c0.contact_id = c.contact_id
           left join conversation cv on cv.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
          where c.brokerage_id = $1 and c.started_at >= $2 and c.started_at < $3 and c.outcome = 'missed'
            and ($4::bigint is null or n.office_id = $4)
            and ($5::bigint is null or n.number_id = $5)
            and ($6::bigint is null or cv.assigned_agent_id = $6)
          group by grouping sets ((), (c.number_id), (n.office_id), (cv.assigned_agent_id))",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .fetch_all(conn)
    .await?;
    for (kind, id, count) in missed {
        match rows
            .iter_mut()
            .find(|r| r.group_kind == kind && r.group_id == id)
        {
            Some(r) => r.missed_calls = count,
            None => rows.push(FunnelRow {
                group_kind: kind,
                group_id: id,
                missed_calls: count,
                ..FunnelRow::default()
            }),
        }
    }
    if !rows.iter().any(|r| r.group_kind == "all") {
        rows.push(FunnelRow {
            group_kind: "all".into(),
            ..FunnelRow::default()
        });
    }
    Ok(rows)
}

/// Lead replies answered by a person in the period, by the same groups: the median wait, and
/// how many are still waiting.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ReplyRow {
    pub group_kind: String,
    pub group_id: Option<i64>,
    pub answered: i64,
    pub waiting: i64,
    pub escalated: i64,
    pub median_secs: Option<f64>,
}

pub async fn reply_times(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<ReplyRow>> {
    Ok(sqlx::query_as::<_, ReplyRow>(
        "select case when grouping(w.number_id) = 0 then 'number'
                     when grouping(n.office_id) = 0 then 'office'
                     when grouping(w.agent_id) = 0 then 'agent'
                     else 'all' end as group_kind,
                coalesce(case when grouping(w.number_id) = 0 then w.number_id end,
                         case when grouping(n.office_id) = 0 then n.office_id end,
                         case when grouping(w.agent_id) = 0 then w.agent_id end) as group_id,
                count(*) filter (where w.answered_at is not null and w.answered_by not in ('deleted', 'merged', 'opted_out', 'do_not_text')) as answered,
                count(*) filter (where w.answered_at is null) as waiting,
                count(*) filter (where w.escalated_at is not null) as escalated,
                percentile_cont(0.5) within group (order by extract(epoch from w.answered_at - w.waiting_since))
                    filter (where w.answered_at is not null and w.answered_by not in ('deleted', 'merged', 'opted_out', 'do_not_text')) as median_secs
           from reply_wait w
           join number n on n.brokerage_id = w.brokerage_id and n.number_id = w.number_id
          where w.brokerage_id = $1 and w.waiting_since >= $2 and w.waiting_since < $3
            and ($4::bigint is null or n.office_id = $4)
            and ($5::bigint is null or w.number_id = $5)
            and ($6::bigint is null or w.agent_id = $6)
          group by grouping sets ((), (w.number_id), (n.office_id), (w.agent_id))",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .fetch_all(conn)
    .await?)
}

/// Texts to leads in the period: sent, delivered, failed; and opt-outs among their recipients.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct DeliveryRow {
    pub sent: i64,
    pub delivered: i64,
    pub undelivered: i64,
    pub recipients: i64,
    pub opted_out: i64,
}

pub async fn delivery(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<DeliveryRow> {
    Ok(sqlx::query_as::<_, DeliveryRow>(
        "with sent as (
            select m.contact_id, m.carrier_status, m.occurred_at
              from message m
              join number n on n.brokerage_id = m.brokerage_id and n.number_id = m.number_id
              left join conversation c0 on c0.contact_id = m.contact_id
              left join conversation cv on cv.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
             where m.brokerage_id = $1 and m.direction = 'outbound' and m.send_state = 'sent'
               and m.kind in ('text_back', 'follow_up', 'manual')
               and m.occurred_at >= $2 and m.occurred_at < $3
               and ($4::bigint is null or n.office_id = $4)
               and ($5::bigint is null or n.number_id = $5)
               and ($6::bigint is null or cv.assigned_agent_id = $6)
         )
         select count(*) as sent,
                count(*) filter (where carrier_status in ('delivered', 'read')) as delivered,
                count(*) filter (where carrier_status in ('undelivered', 'failed')) as undelivered,
                count(distinct contact_id) as recipients,
                (select count(distinct s.contact_id) from sent s
                  where exists (select 1 from contact ct join consent_event e on e.brokerage_id = ct.brokerage_id and e.phone = ct.phone
                                 where ct.brokerage_id = $1 and ct.contact_id = s.contact_id and e.event = 'opt_out'
                                   and e.at >= s.occurred_at and e.at < $3)) as opted_out
           from sent",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .fetch_one(conn)
    .await?)
}

/// Texts the gate did not send in the period, by reason (skips; deferrals are not counted:
/// they go later).
pub async fn suppressed_by_reason(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "select d.reason, count(*)
           from gate_decision d
           left join number n on n.brokerage_id = d.brokerage_id and n.number_id = d.number_id
           left join conversation c0 on c0.contact_id = d.contact_id
           left join conversation cv on cv.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
          where d.brokerage_id = $1 and d.decision = 'skip' and d.kind <> 'agent_alert'
            and d.decided_at >= $2 and d.decided_at < $3
            and ($4::bigint is null or n.office_id = $4)
            and ($5::bigint is null or n.number_id = $5)
            and ($6::bigint is null or cv.assigned_agent_id = $6)
          group by d.reason order by count(*) desc, d.reason",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .fetch_all(conn)
    .await?)
}

/// Text-backs sent in the period by template variant, and how many of their recipients replied.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VariantRow {
    pub variant: i32,
    pub sent: i64,
    pub replied: i64,
}

pub async fn variants(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<VariantRow>> {
    Ok(sqlx::query_as::<_, VariantRow>(
        "select coalesce(m.template_variant, 0) as variant, count(*) as sent,
                count(*) filter (where exists (
                    select 1 from message r where r.brokerage_id = m.brokerage_id and r.contact_id = m.contact_id
                       and r.direction = 'inbound' and r.keyword_class in ('reply', 'review') and r.occurred_at > m.occurred_at)) as replied
           from message m
           join number n on n.brokerage_id = m.brokerage_id and n.number_id = m.number_id
           left join conversation c0 on c0.contact_id = m.contact_id
           left join conversation cv on cv.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
          where m.brokerage_id = $1 and m.direction = 'outbound' and m.kind = 'text_back' and m.send_state = 'sent'
            and m.occurred_at >= $2 and m.occurred_at < $3
            and ($4::bigint is null or n.office_id = $4)
            and ($5::bigint is null or n.number_id = $5)
            and ($6::bigint is null or cv.assigned_agent_id = $6)
          group by 1 order by 1",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .fetch_all(conn)
    .await?)
}

/// Missed-call leads by local hour of the miss (`time_zone`), and of them the ones texted.
pub async fn by_hour(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
    time_zone: &str,
) -> Result<([i64; 24], [i64; 24])> {
    let rows: Vec<(i32, i64, i64)> = sqlx::query_as(
        "select extract(hour from ca.outcome_at at time zone $7)::int as hour, count(*),
                count(*) filter (where j.state = 'sent')
           from job j
           join call ca on ca.call_id = j.call_id
           join number n on n.brokerage_id = ca.brokerage_id and n.number_id = ca.number_id
           left join conversation c0 on c0.contact_id = j.contact_id
           left join conversation cv on cv.conversation_id = coalesce(c0.merged_into, c0.conversation_id)
          where j.brokerage_id = $1 and j.kind = 'text_back' and j.created_at >= $2 and j.created_at < $3
            and ca.outcome_at is not null
            and ($4::bigint is null or n.office_id = $4)
            and ($5::bigint is null or n.number_id = $5)
            and ($6::bigint is null or cv.assigned_agent_id = $6)
          group by 1",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .bind(time_zone)
    .fetch_all(conn)
    .await?;
    let mut missed = [0i64; 24];
    let mut texted = [0i64; 24];
    for (hour, m, t) in rows {
        if let Ok(h) = usize::try_from(hour)
            && h < 24
        {
            missed[h] = m;
            texted[h] = t;
        }
    }
    Ok((missed, texted))
}

/// Names for the dashboard's filters and rows: offices, numbers (with their office), agents.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub offices: Vec<(i64, String)>,
    pub numbers: Vec<(i64, String, Option<String>, i64)>,
    pub agents: Vec<(i64, String, i64)>,
}

pub async fn names(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<Names> {
    let offices = sqlx::query_as(
        "select office_id, name from office where brokerage_id = $1 order by is_active desc, name",
    )
    .bind(brokerage)
    .fetch_all(&mut *conn)
    .await?;
    let numbers = sqlx::query_as(
        "select number_id, e164, listing, office_id from number where brokerage_id = $1 order by is_active desc, e164",
    )
    .bind(brokerage)
    .fetch_all(&mut *conn)
    .await?;
    let agents = sqlx::query_as(
        "select agent_id, name, office_id from agent where brokerage_id = $1 order by is_active desc, name",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?;
    Ok(Names {
        offices,
        numbers,
        agents,
    })
}

/// The brokerage's text-back template variants, as applied (for the variant table).
pub async fn templates(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<Vec<String>> {
    let json: sqlx::types::Json<Vec<String>> =
        sqlx::query_scalar("select text_back_templates from brokerage where brokerage_id = $1")
            .bind(brokerage)
            .fetch_one(conn)
            .await?;
    Ok(json.0)
}
