-- What people did to a conversation, for its thread: assigned (to whom), closed, reopened,
-- taken over. Before, assign and close left no line in the thread, and a badge named the
-- person by email. `by_agent` is the person who did it (null: textback itself).
create table conversation_event (
    conversation_event_id  bigint generated always as identity primary key,
    brokerage_id           bigint not null,
    conversation_id        bigint not null,
    -- assigned | unassigned | closed | reopened | taken_over
    kind                   text not null check (kind in ('assigned', 'unassigned', 'closed', 'reopened', 'taken_over')),
    by_agent_id            bigint,
    -- for `assigned`: the agent it went to
    to_agent_id            bigint,
    at                     timestamptz not null,
    foreign key (brokerage_id, conversation_id) references conversation (brokerage_id, conversation_id),
    foreign key (brokerage_id, by_agent_id) references agent (brokerage_id, agent_id),
    foreign key (brokerage_id, to_agent_id) references agent (brokerage_id, agent_id)
);
create index conversation_event_conversation on conversation_event (conversation_id, at);

-- The open page of the conversation hears of it (as of a note).
create trigger conversation_event_inbox after insert on conversation_event
    for each row execute function inbox_notify_note();
