-- Indexes for the web view's list page (and `stent list`), checked with EXPLAIN on
-- 100,000 executions. The list shows root executions (parent_id = ''), newest first by
-- (created_at, id).
--
-- Children of an execution in list order (the previous index ordered by row_id).
DROP INDEX IF EXISTS executions_parent;
CREATE INDEX executions_parent ON executions (parent_id, created_at DESC, id DESC)
    WHERE parent_id <> '';
-- Root executions in list order, and by status. The second also answers the status
-- chips' counts with an index-only scan (start_at tells scheduled from running).
CREATE INDEX executions_root ON executions (created_at DESC, id DESC) WHERE parent_id = '';
CREATE INDEX executions_root_status ON executions (status, created_at DESC, id DESC)
    INCLUDE (start_at) WHERE parent_id = '';
