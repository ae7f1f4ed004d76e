-- Fences that a failover cannot hand out twice. A fence used to be the task row's
-- counter plus one. A standby promoted after an asynchronous-replication failover
-- lacks the commits the old primary acknowledged last, so the counters it holds are
-- behind: its next claim of a row handed out the fence a worker already held under a
-- lost commit (and a task row's ID, from a sequence, can be handed out again too), and
-- that worker's stale completion then matched the new holder's. A fence is now at
-- least the server's clock in microseconds, so that a claim made after the failover
-- never equals one made before it, and still greater than the row's previous fence.
CREATE FUNCTION stent_fence(p_prev bigint) RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT GREATEST(p_prev + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
$$;

CREATE OR REPLACE FUNCTION stent_sequential_step(p_execution text, p_version bigint, p_now bigint,
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
            fence = stent_fence(fence), lease_owner = p_owner, lease_expires_at = p_expires, rerun = false
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
