//! The effects of events on a contact's automation, and the people's decisions the rules need.
//! Each is applied inside the event's own transaction and takes the contact's row lock first,
//! so racing events for one contact are ordered (docs/reliability.md §4): a miss schedules or
//! re-arms the text-back, an answered call or an inbound text cancels it, a carrier code has its
//! effect, an agent's reply is queued through the rules, and a person's decision in the inbox
//! (a review, "do not text", take over, close, delete, merge) is applied under the same locks.

pub mod agent_texts;
mod alerts;
pub mod callbacks;
mod calls;
mod carrier;
pub mod fub;
pub mod people;
mod replies;
pub mod routing;
mod texts;
pub mod web_leads;
pub mod webhooks;

pub use alerts::{Deliver, notify, open_callback_task, raise_alert};
pub use calls::{human_answered, on_answered_call, on_missed_call};
pub use carrier::{
    Target, adopt_orphan_statuses, after_sent, apply_code_effect, on_message_status,
};
pub use replies::{ReplyRefused, Said, queue_agent_reply, queue_agent_reply_once};
pub use texts::{Inbound, InboundEffect, note_language, on_inbound_text};
