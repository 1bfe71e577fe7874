//! API and integration tests: the real router on 127.0.0.1:0, a fresh PostgreSQL database per
//! test, requests signed as Twilio signs them. One test binary, many modules.

mod accounts;
mod alerts;
mod availability;
mod calls;
mod carrier;
mod cli;
mod compliance;
mod connect;
mod dashboard;
mod db_proxy;
mod fub;
mod helpers;
mod inbox;
mod languages;
mod leads;
mod logins;
mod media;
mod ops;
mod outage;
mod pipeline;
mod routing;
mod scheduler;
mod setup_apply;
mod sms;
mod voice;
mod webhook_security;
mod webhooks;
