-- A sequential step (backend.SequentialStep) is committed on the finished activity's own
-- task row, which becomes the next activity's, claimed: stent_sequential_step. For that
-- update, and for every lease renewal, to be HOT (no index entry written), no index may
-- hold a column they change: the index of claimed tasks is keyed on the lease owner
-- (what ExtendLeases looks them up by) instead of the lease's expiry, and claimed tasks
-- are counted per activity (MaxConcurrent) through it, there being few of them at any
-- time, instead of through an index of their own.
DROP INDEX IF EXISTS tasks_claimed;
DROP INDEX IF EXISTS tasks_claimed_activity;
CREATE INDEX tasks_claimed ON tasks (lease_owner) WHERE status = 'claimed';
-- Room on each page for the new version of a row updated in place.
ALTER TABLE tasks SET (fillfactor = 80);

-- stent_sequential_step commits a sequential step in one statement: it bumps the
-- execution's version (running at p_version, else SL006), turns the activity task
-- p_task (held with p_fence, of this execution, of priority p_priority, else SL006) into
-- the next activity's at seq p_next_seq on queue p_next_queue (the execution's when
-- empty, which must be one of p_queues when given, else SL006), claimed for p_owner until
-- p_expires with the fence moved on, and appends the completion event (p_kind at p_seq)
-- and the next activity's activity_scheduled event (p_sched_name, p_sched_data). The row keeps its run_at and
-- priority, so that its place in the claim indexes does not change; no claim reads a
-- claimed task's run_at. SL006 undoes everything: the caller commits the step the
-- general way, which says what was unusual.
CREATE FUNCTION stent_sequential_step(p_execution text, p_version bigint, p_now bigint,
    p_task bigint, p_fence bigint, p_seq integer, p_kind text, p_name text, p_data text, p_error text,
    p_cache_hit boolean, p_next_seq integer, p_next_queue text, p_payload text, p_priority integer,
    p_activity text, p_owner text, p_expires bigint, p_sched_name text, p_sched_data text, p_queues text[])
RETURNS TABLE (o_version bigint, o_event bigint, o_queue text, o_fence bigint)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE executions SET version = version + 1, updated_at = p_now
        WHERE id = p_execution AND status = 'running' AND version = p_version
        RETURNING version, COALESCE(NULLIF(p_next_queue, ''), queue) INTO o_version, o_queue;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'execution % is not running at version %', p_execution, p_version USING ERRCODE = 'SL006';
    END IF;
    IF p_queues IS NOT NULL AND NOT (o_queue = ANY (p_queues)) THEN
        RAISE EXCEPTION 'queue % is not claimed', o_queue USING ERRCODE = 'SL006';
    END IF;
    UPDATE tasks SET seq = p_next_seq, queue = o_queue, attempt = 1, payload = p_payload, activity = p_activity,
            fence = fence + 1, lease_owner = p_owner, lease_expires_at = p_expires, rerun = false
        WHERE id = p_task AND fence = p_fence AND status = 'claimed' AND kind = 'activity'
            AND execution_id = p_execution AND priority = p_priority
        RETURNING fence INTO o_fence;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % is not held with fence %', p_task, p_fence USING ERRCODE = 'SL006';
    END IF;
    INSERT INTO events (execution_id, seq, kind, name, data, error, at, cache_hit)
        VALUES (p_execution, p_seq, p_kind, p_name, p_data, p_error, p_now, p_cache_hit)
        RETURNING id INTO o_event;
    INSERT INTO events (execution_id, seq, kind, name, data, error, at, cache_hit)
        VALUES (p_execution, p_next_seq, 'activity_scheduled', p_sched_name, p_sched_data, NULL, p_now, false);
    RETURN NEXT;
END
$$;
