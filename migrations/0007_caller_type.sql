-- Lookup's caller type beside its caller name (CONSUMER, BUSINESS, UNDETERMINED): a text-back
-- greets a caller by the first name of a CNAM string only when Lookup says the caller is a
-- consumer (src/domain/caller_name.rs).
alter table line_lookup add column caller_type text;
