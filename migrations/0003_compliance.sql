-- The compliance gate (compliance.md): the consent ledger, review holds, the decision record,
-- and what the gate counts on outbound messages (R9 frequency cap, R15 daily recipients).

-- Who decided a suppression, for `dnc export` (DESIGN.md: `phone,reason,source,at,who`).
alter table suppression add column who text;

-- The consent ledger (R1, R13): every event that creates, confirms or revokes permission to
-- text a number, with who, when, how and the evidence. Append-only (a trigger refuses updates
-- and deletes), kept forever; keyed by number, so it outlives a deleted or merged contact.
create table consent_event (
    consent_event_id  bigint generated always as identity primary key,
    brokerage_id      bigint not null references brokerage,
    phone             text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    -- opt_out, opt_in, review_hold, review_cleared, written_consent
    event             text not null check (event in ('opt_out', 'opt_in', 'review_hold', 'review_cleared', 'written_consent')),
    -- keyword, phrase, carrier_keyword, review, agent, carrier, import
    source            text not null,
    -- `contact`, an agent's email, `carrier`, `import:FILE`
    who               text not null,
    -- how it reached us: `sms`, `OptOutType=STOP`, `ErrorCode 21610`, a CSV line, …
    how               text,
    -- the MessageSid, CallSid or record that proves it
    evidence          text,
    -- the inbound text as received (opt-outs and opt-ins by text)
    raw_text          text,
    -- the suppression's state after the event
    suppressed_after  boolean not null,
    at                timestamptz not null,
    created_at        timestamptz not null default now()
);
create index consent_event_phone on consent_event (brokerage_id, phone, at);

create function append_only() returns trigger language plpgsql as $$
begin
    raise exception '% is append-only (compliance.md R13)', tg_table_name;
end $$;
create trigger consent_event_no_change before update or delete on consent_event
    for each statement execute function append_only();

-- R3: a possible opt-out awaits a person's decision; nothing at all is sent meanwhile.
alter table contact add column review_hold_at timestamptz;
alter table contact add column review_hold_message_id bigint;

-- What each message is, for the gate's counts (R9, R15) and the dashboard.
alter table message add column kind text check (kind in ('text_back', 'follow_up', 'manual', 'opt_out_ack', 'opt_in_ack', 'help', 'agent_alert'));
update message set kind = 'text_back' where direction = 'outbound' and kind is null;
-- Counted by R9: a text-back, follow-up or manual message outside a live conversation.
alter table message add column counts_for_cap boolean not null default false;
update message set counts_for_cap = true where direction = 'outbound' and kind = 'text_back';
-- Inbound: the keyword class of compliance.md §4.3 (opt_out, opt_in, help, review, reply).
alter table message add column keyword_class text check (keyword_class in ('opt_out', 'opt_in', 'help', 'review', 'reply'));
-- R9 counts a contact's counted sends of the last 24 h; R15 a number's recipients of the day.
create index message_cap on message (contact_id, occurred_at) where counts_for_cap;
create index message_daily_recipients on message (number_id, occurred_at)
    where direction = 'outbound' and kind in ('text_back', 'follow_up');

-- The decision record (compliance.md §2): one row per gate decision, allow included.
-- Append-only and kept at least five years (R13); nothing deletes it.
create table gate_decision (
    gate_decision_id  bigint generated always as identity primary key,
    brokerage_id      bigint not null references brokerage,
    contact_id        bigint,
    number_id         bigint,
    job_id            bigint,
    message_id        bigint,
    attempt           integer,
    -- text_back, follow_up, manual, opt_out_ack, opt_in_ack, help, agent_alert
    kind              text not null,
    decided_at        timestamptz not null,
    decision          text not null check (decision in ('allow', 'defer', 'skip')),
    until             timestamptz,
    rule              text,
    reason            text not null,
    zones             text[] not null default '{}',
    -- USPS code, `strictest` or `federal`
    state             text,
    country           text,
    -- per zone: "New_York 2026-06-12 Fri 08:00-20:00 (08:30)"
    windows           text[] not null default '{}',
    cap_count         integer,
    cap_limit         integer,
    basis             text,
    basis_evidence    text,
    -- short hashes of fixtures/nanp_tz.tsv and fixtures/state_windows.toml
    data              text,
    check ((decision = 'defer') = (until is not null))
);
create index gate_decision_job on gate_decision (job_id) where job_id is not null;
create index gate_decision_contact on gate_decision (brokerage_id, contact_id, decided_at);
create trigger gate_decision_no_change before update or delete on gate_decision
    for each statement execute function append_only();

-- R15: one admin alert per number and local day at the daily recipient limit.
create unique index alert_daily_limit_once on alert (brokerage_id, reason, detail)
    where reason = 'daily_recipient_limit';
