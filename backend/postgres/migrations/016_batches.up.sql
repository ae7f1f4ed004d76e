-- Resumable batches (stent cancel|terminate|retry --where): a batch is its action and
-- filter, and its items are the execution IDs the filter matched when it started (a
-- snapshot), each with its outcome once the batch went through it. A batch killed
-- half-way is resumed from its pending items. Times are Unix milliseconds.
CREATE TABLE batches (
    id          bigserial PRIMARY KEY,
    action      text NOT NULL,
    filter      text NOT NULL,
    started_at  bigint NOT NULL,
    finished_at bigint
);
CREATE INDEX batches_unfinished ON batches (action, filter, id) WHERE finished_at IS NULL;
-- outcome: '' pending, acting, done, skipped, failed. version and updated_ns: the
-- execution as read just before acting, to tell on resume whether the action happened.
CREATE TABLE batch_items (
    batch_id     bigint NOT NULL,
    seq          integer NOT NULL,
    execution_id text NOT NULL,
    outcome      text NOT NULL DEFAULT '',
    version      bigint NOT NULL DEFAULT 0,
    updated_ns   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, seq)
);
