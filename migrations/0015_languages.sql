-- Texts in the lead's language (README.md "Not built yet"): each contact's language and how it was
-- decided, the brokerage's default for a caller not known yet, Spanish template variants, and
-- the languages each agent speaks (routing offers a lead to those who speak theirs first).

-- null: not known yet (the brokerage's `default_language` applies)
alter table contact
    add column language      text check (language in ('en', 'es')),
    -- detected (from their texts) | keyword (they texted ESPAÑOL or ENGLISH) | agent (set in the thread)
    add column language_how  text check (language_how in ('detected', 'keyword', 'agent')),
    add column language_at   timestamptz,
    add constraint contact_language_how check ((language is null) = (language_how is null));

alter table brokerage
    add column default_language         text not null default 'en' check (default_language in ('en', 'es')),
    add column text_back_templates_es   jsonb check (text_back_templates_es is null or jsonb_typeof(text_back_templates_es) = 'array'),
    add column lead_text_templates_es   jsonb check (lead_text_templates_es is null or jsonb_typeof(lead_text_templates_es) = 'array');

alter table follow_up_step
    add column templates_es jsonb check (templates_es is null or jsonb_typeof(templates_es) = 'array');

alter table agent
    add column languages text[] not null default '{en}';

-- The thread says when the language changed and how.
alter table conversation_event drop constraint conversation_event_kind_check;
alter table conversation_event add constraint conversation_event_kind_check
    check (kind in ('assigned', 'unassigned', 'closed', 'reopened', 'taken_over',
                    'routed', 'offered', 'claimed', 'claim_timed_out', 'skipped', 'to_managers',
                    'reassigned', 'agent_text', 'language'));
