-- The foundation data model (DESIGN.md). Every table holding tenant data carries
-- brokerage_id, and references between tenant rows use composite foreign keys that include
-- it, so a row can never point at another brokerage's office, agent, number or contact.
-- Times that mean something to the product (when a call came in, when a job is due) come
-- from the server's clock and are passed in; created_at/updated_at are audit metadata.

-- Forward-only status ranks: an update moves a status only to a higher rank, in one
-- statement (twilio.md §3.3 for messages; §1.2 for calls). Unknown values rank null and never
-- move anything. Terminal values share a rank, so one never replaces another.
create function message_status_rank(status text) returns integer
language sql immutable parallel safe as $$
    select case status
        when 'accepted' then 0 when 'scheduled' then 0
        when 'queued' then 1
        when 'sending' then 2
        when 'sent' then 3
        when 'delivered' then 4 when 'undelivered' then 4 when 'failed' then 4
        when 'partially_delivered' then 4 when 'canceled' then 4
        when 'read' then 5
    end
$$;

create function call_status_rank(status text) returns integer
language sql immutable parallel safe as $$
    select case status
        when 'queued' then 0
        when 'initiated' then 1
        when 'ringing' then 2
        when 'in-progress' then 3
        when 'completed' then 4 when 'busy' then 4 when 'failed' then 4
        when 'no-answer' then 4 when 'canceled' then 4
    end
$$;

create table brokerage (
    brokerage_id          bigint generated always as identity primary key,
    slug                  text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name                  text not null check (name <> ''),
    time_zone             text not null,
    -- [text_back]
    text_back_delay_secs  integer not null check (text_back_delay_secs between 0 and 3600),
    -- template variants as written in the setup file (a JSON array of strings)
    text_back_templates   jsonb not null check (jsonb_typeof(text_back_templates) = 'array'),
    caller_name_lookup    boolean not null,
    lookup_max_age_secs   bigint not null check (lookup_max_age_secs > 0),
    after_hours           text not null check (after_hours in ('defer', 'send')),
    -- [inbox]
    escalate_after_secs   integer not null check (escalate_after_secs between 60 and 86400),
    -- [compliance] and [[blackouts]] as applied; read by the compliance gate
    compliance            jsonb not null,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now()
);

create table office (
    office_id     bigint generated always as identity primary key,
    brokerage_id  bigint not null references brokerage,
    slug          text not null check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name          text not null,
    -- removed from the setup file: kept for history, no longer used
    is_active     boolean not null default true,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (brokerage_id, slug),
    unique (brokerage_id, office_id)
);

create table agent (
    agent_id      bigint generated always as identity primary key,
    brokerage_id  bigint not null references brokerage,
    office_id     bigint not null,
    -- lower-cased by the setup loader: the agent's identity within the brokerage
    email         text not null check (email = lower(email) and email like '%_@_%'),
    name          text not null,
    phone         text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    role          text not null check (role in ('agent', 'manager', 'admin')),
    is_active     boolean not null default true,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (brokerage_id, email),
    unique (brokerage_id, agent_id),
    foreign key (brokerage_id, office_id) references office (brokerage_id, office_id)
);

-- The brokerage's Twilio numbers that callers dial. A number belongs to one brokerage.
create table number (
    number_id          bigint generated always as identity primary key,
    brokerage_id       bigint not null references brokerage,
    office_id          bigint not null,
    e164               text not null unique check (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    listing            text,
    ring_timeout_secs  integer not null check (ring_timeout_secs between 5 and 600),
    screen             boolean not null,
    missed_message     text,
    is_active          boolean not null default true,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    unique (brokerage_id, number_id),
    foreign key (brokerage_id, office_id) references office (brokerage_id, office_id)
);

-- Agents rung simultaneously, in order; position 0 is a new conversation's assigned agent.
create table number_ring (
    brokerage_id  bigint not null,
    number_id     bigint not null,
    position      integer not null check (position >= 0),
    agent_id      bigint not null,
    primary key (number_id, position),
    unique (number_id, agent_id),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id),
    foreign key (brokerage_id, agent_id) references agent (brokerage_id, agent_id)
);

-- The follow-up sequence as the setup file lists it, by position. Configuration, not
-- history: a follow-up job copies its step's templates and delay when it is armed, so editing
-- the file never changes a step already pending.
create table follow_up_step (
    brokerage_id  bigint not null references brokerage,
    position      integer not null check (position >= 0),
    after_secs    bigint not null check (after_secs > 0),
    templates     jsonb not null check (jsonb_typeof(templates) = 'array'),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    primary key (brokerage_id, position)
);

-- One per brokerage and phone number (E.164). Callers whose From is not E.164 get none.
create table contact (
    contact_id    bigint generated always as identity primary key,
    brokerage_id  bigint not null references brokerage,
    phone         text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    -- set by an agent; else empty (the template falls back)
    name          text,
    created_at    timestamptz not null default now(),
    unique (brokerage_id, phone),
    unique (brokerage_id, contact_id)
);

create table call (
    call_id              bigint generated always as identity primary key,
    brokerage_id         bigint not null,
    number_id            bigint not null,
    contact_id           bigint,
    -- Twilio's CallSid of the inbound (parent) call: the idempotency key of /twilio/voice
    call_sid             text not null unique check (call_sid ~ '^[A-Za-z0-9]{1,64}$'),
    -- From exactly as received (anonymous, client:alice, +1 (555) …)
    from_raw             text not null,
    -- why no contact was created: 'invalid_number' when From is not E.164
    invalid_reason       text check (invalid_reason in ('invalid_number')),
    started_at           timestamptz not null,
    -- latest parent CallStatus seen (status callbacks move it forward)
    call_status          text,
    -- answered / missed / unclassified (twilio.md §1.6); null until known
    outcome              text check (outcome in ('answered', 'missed', 'unclassified')),
    -- 'dial' (the <Dial action> request, authoritative) or 'status' (the parent's final
    -- status with no dial result yet: the caller hung up while agents were ringing)
    outcome_source       text check (outcome_source in ('dial', 'status')),
    outcome_at           timestamptz,
    dial_call_status     text,
    dial_bridged         boolean,
    dial_call_sid        text,
    dial_call_duration   integer,
    -- the agent who pressed 1 at the screen
    screened_agent_id    bigint,
    screened_at          timestamptz,
    created_at           timestamptz not null default now(),
    check ((outcome is null) = (outcome_source is null)),
    -- the status callback can only infer a miss; answers come from the dial result
    check (outcome_source <> 'status' or outcome = 'missed'),
    unique (brokerage_id, call_id),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id),
    foreign key (brokerage_id, screened_agent_id) references agent (brokerage_id, agent_id)
);
-- Calls are updated after insert (dial result, statuses): leave room on each page so those
-- updates can be HOT (no index writes).
alter table call set (fillfactor = 85);
create index call_contact on call (brokerage_id, contact_id, started_at desc);

-- Parent-call status callbacks, once each: (CallSid, CallStatus, SequenceNumber).
create table call_event (
    call_event_id    bigint generated always as identity primary key,
    brokerage_id     bigint not null,
    call_id          bigint not null,
    call_status      text not null,
    -- -1 when Twilio sent no SequenceNumber
    sequence_number  integer not null,
    call_duration    integer,
    received_at      timestamptz not null,
    unique (call_id, call_status, sequence_number),
    foreign key (brokerage_id, call_id) references call (brokerage_id, call_id)
);

create table message (
    message_id       bigint generated always as identity primary key,
    brokerage_id     bigint not null,
    number_id        bigint not null,
    contact_id       bigint,
    direction        text not null check (direction in ('inbound', 'outbound')),
    -- Twilio's MessageSid: unique for inbound (idempotency of /twilio/sms) and outbound
    -- (a carrier sid is linked to one row); null for an outbound row not yet accepted
    sid              text unique check (sid ~ '^[A-Za-z0-9]{1,64}$'),
    from_raw         text not null,
    to_raw           text not null,
    body             text not null,
    body_sha256      text not null,
    num_media        integer not null default 0,
    num_segments     integer,
    -- inbound: the carrier's OptOutType (STOP/START/HELP) when present
    opt_out_type     text,
    -- outbound, our side of the send (reliability.md §1)
    send_state       text check (send_state in ('sending', 'sent', 'failed_certain', 'rejected', 'unknown', 'needs_review')),
    idempotency_key  text unique,
    job_id           bigint,
    attempt          integer,
    -- the carrier's side: forward-only by the rank of twilio.md §3.3
    carrier_status   text,
    error_code       integer,
    occurred_at      timestamptz not null,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    check ((direction = 'outbound') = (send_state is not null)),
    -- an inbound text is known by its MessageSid: the key of /twilio/sms's idempotency
    check (direction = 'outbound' or sid is not null),
    unique (brokerage_id, message_id),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id)
);
alter table message set (fillfactor = 85);
create index message_contact on message (brokerage_id, contact_id, occurred_at desc);

-- Outbound message status callbacks, once per (message, status), raw values kept.
create table message_status_event (
    message_status_event_id  bigint generated always as identity primary key,
    brokerage_id             bigint not null,
    message_id               bigint not null,
    status                   text not null,
    -- ErrorCode as received (may be garbage: then the message's state is left alone)
    error_code_raw           text,
    received_at              timestamptz not null,
    foreign key (brokerage_id, message_id) references message (brokerage_id, message_id)
);
-- Once per (message, status, ErrorCode as received): a duplicate changes nothing, and a
-- callback with a garbage ErrorCode does not swallow a later well-formed one.
create unique index message_status_event_once
    on message_status_event (message_id, status, (coalesce(error_code_raw, '')));

-- The scheduler's jobs (DESIGN.md "Scheduler"). A domain table: every row keeps its terminal
-- state and reason, which answers "why didn't this caller get a text?".
create table job (
    job_id        bigint generated always as identity primary key,
    brokerage_id  bigint not null references brokerage,
    -- fixed names stored in rows: never renamed, a new kind is added instead
    kind          text not null check (kind in ('text_back', 'follow_up', 'keyword_reply', 'agent_reply', 'agent_alert', 'escalation', 'reconcile')),
    state         text not null default 'scheduled'
                  check (state in ('scheduled', 'running', 'reconciling', 'sent', 'done', 'cancelled', 'skipped', 'dead', 'needs_review')),
    contact_id    bigint,
    call_id       bigint,
    run_at        timestamptz not null,
    -- when the job first became due (or due again after a deferral): the retry budget counts
    -- from here
    due_at        timestamptz not null,
    lease_until   timestamptz,
    attempt       integer not null default 0,
    -- terminal reason: done(reason), cancelled(reason), skipped(reason)
    reason        text,
    last_error    text,
    payload       jsonb not null default '{}',
    created_at    timestamptz not null,
    updated_at    timestamptz not null,
    finished_at   timestamptz,
    check ((state in ('sent', 'done', 'cancelled', 'skipped', 'dead', 'needs_review')) = (finished_at is not null)),
    check (state <> 'running' or lease_until is not null),
    -- a text-back is for a contact: keeps job_one_text_back (below) from being bypassed
    check (kind <> 'text_back' or contact_id is not null),
    unique (brokerage_id, job_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id),
    foreign key (brokerage_id, call_id) references call (brokerage_id, call_id)
);
-- Jobs change state several times: room for HOT updates.
alter table job set (fillfactor = 80);
-- The claim query reads due scheduled jobs in run_at order, and expired leases.
create index job_due on job (run_at) where state = 'scheduled';
create index job_lease on job (lease_until) where state = 'running';
create index job_contact on job (brokerage_id, contact_id, kind) where state = 'scheduled';
-- At most one scheduled text-back per contact: a second miss re-arms it (DESIGN.md step 2).
create unique index job_one_text_back on job (contact_id) where kind = 'text_back' and state = 'scheduled';

-- Every job state transition, with its reason.
create table job_transition (
    job_transition_id  bigint generated always as identity primary key,
    brokerage_id       bigint not null,
    job_id             bigint not null,
    from_state         text,
    to_state           text not null,
    reason             text,
    at                 timestamptz not null,
    foreign key (brokerage_id, job_id) references job (brokerage_id, job_id)
);
create index job_transition_job on job_transition (job_id, at);

alter table message add foreign key (brokerage_id, job_id) references job (brokerage_id, job_id);
