-- A retry of an execution resolves the open dead letter of the step it runs again:
-- status 'retried' (backend.DeadLetterRetried).
ALTER TABLE dead_letters DROP CONSTRAINT IF EXISTS dead_letters_status_check;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_status_check
    CHECK (status IN ('open', 'replayed', 'discarded', 'retried'));
