-- Signals, continue-as-new runs, the activity result cache and dead letters.

-- run counts continue_as_new restarts (1 for the first run). parent_run is the
-- parent's run that started a child: a child started by an earlier run of its
-- parent does not report to the parent's later runs. Rows from before this
-- migration are all first runs.
ALTER TABLE executions ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
ALTER TABLE executions ADD COLUMN parent_run INTEGER NOT NULL DEFAULT 1;

ALTER TABLE events ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0;

ALTER TABLE logs ADD COLUMN run INTEGER NOT NULL DEFAULT 1;

-- AUTOINCREMENT: signal ids order signals and are never reused.
CREATE TABLE signals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    name         TEXT NOT NULL,
    payload      TEXT,
    at           INTEGER NOT NULL,
    consumed_at  INTEGER           -- NULL while pending
);
CREATE INDEX signals_pending ON signals (execution_id, id) WHERE consumed_at IS NULL;

CREATE TABLE cache (
    key        TEXT PRIMARY KEY,
    activity   TEXT NOT NULL,
    result     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER            -- NULL: never
);
CREATE INDEX cache_activity ON cache (activity);

CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    activity     TEXT NOT NULL,
    payload      TEXT,
    error        TEXT,
    status       TEXT NOT NULL DEFAULT 'open', -- 'open' | 'replayed' | 'discarded'
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX dead_letters_status ON dead_letters (status, id);
