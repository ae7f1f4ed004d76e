-- Tags of executions: given at dispatch (NewExecution.Tags) or set by the script with
-- set_tags(), whose side_effect event (name set_tags, data a JSON object of strings)
-- the trigger copies here in the transaction that appends it, whatever the path.
-- Listing by tag walks (key, value).
CREATE TABLE execution_tags (
    execution_id TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (execution_id, key)
) WITHOUT ROWID;
CREATE INDEX execution_tags_key_value ON execution_tags (key, value, execution_id);
CREATE TRIGGER events_set_tags AFTER INSERT ON events
WHEN NEW.kind = 'side_effect' AND NEW.name = 'set_tags'
BEGIN
    INSERT INTO execution_tags (execution_id, key, value)
        SELECT NEW.execution_id, j.key, CAST(j.value AS TEXT) FROM json_each(NEW.data) AS j WHERE true
        ON CONFLICT (execution_id, key) DO UPDATE SET value = excluded.value;
END;
