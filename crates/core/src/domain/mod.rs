//! Pure logic: no I/O, no clock, no `sqlx`, `reqwest` or `tokio` (CI greps for them).
//! Functions take `now` and data and return decisions.

pub mod access;
pub mod agent_text;
pub mod alerts;
pub mod backoff;
pub mod callback;
pub mod caller_name;
pub mod carrier;
pub mod compliance_text;
pub mod content;
pub mod decision_text;
pub mod dial;
pub mod dnc;
pub mod duration;
pub mod episode;
pub mod funnel;
pub mod gate;
pub mod keywords;
pub mod language;
pub mod lead_intake;
pub mod line_type;
pub mod links;
pub mod media;
pub mod password;
pub mod phone;
pub mod quiet_hours;
pub mod routing;
pub mod sequence;
pub mod sms_text;
pub mod template;
pub mod webhooks;
pub mod zones;
