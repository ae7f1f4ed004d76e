-- Task priorities and per-activity concurrency caps.
--
-- tasks.priority orders due tasks (highest first, then run_at, then id); an
-- execution's workflow tasks take executions.priority whenever they are created or
-- re-enqueued. tasks.activity is the activity name of an activity task (the "name" of
-- its payload), NULL for other kinds: capped claims count and pick by it.

ALTER TABLE executions ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN activity text;

-- Existing activity tasks get their name; a payload that is not valid JSON keeps NULL.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT id, payload FROM tasks WHERE kind = 'activity' AND payload IS NOT NULL LOOP
        BEGIN
            UPDATE tasks SET activity = r.payload::jsonb ->> 'name' WHERE id = r.id;
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- Claim order is (priority DESC, run_at, id). Claims walk the distinct priorities of
-- pending tasks (a handful) and, within each, the due tasks by run_at, so each step
-- is an index range scan.
DROP INDEX tasks_pending;
DROP INDEX tasks_pending_queue;
CREATE INDEX tasks_pending ON tasks (priority DESC, run_at, id) WHERE status = 'pending';
CREATE INDEX tasks_pending_queue ON tasks (queue, priority DESC, run_at, id) WHERE status = 'pending';
-- Capped claims: the pending tasks of one activity, and how many of it are claimed.
CREATE INDEX tasks_pending_activity ON tasks (activity, priority DESC, run_at, id)
    WHERE status = 'pending' AND activity IS NOT NULL;
CREATE INDEX tasks_claimed_activity ON tasks (activity) WHERE status = 'claimed' AND activity IS NOT NULL;
