-- Tags of executions: given at dispatch (NewExecution.Tags) or set by the script with
-- set_tags(), whose side_effect event (name set_tags, data a JSON object of strings)
-- the trigger copies here in the transaction that appends it, whatever the path.
-- Listing by tag walks (key, value).
CREATE TABLE execution_tags (
    execution_id text NOT NULL,
    key          text NOT NULL,
    value        text NOT NULL,
    PRIMARY KEY (execution_id, key)
);
CREATE INDEX execution_tags_key_value ON execution_tags (key, value, execution_id);
CREATE FUNCTION stent_set_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO execution_tags (execution_id, key, value)
        SELECT NEW.execution_id, j.key, j.value FROM jsonb_each_text(NEW.data::jsonb) AS j
        ON CONFLICT (execution_id, key) DO UPDATE SET value = excluded.value;
    RETURN NULL;
END $$;
CREATE TRIGGER events_set_tags AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.kind = 'side_effect' AND NEW.name = 'set_tags')
    EXECUTE FUNCTION stent_set_tags();
