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

create trigger message_inbox after insert or update of carrier_status, send_state on message
    for each row execute function inbox_notify_contact();
create trigger task_inbox after insert or update of state on task
    for each row execute function inbox_notify_contact();
create trigger gate_decision_inbox after insert on gate_decision
    for each row execute function inbox_notify_contact();
create trigger conversation_inbox after insert or update on conversation
    for each row execute function inbox_notify_conversation();
create function inbox_notify_note() returns trigger language plpgsql as $$
begin
    perform pg_notify('textback_inbox', new.brokerage_id::text || ':' ||
        (select coalesce(merged_into, conversation_id) from conversation where conversation_id = new.conversation_id)::text);
    return null;
end $$;

create trigger note_inbox after insert on note
    for each row execute function inbox_notify_note();
