-- stent_begin_fused_step opens the commit of a fused step (backend.FusedStep): an
-- activity's completion and the workflow step its script took with it, sent to the
-- server as one pipelined transaction. Like stent_begin_workflow_task it locks the
-- execution first (always before any task row, as every writer does). It removes the
-- activity task if the caller still holds it with that fence, checks the execution is
-- running at the expected version, appends the activity's outcome event (seq p_seq, or
-- the task's when 0) and, unless the execution is finishing, bumps the version. No
-- workflow task is enqueued: the step consumed the event. Failed checks raise SL001
-- (lease lost), SL002 (stale execution), SL003 (not an activity task of that
-- execution) or SL004 (no such execution), which undoes what the function did.
CREATE FUNCTION stent_begin_fused_step(p_execution text, p_task bigint, p_fence bigint,
    p_version bigint, p_finishing boolean, p_now bigint, p_seq integer, p_kind text, p_name text,
    p_data text, p_error text, p_cache_hit boolean)
RETURNS TABLE (o_queue text, o_version bigint, o_event bigint)
LANGUAGE plpgsql AS $$
DECLARE
    e_status  text;
    e_version bigint;
    t_kind    text;
    t_exec    text;
    t_seq     integer;
BEGIN
    SELECT x.status, x.version, x.queue INTO e_status, e_version, o_queue
        FROM executions x WHERE x.id = p_execution FOR UPDATE;
    DELETE FROM tasks t WHERE t.id = p_task AND t.fence = p_fence AND t.status = 'claimed'
        RETURNING t.kind, t.execution_id, t.seq INTO t_kind, t_exec, t_seq;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % is not held with fence %', p_task, p_fence USING ERRCODE = 'SL001';
    END IF;
    IF t_kind <> 'activity' OR t_exec <> p_execution THEN
        RAISE EXCEPTION 'task % is a % task of execution %, not an activity task of %',
            p_task, t_kind, t_exec, p_execution USING ERRCODE = 'SL003';
    END IF;
    IF e_status IS NULL THEN
        RAISE EXCEPTION 'execution "%" does not exist', p_execution USING ERRCODE = 'SL004';
    END IF;
    IF e_status <> 'running' OR e_version <> p_version THEN
        RAISE EXCEPTION 'execution % is % at version %, expected running at version %',
            p_execution, e_status, e_version, p_version USING ERRCODE = 'SL002';
    END IF;
    INSERT INTO events (execution_id, seq, kind, name, data, error, at, cache_hit)
        VALUES (p_execution, COALESCE(NULLIF(p_seq, 0), t_seq), p_kind, p_name, p_data, p_error, p_now, p_cache_hit)
        RETURNING id INTO o_event;
    IF NOT p_finishing THEN
        UPDATE executions SET version = version + 1, updated_at = p_now WHERE id = p_execution
            RETURNING version INTO o_version;
    END IF;
    RETURN NEXT;
END
$$;
