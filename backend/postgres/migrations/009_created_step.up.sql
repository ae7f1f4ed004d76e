-- stent_begin_created_step opens the commit of an execution's first step in the
-- transaction that creates it (backend.DispatchStep), right after sqlCreateExecutions.
-- It locks the execution, checks this very transaction created it (an execution that
-- existed already is left alone: SQLSTATE SL005, which undoes the whole transaction),
-- removes the workflow task the creation made (the step takes its place) and, unless
-- the execution is finishing, bumps the version.
CREATE FUNCTION stent_begin_created_step(p_execution text, p_finishing boolean, p_now bigint)
RETURNS TABLE (o_queue text, o_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    e_created boolean;
BEGIN
    SELECT x.queue, x.xmin = pg_current_xact_id()::xid INTO o_queue, e_created
        FROM executions x WHERE x.id = p_execution FOR UPDATE;
    IF e_created IS NULL OR NOT e_created THEN
        RAISE EXCEPTION 'execution % exists already', p_execution USING ERRCODE = 'SL005';
    END IF;
    DELETE FROM tasks t WHERE t.execution_id = p_execution AND t.kind = 'workflow';
    IF NOT p_finishing THEN
        UPDATE executions SET version = version + 1, updated_at = p_now WHERE id = p_execution
            RETURNING version INTO o_version;
    END IF;
    RETURN NEXT;
END
$$;

-- stent_check_seen raises SL002 (stale execution) when the execution has an event above
-- p_seen of a kind a script does not write itself (an outcome, a cancellation
-- request...), other than the outcome of the activity at p_seq that the step is
-- committing: the step was taken without it. Called after the execution is locked.
CREATE FUNCTION stent_check_seen(p_execution text, p_seen bigint, p_seq integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM events e WHERE e.execution_id = p_execution AND e.id > p_seen
            AND e.kind NOT IN ('started', 'activity_scheduled', 'child_scheduled', 'timer_scheduled',
                'signal_wait', 'signal_received', 'side_effect')
            AND NOT (e.seq = p_seq AND e.kind IN ('activity_completed', 'activity_failed'))) THEN
        RAISE EXCEPTION 'execution % has events the step did not see', p_execution USING ERRCODE = 'SL002';
    END IF;
END
$$;
