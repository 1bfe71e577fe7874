-- The job transition log's lookup by job: a BRIN index instead of a B-tree.
--
-- Every claim and every finish appends one row per job, so the log's B-tree on job_id took
-- two index insertions per job, as many as the job table's own indexes (measured with the
-- scheduler's claim and finish statements, 1,000 jobs each, four clients: 65k jobs/s with the
-- B-tree, 62k–78k with this index, 70k–78k with no per-job rows at all). Nothing on the
-- serving path reads the log by job; an operator's "what happened to job 123" and the tests
-- do. A job's rows sit near one another and near the rows of jobs created about the same
-- time; the multi-minmax summaries keep several intervals per range, so the few rows of a
-- follow-up or a reconcile run days later do not widen a range to everything: a lookup reads
-- the small summary and a few 8-page ranges (measured: 1.3 ms among 1.3M rows).
--
-- autosummarize: autovacuum summarizes each range once it is full, rather than waiting for
-- the table's next vacuum (ranges not summarized yet are always read).
drop index job_transition_job;
create index job_transition_job on job_transition
    using brin (job_id int8_minmax_multi_ops) with (pages_per_range = 8, autosummarize = on);
alter index job_transition_order set (autosummarize = on);
