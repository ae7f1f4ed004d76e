-- Task priorities and per-activity concurrency caps.

-- priority: higher is claimed first among due tasks. activity: the activity name of an
-- activity task (from its payload), for MaxConcurrent caps; NULL for other kinds.
ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN activity TEXT;
-- The priority of an execution's workflow tasks.
ALTER TABLE executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

UPDATE tasks SET activity = json_extract(payload, '$.name')
    WHERE kind = 'activity' AND json_valid(payload);

-- Claims read each kind's due pending tasks in order. Tasks of priority 0 (the usual
-- case) keep the (kind, status, run_at, id) order, read as a range that stops at now;
-- the others have their own index, read highest priority first. Each task is in
-- exactly one of the two, so a write costs what it did before.
DROP INDEX tasks_claim;
CREATE INDEX tasks_claim ON tasks (kind, status, run_at, id) WHERE priority = 0;
CREATE INDEX tasks_claim_priority ON tasks (kind, status, priority DESC, run_at, id) WHERE priority <> 0;
