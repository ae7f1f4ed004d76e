-- The list filters by script and queue serve root executions (what `stent list`, the
-- web view and the HTTP API list unless asked for all), as on PostgreSQL (its migration
-- 013): they hold roots only, so that a child's creation and finish maintain two index
-- entries fewer (and no json_extract of its bundle). Roots by status are served by
-- executions_parent_status, so the index of every execution by status goes. `stent list
-- --all` with one of these filters reads executions_created in list order and filters.
DROP INDEX IF EXISTS executions_status;
DROP INDEX IF EXISTS executions_script;
DROP INDEX IF EXISTS executions_queue;
CREATE INDEX executions_root_script ON executions (json_extract(bundle, '$.main'), created_at, id)
    WHERE parent_id = '';
CREATE INDEX executions_root_queue ON executions (queue, created_at, id) WHERE parent_id = '';
