-- Initial Stent schema. Times are unix milliseconds (bigint) taken from the backend's
-- Clock, as in the SQLite backend. JSON values are stored as text, byte for byte as the
-- engine wrote them (jsonb would reorder keys and reformat).

CREATE TABLE scripts (
    hash   text PRIMARY KEY,
    source bytea NOT NULL
);

CREATE TABLE executions (
    id           text PRIMARY KEY,
    -- row_id breaks ties between executions created in the same millisecond, so
    -- "newest first" follows insertion order.
    row_id       bigint GENERATED ALWAYS AS IDENTITY,
    parent_id    text NOT NULL DEFAULT '', -- '' for a root execution
    parent_seq   integer NOT NULL DEFAULT 0,
    bundle       text NOT NULL,
    entry        text NOT NULL,
    args         text,
    queue        text NOT NULL,
    status       text NOT NULL,
    result       text,
    error        text,
    version      bigint NOT NULL DEFAULT 0,
    -- run counts continue_as_new restarts (1 for the first run); parent_run is the
    -- parent's run that started this child: a child reports only to that run.
    run          integer NOT NULL DEFAULT 1,
    parent_run   integer NOT NULL DEFAULT 1,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    start_at     bigint NOT NULL,
    deadline     bigint,
    completed_at bigint
) WITH (fillfactor = 80); -- room for HOT updates: every workflow task bumps version
CREATE INDEX executions_created ON executions (created_at DESC, row_id DESC);
CREATE INDEX executions_parent ON executions (parent_id, created_at DESC, row_id DESC)
    WHERE parent_id <> '';
-- status changes once per execution (at its end): version bumps stay HOT updates.
CREATE INDEX executions_status ON executions (status, created_at DESC, row_id DESC);

-- Event ids come from one sequence, so they grow across executions; the primary key
-- (execution_id, id) is also the index History reads.
CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    execution_id text NOT NULL,
    seq          integer NOT NULL DEFAULT 0,
    kind         text NOT NULL,
    name         text NOT NULL DEFAULT '',
    data         text,
    error        text,
    cache_hit    boolean NOT NULL DEFAULT false,
    at           bigint NOT NULL,
    PRIMARY KEY (execution_id, id)
);

CREATE TABLE tasks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL,
    execution_id     text NOT NULL,
    seq              integer NOT NULL DEFAULT 0,
    queue            text NOT NULL,
    run_at           bigint NOT NULL,
    attempt          integer NOT NULL DEFAULT 0,
    payload          text,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed')),
    fence            bigint NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at bigint,
    -- rerun: results arrived for the execution while its workflow task was claimed.
    rerun            boolean NOT NULL DEFAULT false
);
-- Tasks are queue rows: inserted, claimed and deleted within seconds, so dead rows pile
-- up fast. Vacuum them as soon as autovacuum looks, however small the table is.
ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 1000);
-- Claiming only ever looks at pending rows, so these stay small however many
-- executions have finished.
CREATE INDEX tasks_pending ON tasks (run_at, id) WHERE status = 'pending';
CREATE INDEX tasks_pending_queue ON tasks (queue, run_at, id) WHERE status = 'pending';
CREATE INDEX tasks_claimed ON tasks (lease_expires_at) WHERE status = 'claimed';
CREATE INDEX tasks_execution ON tasks (execution_id);
-- At most one workflow task per execution; enqueueing upserts on it.
CREATE UNIQUE INDEX tasks_workflow ON tasks (execution_id) WHERE kind = 'workflow';

CREATE TABLE workers (
    id           text PRIMARY KEY,
    heartbeat_at bigint NOT NULL
);

CREATE TABLE logs (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    execution_id text NOT NULL,
    run          integer NOT NULL DEFAULT 1,
    at           bigint NOT NULL,
    message      text NOT NULL,
    PRIMARY KEY (execution_id, id)
);

-- Signals sent to executions; consumed_at is NULL while the script has not received it.
CREATE TABLE signals (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id text NOT NULL,
    name         text NOT NULL,
    payload      text,
    at           bigint NOT NULL,
    consumed_at  bigint
);
CREATE INDEX signals_pending ON signals (execution_id, id) WHERE consumed_at IS NULL;

-- The activity result cache, shared across executions.
CREATE TABLE cache (
    key        text PRIMARY KEY,
    activity   text NOT NULL,
    result     text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint -- NULL: never
);
CREATE INDEX cache_activity ON cache (activity);

-- Activities that exhausted their retries and failed their execution.
CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id text NOT NULL,
    seq          integer NOT NULL,
    activity     text NOT NULL,
    payload      text,
    error        text,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'replayed', 'discarded')),
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL
);
CREATE INDEX dead_letters_status ON dead_letters (status, id);

-- stent_begin_workflow_task opens the commit of a workflow task, so that the whole
-- commit can be sent to the server as one pipelined transaction. It locks the
-- execution (always before any task row, as every writer does), removes the workflow
-- task if the caller still holds it with that fence -- or makes it runnable again when
-- results arrived while it was claimed (rerun) -- and checks the execution is running
-- at the expected version. Unless the execution is finishing, it bumps the version.
-- Failed checks raise SQLSTATE SL001 (lease lost), SL002 (stale execution), SL003 (not
-- a workflow task of that execution) or SL004 (no such execution), which undoes what
-- the function did; the Go side maps them to the backend's sentinel errors.
CREATE FUNCTION stent_begin_workflow_task(p_execution text, p_task bigint, p_fence bigint,
    p_version bigint, p_finishing boolean, p_now bigint)
RETURNS TABLE (o_queue text, o_requeued boolean, o_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    e_status  text;
    e_version bigint;
    t_kind    text;
    t_exec    text;
BEGIN
    SELECT x.status, x.version, x.queue INTO e_status, e_version, o_queue
        FROM executions x WHERE x.id = p_execution FOR UPDATE;
    o_requeued := false;
    DELETE FROM tasks t
        WHERE t.id = p_task AND t.fence = p_fence AND t.status = 'claimed' AND (p_finishing OR NOT t.rerun)
        RETURNING t.kind, t.execution_id INTO t_kind, t_exec;
    IF NOT FOUND THEN
        UPDATE tasks t SET status = 'pending', run_at = p_now, rerun = false, lease_owner = NULL,
                lease_expires_at = NULL
            WHERE t.id = p_task AND t.fence = p_fence AND t.status = 'claimed'
            RETURNING t.kind, t.execution_id INTO t_kind, t_exec;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'task % is not held with fence %', p_task, p_fence USING ERRCODE = 'SL001';
        END IF;
        o_requeued := true;
    END IF;
    IF t_kind <> 'workflow' OR t_exec <> p_execution THEN
        RAISE EXCEPTION 'task % is a % task of execution %, not the workflow task of %',
            p_task, t_kind, t_exec, p_execution USING ERRCODE = 'SL003';
    END IF;
    IF e_status IS NULL THEN
        RAISE EXCEPTION 'execution "%" does not exist', p_execution USING ERRCODE = 'SL004';
    END IF;
    IF e_status <> 'running' OR e_version <> p_version THEN
        RAISE EXCEPTION 'execution % is % at version %, expected running at version %',
            p_execution, e_status, e_version, p_version USING ERRCODE = 'SL002';
    END IF;
    IF NOT p_finishing THEN
        UPDATE executions SET version = version + 1, updated_at = p_now WHERE id = p_execution
            RETURNING version INTO o_version;
    END IF;
    RETURN NEXT;
END
$$;
