-- The people's side (issue 6): logins, sessions and login throttling (security.md §2);
-- conversations with their assignment, waiting, read and closed state; notes; alert
-- deliveries with their rate limit (DESIGN.md step 9); lead-reply waits and escalation; the
-- admin banner; live inbox notifications.

-- A login for one agent of the setup file. Role and office stay on the agent row (the file is
-- their one source). The email is copied, lower-cased, and unique across the deployment: the
-- login form asks for no brokerage.
create table app_user (
    user_id        bigint generated always as identity primary key,
    brokerage_id   bigint not null references brokerage,
    agent_id       bigint not null unique,
    email          text not null unique check (email = lower(email)),
    -- PHC string: $argon2id$v=19$m=19456,t=2,p=1$salt$hash
    password_hash  text not null check (password_hash like '$argon2id$%'),
    created_at     timestamptz not null,
    updated_at     timestamptz not null,
    unique (brokerage_id, user_id),
    foreign key (brokerage_id, agent_id) references agent (brokerage_id, agent_id)
);

-- Server-side sessions. Only the SHA-256 of the cookie's 256-bit random id is stored, so a
-- copy of this table cannot be replayed as cookies. Deleting a login deletes its sessions.
create table user_session (
    session_hash  bytea primary key check (length(session_hash) = 32),
    user_id       bigint not null references app_user on delete cascade,
    -- the per-session CSRF token every form carries (security.md §2)
    csrf_token    text not null check (length(csrf_token) >= 32),
    created_at    timestamptz not null,
    last_seen_at  timestamptz not null
);
create index user_session_user on user_session (user_id);

-- Login attempts, counted across instances (security.md §2): per account (the email as typed,
-- known or not) and per client address.
create table login_attempt (
    login_attempt_id  bigint generated always as identity primary key,
    email             text not null,
    client_ip         inet not null,
    -- null while the password is being checked: counted as a failure meanwhile, so parallel
    -- guesses cannot slip past the limit
    succeeded         boolean,
    at                timestamptz not null
);
create index login_attempt_email on login_attempt (email, at);
create index login_attempt_ip on login_attempt (client_ip, at);

-- One conversation per contact: what the inbox lists.
create table conversation (
    conversation_id    bigint generated always as identity primary key,
    brokerage_id       bigint not null,
    contact_id         bigint not null unique,
    -- the brokerage number the contact last called or texted: its office's people see it
    number_id          bigint not null,
    -- the first agent of that number's ring when the conversation began, until reassigned;
    -- null when unassigned (the agent left the setup file, or a person unassigned it)
    assigned_agent_id  bigint,
    is_closed          boolean not null default false,
    closed_at          timestamptz,
    closed_by          text,
    -- a lead's reply has waited for a human answer since then
    waiting_since      timestamptz,
    escalated_at       timestamptz,
    -- a person took the conversation over: automation stopped (compliance.md R12)
    taken_over_at      timestamptz,
    taken_over_by      text,
    last_activity_at   timestamptz not null,
    -- the latest call or text from the contact (unread state)
    last_inbound_at    timestamptz,
    -- merged into another conversation: hidden here, its history shown there
    merged_into        bigint references conversation,
    -- deleted by a person: hidden until the contact calls or texts again; the thread then
    -- starts at `visible_from`. Calls, texts, decisions and the consent ledger are kept
    -- (compliance.md R13); a suppression survives.
    deleted_at         timestamptz,
    visible_from       timestamptz,
    created_at         timestamptz not null,
    check (is_closed = (closed_at is not null)),
    check (merged_into is null or merged_into <> conversation_id),
    unique (brokerage_id, conversation_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id),
    foreign key (brokerage_id, assigned_agent_id) references agent (brokerage_id, agent_id)
);
alter table conversation set (fillfactor = 85);
create index conversation_recent on conversation (brokerage_id, last_activity_at desc)
    where merged_into is null and deleted_at is null;
create index conversation_merged on conversation (merged_into) where merged_into is not null;

-- Conversations for the contacts that already exist: the number of their latest call or text,
-- the first agent of its ring.
insert into conversation (brokerage_id, contact_id, number_id, assigned_agent_id, last_activity_at, last_inbound_at, created_at)
select c.brokerage_id, c.contact_id, last.number_id,
       (select r.agent_id from number_ring r join agent a using (brokerage_id, agent_id)
         where r.number_id = last.number_id and a.is_active order by r.position limit 1),
       last.at, last.at, last.at
  from contact c
  join lateral (
      select number_id, at from (
          select number_id, started_at as at from call where brokerage_id = c.brokerage_id and contact_id = c.contact_id
          union all
          select number_id, occurred_at from message where brokerage_id = c.brokerage_id and contact_id = c.contact_id
      ) e order by at desc limit 1
  ) last on true;

-- When each login last read each conversation (unread = something came in since).
create table conversation_read (
    user_id          bigint not null references app_user on delete cascade,
    conversation_id  bigint not null references conversation,
    read_at          timestamptz not null,
    primary key (user_id, conversation_id)
);

-- Internal notes: for the brokerage's people, never sent.
create table note (
    note_id          bigint generated always as identity primary key,
    brokerage_id     bigint not null,
    conversation_id  bigint not null,
    agent_id         bigint not null,
    body             text not null check (length(body) between 1 and 2000),
    created_at       timestamptz not null,
    foreign key (brokerage_id, conversation_id) references conversation (brokerage_id, conversation_id),
    foreign key (brokerage_id, agent_id) references agent (brokerage_id, agent_id)
);
create index note_conversation on note (conversation_id, created_at);

-- A task done by a person says who.
alter table task add column done_by text;

-- Each lead reply that waits for a human: when it began, when a person answered, whether it
-- was escalated. The dashboard's "reply → first human reply" is read from here.
create table reply_wait (
    reply_wait_id      bigint generated always as identity primary key,
    brokerage_id       bigint not null,
    conversation_id    bigint not null,
    number_id          bigint not null,
    -- the assigned agent when the wait began
    agent_id           bigint,
    message_id         bigint not null,
    waiting_since      timestamptz not null,
    answered_at        timestamptz,
    answered_by        text,
    escalated_at       timestamptz,
    foreign key (brokerage_id, conversation_id) references conversation (brokerage_id, conversation_id),
    foreign key (brokerage_id, message_id) references message (brokerage_id, message_id)
);
create index reply_wait_open on reply_wait (conversation_id) where answered_at is null;
create index reply_wait_time on reply_wait (brokerage_id, waiting_since);

-- Alerts: who they are about, who dismissed them from the admins' banner, managers as an
-- audience (escalations), and the job kind that texts them.
alter table alert add column contact_id bigint;
alter table alert add column dismissed_at timestamptz;
alter table alert add column dismissed_by text;
alter table alert drop constraint alert_audience_check;
alter table alert add constraint alert_audience_check check (audience in ('admins', 'agents', 'managers'));
create index alert_banner on alert (brokerage_id, created_at desc) where audience = 'admins' and dismissed_at is null;

-- Each alert to each person: texted, or held back by the rate limit (DESIGN.md step 9: at
-- most 1 per conversation per 5 minutes and 30 per agent per hour, counted here so the limit
-- holds across instances).
create table alert_delivery (
    alert_delivery_id  bigint generated always as identity primary key,
    brokerage_id       bigint not null,
    alert_id           bigint not null references alert,
    agent_id           bigint not null,
    conversation_id    bigint,
    decision           text not null check (decision in ('send', 'limited')),
    reason             text not null,
    job_id             bigint,
    message_id         bigint,
    decided_at         timestamptz not null,
    foreign key (brokerage_id, agent_id) references agent (brokerage_id, agent_id)
);
create index alert_delivery_agent on alert_delivery (agent_id, decided_at) where decision = 'send';
create index alert_delivery_conversation on alert_delivery (conversation_id, decided_at) where decision = 'send';

-- The dashboard reads by period: missed calls by start, text-backs by creation.
create index call_started on call (brokerage_id, started_at);
create index job_text_back_created on job (brokerage_id, created_at) where kind = 'text_back';

-- Live inbox updates (server-sent events): a change to a conversation, a message, a note, a
-- task or a gate decision notifies `textback_inbox` with `brokerage_id:conversation_id`
-- (delivered at commit; identical payloads in one transaction are sent once).
create function inbox_conversation_of(p_contact bigint) returns bigint
language sql stable as $$
    select coalesce(merged_into, conversation_id) from conversation where contact_id = p_contact
$$;

create function inbox_notify_contact() returns trigger language plpgsql as $$
declare
    conv bigint;
begin
    if new.contact_id is null then
        return null;
    end if;
    conv := inbox_conversation_of(new.contact_id);
    if conv is not null then
        perform pg_notify('textback_inbox', new.brokerage_id::text || ':' || conv::text);
    end if;
    return null;
end $$;

create function inbox_notify_conversation() returns trigger language plpgsql as $$
begin
    perform pg_notify('textback_inbox', new.brokerage_id::text || ':' || coalesce(new.merged_into, new.conversation_id)::text);
    return null;
end $$;

-- An outbound text shows once its send is settled (the update): its pre-send insert stays off
-- the send's critical path (textback bench pipeline).
create trigger message_inbox after insert on message
    for each row when (new.direction = 'inbound') execute function inbox_notify_contact();
create trigger message_inbox_status after update of carrier_status, send_state on message
    for each row execute function inbox_notify_contact();
create trigger task_inbox after insert or update of state on task
    for each row execute function inbox_notify_contact();
-- (Only decisions a person reads in the thread: an allow is followed by its message anyway.)
create trigger gate_decision_inbox after insert on gate_decision
    for each row when (new.decision <> 'allow') execute function inbox_notify_contact();
create trigger conversation_inbox after insert or update on conversation
    for each row execute function inbox_notify_conversation();
-- A call's outcome, and the jobs the thread shows (a text-back scheduled or ended, an agent's
-- reply queued or ended, a follow-up cancelled): the insert of a text-back shares its
-- transaction with the call's outcome, so one notification covers both.
create trigger call_inbox after update of outcome on call
    for each row when (new.contact_id is not null and new.outcome is distinct from old.outcome)
    execute function inbox_notify_contact();
create trigger job_inbox after insert on job
    for each row when (new.kind in ('text_back', 'agent_reply'))
    execute function inbox_notify_contact();
create trigger job_inbox_end after update of state on job
    for each row when (new.kind in ('text_back', 'follow_up', 'agent_reply')
                       and new.finished_at is not null and old.finished_at is null)
    execute function inbox_notify_contact();
-- Consent is kept by phone number (an opt-out by the web page, an import, the carrier).
create function inbox_notify_consent() returns trigger language plpgsql as $$
declare
    conv bigint;
begin
    select coalesce(cv.merged_into, cv.conversation_id) into conv
      from contact ct join conversation cv on cv.contact_id = ct.contact_id
     where ct.brokerage_id = new.brokerage_id and ct.phone = new.phone;
    if conv is not null then
        perform pg_notify('textback_inbox', new.brokerage_id::text || ':' || conv::text);
    end if;
    return null;
end $$;
create trigger consent_event_inbox after insert on consent_event
    for each row execute function inbox_notify_consent();
create function inbox_notify_note() returns trigger language plpgsql as $$
begin
    perform pg_notify('textback_inbox', new.brokerage_id::text || ':' ||
        (select coalesce(merged_into, conversation_id) from conversation where conversation_id = new.conversation_id)::text);
    return null;
end $$;

create trigger note_inbox after insert on note
    for each row execute function inbox_notify_note();

-- The inbox puts conversations on review hold first (compliance.md R3): few, found here.
create index contact_review_hold on contact (brokerage_id) where review_hold_at is not null;
-- "Waiting" conversations, newest first, without walking the rest.
create index conversation_waiting on conversation (brokerage_id, last_activity_at desc)
    where waiting_since is not null and merged_into is null and deleted_at is null;

-- One row per missed-call lead (a text_back job: one per caller and episode, DESIGN.md step 2),
-- with the milestones the dashboard's funnel counts, written where they happen (the miss, a
-- reply to the text, the first human reply, a call that connected). The job keeps its state;
-- the lead keeps who it belongs to as it was then (the number called, its office, the
-- conversation's agent), so history does not move when a conversation is reassigned.
-- Measured (textback bench dashboard, 1M calls in a year, 49k leads in 30 days): the funnel
-- joined from calls, messages and conversations took 2.1 s, 0.56 s set-wise; read from this
-- table, 0.44 s, and 0.155 s for the whole page once the counting moved to domain::funnel.
create table lead (
    job_id        bigint primary key references job (job_id),
    brokerage_id  bigint not null references brokerage,
    contact_id    bigint not null,
    number_id     bigint not null,
    office_id     bigint not null,
    agent_id      bigint,
    -- the episode's latest miss (a re-arm moves it)
    missed_at     timestamptz not null,
    created_at    timestamptz not null,
    -- the job's state, reason and end, kept in step by the trigger below
    state         text not null default 'scheduled',
    reason        text,
    finished_at   timestamptz,
    -- when the carrier accepted the text-back, and which template variant it used
    texted_at     timestamptz,
    variant       integer,
    -- the lead's first reply after the text-back went out
    replied_at    timestamptz,
    -- the first agent reply after that
    human_at      timestamptz,
    -- the first call with the lead that connected after the miss
    answered_at   timestamptz
);
create index lead_time on lead (brokerage_id, created_at);
create index lead_contact on lead (contact_id, created_at desc);

insert into lead (job_id, brokerage_id, contact_id, number_id, office_id, agent_id, missed_at, created_at,
                  state, reason, finished_at, texted_at, variant, replied_at, human_at, answered_at)
select j.job_id, j.brokerage_id, j.contact_id, ca.number_id, n.office_id, cv.assigned_agent_id,
       coalesce(ca.outcome_at, ca.started_at), j.created_at,
       j.state, j.reason, j.finished_at,
       case when j.state = 'sent' then j.finished_at end,
       (select m.template_variant from message m where m.job_id = j.job_id and m.send_state = 'sent' limit 1),
       rp.at,
       (select min(h.occurred_at) from message h
         where h.brokerage_id = j.brokerage_id and h.contact_id = j.contact_id and h.direction = 'outbound'
           and h.kind = 'manual' and h.send_state in ('sent', 'needs_review')
           and h.occurred_at > rp.at and h.occurred_at < nx.at),
       (select min(a.started_at) from call a
         where a.brokerage_id = j.brokerage_id and a.contact_id = j.contact_id and a.outcome = 'answered'
           and a.call_id <> ca.call_id and a.started_at >= coalesce(ca.outcome_at, ca.started_at)
           and a.started_at < nx.at)
  from job j
  join call ca on ca.call_id = j.call_id
  join number n on n.number_id = ca.number_id
  left join conversation cv on cv.contact_id = j.contact_id
  -- each lead's milestones end where the contact's next lead begins
  cross join lateral (select coalesce(min(k.created_at), 'infinity') as at from job k
                       where k.contact_id = j.contact_id and k.kind = 'text_back' and k.job_id > j.job_id) nx
  left join lateral (select min(r.occurred_at) as at from message r
                      where r.brokerage_id = j.brokerage_id and r.contact_id = j.contact_id and r.direction = 'inbound'
                        and r.keyword_class in ('reply', 'review') and j.state in ('sent', 'needs_review')
                        and r.occurred_at > j.finished_at and r.occurred_at < nx.at) rp on true
 where j.kind = 'text_back';

-- A text-back job's end is copied to its lead (one row, one update). The WHEN keeps every
-- other kind of job, the scheduler's no-op bench included, and the claims off this path: a
-- lead not ended yet counts as pending whether its job is scheduled, running or reconciling.
create function lead_follows_job() returns trigger language plpgsql as $$
begin
    update lead set state = new.state, reason = new.reason, finished_at = new.finished_at
     where job_id = new.job_id;
    return null;
end $$;

create trigger job_lead after update on job
    for each row when (new.kind = 'text_back' and new.finished_at is not null and old.finished_at is null)
    execute function lead_follows_job();

-- The dashboard reads messages and decisions by period.
create index message_time on message (brokerage_id, occurred_at);
create index gate_decision_time on gate_decision (brokerage_id, decided_at);
