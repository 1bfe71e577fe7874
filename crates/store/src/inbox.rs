//! What the inbox reads: the conversation list and one conversation's thread, each scoped to
//! what the person may see (docs/inbox.md; `domain::access::Scope`).
//!
//! Every query here binds the scope as `$1` brokerage, `$2` role, `$3` office, `$4` agent, and
//! filters with the one predicate below, so a conversation of another brokerage or office
//! is simply not found (a 404, never a 403 that would confirm it exists).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, CallId, ContactId, MessageId, Result};
use textback_core::domain::access::Scope;

/// Visibility (docs/security.md §2, docs/inbox.md "Who sees what"): an admin sees the brokerage, a manager the
/// conversations of their office's numbers or assigned to their office's agents, an agent
/// those of their office's numbers or assigned to them. Aliases: `c` conversation, `n` its
/// number, `aa` its assigned agent (left join).
macro_rules! visible {
    () => {
        "c.brokerage_id = $1 and c.merged_into is null and c.deleted_at is null
         and ($2 = 'admin' or n.office_id = $3
              or ($2 = 'agent' and c.assigned_agent_id = $4)
              or ($2 = 'manager' and aa.office_id = $3))"
    };
}

/// The inbox filter `$6` (and `$4`, the agent, for "mine").
macro_rules! filter {
    () => {
        "($6 = 'open' and not c.is_closed
          or $6 = 'mine' and not c.is_closed and c.assigned_agent_id = $4
          or $6 = 'unassigned' and not c.is_closed and c.assigned_agent_id is null
          or $6 = 'waiting' and not c.is_closed and c.waiting_since is not null
          or $6 = 'closed' and c.is_closed
          or $6 = 'tasks' and exists (select 1 from task t where t.brokerage_id = c.brokerage_id and t.state = 'open'
               and t.contact_id in (select m.contact_id from conversation m
                                     where m.brokerage_id = c.brokerage_id and (m.conversation_id = c.conversation_id or m.merged_into = c.conversation_id))))"
    };
}

/// The joins [`visible!`] needs.
macro_rules! joins {
    () => {
        " join contact ct on ct.brokerage_id = c.brokerage_id and ct.contact_id = c.contact_id
          join number n on n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
          left join agent aa on aa.brokerage_id = c.brokerage_id and aa.agent_id = c.assigned_agent_id "
    };
}

/// The inbox's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Open,
    Mine,
    Unassigned,
    Waiting,
    Tasks,
    Closed,
}

impl Filter {
    pub const ALL: [Filter; 6] = [
        Filter::Open,
        Filter::Mine,
        Filter::Unassigned,
        Filter::Waiting,
        Filter::Tasks,
        Filter::Closed,
    ];

    pub fn parse(s: &str) -> Option<Filter> {
        Filter::ALL.into_iter().find(|f| f.key() == s)
    }

    pub fn key(self) -> &'static str {
        match self {
            Filter::Open => "open",
            Filter::Mine => "mine",
            Filter::Unassigned => "unassigned",
            Filter::Waiting => "waiting",
            Filter::Tasks => "tasks",
            Filter::Closed => "closed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Filter::Open => "All open",
            Filter::Mine => "Mine",
            Filter::Unassigned => "Unassigned",
            Filter::Waiting => "Waiting",
            Filter::Tasks => "Callbacks",
            Filter::Closed => "Closed",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListRow {
    pub conversation_id: i64,
    pub phone: String,
    pub name: Option<String>,
    pub listing: Option<String>,
    pub assigned_name: Option<String>,
    pub is_closed: bool,
    pub waiting_since: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub last_activity_at: DateTime<Utc>,
    pub review_hold: bool,
    /// On top of the list for its review hold (held and open): here whatever its recency, so
    /// the next page is found from the other rows.
    pub pinned: bool,
    pub suppressed: bool,
    pub unread: bool,
    pub open_tasks: i64,
    pub last_body: Option<String>,
    pub last_direction: Option<String>,
    /// The latest call's outcome (`answered`, `missed`, `unclassified`, or none yet).
    pub last_call_outcome: Option<String>,
}

/// Conversations newest first, those on review hold first of all (docs/compliance.md R3), at most
/// `limit`, older than `before` when given. Within the page, those whose lead waits for an
/// answer come before the rest (a lead who wrote sorts above one who opted out); which
/// conversations are on the page is still decided by recency alone, so paging by the oldest
/// unheld row's time skips none.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    user_id: i64,
    filter: Filter,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<ListRow>> {
    // The page is chosen first, from cheap columns, so that only its rows pay for the last
    // message, the unread state and the task count: held conversations (few, on a partial
    // index), then the newest by `conversation_recent`, which the scan stops reading after
    // `limit` matches however many conversations the brokerage has.
    Ok(sqlx::query_as::<_, ListRow>(concat!(
        "with held as (
            select distinct coalesce(m.merged_into, m.conversation_id) as conversation_id
              from contact x join conversation m on m.brokerage_id = x.brokerage_id and m.contact_id = x.contact_id
             where x.brokerage_id = $1 and x.review_hold_at is not null
         ),
         page as materialized (
            (select c.conversation_id, c.last_activity_at, true as held
               from conversation c",
        joins!(),
        "     where ",
        visible!(),
        "       and ", filter!(),
        "       and not c.is_closed and c.conversation_id in (select conversation_id from held)
               and $7::timestamptz is null
              limit $8)
            union all
            (select c.conversation_id, c.last_activity_at, false as held
               from conversation c",
        joins!(),
        "     where ",
        visible!(),
        "       and ", filter!(),
        "       and not (not c.is_closed and c.conversation_id in (select conversation_id from held))
               and ($7::timestamptz is null or c.last_activity_at < $7)
              order by c.last_activity_at desc
              limit $8)
         ),
         kept as (select * from page order by held desc, last_activity_at desc limit $8)
         select c.conversation_id, ct.phone, ct.name, n.listing, aa.name as assigned_name, c.is_closed,
                c.waiting_since, c.escalated_at, c.last_activity_at,
                c.conversation_id in (select conversation_id from held) as review_hold,
                p.held as pinned,
                exists (select 1 from suppression s where s.brokerage_id = c.brokerage_id and s.phone = ct.phone and s.lifted_at is null) as suppressed,
                coalesce(c.last_inbound_at > coalesce(r.read_at, '-infinity'), false) as unread,
                (select count(*) from task t where t.brokerage_id = c.brokerage_id and t.state = 'open'
                    and t.contact_id in (select m.contact_id from conversation m
                                          where m.brokerage_id = c.brokerage_id and (m.conversation_id = c.conversation_id or m.merged_into = c.conversation_id))) as open_tasks,
                lm.body as last_body, lm.direction as last_direction, lc.outcome as last_call_outcome
           from kept p
           join conversation c on c.conversation_id = p.conversation_id",
        joins!(),
        " left join conversation_read r on r.user_id = $5 and r.conversation_id = c.conversation_id
          left join lateral (select case when m.body = '' and m.num_media > 0 then '[photo]' else m.body end as body,
                                    direction from message m
                              where m.brokerage_id = c.brokerage_id and m.contact_id = c.contact_id
                                and m.occurred_at >= coalesce(c.visible_from, '-infinity')
                              order by m.occurred_at desc, m.message_id desc limit 1) lm on true
          left join lateral (select outcome from call k
                              where k.brokerage_id = c.brokerage_id and k.contact_id = c.contact_id
                                and k.started_at >= coalesce(c.visible_from, '-infinity')
                              order by k.started_at desc limit 1) lc on true
          order by p.held desc, (c.waiting_since is not null and not c.is_closed) desc,
                   p.last_activity_at desc"
    ))
    .bind(scope_brokerage(scope))
    .bind(scope.role.as_str())
    .bind(scope.office_id)
    .bind(scope.agent_id)
    .bind(user_id)
    .bind(filter.key())
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

fn scope_brokerage(scope: &Scope) -> BrokerageId {
    BrokerageId(scope.brokerage_id)
}

/// One conversation's heading: who, which number, its state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Head {
    pub conversation_id: i64,
    pub contact_id: ContactId,
    pub phone: String,
    pub name: Option<String>,
    pub number_id: i64,
    pub number_e164: String,
    pub listing: Option<String>,
    pub office_id: i64,
    pub office_name: String,
    pub assigned_agent_id: Option<i64>,
    pub assigned_name: Option<String>,
    pub is_closed: bool,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub waiting_since: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub taken_over_at: Option<DateTime<Utc>>,
    pub taken_over_by: Option<String>,
    pub review_hold_at: Option<DateTime<Utc>>,
    pub review_hold_message_id: Option<MessageId>,
    pub suppressed: bool,
    pub visible_from: Option<DateTime<Utc>>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// The carrier code that said the number cannot take texts (until it texted us).
    pub cannot_text_code: Option<String>,
    /// The number's line type as Lookup last said.
    pub line_type: Option<String>,
    /// The contact's language and how it was decided (null: not known yet), and the
    /// brokerage's default.
    pub language: Option<String>,
    pub language_how: Option<String>,
    pub default_language: String,
}

/// The conversation if the person may see it; `None` for another brokerage's or office's
/// conversation, a merged or deleted one, or an id that does not exist.
pub async fn head(
    conn: &mut PgConnection,
    scope: &Scope,
    conversation_id: i64,
) -> Result<Option<Head>> {
    Ok(sqlx::query_as::<_, Head>(concat!(
        "select c.conversation_id, c.contact_id, ct.phone, ct.name, n.number_id, n.e164 as number_e164, n.listing,
                n.office_id, o.name as office_name, c.assigned_agent_id, aa.name as assigned_name,
                c.is_closed, c.closed_at, c.closed_by, c.waiting_since, c.escalated_at,
                c.taken_over_at, c.taken_over_by, hold.review_hold_at, hold.review_hold_message_id,
                exists (select 1 from suppression s where s.brokerage_id = c.brokerage_id and s.phone = ct.phone and s.lifted_at is null) as suppressed,
                c.visible_from, c.last_inbound_at, ct.cannot_text_code,
                (select ll.line_type from line_lookup ll where ll.brokerage_id = c.brokerage_id and ll.phone = ct.phone) as line_type,
                ct.language, ct.language_how,
                (select b.default_language from brokerage b where b.brokerage_id = c.brokerage_id) as default_language
           from conversation c",
        joins!(),
        " join office o on o.brokerage_id = n.brokerage_id and o.office_id = n.office_id
          left join lateral (
              select x.review_hold_at, x.review_hold_message_id
                from conversation m join contact x on x.brokerage_id = m.brokerage_id and x.contact_id = m.contact_id
               where m.brokerage_id = c.brokerage_id and (m.conversation_id = c.conversation_id or m.merged_into = c.conversation_id)
                 and x.review_hold_at is not null
               order by x.review_hold_at desc limit 1) hold on true
          where ",
        visible!(),
        " and c.conversation_id = $5"
    ))
    .bind(scope_brokerage(scope))
    .bind(scope.role.as_str())
    .bind(scope.office_id)
    .bind(scope.agent_id)
    .bind(conversation_id)
    .fetch_optional(conn)
    .await?)
}

/// Whether the person may see what happened at `at` to `contact`: the conversation it shows in
/// (its own, or the one it was merged into) is visible to them, and `at` is not from before
/// either was deleted (`visible_from`).
pub async fn contact_visible_at(
    conn: &mut PgConnection,
    scope: &Scope,
    contact: ContactId,
    at: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query_scalar(concat!(
        "select exists (select 1 from conversation c0
           join conversation c on c.brokerage_id = c0.brokerage_id and c.conversation_id = coalesce(c0.merged_into, c0.conversation_id)",
        joins!(),
        " where c0.brokerage_id = $1 and c0.contact_id = $5
            and $6 >= coalesce(c0.visible_from, '-infinity') and $6 >= coalesce(c.visible_from, '-infinity')
            and ",
        visible!(),
        ")"
    ))
    .bind(scope_brokerage(scope))
    .bind(scope.role.as_str())
    .bind(scope.office_id)
    .bind(scope.agent_id)
    .bind(contact)
    .bind(at)
    .fetch_one(conn)
    .await?)
}

/// The conversation of a contact by phone, if the person may see it (the search box).
pub async fn find_by_phone(
    conn: &mut PgConnection,
    scope: &Scope,
    phone: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(concat!(
        "select coalesce(c0.merged_into, c0.conversation_id)
           from contact x
           join conversation c0 on c0.brokerage_id = x.brokerage_id and c0.contact_id = x.contact_id
           join conversation c on c.brokerage_id = c0.brokerage_id and c.conversation_id = coalesce(c0.merged_into, c0.conversation_id)",
        joins!(),
        " where x.brokerage_id = $1 and x.phone = $5 and ",
        visible!()
    ))
    .bind(scope_brokerage(scope))
    .bind(scope.role.as_str())
    .bind(scope.office_id)
    .bind(scope.agent_id)
    .bind(phone)
    .fetch_optional(conn)
    .await?)
}

/// The phones of a conversation (its contact first, then merged ones): where a reply can go.
pub async fn phones(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
) -> Result<Vec<(ContactId, String)>> {
    Ok(sqlx::query_as(
        "select ct.contact_id, ct.phone from conversation c
           join contact ct on ct.brokerage_id = c.brokerage_id and ct.contact_id = c.contact_id
          where c.brokerage_id = $1 and (c.conversation_id = $2 or c.merged_into = $2)
          order by c.conversation_id = $2 desc, c.conversation_id",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageItem {
    pub message_id: MessageId,
    pub direction: String,
    pub kind: Option<String>,
    pub body: String,
    pub send_state: Option<String>,
    pub carrier_status: Option<String>,
    pub error_code: Option<i32>,
    pub review_reason: Option<String>,
    pub keyword_class: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub from_raw: String,
    pub to_raw: String,
    /// The agent who typed a manual message.
    pub author: Option<String>,
    /// The job that sent an outbound message (its photo is the job's).
    pub job_id: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallItem {
    pub call_id: CallId,
    pub started_at: DateTime<Utc>,
    pub outcome: Option<String>,
    pub from_raw: String,
    pub listing: Option<String>,
    pub answered_by: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteItem {
    pub note_id: i64,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskItem {
    pub task_id: i64,
    pub reason: String,
    pub detail: Option<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub done_by: Option<String>,
    pub done_reason: Option<String>,
    pub listing: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionItem {
    pub gate_decision_id: i64,
    pub kind: String,
    pub decision: String,
    pub reason: String,
    pub until: Option<DateTime<Utc>>,
    pub zones: Vec<String>,
    pub decided_at: DateTime<Utc>,
    pub cap_count: Option<i32>,
    pub cap_limit: Option<i32>,
    pub phone: String,
    /// The job is still waiting for that time (a deferral not yet superseded).
    pub job_pending: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentItem {
    pub event: String,
    pub source: String,
    pub who: String,
    pub at: DateTime<Utc>,
    /// Written consent (docs/leads.md): the wording as the lead saw it, the page, the address.
    pub raw_text: Option<String>,
    pub consent_url: Option<String>,
    pub consent_ip: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobItem {
    pub job_id: i64,
    pub kind: crate::jobs::JobKind,
    pub state: crate::jobs::JobState,
    pub reason: Option<String>,
    pub last_error: Option<String>,
    pub run_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
    /// A queued agent reply's text (until it is sent or refused).
    pub body: Option<String>,
    /// A queued agent reply's author (their email).
    pub agent: Option<String>,
}

/// What a person did to the conversation (assigned, closed, …), names resolved.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventItem {
    pub kind: String,
    pub by_name: Option<String>,
    pub to_name: Option<String>,
    pub at: DateTime<Utc>,
    /// The routing trace's agents (an offer's), by name, in order.
    pub agent_names: Option<Vec<String>>,
    pub detail: Option<String>,
}

/// Everything a thread shows, each list oldest first.
#[derive(Debug, Clone, Default)]
pub struct Thread {
    pub messages: Vec<MessageItem>,
    pub calls: Vec<CallItem>,
    pub notes: Vec<NoteItem>,
    pub tasks: Vec<TaskItem>,
    pub decisions: Vec<DecisionItem>,
    pub consent: Vec<ConsentItem>,
    pub jobs: Vec<JobItem>,
    pub events: Vec<EventItem>,
    pub callbacks: Vec<crate::callbacks::CallbackItem>,
    pub voicemails: Vec<crate::callbacks::VoicemailItem>,
    /// Leads from the website or a lead source (docs/leads.md).
    pub web_leads: Vec<crate::web_leads::LeadShown>,
    /// The messages' pictures and files (README.md "Pictures").
    pub media: Vec<crate::media::Item>,
}

/// The thread of a conversation the caller has already found with [`head`], from
/// `visible_from` on (a deleted conversation that came back starts again).
pub async fn thread(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
    visible_from: Option<DateTime<Utc>>,
) -> Result<Thread> {
    // Each number's events from its own conversation's start (a conversation deleted and back
    // starts again; merging it elsewhere does not bring back what its delete hid).
    let starts: Vec<(i64, Option<DateTime<Utc>>)> = sqlx::query_as(
        "select contact_id, visible_from from conversation
          where brokerage_id = $1 and (conversation_id = $2 or merged_into = $2)",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .fetch_all(&mut *conn)
    .await?;
    let contacts: Vec<i64> = starts.iter().map(|(c, _)| *c).collect();
    let since: Vec<DateTime<Utc>> = starts
        .iter()
        .map(|(_, v)| v.or(visible_from).unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
        .collect();
    let from = visible_from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let messages = sqlx::query_as::<_, MessageItem>(
        "select m.message_id, m.direction, m.kind, m.body, m.send_state, m.carrier_status, m.error_code,
                m.review_reason, m.keyword_class, m.occurred_at, m.from_raw, m.to_raw,
                (select a.name from job j join agent a on a.brokerage_id = j.brokerage_id and a.email = j.payload->>'agent'
                  where j.job_id = m.job_id and m.kind = 'manual') as author,
                m.job_id
           from message m
           join unnest($2::bigint[], $3::timestamptz[]) as v(contact_id, since)
             on v.contact_id = m.contact_id and m.occurred_at >= v.since
          where m.brokerage_id = $1
          order by m.occurred_at, m.message_id",
    )
    .bind(brokerage)
    .bind(&contacts)
    .bind(&since)
    .fetch_all(&mut *conn)
    .await?;
    let calls = sqlx::query_as::<_, CallItem>(
        "select c.call_id, c.started_at, c.outcome, c.from_raw, n.listing, a.name as answered_by
           from call c
           join number n on n.brokerage_id = c.brokerage_id and n.number_id = c.number_id
           left join agent a on a.brokerage_id = c.brokerage_id and a.agent_id = c.screened_agent_id
           join unnest($2::bigint[], $3::timestamptz[]) as v(contact_id, since)
             on v.contact_id = c.contact_id and c.started_at >= v.since
          where c.brokerage_id = $1
          order by c.started_at, c.call_id",
    )
    .bind(brokerage)
    .bind(&contacts)
    .bind(&since)
    .fetch_all(&mut *conn)
    .await?;
    let notes = sqlx::query_as::<_, NoteItem>(
        "select n.note_id, a.name as author, n.body, n.created_at
           from note n join agent a on a.brokerage_id = n.brokerage_id and a.agent_id = n.agent_id
           join conversation cv on cv.brokerage_id = n.brokerage_id and cv.conversation_id = n.conversation_id
          where n.brokerage_id = $1 and (cv.conversation_id = $2 or cv.merged_into = $2)
            and n.created_at >= coalesce(cv.visible_from, $3)
          order by n.created_at, n.note_id",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let tasks = sqlx::query_as::<_, TaskItem>(
        "select t.task_id, t.reason, t.detail, t.state, t.created_at, t.done_at, t.done_by, t.done_reason, n.listing
           from task t join number n on n.brokerage_id = t.brokerage_id and n.number_id = t.number_id
           join unnest($2::bigint[], $3::timestamptz[]) as v(contact_id, since)
             on v.contact_id = t.contact_id and (t.created_at >= v.since or t.state = 'open')
          where t.brokerage_id = $1
          order by t.created_at, t.task_id",
    )
    .bind(brokerage)
    .bind(&contacts)
    .bind(&since)
    .fetch_all(&mut *conn)
    .await?;
    let decisions = sqlx::query_as::<_, DecisionItem>(
        "select d.gate_decision_id, d.kind, d.decision, d.reason, d.until, d.zones, d.decided_at,
                d.cap_count, d.cap_limit, ct.phone,
                coalesce(j.state = 'scheduled' and j.run_at = d.until, false) as job_pending
           from gate_decision d
           join contact ct on ct.brokerage_id = d.brokerage_id and ct.contact_id = d.contact_id
           left join job j on j.job_id = d.job_id
           join unnest($2::bigint[], $3::timestamptz[]) as v(contact_id, since)
             on v.contact_id = d.contact_id and d.decided_at >= v.since
          where d.brokerage_id = $1 and d.decision <> 'allow'
          order by d.decided_at, d.gate_decision_id",
    )
    .bind(brokerage)
    .bind(&contacts)
    .bind(&since)
    .fetch_all(&mut *conn)
    .await?;
    let consent = sqlx::query_as::<_, ConsentItem>(
        "select e.event, e.source, e.who, e.at,
                case when e.event = 'written_consent' then e.raw_text end as raw_text,
                e.consent_url, host(e.consent_ip) as consent_ip
           from consent_event e
           join contact ct on ct.brokerage_id = e.brokerage_id and ct.phone = e.phone
           join unnest($2::bigint[], $3::timestamptz[]) as v(contact_id, since)
             on v.contact_id = ct.contact_id and e.at >= v.since
          where e.brokerage_id = $1
          order by e.at, e.consent_event_id",
    )
    .bind(brokerage)
    .bind(&contacts)
    .bind(&since)
    .fetch_all(&mut *conn)
    .await?;
    let events = sqlx::query_as::<_, EventItem>(
        "select e.kind, b.name as by_name, t.name as to_name, e.at,
                (select array_agg(a.name order by array_position(e.agent_ids, a.agent_id)) from agent a
                  where a.brokerage_id = e.brokerage_id and a.agent_id = any(e.agent_ids)) as agent_names,
                e.detail
           from conversation_event e
           join conversation cv on cv.brokerage_id = e.brokerage_id and cv.conversation_id = e.conversation_id
           left join agent b on b.brokerage_id = e.brokerage_id and b.agent_id = e.by_agent_id
           left join agent t on t.brokerage_id = e.brokerage_id and t.agent_id = e.to_agent_id
          where e.brokerage_id = $1 and (cv.conversation_id = $2 or cv.merged_into = $2)
            and e.at >= coalesce(cv.visible_from, $3)
          order by e.at, e.conversation_event_id",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    let jobs = sqlx::query_as::<_, JobItem>(
        "select j.job_id, j.kind, j.state, j.reason, j.last_error, j.run_at, coalesce(j.finished_at, j.updated_at) as at,
                case when j.kind = 'agent_reply' and j.state in ('scheduled', 'running') then j.payload->>'body' end as body,
                case when j.kind = 'agent_reply' then j.payload->>'agent' end as agent
           from job j
           join unnest($2::bigint[], $3::timestamptz[]) as v(contact_id, since)
             on v.contact_id = j.contact_id and j.created_at >= v.since
          where j.brokerage_id = $1
            and j.kind in ('text_back', 'follow_up', 'agent_reply', 'lead_text')
            and (j.state in ('cancelled', 'dead', 'needs_review')
                 or (j.state = 'scheduled' and j.kind in ('text_back', 'lead_text'))
                 or (j.state in ('scheduled', 'running') and j.kind = 'agent_reply'
                     and not exists (select 1 from message m where m.job_id = j.job_id)))
          order by coalesce(j.finished_at, j.updated_at), j.job_id",
    )
    .bind(brokerage)
    .bind(&contacts)
    .bind(&since)
    .fetch_all(&mut *conn)
    .await?;
    let callbacks = crate::callbacks::for_thread(&mut *conn, brokerage, &contacts, &since).await?;
    let voicemails =
        crate::callbacks::voicemails_for_thread(&mut *conn, brokerage, &contacts, &since).await?;
    let web_leads = crate::web_leads::for_thread(&mut *conn, brokerage, &contacts, &since).await?;
    let message_ids: Vec<i64> = messages.iter().map(|m| m.message_id.0).collect();
    let job_ids: Vec<i64> = messages.iter().filter_map(|m| m.job_id).collect();
    let media = crate::media::of_thread(conn, brokerage, &message_ids, &job_ids).await?;
    Ok(Thread {
        media,
        messages,
        calls,
        notes,
        tasks,
        decisions,
        consent,
        jobs,
        events,
        callbacks,
        voicemails,
        web_leads,
    })
}

/// Every person of the brokerage by email (those who left the setup file too), to name them
/// by name wherever a record keeps the email (taken over by, done by, decided by).
pub async fn names_by_email(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select lower(email), name from agent where brokerage_id = $1")
            .bind(brokerage)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The brokerage's active agents, for the assign menu.
pub async fn agents(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<Vec<(i64, String, String)>> {
    Ok(sqlx::query_as(
        "select a.agent_id, a.name, o.name from agent a join office o on o.brokerage_id = a.brokerage_id and o.office_id = a.office_id
          where a.brokerage_id = $1 and a.is_active order by o.name, a.name",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

/// The conversations a person may merge this one into: visible, open, other than itself.
pub async fn merge_targets(
    conn: &mut PgConnection,
    scope: &Scope,
    except: i64,
) -> Result<Vec<(i64, String, Option<String>)>> {
    Ok(sqlx::query_as(concat!(
        "select c.conversation_id, ct.phone, ct.name from conversation c",
        joins!(),
        " where ",
        visible!(),
        " and c.conversation_id <> $5 order by c.last_activity_at desc limit 50"
    ))
    .bind(scope_brokerage(scope))
    .bind(scope.role.as_str())
    .bind(scope.office_id)
    .bind(scope.agent_id)
    .bind(except)
    .fetch_all(conn)
    .await?)
}

/// Whether the person may see a conversation (for live updates).
pub async fn visible(conn: &mut PgConnection, scope: &Scope, conversation_id: i64) -> Result<bool> {
    Ok(sqlx::query_scalar(concat!(
        "select exists (select 1 from conversation c",
        joins!(),
        " where ",
        visible!(),
        " and c.conversation_id = $5)"
    ))
    .bind(scope_brokerage(scope))
    .bind(scope.role.as_str())
    .bind(scope.office_id)
    .bind(scope.agent_id)
    .bind(conversation_id)
    .fetch_one(conn)
    .await?)
}

/// Open admin alerts for the banner, newest first.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BannerAlert {
    pub alert_id: i64,
    pub reason: String,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn banner(conn: &mut PgConnection, brokerage: BrokerageId) -> Result<Vec<BannerAlert>> {
    Ok(sqlx::query_as::<_, BannerAlert>(
        "select alert_id, reason, detail, created_at from alert
          where brokerage_id = $1 and audience = 'admins' and dismissed_at is null
          order by created_at desc limit 20",
    )
    .bind(brokerage)
    .fetch_all(conn)
    .await?)
}

pub async fn dismiss_alert(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    alert_id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(sqlx::query(
        "update alert set dismissed_at = $4, dismissed_by = $3
          where brokerage_id = $1 and alert_id = $2 and audience = 'admins' and dismissed_at is null",
    )
    .bind(brokerage)
    .bind(alert_id)
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}

/// The lead of a conversation: their phone and the name an agent gave them.
pub async fn lead_of(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    conversation_id: i64,
) -> Result<Option<(String, Option<String>)>> {
    Ok(sqlx::query_as(
        "select ct.phone, ct.name from conversation c
           join contact ct on ct.brokerage_id = c.brokerage_id and ct.contact_id = c.contact_id
          where c.brokerage_id = $1 and c.conversation_id = $2",
    )
    .bind(brokerage)
    .bind(conversation_id)
    .fetch_optional(conn)
    .await?)
}
