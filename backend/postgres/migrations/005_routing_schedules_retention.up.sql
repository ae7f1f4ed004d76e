-- Activity routing (what each worker serves), schedule-to-start timeouts, cron
-- schedules and retention.

-- A worker's row, written with its heartbeat: where it runs and what it serves
-- (queues {} = all queues).
ALTER TABLE workers ADD COLUMN host text NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN pid integer NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN queues text[];
ALTER TABLE workers ADD COLUMN activities text[];
ALTER TABLE workers ADD COLUMN concurrency integer NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN in_flight integer NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN started_at bigint;

-- start_by: an activity task scheduled with schedule_to_start_timeout= fails with a
-- timeout when no worker started it by then. Computed from the payload's options, so
-- the writers of tasks need not know about it; the strpos() test keeps the cost of a
-- task without the option to a substring search.
ALTER TABLE tasks ADD COLUMN start_by bigint GENERATED ALWAYS AS (
    CASE WHEN kind = 'activity' AND strpos(payload, '"schedule_to_start_ms"') > 0
        THEN run_at + (payload::jsonb #>> '{options,schedule_to_start_ms}')::bigint END) STORED;
CREATE INDEX tasks_start_by ON tasks (start_by) WHERE start_by IS NOT NULL AND status = 'pending';

-- Cron schedules. The script is pinned at create (bundle, sources in scripts).
-- next_at is the next tick not processed yet; buffered_at a tick held back by
-- overlap=buffer_one.
CREATE TABLE schedules (
    id                text PRIMARY KEY,
    spec              text NOT NULL,
    timezone          text NOT NULL DEFAULT 'UTC',
    overlap           text NOT NULL DEFAULT 'skip',
    catchup_ms        bigint NOT NULL DEFAULT 60000,
    jitter_ms         bigint NOT NULL DEFAULT 0,
    bundle            text NOT NULL,
    entry             text NOT NULL,
    args              text NOT NULL,
    queue             text NOT NULL,
    paused            boolean NOT NULL DEFAULT false,
    next_at           bigint NOT NULL,
    buffered_at       bigint,
    last_execution_id text NOT NULL DEFAULT '',
    lease_until       bigint NOT NULL DEFAULT 0,
    created_at        bigint NOT NULL,
    updated_at        bigint NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_at) WHERE NOT paused;

-- What happened to each tick: dispatched, triggered, buffered, or skipped (missed
-- beyond the catch-up window, or overlapping a running execution).
CREATE TABLE schedule_ticks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_id  text NOT NULL,
    tick_at      bigint NOT NULL,
    outcome      text NOT NULL,
    execution_id text NOT NULL DEFAULT '',
    at           bigint NOT NULL
);
CREATE INDEX schedule_ticks_schedule ON schedule_ticks (schedule_id, id);

-- Retention walks ended root executions oldest first, and deletes by execution.
CREATE INDEX executions_ended ON executions (completed_at, id) WHERE parent_id = '' AND completed_at IS NOT NULL;
CREATE INDEX signals_execution ON signals (execution_id);
CREATE INDEX dead_letters_execution ON dead_letters (execution_id);
