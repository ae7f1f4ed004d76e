-- Events take plain rowids (the largest id + 1) instead of AUTOINCREMENT: every commit
-- that appended an event also rewrote its sqlite_sequence row, one more page per step.
-- Ids still grow: an id is reused only after the events above it are deleted, which
-- happens to a pruned execution (no one reads it again) and to one continued as new,
-- whose fresh history is appended before its old one is deleted. Within an execution,
-- ids keep growing, which is what history readers rely on.
CREATE TABLE events_rowid (
    id           INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL DEFAULT 0,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    data         TEXT,
    error        TEXT,
    at           INTEGER NOT NULL,
    cache_hit    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO events_rowid (id, execution_id, seq, kind, name, data, error, at, cache_hit)
    SELECT id, execution_id, seq, kind, name, data, error, at, cache_hit FROM events;
DROP TABLE events;
ALTER TABLE events_rowid RENAME TO events;
CREATE INDEX events_execution ON events (execution_id, id);
CREATE INDEX events_custom_status ON events (execution_id, id) WHERE kind = 'side_effect' AND name = 'set_status';
DELETE FROM sqlite_sequence WHERE name = 'events';
