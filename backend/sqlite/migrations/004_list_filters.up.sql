-- Listing filters and paging: executions are listed by (created_at, id) descending, and
-- filtered by status, main script and queue.
DROP INDEX executions_created;
DROP INDEX executions_status;
CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_status ON executions (status, created_at, id);
CREATE INDEX executions_script ON executions (json_extract(bundle, '$.main'), created_at, id);
CREATE INDEX executions_queue ON executions (queue, created_at, id);
