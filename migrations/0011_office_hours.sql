-- An office's hours (setup file `[[offices]] hours = "09:00-18:00"`, every day, in the
-- brokerage's time zone): automatic callbacks call its agents only then (README.md "The call
-- side"). Both null: no hours named.
alter table office
    add column opens_at  time,
    add column closes_at time,
    add check ((opens_at is null) = (closes_at is null) and (opens_at is null or opens_at < closes_at));
