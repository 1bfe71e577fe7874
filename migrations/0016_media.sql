-- Pictures in and out (README.md "Pictures"). One row per file: an inbound text's media item
-- (Twilio's MediaUrlN, fetched by a `media_fetch` job with the account's credentials) or an
-- agent's attachment to a reply (served to Twilio at /media/{token} until it expires).
-- The bytes live here, in PostgreSQL (bytea, stored out of line by TOAST): one thing to back up
-- and restore, visible to every instance without a shared disk, removed with the brokerage's
-- data, and read only through the checks of the pages that show it.
create table media (
    media_id      bigint generated always as identity primary key,
    brokerage_id  bigint not null references brokerage,
    -- inbound | outbound
    direction     text not null check (direction in ('inbound', 'outbound')),
    -- inbound: the text it came with; outbound: the agent_reply job that sends it
    message_id    bigint references message,
    job_id        bigint references job,
    -- N of MediaUrlN (inbound); the order of the attachments (outbound)
    position      integer not null default 0,
    -- inbound: the SIDs taken from Twilio's URL (the fetch is built from them, never from the URL)
    message_sid   text,
    media_sid     text,
    -- what Twilio said it is (MediaContentTypeN), and what its bytes are
    claimed_type  text,
    content_type  text,
    bytes         bytea,
    size          integer,
    width         integer,
    height        integer,
    -- pending (to fetch) | stored | refused (the file, by our checks) | failed (the fetch)
    state         text not null check (state in ('pending', 'stored', 'refused', 'failed')),
    reason        text,
    -- outbound: the unguessable part of its address, and until when it answers
    token         text unique,
    expires_at    timestamptz,
    uploaded_by   bigint,
    created_at    timestamptz not null,
    stored_at     timestamptz,
    check ((state = 'stored') = (bytes is not null)),
    check (direction = 'inbound' or token is not null)
);
create index media_message on media (message_id) where message_id is not null;
create index media_job on media (job_id) where job_id is not null;

-- Fetching an inbound text's media: a job of its own, retried with backoff.
alter table job drop constraint job_kind_check;
alter table job add constraint job_kind_check
    check (kind in ('text_back', 'follow_up', 'keyword_reply', 'agent_reply', 'agent_alert', 'escalation', 'reconcile', 'noop', 'call_back', 'claim_timeout', 'lead_text', 'media_fetch'));
