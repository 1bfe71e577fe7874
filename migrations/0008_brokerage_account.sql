-- A brokerage's own Twilio account (its setup file's [twilio] table; docs/security.md
-- "Accounts and keys"): the account SID, and where the server reads its auth token and shared
-- webhook keys (an environment variable or a file, as {"env": NAME} / {"file": PATH}). No
-- secret is ever stored here. Null: the deployment's TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN.
alter table brokerage
    add column twilio_account_sid text check (twilio_account_sid ~ '^AC[0-9a-fA-F]{32}$'),
    add column twilio_secrets     jsonb;
-- A webhook's AccountSid picks the key that checks its signature, before anything else.
create index brokerage_twilio_account on brokerage (twilio_account_sid)
    where twilio_account_sid is not null;
