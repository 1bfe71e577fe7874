//! Pure logic: no I/O, no clock, no `sqlx`, `reqwest` or `tokio` (CI greps for them).
//! Functions take `now` and data and return decisions.

pub mod backoff;
pub mod carrier;
pub mod content;
pub mod dial;
pub mod duration;
pub mod episode;
pub mod gate;
pub mod line_type;
pub mod links;
pub mod phone;
pub mod sms_text;
pub mod template;
