-- Leads from the brokerage's website and lead sources (README.md "Leads from your website",
-- docs/leads.md): API keys, each lead received with the consent it came with, and the text
-- that answers it at once.

-- `[lead_text] template` of the setup file: the variants that answer a web lead (null: the
-- text-back's).
alter table brokerage add column lead_text_templates jsonb
    check (lead_text_templates is null or jsonb_typeof(lead_text_templates) = 'array');

-- Where the setup file lists each number: a web lead that names none hears from the first.
alter table number add column file_position integer;

-- An API key belongs to one brokerage. Only the SHA-256 of the key is kept (the key is 32
-- random bytes, so a fast hash is enough: nothing to guess); `prefix` is its first characters,
-- shown by `api-key list` so a person can tell keys apart.
create table api_key (
    api_key_id    bigint generated always as identity primary key,
    brokerage_id  bigint not null references brokerage,
    name          text not null check (length(name) between 1 and 60),
    prefix        text not null,
    key_hash      bytea not null unique,
    created_at    timestamptz not null,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
-- One live key per name and brokerage; a revoked name may be used again.
create unique index api_key_live_name on api_key (brokerage_id, name) where revoked_at is null;

-- A hosted lead form (`[[forms]]` of the setup file): the page /f/{brokerage}/{slug}, the consent
-- wording it shows, the number its leads hear from, the sites that may embed it. A form the
-- file no longer lists is deactivated (its leads keep pointing at it).
create table web_form (
    web_form_id    bigint generated always as identity primary key,
    brokerage_id   bigint not null references brokerage,
    slug           text not null check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title          text,
    consent_text   text not null,
    number_id      bigint,
    listing        text,
    frame_origins  text[] not null default '{}',
    is_active      boolean not null default true,
    unique (brokerage_id, slug),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id)
);

-- A lead as it was received: who sent it (a key or a form), what it said, the consent exactly as the
-- lead saw it, and the answer given (so the same Idempotency-Key gets the same answer).
create table web_lead (
    web_lead_id      bigint generated always as identity primary key,
    brokerage_id     bigint not null references brokerage,
    -- who sent it: an API key, or a hosted form
    api_key_id       bigint references api_key,
    web_form_id      bigint references web_form,
    contact_id       bigint not null references contact,
    number_id        bigint not null,
    -- the conversation the lead was answered with (the same answer on a replay)
    conversation_id  bigint not null,
    name             text,
    source           text,
    listing          text,
    message          text,
    consent_text     text not null,
    consent_url      text not null,
    consent_at       timestamptz not null,
    consent_ip       inet not null,
    -- the client's Idempotency-Key and a hash of the body it came with
    idempotency_key  text,
    request_hash     bytea not null,
    created_at       timestamptz not null,
    check ((api_key_id is null) <> (web_form_id is null)),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id)
);
create unique index web_lead_idempotency on web_lead (api_key_id, idempotency_key)
    where idempotency_key is not null;
-- A form's page carries a one-time token: a double submission is one lead.
create unique index web_lead_form_once on web_lead (web_form_id, idempotency_key)
    where idempotency_key is not null;
create index web_lead_contact on web_lead (contact_id, created_at);

-- Written consent in the ledger points at the lead that brought it, with its page and address.
alter table consent_event
    add column web_lead_id bigint references web_lead,
    add column consent_url text,
    add column consent_ip  inet;

-- The text that answers a web lead (`lead_text`), a job and a message kind of its own; it is
-- automated like the text-back (R7, R9, R15 count it).
alter table job drop constraint job_kind_check;
alter table job add constraint job_kind_check
    check (kind in ('text_back', 'follow_up', 'keyword_reply', 'agent_reply', 'agent_alert', 'escalation', 'reconcile', 'noop', 'call_back', 'claim_timeout', 'lead_text'));
alter table message drop constraint message_kind_check;
alter table message add constraint message_kind_check
    check (kind in ('text_back', 'follow_up', 'manual', 'opt_out_ack', 'opt_in_ack', 'help', 'agent_alert', 'lead_text'));
drop index message_daily_recipients;
create index message_daily_recipients on message (number_id, occurred_at)
    where direction = 'outbound' and kind in ('text_back', 'follow_up', 'lead_text');

-- The thread shows a lead text queued and how it ended, like a text-back.
drop trigger job_inbox on job;
create trigger job_inbox after insert on job
    for each row when (new.kind in ('text_back', 'agent_reply', 'lead_text'))
    execute function inbox_notify_contact();
drop trigger job_inbox_end on job;
create trigger job_inbox_end after update of state on job
    for each row when (new.kind in ('text_back', 'follow_up', 'agent_reply', 'lead_text')
                       and new.finished_at is not null and old.finished_at is null)
    execute function inbox_notify_contact();
