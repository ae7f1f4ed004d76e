-- Initial schema of the Stent SQLite backend. Times are unix milliseconds taken from
-- the backend's Clock; JSON values are stored as TEXT.

CREATE TABLE scripts (
    hash   TEXT PRIMARY KEY,
    source BLOB NOT NULL
);

CREATE TABLE executions (
    id           TEXT PRIMARY KEY,
    parent_id    TEXT NOT NULL DEFAULT '',
    parent_seq   INTEGER NOT NULL DEFAULT 0,
    bundle       TEXT NOT NULL,
    entry        TEXT NOT NULL,
    args         TEXT,
    queue        TEXT NOT NULL,
    status       TEXT NOT NULL,
    result       TEXT,
    error        TEXT,
    version      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    start_at     INTEGER NOT NULL,
    deadline     INTEGER,
    completed_at INTEGER
);
CREATE INDEX executions_created ON executions (created_at);
CREATE INDEX executions_status ON executions (status, created_at);
CREATE INDEX executions_parent ON executions (parent_id, created_at);

-- AUTOINCREMENT: ids are never reused, so event ids grow globally.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL DEFAULT 0,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    data         TEXT,
    error        TEXT,
    at           INTEGER NOT NULL
);
CREATE INDEX events_execution ON events (execution_id, id);

-- AUTOINCREMENT: a deleted task's id is never reused, so a stale (id, fence) pair can
-- never match a newer task.
CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    execution_id     TEXT NOT NULL,
    seq              INTEGER NOT NULL DEFAULT 0,
    queue            TEXT NOT NULL,
    run_at           INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    payload          TEXT,
    status           TEXT NOT NULL DEFAULT 'pending', -- 'pending' | 'claimed'
    fence            INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    rerun            INTEGER NOT NULL DEFAULT 0        -- new results arrived while claimed
);
-- Claims read each kind's due pending tasks in order; reclaims find claimed ones.
CREATE INDEX tasks_claim ON tasks (kind, status, run_at, id);
-- At most one workflow task exists per execution. Every write runs in an immediate
-- transaction, so the backend keeps that invariant without a unique index (which
-- would cost one more page write per workflow task).
CREATE INDEX tasks_execution ON tasks (execution_id);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE logs (
    id           INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL,
    at           INTEGER NOT NULL,
    message      TEXT NOT NULL
);
CREATE INDEX logs_execution ON logs (execution_id, id);
