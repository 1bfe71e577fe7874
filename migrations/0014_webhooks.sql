-- Signed outbound webhooks and Follow Up Boss (docs/webhooks.md): the subscriptions of the
-- setup file, the events textback emits, and one delivery per (subscription, event), queued in
-- the event's own transaction by triggers on the tables where the events happen, so no code path
-- can record an event and forget to send it.

create table webhook_subscription (
    subscription_id  bigint generated always as identity primary key,
    brokerage_id     bigint not null references brokerage,
    -- `[[webhooks]] name`, or `follow_up_boss` for the brokerage's FUB account
    name             text not null,
    kind             text not null check (kind in ('webhook', 'follow_up_boss')),
    url              text not null,
    events           text[] not null,
    -- where the server reads the secret: {"env": NAME} or {"file": PATH}; never the secret
    secret           jsonb not null,
    -- FUB: its registered system and where its key is read (null: none)
    fub_system       text,
    fub_system_key   jsonb,
    allow_private    boolean not null default false,
    -- active | paused (failed for a day: deliveries held) | removed (the file no longer lists it)
    state            text not null default 'active' check (state in ('active', 'paused', 'removed')),
    -- the first failure with no success since
    failing_since    timestamptz,
    paused_at        timestamptz,
    last_success_at  timestamptz,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    unique (brokerage_id, name),
    unique (brokerage_id, subscription_id)
);

-- One row per event that some subscription wanted; its `public_id` is the `webhook-id` every
-- delivery of it carries (receivers deduplicate on it).
create table outbound_event (
    event_id         bigint generated always as identity primary key,
    brokerage_id     bigint not null references brokerage,
    public_id        text not null unique default ('msg_' || replace(gen_random_uuid()::text, '-', '')),
    type             text not null,
    conversation_id  bigint,
    contact_id       bigint,
    data             jsonb not null,
    at               timestamptz not null
);
create index outbound_event_brokerage on outbound_event (brokerage_id, event_id desc);

create table webhook_delivery (
    delivery_id      bigint generated always as identity primary key,
    brokerage_id     bigint not null,
    subscription_id  bigint not null,
    event_id         bigint not null references outbound_event,
    -- copied from the event: deliveries of one conversation go in order
    conversation_id  bigint,
    -- pending | delivering (leased) | delivered | failed (gave up) | held (subscription paused)
    state            text not null default 'pending'
                     check (state in ('pending', 'delivering', 'delivered', 'failed', 'held')),
    attempts         integer not null default 0,
    run_at           timestamptz not null,
    lease_until      timestamptz,
    -- the receiver's last answer: its HTTP status (null: none, see last_error) and an excerpt
    last_status      integer,
    last_answer      text,
    last_error       text,
    last_attempt_at  timestamptz,
    delivered_at     timestamptz,
    -- why it ended failed
    reason           text,
    -- Follow Up Boss: the steps of a multi-call delivery already done (`event_posted`), so a
    -- retry does not post the lead event again
    progress         text,
    created_at       timestamptz not null,
    check ((state = 'delivering') = (lease_until is not null)),
    unique (subscription_id, event_id),
    foreign key (brokerage_id, subscription_id) references webhook_subscription (brokerage_id, subscription_id)
);
create index webhook_delivery_due on webhook_delivery (run_at) where state = 'pending';
create index webhook_delivery_lease on webhook_delivery (lease_until) where state = 'delivering';
-- "Is an earlier delivery of this conversation still open?"
create index webhook_delivery_open on webhook_delivery (subscription_id, conversation_id, event_id)
    where state in ('pending', 'delivering', 'held');
create index webhook_delivery_log on webhook_delivery (brokerage_id, delivery_id desc);

-- Which Follow Up Boss person a contact is.
create table fub_person (
    brokerage_id  bigint not null,
    contact_id    bigint not null,
    person_id     bigint not null,
    created_at    timestamptz not null,
    primary key (brokerage_id, contact_id),
    foreign key (brokerage_id, contact_id) references contact (brokerage_id, contact_id)
);

-- The alert that tells admins a subscription was paused.
alter table alert add column subscription_id bigint;

-- Records `type` for every live subscription of the brokerage that lists it, and queues their
-- deliveries, due at `at`. Nothing at all when none does (one index probe).
create function outbound_emit(b bigint, t text, c bigint, d jsonb, at timestamptz)
returns void language plpgsql as $$
declare
    conv bigint;
    ev   bigint;
begin
    if not exists (select 1 from webhook_subscription s
                    where s.brokerage_id = b and s.state <> 'removed' and t = any (s.events)) then
        return;
    end if;
    if c is not null then
        select conversation_id into conv from conversation where contact_id = c;
    end if;
    insert into outbound_event (brokerage_id, type, conversation_id, contact_id, data, at)
    values (b, t, conv, c,
            jsonb_build_object('conversation_id', conv,
                               'phone', (select phone from contact where contact_id = c)) || d,
            at)
    returning event_id into ev;
    insert into webhook_delivery (brokerage_id, subscription_id, event_id, conversation_id, state, run_at, created_at)
    select b, s.subscription_id, ev, conv,
           case s.state when 'paused' then 'held' else 'pending' end, at, at
      from webhook_subscription s
     where s.brokerage_id = b and s.state <> 'removed' and t = any (s.events);
    perform pg_notify('textback_delivery', '');
end $$;

create function number_e164(n bigint) returns text language sql stable as $$
    select e164 from number where number_id = n
$$;

create function outbound_web_lead() returns trigger language plpgsql as $$
begin
    perform outbound_emit(new.brokerage_id, 'lead.created', new.contact_id,
        jsonb_build_object('lead_id', new.web_lead_id, 'number', number_e164(new.number_id),
                           'name', new.name, 'source', new.source, 'listing', new.listing,
                           'message', new.message,
                           'consent', jsonb_build_object('text', new.consent_text, 'url', new.consent_url,
                                                         'at', new.consent_at)),
        new.created_at);
    return null;
end $$;
create trigger web_lead_outbound after insert on web_lead
    for each row execute function outbound_web_lead();

create function outbound_call() returns trigger language plpgsql as $$
begin
    if new.outcome in ('missed', 'answered') and new.contact_id is not null
       and (tg_op = 'INSERT' or old.outcome is distinct from new.outcome) then
        perform outbound_emit(new.brokerage_id, 'call.' || new.outcome, new.contact_id,
            jsonb_build_object('call_id', new.call_id, 'call_sid', new.call_sid,
                               'number', number_e164(new.number_id), 'started_at', new.started_at,
                               'duration_secs', new.dial_call_duration,
                               'answered_by', (select email from agent where agent_id = new.screened_agent_id)),
            coalesce(new.outcome_at, new.started_at));
    end if;
    return null;
end $$;
create trigger call_outbound after insert or update of outcome on call
    for each row execute function outbound_call();

create function message_data(m message) returns jsonb language sql stable as $$
    select jsonb_build_object('message_id', m.message_id, 'sid', m.sid, 'kind', m.kind,
                              'from', m.from_raw, 'to', m.to_raw, 'body', m.body,
                              'num_media', m.num_media, 'number', number_e164(m.number_id))
$$;

create function outbound_message() returns trigger language plpgsql as $$
begin
    if new.contact_id is null then
        return null;
    end if;
    if new.direction = 'inbound' and tg_op = 'INSERT' then
        perform outbound_emit(new.brokerage_id, 'reply.received', new.contact_id,
                              message_data(new), new.occurred_at);
    elsif new.direction = 'outbound' and new.send_state = 'sent'
          and (tg_op = 'INSERT' or old.send_state is distinct from 'sent') then
        perform outbound_emit(new.brokerage_id, 'text.sent', new.contact_id,
                              message_data(new), new.occurred_at);
    elsif new.direction = 'outbound' and new.send_state in ('failed_certain', 'rejected')
          and (tg_op = 'INSERT' or old.send_state is distinct from new.send_state) then
        perform outbound_emit(new.brokerage_id, 'text.failed', new.contact_id,
                              message_data(new) || jsonb_build_object('error_code', new.error_code, 'status', new.send_state),
                              new.occurred_at);
    end if;
    return null;
end $$;
create trigger message_outbound after insert or update of send_state on message
    for each row execute function outbound_message();

-- Delivery reports: `text.delivered` once, `text.failed` once per message.
create function outbound_message_status() returns trigger language plpgsql as $$
declare
    m message;
begin
    if new.status not in ('delivered', 'failed', 'undelivered') or new.message_id is null then
        return null;
    end if;
    -- Once per message and outcome: a second failure report (with an ErrorCode this time, or
    -- `failed` after `undelivered`) is not a second event.
    if exists (select 1 from message_status_event x
                where x.message_id = new.message_id
                  and x.message_status_event_id <> new.message_status_event_id
                  and (x.status = 'delivered') = (new.status = 'delivered')
                  and x.status in ('delivered', 'failed', 'undelivered')) then
        return null;
    end if;
    select * into m from message where message_id = new.message_id;
    if m.contact_id is null or m.direction <> 'outbound' then
        return null;
    end if;
    perform outbound_emit(new.brokerage_id,
        case new.status when 'delivered' then 'text.delivered' else 'text.failed' end,
        m.contact_id,
        message_data(m) || jsonb_build_object('status', new.status, 'error_code', new.error_code_raw),
        new.received_at);
    return null;
end $$;
create trigger message_status_outbound after insert on message_status_event
    for each row execute function outbound_message_status();

create function outbound_consent() returns trigger language plpgsql as $$
begin
    if new.event in ('opt_out', 'opt_in') then
        perform outbound_emit(new.brokerage_id, new.event,
            (select contact_id from contact where brokerage_id = new.brokerage_id and phone = new.phone),
            jsonb_build_object('phone', new.phone, 'source', new.source, 'how', new.how),
            new.at);
    end if;
    return null;
end $$;
create trigger consent_outbound after insert on consent_event
    for each row execute function outbound_consent();

create function outbound_conversation_event() returns trigger language plpgsql as $$
declare
    c bigint;
begin
    if new.kind not in ('assigned', 'closed', 'routed', 'claimed', 'reassigned', 'to_managers') then
        return null;
    end if;
    select contact_id into c from conversation where conversation_id = new.conversation_id;
    if new.kind = 'closed' then
        perform outbound_emit(new.brokerage_id, 'conversation.closed', c,
            jsonb_build_object('by', (select email from agent where agent_id = new.by_agent_id)), new.at);
    elsif new.to_agent_id is not null then
        perform outbound_emit(new.brokerage_id, 'conversation.assigned', c,
            jsonb_build_object('how', new.kind,
                               'agent', (select jsonb_build_object('email', email, 'name', name)
                                           from agent where agent_id = new.to_agent_id),
                               'by', (select email from agent where agent_id = new.by_agent_id)),
            new.at);
    end if;
    return null;
end $$;
create trigger conversation_event_outbound after insert on conversation_event
    for each row execute function outbound_conversation_event();

create function outbound_task() returns trigger language plpgsql as $$
begin
    perform outbound_emit(new.brokerage_id, 'task.created', new.contact_id,
        jsonb_build_object('task_id', new.task_id, 'kind', new.kind, 'reason', new.reason,
                           'detail', new.detail, 'number', number_e164(new.number_id)),
        new.created_at);
    return null;
end $$;
create trigger task_outbound after insert on task
    for each row execute function outbound_task();

create function outbound_voicemail() returns trigger language plpgsql as $$
begin
    perform outbound_emit(new.brokerage_id, 'voicemail.received', new.contact_id,
        jsonb_build_object('voicemail_id', new.voicemail_id, 'call_id', new.call_id,
                           'duration_secs', new.duration_secs),
        new.created_at);
    return null;
end $$;
create trigger voicemail_outbound after insert on voicemail
    for each row execute function outbound_voicemail();
