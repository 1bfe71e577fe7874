-- A number the carrier said cannot take texts (docs/reliability.md "Carrier codes"): a
-- landline or an unknown handset (21614, 21635 on a send; 30005, 30006 in a status callback).
-- Later text-backs and follow-ups skip it (`cannot_receive`, a callback task instead) until an
-- inbound text from the number proves otherwise and clears it. The line-type cache alone was
-- not enough: Lookup had said "mobile" and would say so again when the cache expired.
alter table contact
    add column cannot_text_at   timestamptz,
    -- the carrier code that said so
    add column cannot_text_code text;
