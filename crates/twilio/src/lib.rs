//! Everything Twilio-shaped: signatures, form bodies, TwiML and webhook payloads.

pub mod client;
pub mod credentials;
pub mod form;
pub mod signature;
pub mod twiml;
pub mod webhook;
