-- Poison pills: how many times the workers running an execution's current step died
-- (their workflow task was reclaimed), and at which execution version that was counted.
ALTER TABLE executions ADD COLUMN crashes integer NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN crash_version bigint NOT NULL DEFAULT 0;
