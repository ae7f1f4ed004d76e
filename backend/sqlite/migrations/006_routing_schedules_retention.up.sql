-- Activity routing (what each worker serves), schedule-to-start timeouts, cron
-- schedules and retention.

-- A worker's row, written with its heartbeat: where it runs and what it serves.
-- queues and activities are JSON arrays of names (queues [] = all queues).
ALTER TABLE workers ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN queues TEXT;
ALTER TABLE workers ADD COLUMN activities TEXT;
ALTER TABLE workers ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN started_at INTEGER;

-- start_by: an activity task scheduled with schedule_to_start_timeout= fails with a
-- timeout when no worker started it by then. Computed from the payload's options, so
-- the writers of tasks need not know about it; the instr() test keeps the cost of a
-- task without the option to a substring search.
ALTER TABLE tasks ADD COLUMN start_by INTEGER GENERATED ALWAYS AS (
    CASE WHEN kind = 'activity' AND instr(payload, '"schedule_to_start_ms"') > 0
        THEN run_at + json_extract(payload, '$.options.schedule_to_start_ms') END) VIRTUAL;
CREATE INDEX tasks_start_by ON tasks (start_by) WHERE start_by IS NOT NULL AND status = 'pending';

-- Cron schedules. The script is pinned at create (bundle, sources in scripts).
-- next_at is the next tick not processed yet; buffered_at a tick held back by
-- overlap=buffer_one; lease_until keeps other processes off a schedule being ticked.
CREATE TABLE schedules (
    id                TEXT PRIMARY KEY,
    spec              TEXT NOT NULL,
    timezone          TEXT NOT NULL DEFAULT 'UTC',
    overlap           TEXT NOT NULL DEFAULT 'skip',
    catchup_ms        INTEGER NOT NULL DEFAULT 60000,
    jitter_ms         INTEGER NOT NULL DEFAULT 0,
    bundle            TEXT NOT NULL,
    entry             TEXT NOT NULL,
    args              TEXT NOT NULL,
    queue             TEXT NOT NULL,
    paused            INTEGER NOT NULL DEFAULT 0,
    next_at           INTEGER NOT NULL,
    buffered_at       INTEGER,
    last_execution_id TEXT NOT NULL DEFAULT '',
    lease_until       INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_at) WHERE paused = 0;

-- What happened to each tick: dispatched, triggered, buffered, or skipped (missed
-- beyond the catch-up window, or overlapping a running execution).
CREATE TABLE schedule_ticks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id  TEXT NOT NULL,
    tick_at      INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    execution_id TEXT NOT NULL DEFAULT '',
    at           INTEGER NOT NULL
);
CREATE INDEX schedule_ticks_schedule ON schedule_ticks (schedule_id, id);

-- Retention walks ended root executions oldest first, and deletes by execution.
CREATE INDEX executions_ended ON executions (completed_at, id) WHERE parent_id = '' AND completed_at IS NOT NULL;
CREATE INDEX signals_execution ON signals (execution_id);
CREATE INDEX dead_letters_execution ON dead_letters (execution_id);
