-- The call side (README.md "The call side", docs/calls.md): callbacks placed through a brokerage
-- number (the agent's phone first, then the lead), the links in alert texts that place one, and
-- voicemails left after a missed call.

-- Per number (setup file): `callback` = off | offer | auto, `voicemail` = true | false.
alter table number
    add column callback  text not null default 'off' check (callback in ('off', 'offer', 'auto')),
    add column voicemail boolean not null default false;

-- One callback attempt: one call to one agent's phone and, when the agent presses 1, the lead
-- bridged to them. An automatic callback that an agent does not take is followed by a new row
-- for the next agent in ring order (`remaining`), so every attempt keeps its own outcome.
create table callback (
    callback_id        bigint generated always as identity primary key,
    brokerage_id       bigint not null references brokerage,
    contact_id         bigint not null,
    number_id          bigint not null,
    -- inbox (a person clicked "Call back"), link (the link in an alert text), auto (a miss)
    origin             text not null check (origin in ('inbox', 'link', 'auto')),
    -- the person who asked (inbox, link); null for auto
    requested_by       bigint,
    -- the agent whose phone is called
    agent_id           bigint not null,
    -- auto: the agents still to try after this one, in ring order
    remaining          bigint[] not null default '{}',
    -- the missed call it answers (auto), if any
    call_id            bigint,
    -- queued: not yet asked of the carrier; creating: the create is in flight (its outcome is
    -- unknown if the process stops here); unknown: the create's answer was lost, settled by
    -- listing the account's calls; ringing: the carrier has the call; answered: the agent picked
    -- up and hears the prompt; dialing: the agent pressed 1 and the lead is being dialled;
    -- ended: `outcome` says how.
    state              text not null default 'queued'
                       check (state in ('queued', 'creating', 'unknown', 'ringing', 'answered', 'dialing', 'ended')),
    -- connected | lead_busy | lead_no_answer | lead_failed | agent_no_answer | agent_declined |
    -- not_bridged | refused | not_placed
    outcome            text,
    -- the words behind the outcome (a carrier code, the rule that refused it)
    detail             text,
    agent_call_sid     text unique,
    lead_call_sid      text,
    created_at         timestamptz not null,
    create_started_at  timestamptz,
    answered_at        timestamptz,
    bridged_at         timestamptz,
    ended_at           timestamptz,
    -- seconds the agent and the lead talked
    talk_secs          integer,
    check ((state = 'ended') = (outcome is not null and ended_at is not null)),
    unique (brokerage_id, callback_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id),
    foreign key (brokerage_id, agent_id) references agent (brokerage_id, agent_id),
    foreign key (brokerage_id, requested_by) references agent (brokerage_id, agent_id),
    foreign key (brokerage_id, call_id) references call (brokerage_id, call_id)
);
create index callback_contact on callback (contact_id, created_at);
-- One live callback per contact: a second click while one rings places nothing.
create unique index callback_live on callback (brokerage_id, contact_id) where state <> 'ended';

-- The link an alert text carries: one agent, one contact, single use, expiring. Only the
-- SHA-256 of the token is kept.
create table callback_link (
    token_hash    bytea primary key,
    brokerage_id  bigint not null references brokerage,
    agent_id      bigint not null,
    contact_id    bigint not null,
    number_id     bigint not null,
    call_id       bigint,
    created_at    timestamptz not null,
    expires_at    timestamptz not null,
    used_at       timestamptz,
    callback_id   bigint,
    foreign key (brokerage_id, agent_id) references agent (brokerage_id, agent_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id)
);

-- A voicemail a caller left after a miss, keyed by the carrier's RecordingSid. The audio stays
-- at the carrier and is fetched by textback when a person who may see the conversation plays it.
create table voicemail (
    voicemail_id          bigint generated always as identity primary key,
    brokerage_id          bigint not null references brokerage,
    call_id               bigint not null,
    contact_id            bigint,
    recording_sid         text not null unique,
    -- the account the recording belongs to (the number's brokerage's, when it names one)
    account_sid           text,
    duration_secs         integer,
    transcript            text,
    -- none | completed | failed
    transcription_status  text not null default 'none',
    -- the keyword class of the transcript (opt_out, review, ...), as for a text
    keyword_class         text,
    created_at            timestamptz not null,
    transcribed_at        timestamptz,
    unique (brokerage_id, voicemail_id),
    foreign key (brokerage_id, call_id) references call (brokerage_id, call_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id)
);
create index voicemail_contact on voicemail (contact_id, created_at);

-- The open thread hears of both.
create trigger callback_inbox after insert or update of state on callback
    for each row execute function inbox_notify_contact();
create trigger voicemail_inbox after insert or update of transcript on voicemail
    for each row execute function inbox_notify_contact();

-- The task and alert reasons gain the call side's.
alter table alert add column voicemail_id bigint;
alter table alert add column callback_id bigint;

-- The job that places a callback's call (at most once, docs/calls.md).
alter table job drop constraint job_kind_check;
alter table job add constraint job_kind_check
    check (kind in ('text_back', 'follow_up', 'keyword_reply', 'agent_reply', 'agent_alert', 'escalation', 'reconcile', 'noop', 'call_back'));
