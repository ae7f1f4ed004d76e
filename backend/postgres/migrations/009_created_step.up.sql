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
