//! The recovery dashboard's counts (docs/inbox.md "The dashboard").
//!
//! The unit of the funnel is a **missed-call lead**: one `text_back` job, i.e. one missed-call
//! episode (docs/architecture.md step 2: further misses in an episode re-arm the same job). For each lead
//! created in the period: texted (the job `sent`) or suppressed by its reason, a landline task,
//! cancelled because the caller reconnected or wrote first; then whether the lead replied after
//! the text, whether a person replied after that, and whether a call with them connected after
//! the miss. Leads are attributed to the number that was called, its office, and the
//! conversation's agent when the lead came in (the `lead` table keeps them, with the
//! milestones, so a reassignment does not rewrite history and the funnel reads one row per
//! lead).
//!
//! Every query binds `$1` brokerage, `$2`/`$3` the period, `$4` office, `$5` number, `$6`
//! agent (the last three null for "all"), and reads by period through the indexes of
//! migrations/0004 (`lead_time`, `call_started`, `message_time`, `gate_decision_time`,
//! `reply_wait_time`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, Result};
use textback_core::domain::funnel::{Group, LeadFact};
use textback_core::domain::language::Language;

/// Which slice of the brokerage the dashboard shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slice {
    pub office_id: Option<i64>,
    pub number_id: Option<i64>,
    pub agent_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct LeadRow {
    number_id: i64,
    office_id: i64,
    agent_id: Option<i64>,
    state: String,
    reason: Option<String>,
    replied: bool,
    human_replied: bool,
    answered: bool,
    hour: i32,
    variant: Option<i32>,
    text_secs: Option<f64>,
    language: String,
}

/// The period's leads, one compact row each, for `domain::funnel::tally` (counting them there
/// measured 2–3× faster than six grouping sets of filtered aggregates in SQL: 30 days of a
/// million-call year, 50k leads).
pub async fn lead_facts(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
    time_zone: &str,
) -> Result<Vec<LeadFact>> {
    let rows = sqlx::query_as::<_, LeadRow>(
        "select number_id, office_id, agent_id, state, reason,
                replied_at is not null as replied, human_at is not null as human_replied,
                answered_at is not null as answered,
                extract(hour from missed_at at time zone $7)::int as hour,
                case when texted_at is not null then variant end as variant,
                extract(epoch from texted_at - missed_at)::float8 as text_secs,
                coalesce(ct.language, b.default_language) as language
           from lead l
           join contact ct on ct.brokerage_id = l.brokerage_id and ct.contact_id = l.contact_id
           join brokerage b on b.brokerage_id = l.brokerage_id
          where l.brokerage_id = $1 and l.created_at >= $2 and l.created_at < $3
            and ($4::bigint is null or l.office_id = $4)
            and ($5::bigint is null or l.number_id = $5)
            and ($6::bigint is null or l.agent_id = $6)",
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
    Ok(rows
        .into_iter()
        .map(|r| LeadFact {
            number_id: r.number_id,
            office_id: r.office_id,
            agent_id: r.agent_id,
            state: r.state,
            reason: r.reason,
            replied: r.replied,
            human_replied: r.human_replied,
            answered: r.answered,
            hour: u32::try_from(r.hour).unwrap_or(0),
            variant: r.variant,
            text_secs: r.text_secs,
            language: Language::parse(&r.language).unwrap_or(Language::En),
        })
        .collect())
}

/// Missed-call leads and of them the texted ones, per local day of `time_zone`, for the
/// trend chart (`from`: the start of the period before the one shown).
pub async fn leads_by_day(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
    time_zone: &str,
) -> Result<Vec<(chrono::NaiveDate, i64, i64)>> {
    Ok(sqlx::query_as(
        "select (created_at at time zone $7)::date as day, count(*),
                count(*) filter (where texted_at is not null)
           from lead
          where brokerage_id = $1 and created_at >= $2 and created_at < $3
            and ($4::bigint is null or office_id = $4)
            and ($5::bigint is null or number_id = $5)
            and ($6::bigint is null or agent_id = $6)
          group by 1 order by 1",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .bind(time_zone)
    .fetch_all(conn)
    .await?)
}

/// Missed calls in the period (every miss, repeats and callers who cannot be texted included):
/// the slice's total, by number and by office. For an agent's slice, the misses of the callers
/// of the agent's leads.
pub async fn missed_calls(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<(Group, i64)>> {
    let rows: Vec<(String, Option<i64>, i64)> = sqlx::query_as(
        "select case when grouping(c.number_id) = 0 then 'number'
                     when grouping(n.office_id) = 0 then 'office'
                     else 'all' end,
                coalesce(case when grouping(c.number_id) = 0 then c.number_id end,
                         case when grouping(n.office_id) = 0 then n.office_id end),
                count(*)
           from call c
           join number n on n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
          where c.brokerage_id = $1 and c.started_at >= $2 and c.started_at < $3 and c.outcome = 'missed'
            and ($4::bigint is null or n.office_id = $4)
            and ($5::bigint is null or n.number_id = $5)
            and ($6::bigint is null or c.contact_id in (select contact_id from lead where brokerage_id = $1 and agent_id = $6
                                                          and created_at >= $2 and created_at < $3))
          group by grouping sets ((), (c.number_id), (n.office_id))",
    )
    .bind(brokerage)
    .bind(from)
    .bind(until)
    .bind(slice.office_id)
    .bind(slice.number_id)
    .bind(slice.agent_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, id, n)| match (kind.as_str(), id) {
            ("number", Some(id)) => Some((Group::Number(id), n)),
            ("office", Some(id)) => Some((Group::Office(id), n)),
            ("all", _) => Some((Group::All, n)),
            _ => None,
        })
        .collect())
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
                count(*) filter (where w.answered_at is not null and w.answered_by not in ('deleted', 'merged', 'opted_out', 'do_not_text', 'closed')) as answered,
                count(*) filter (where w.answered_at is null) as waiting,
                count(*) filter (where w.escalated_at is not null) as escalated,
                percentile_cont(0.5) within group (order by extract(epoch from w.answered_at - w.waiting_since))
                    filter (where w.answered_at is not null and w.answered_by not in ('deleted', 'merged', 'opted_out', 'do_not_text', 'closed')) as median_secs
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
             where m.brokerage_id = $1 and m.occurred_at >= $2 and m.occurred_at < $3
               and m.direction = 'outbound' and m.send_state = 'sent'
               and m.kind in ('text_back', 'follow_up', 'manual')
               and ($4::bigint is null or n.office_id = $4)
               and ($5::bigint is null or n.number_id = $5)
               and ($6::bigint is null or m.contact_id in (select contact_id from conversation where assigned_agent_id = $6))
         ),
         texted as (select contact_id, min(occurred_at) as first from sent group by contact_id),
         opted as (
            select ct.contact_id, min(e.at) as at
              from consent_event e join contact ct on ct.brokerage_id = e.brokerage_id and ct.phone = e.phone
             where e.brokerage_id = $1 and e.event = 'opt_out' and e.at >= $2 and e.at < $3
             group by ct.contact_id
         )
         select (select count(*) from sent) as sent,
                (select count(*) from sent where carrier_status in ('delivered', 'read')) as delivered,
                (select count(*) from sent where carrier_status in ('undelivered', 'failed')) as undelivered,
                (select count(*) from texted) as recipients,
                (select count(*) from texted t join opted o using (contact_id) where o.at >= t.first) as opted_out",
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
          where d.brokerage_id = $1 and d.decided_at >= $2 and d.decided_at < $3
            and d.decision = 'skip' and d.kind in ('text_back', 'follow_up', 'manual')
            and ($4::bigint is null or n.office_id = $4)
            and ($5::bigint is null or n.number_id = $5)
            and ($6::bigint is null or d.contact_id in (select contact_id from conversation where assigned_agent_id = $6))
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

/// Inbound calls with an outcome in the period: the slice's total (`number_id` null), then by
/// number. For an agent's slice, the calls that rang the agent.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct CallRateRow {
    pub number_id: Option<i64>,
    pub calls: i64,
    pub answered: i64,
    pub missed: i64,
}

pub async fn call_rates(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<CallRateRow>> {
    Ok(sqlx::query_as::<_, CallRateRow>(
        "select case when grouping(c.number_id) = 0 then c.number_id end as number_id,
                count(*) as calls,
                count(*) filter (where c.outcome = 'answered') as answered,
                count(*) filter (where c.outcome = 'missed') as missed
           from call c
           join number n on n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
          where c.brokerage_id = $1 and c.started_at >= $2 and c.started_at < $3 and c.outcome is not null
            and ($4::bigint is null or n.office_id = $4)
            and ($5::bigint is null or n.number_id = $5)
            and ($6::bigint is null or $6 = any(c.rang_agent_ids) or c.screened_agent_id = $6)
          group by grouping sets ((), (c.number_id))",
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

/// Per agent (`agent_id` null: the total): calls with an outcome that rang the agent, and of
/// them the ones the agent answered. Who answered is the agent who pressed 1 at the screen, or
/// the one agent a call rang. A call that rang several agents of a number that does not screen
/// has no known answerer: it is left out here (the numbers' rates count it) and counted in
/// `unknown` of the total.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AgentCallRow {
    pub agent_id: Option<i64>,
    pub rang: i64,
    pub answered: i64,
    pub unknown: i64,
}

pub async fn agent_call_rates(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<AgentCallRow>> {
    Ok(sqlx::query_as::<_, AgentCallRow>(
        "with rung as (
            select r.agent_id, c.call_id,
                   c.outcome = 'answered'
                       and coalesce(c.screened_agent_id,
                                    case when cardinality(c.rang_agent_ids) = 1 then c.rang_agent_ids[1] end) = r.agent_id
                       as answered,
                   cardinality(c.rang_agent_ids) = 1 or c.screened_agent_id is not null
                       or (n.screen and c.outcome <> 'answered') as known
              from call c
              join number n on n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
              cross join lateral unnest(c.rang_agent_ids) as r(agent_id)
             where c.brokerage_id = $1 and c.started_at >= $2 and c.started_at < $3
               and c.outcome is not null and c.rang_agent_ids is not null
               and ($4::bigint is null or n.office_id = $4)
               and ($5::bigint is null or n.number_id = $5)
               and ($6::bigint is null or r.agent_id = $6)
         )
         select case when grouping(agent_id) = 0 then agent_id end as agent_id,
                count(*) filter (where known) as rang,
                count(*) filter (where known and answered) as answered,
                count(distinct call_id) filter (where not known) as unknown
           from rung
          group by grouping sets ((), (agent_id))",
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

/// Speed to lead per agent: from the first alert texted to the agent about a lead since the
/// agent last answered that lead, to the agent's next answer (a text to the lead, when the
/// agent sent it, or a callback of theirs that connected). Alerts about the lead are every
/// alert on its conversation but the one-off notices, and an offer of a lead counts only for
/// the agent who claimed it. `alerted`: such first alerts in the period; `answered`: of them,
/// the ones the agent answered; the median and 90th percentile of those waits.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SpeedRow {
    pub agent_id: i64,
    pub alerted: i64,
    pub answered: i64,
    pub median_secs: Option<f64>,
    pub p90_secs: Option<f64>,
}

pub async fn speed_to_lead(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<SpeedRow>> {
    Ok(sqlx::query_as::<_, SpeedRow>(
        "with alerted as (
            select d.agent_id, d.conversation_id, d.decided_at,
                   (select min(x.at) from (
                        select j.created_at as at
                          from message m
                          join job j on j.job_id = m.job_id
                         where m.brokerage_id = $1 and m.direction = 'outbound' and m.kind = 'manual'
                           and m.contact_id in (select k.contact_id from conversation k
                                                 where k.brokerage_id = $1
                                                   and (k.conversation_id = d.conversation_id or k.merged_into = d.conversation_id))
                           and m.occurred_at >= d.decided_at and j.created_at >= d.decided_at
                           and j.kind = 'agent_reply' and j.payload->>'agent' = ag.email
                        union all
                        select cb.bridged_at
                          from callback cb
                         where cb.brokerage_id = $1 and cb.agent_id = d.agent_id
                           and cb.contact_id in (select k.contact_id from conversation k
                                                  where k.brokerage_id = $1
                                                    and (k.conversation_id = d.conversation_id or k.merged_into = d.conversation_id))
                           and cb.bridged_at >= d.decided_at
                    ) x) as answered_at
              from alert_delivery d
              join alert al on al.alert_id = d.alert_id
              join agent ag on ag.brokerage_id = d.brokerage_id and ag.agent_id = d.agent_id
              join conversation cv on cv.brokerage_id = d.brokerage_id and cv.conversation_id = d.conversation_id
              join number n on n.brokerage_id = cv.brokerage_id and n.number_id = cv.number_id
             where d.brokerage_id = $1 and d.decided_at >= $2 and d.decided_at < $3 and d.decision = 'send'
               and al.reason <> 'notice'
               and (al.reason <> 'lead_offer'
                    or (select o.claimed_by from claim_offer o
                         where o.brokerage_id = $1 and o.conversation_id = d.conversation_id
                           and o.offered_at <= d.decided_at
                         order by o.offered_at desc limit 1) = d.agent_id)
               and ($4::bigint is null or n.office_id = $4)
               and ($5::bigint is null or n.number_id = $5)
               and ($6::bigint is null or d.agent_id = $6)
         ),
         episode as (
            select agent_id, min(decided_at) as alerted_at, answered_at
              from alerted
             group by agent_id, conversation_id, answered_at
         )
         select agent_id, count(*) as alerted, count(answered_at) as answered,
                percentile_cont(0.5) within group (order by extract(epoch from answered_at - alerted_at))
                    filter (where answered_at is not null) as median_secs,
                percentile_cont(0.9) within group (order by extract(epoch from answered_at - alerted_at))
                    filter (where answered_at is not null) as p90_secs
           from episode
          group by agent_id",
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

/// Routing per agent (and `whole`: the total) in the period: leads routed to the agent
/// (in turn, or to a manager because nobody was available), first-to-claim offers made to
/// them, offers they won and the median offer → claim, leads the escalation moved away from
/// them and to them. The total row counts each offer and event once; `timed_out` its offers
/// nobody claimed in time, `to_managers` the leads handed to the managers.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct RoutingRow {
    /// The total row (else one agent's, `agent_id` null for facts of nobody's).
    pub whole: bool,
    pub agent_id: Option<i64>,
    pub routed: i64,
    pub offered: i64,
    pub claimed: i64,
    pub median_claim_secs: Option<f64>,
    pub moved_away: i64,
    pub moved_to: i64,
    pub timed_out: i64,
    pub to_managers: i64,
}

pub async fn routing(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<RoutingRow>> {
    Ok(sqlx::query_as::<_, RoutingRow>(
        "with ev as (
            select e.conversation_event_id, e.kind, e.by_agent_id, e.to_agent_id
              from conversation_event e
              join conversation cv on cv.brokerage_id = e.brokerage_id and cv.conversation_id = e.conversation_id
              join number n on n.brokerage_id = cv.brokerage_id and n.number_id = cv.number_id
             where e.brokerage_id = $1 and e.at >= $2 and e.at < $3
               and e.kind in ('routed', 'reassigned', 'to_managers')
               and ($4::bigint is null or n.office_id = $4)
               and ($5::bigint is null or n.number_id = $5)
         ),
         offers as (
            select o.claim_offer_id, o.agent_ids, o.outcome, o.claimed_by,
                   extract(epoch from o.ended_at - o.offered_at)::float8 as secs
              from claim_offer o
              join number n on n.brokerage_id = o.brokerage_id and n.number_id = o.number_id
             where o.brokerage_id = $1 and o.offered_at >= $2 and o.offered_at < $3
               and ($4::bigint is null or n.office_id = $4)
               and ($5::bigint is null or n.number_id = $5)
         ),
         -- `involves`: the agents a fact without one (a lead to the managers, an offer nobody
         -- claimed) is about, for an agent's slice.
         facts (agent_id, what, id, secs, involves) as (
            select to_agent_id, 'routed', conversation_event_id, null::float8, null::bigint[] from ev
             where to_agent_id is not null and (kind = 'routed' or (kind = 'to_managers' and by_agent_id is null))
            union all
            select by_agent_id, 'moved_away', conversation_event_id, null, null from ev
             where kind in ('reassigned', 'to_managers') and by_agent_id is not null
               and to_agent_id is distinct from by_agent_id
            union all
            select to_agent_id, 'moved_to', conversation_event_id, null, null from ev
             where kind in ('reassigned', 'to_managers') and by_agent_id is not null
               and to_agent_id is not null and to_agent_id <> by_agent_id
            union all
            select null, 'to_managers', conversation_event_id, null, array[by_agent_id, to_agent_id] from ev
             where kind = 'to_managers'
            union all
            select a, 'offered', claim_offer_id, null, null from offers cross join lateral unnest(agent_ids) as a
            union all
            select claimed_by, 'claimed', claim_offer_id, secs, null from offers where outcome = 'claimed'
            union all
            select null, 'timed_out', claim_offer_id, null, agent_ids from offers where outcome = 'timed_out'
         ),
         mine as (
            select * from facts
             where $6::bigint is null or agent_id = $6 or (agent_id is null and $6 = any(involves))
         )
         select grouping(agent_id) = 1 as whole, agent_id,
                count(distinct id) filter (where what = 'routed') as routed,
                count(distinct id) filter (where what = 'offered') as offered,
                count(distinct id) filter (where what = 'claimed') as claimed,
                percentile_cont(0.5) within group (order by secs) filter (where what = 'claimed') as median_claim_secs,
                count(distinct id) filter (where what = 'moved_away') as moved_away,
                count(distinct id) filter (where what = 'moved_to') as moved_to,
                count(distinct id) filter (where what = 'timed_out') as timed_out,
                count(distinct id) filter (where what = 'to_managers') as to_managers
           from mine
          group by grouping sets ((), (agent_id))",
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

/// Leads from the website and lead sources received in the period (docs/leads.md), by source
/// (`source` null: the total), with how many were texted (their lead text taken by the carrier
/// within a day), replied (a text from them after the lead that is not a keyword) and were
/// answered by a person (an agent's text after the lead). For an agent's slice, the leads of
/// conversations they own now.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct WebLeadRow {
    pub source: Option<String>,
    pub received: i64,
    pub texted: i64,
    pub replied: i64,
    pub answered: i64,
}

pub async fn web_leads(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    slice: Slice,
) -> Result<Vec<WebLeadRow>> {
    Ok(sqlx::query_as::<_, WebLeadRow>(
        "select case when grouping(t.src) = 0 then t.src end as source,
                count(*) as received,
                count(*) filter (where t.texted) as texted,
                count(*) filter (where t.replied) as replied,
                count(*) filter (where t.answered) as answered
           from (
             select coalesce(w.source, 'form ' || f.slug, k.name, 'the website') as src,
                    exists (select 1 from message m
                             where m.brokerage_id = w.brokerage_id and m.contact_id = w.contact_id
                               and m.direction = 'outbound' and m.kind = 'lead_text' and m.send_state = 'sent'
                               and m.occurred_at >= w.created_at and m.occurred_at < w.created_at + interval '1 day') as texted,
                    exists (select 1 from message m
                             where m.brokerage_id = w.brokerage_id and m.contact_id = w.contact_id
                               and m.direction = 'inbound' and m.occurred_at >= w.created_at
                               and coalesce(m.keyword_class, 'reply') = 'reply') as replied,
                    exists (select 1 from message m
                             where m.brokerage_id = w.brokerage_id and m.contact_id = w.contact_id
                               and m.direction = 'outbound' and m.kind = 'manual' and m.send_state = 'sent'
                               and m.occurred_at >= w.created_at) as answered
               from web_lead w
               join number n on n.brokerage_id = w.brokerage_id and n.number_id = w.number_id
               left join web_form f on f.web_form_id = w.web_form_id
               left join api_key k on k.api_key_id = w.api_key_id
               left join conversation c on c.brokerage_id = w.brokerage_id and c.contact_id = w.contact_id
              where w.brokerage_id = $1 and w.created_at >= $2 and w.created_at < $3
                and ($4::bigint is null or n.office_id = $4)
                and ($5::bigint is null or n.number_id = $5)
                and ($6::bigint is null or c.assigned_agent_id = $6)
           ) t
          group by grouping sets ((), (t.src))",
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
