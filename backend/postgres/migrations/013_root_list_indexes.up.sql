-- The list filters by status, script and queue serve root executions (what `stent list`,
-- the API and the web view list unless asked for all): their indexes hold roots only, so
-- that creating and finishing a child execution maintains three index entries fewer
-- each. Roots by status already have executions_root_status. Listing every execution
-- (--all) with such a filter reads executions_created in list order and filters.
DROP INDEX IF EXISTS executions_status;
DROP INDEX IF EXISTS executions_script;
DROP INDEX IF EXISTS executions_queue;
CREATE INDEX executions_root_script ON executions (((bundle::jsonb) ->> 'main'), created_at DESC, id DESC)
    WHERE parent_id = '';
CREATE INDEX executions_root_queue ON executions (queue, created_at DESC, id DESC) WHERE parent_id = '';
