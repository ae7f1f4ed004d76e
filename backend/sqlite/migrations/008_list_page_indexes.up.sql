-- Indexes for the web view's list page (and `stent list`), checked with EXPLAIN QUERY
-- PLAN on 100,000 executions.
--
-- Children of an execution, in list order (created_at, id descending): without id in the
-- index the planner preferred scanning executions_created for the ORDER BY and filtering
-- on parent_id, a scan of every execution for each execution page.
DROP INDEX IF EXISTS executions_parent;
CREATE INDEX executions_parent ON executions (parent_id, created_at, id);
-- Root executions by status, in list order; it also covers the per-status counts of the
-- status chips (status, and start_at to tell scheduled from running), so counting reads
-- this index instead of every row.
CREATE INDEX executions_parent_status ON executions (parent_id, status, created_at, id, start_at);
