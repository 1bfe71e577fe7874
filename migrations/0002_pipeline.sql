-- The missed-call pipeline: job transitions and wake-ups by trigger, callback tasks, the
-- Lookup cache, the suppression list, alerts for people, and the outbound send's fences.

-- A job kind for benchmarks that does nothing (`textback bench queue`).
alter table job drop constraint job_kind_check;
alter table job add constraint job_kind_check
    check (kind in ('text_back', 'follow_up', 'keyword_reply', 'agent_reply', 'agent_alert', 'escalation', 'reconcile', 'noop'));

-- Transitions are written by the triggers below, one INSERT … SELECT per statement (a claim
-- or a batch finish of hundreds of jobs costs one insert statement, not hundreds). The log is
-- append-only and written only by them, so it needs no foreign key (whose per-row check
-- would cost more than the insert) and no primary key: a job's history is found by job_id
-- (B-tree), the feed reads it in order by its id (BRIN: monotonic, nearly free to keep).
-- Measured with the scheduler's claim and finish (textback bench queue): the B-tree primary
-- key plus a (job_id, at) index took 36k jobs/s down to 28k.
alter table job_transition drop constraint job_transition_brokerage_id_job_id_fkey;
alter table job_transition drop constraint job_transition_pkey;
drop index job_transition_job;
create index job_transition_job on job_transition (job_id);
create index job_transition_order on job_transition using brin (job_transition_id);

-- Every claim and finish rewrites the job row (its state is in the partial indexes' predicates,
-- so no update is HOT): each index of job costs on every transition. The composite key
-- (brokerage_id, job_id) existed only for the message foreign key; job_id alone identifies a
-- job, and the pipeline writes a message with its job's brokerage.
alter table message drop constraint message_brokerage_id_job_id_fkey;
alter table message add foreign key (job_id) references job (job_id);
alter table job drop constraint job_brokerage_id_job_id_key;

create function job_after_insert() returns trigger language plpgsql as $$
begin
    insert into job_transition (brokerage_id, job_id, from_state, to_state, reason, at)
    select brokerage_id, job_id, null, state, reason, updated_at from new_rows;
    -- Wakes sleeping workers; delivered at commit, when the rows are visible.
    perform pg_notify('textback_jobs', '');
    return null;
end $$;

create trigger job_inserted after insert on job
    referencing new table as new_rows
    for each statement execute function job_after_insert();

-- The statement is planned on each call (EXECUTE): a cached plan made for a one-row update
-- joins the transition tables by nested loop, which for a batch of a thousand jobs is a
-- million comparisons (measured: 110 ms per batch finish, two thirds of the scheduler's time).
create function job_after_update() returns trigger language plpgsql as $$
begin
    execute $q$
        insert into job_transition (brokerage_id, job_id, from_state, to_state, reason, at)
        select n.brokerage_id, n.job_id, o.state, n.state, n.reason, n.updated_at
          from new_rows n join old_rows o using (job_id)
         -- a state change, a scheduled job moved (re-armed, deferred), or a job re-claimed
         -- after its lease (running → running with the next attempt)
         where n.state is distinct from o.state
            or (n.state = 'scheduled' and n.run_at is distinct from o.run_at)
            or n.attempt is distinct from o.attempt
    $q$;
    return null;
end $$;

create trigger job_updated after update on job
    referencing old table as old_rows new table as new_rows
    for each statement execute function job_after_update();

-- Callback tasks: a person should call this contact (a landline, a number that cannot take
-- texts, a dial result nobody could classify, a caller outside the US).
create table task (
    task_id      bigint generated always as identity primary key,
    brokerage_id bigint not null,
    contact_id   bigint not null,
    -- the number whose agents the task is for
    number_id    bigint not null,
    call_id      bigint,
    message_id   bigint,
    kind         text not null check (kind in ('callback')),
    -- line_type, cannot_receive, unclassified_call, outside_us
    reason       text not null,
    -- the line type or carrier code behind the reason
    detail       text,
    state        text not null default 'open' check (state in ('open', 'done')),
    created_at   timestamptz not null,
    done_at      timestamptz,
    done_reason  text,
    check ((state = 'done') = (done_at is not null)),
    unique (brokerage_id, task_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id),
    foreign key (brokerage_id, number_id) references number (brokerage_id, number_id),
    foreign key (brokerage_id, call_id) references call (brokerage_id, call_id),
    foreign key (brokerage_id, message_id) references message (brokerage_id, message_id)
);
-- One open callback task per contact: a duplicate status callback or a second miss adds
-- nothing for the agent to do.
create unique index task_one_open_callback on task (contact_id) where kind = 'callback' and state = 'open';
create index task_open on task (brokerage_id, number_id) where state = 'open';

-- Lookup v2 answers, per brokerage and number, used for `lookup_max_age`.
create table line_lookup (
    brokerage_id   bigint not null references brokerage,
    phone          text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    valid          boolean not null,
    line_type      text,
    caller_name    text,
    looked_up_at   timestamptz not null,
    primary key (brokerage_id, phone)
);

-- The brokerage's suppression list (compliance.md R1): one current-state row per number.
-- Never deleted; an opt-in (compliance issue) sets lifted_at.
create table suppression (
    brokerage_id  bigint not null references brokerage,
    phone         text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    -- carrier (21610, 30004), keyword, review, agent, import
    source        text not null,
    detail        text,
    created_at    timestamptz not null,
    lifted_at     timestamptz,
    primary key (brokerage_id, phone)
);

-- Things people must know that are not a callback: a carrier filter (30007), a configuration
-- problem (21408, 30034, 401/403/404), a text whose fate is unknown. Shown and sent to the
-- brokerage's admins by the people's-side issue; recorded here so none is lost.
create table alert (
    alert_id      bigint generated always as identity primary key,
    brokerage_id  bigint not null references brokerage,
    audience      text not null check (audience in ('admins', 'agents')),
    reason        text not null,
    detail        text,
    message_id    bigint,
    call_id       bigint,
    created_at    timestamptz not null
);

alter table contact add column invalid_at timestamptz;
-- Which template variant a text used (each contact gets one, stable; the dashboard compares
-- reply rates per variant).
alter table message add column template_variant integer;
-- A person should look at this message (30008, or a send the carrier's list could not settle).
alter table message add column review_reason text;
-- At most one live send per job (reliability.md §1): a re-claim cannot insert a second.
create unique index message_one_live_send on message (job_id)
    where send_state in ('sending', 'unknown', 'sent', 'needs_review');
create index message_unsettled on message (brokerage_id, to_raw, from_raw)
    where send_state in ('sending', 'unknown');

-- A status callback can arrive before the send it reports on is recorded (the carrier answered
-- and called back while our record transaction was still committing, or the answer was lost).
-- When an unsettled send to that recipient exists, the callback is kept here by its sid and
-- applied when the send is linked to that sid: no status, and no 30006, is lost.
alter table message_status_event alter column message_id drop not null;
alter table message_status_event add column message_sid text;
create unique index message_status_event_orphan
    on message_status_event (message_sid, status, (coalesce(error_code_raw, '')))
    where message_id is null;

-- Running ⇔ holding a lease, and the lease index defined by the lease itself. A statement that
-- finishes jobs by id (`job_id = any(…) and state = 'running'`) then cannot be planned on this
-- index (with statistics taken while nothing ran, a generic plan would scan every running job
-- against the whole id list), while the claim's `lease_until < now` still uses it.
alter table job drop constraint job_check1;
alter table job add constraint job_running_holds_a_lease check ((state = 'running') = (lease_until is not null));
drop index job_lease;
create index job_lease on job (lease_until) where lease_until is not null;

-- A contact's jobs of a kind, in every state: the latest text-back (the episode rule, on every
-- missed call) and cancel-by-(contact, kind) both read it. The scheduled-only index could not
-- answer "the latest", which then walked the primary key backwards over every job since.
-- Bench no-ops have no contact and stay out of it.
drop index job_contact;
create index job_contact on job (contact_id, kind, job_id) where contact_id is not null;

-- The reconcile job of an unsettled message (a status callback hurries it): reconcile jobs
-- only, so no other job pays for it.
create index job_reconcile_message on job (((payload->>'message_id')::bigint)) where kind = 'reconcile';
