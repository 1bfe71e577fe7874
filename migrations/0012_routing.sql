-- Routing and agents on their phones (README.md "Routing", docs/routing.md): how a number hands
-- a new lead to its agents, the agents' availability, first-to-claim offers, the routing trace
-- each thread shows, replies and commands texted by agents, saved replies, and the sign-in
-- links alert texts carry.

-- Per number (setup file): `routing` = all | round_robin | first_to_claim, `claim_timeout`.
-- `rr_cursor`: the position in the weighted ring sequence the round robin picked last.
alter table number
    add column routing            text not null default 'all' check (routing in ('all', 'round_robin', 'first_to_claim')),
    add column claim_timeout_secs integer not null default 300 check (claim_timeout_secs between 30 and 86400),
    add column rr_cursor          integer;

-- Per agent: working hours from the setup file (every day, in the brokerage's time zone; both
-- null: any hour), the weight in round robins, and what the agent says of themself on their own
-- page (never written by `setup apply`): available, away, or on vacation until `back_on`.
alter table agent
    add column hours_start  time,
    add column hours_end    time,
    add column weight       integer not null default 1 check (weight between 0 and 10),
    add column availability text not null default 'available' check (availability in ('available', 'away', 'vacation')),
    add column back_on      date,
    add column availability_at timestamptz,
    add check ((hours_start is null) = (hours_end is null) and (hours_start is null or hours_start < hours_end)),
    add check ((availability = 'vacation') = (back_on is not null));

-- A first-to-claim offer: one lead offered to several agents at once until one claims it or
-- `claim_timeout` passes. At most one open offer per conversation.
create table claim_offer (
    claim_offer_id   bigint generated always as identity primary key,
    brokerage_id     bigint not null references brokerage,
    conversation_id  bigint not null,
    number_id        bigint not null,
    -- the agents offered it
    agent_ids        bigint[] not null,
    offered_at       timestamptz not null,
    -- claimed | timed_out | withdrawn (the conversation was assigned by a person meanwhile)
    outcome          text check (outcome in ('claimed', 'timed_out', 'withdrawn')),
    claimed_by       bigint,
    ended_at         timestamptz,
    check ((outcome is null) = (ended_at is null)),
    check ((outcome = 'claimed') = (claimed_by is not null)),
    foreign key (brokerage_id, conversation_id) references conversation (brokerage_id, conversation_id),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id),
    foreign key (brokerage_id, claimed_by) references agent (brokerage_id, agent_id)
);
create unique index claim_offer_open on claim_offer (conversation_id) where outcome is null;

-- The routing trace and the moves of ownership, as thread lines: `routed` (assigned by the
-- routing), `offered` (first to claim; `agent_ids` the agents offered), `claimed`,
-- `claim_timed_out`, `skipped` (an agent not available: `detail` says why), `to_managers`
-- (nobody available), `reassigned` (the escalation moved it; `by_agent_id` the one who lost it),
-- `agent_text` (a command texted by an agent: `detail` the command).
alter table conversation_event drop constraint conversation_event_kind_check;
alter table conversation_event add constraint conversation_event_kind_check
    check (kind in ('assigned', 'unassigned', 'closed', 'reopened', 'taken_over',
                    'routed', 'offered', 'claimed', 'claim_timed_out', 'skipped', 'to_managers',
                    'reassigned', 'agent_text'));
alter table conversation_event
    add column agent_ids bigint[],
    add column detail    text;

-- The job that ends an unclaimed offer.
alter table job drop constraint job_kind_check;
alter table job add constraint job_kind_check
    check (kind in ('text_back', 'follow_up', 'keyword_reply', 'agent_reply', 'agent_alert', 'escalation', 'reconcile', 'noop', 'call_back', 'claim_timeout'));

-- Texts from an agent's phone to a brokerage number (README.md "Agents on their phones"): kept,
-- once per MessageSid, with what was made of them. Never shown to a lead.
create table agent_text (
    agent_text_id    bigint generated always as identity primary key,
    brokerage_id     bigint not null references brokerage,
    number_id        bigint not null,
    -- null: the phone is no longer an active agent's (a removed agent): ignored, recorded
    agent_id         bigint,
    message_sid      text not null unique,
    from_phone       text not null,
    body             text not null,
    -- reply | claim | close | take_over | call_back | ambiguous | refused | ignored | help
    outcome          text not null,
    -- the words behind the outcome
    detail           text,
    conversation_id  bigint,
    job_id           bigint,
    received_at      timestamptz not null,
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id),
    foreign key (brokerage_id, agent_id) references agent (brokerage_id, agent_id)
);
create index agent_text_agent on agent_text (agent_id, received_at);

-- Alerts: `notice` (a one-off text to one person: the answer to their command, who claimed a
-- lead, a move of ownership) keeps its text in `detail` and its one recipient here.
alter table alert add column agent_id bigint;

-- Saved replies (setup file `[[saved_replies]]`): snippets with template fields, per brokerage.
create table saved_reply (
    brokerage_id  bigint not null references brokerage,
    position      integer not null check (position >= 0),
    name          text not null,
    body          text not null,
    primary key (brokerage_id, position)
);

-- Sign-in links in alert texts: one person, one conversation, single use, minutes long. Only
-- the SHA-256 of the token is kept; removing the person's login deletes them.
create table signin_link (
    token_hash       bytea primary key check (length(token_hash) = 32),
    user_id          bigint not null references app_user on delete cascade,
    conversation_id  bigint not null references conversation,
    created_at       timestamptz not null,
    expires_at       timestamptz not null,
    used_at          timestamptz
);
create index signin_link_user on signin_link (user_id);

-- The dashboard's answer rate per agent: the agents an incoming call rang (the routing's pick).
-- Who answered is the screen's `screened_agent_id`, or the one agent rung.
alter table call add column rang_agent_ids bigint[];
