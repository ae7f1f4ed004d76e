-- stent_begin_parent_step opens the commit of a parent's step taken with its child's end
-- (backend.ParentSteps), in the transaction that ends the child (whose row is already
-- locked and updated: locks go from descendant to ancestor, as everywhere). It locks the
-- parent, checks that it is running the run that started the child at the expected
-- version and has no event above p_seen that its script did not write itself (the
-- step was taken without it), appends the child's child_completed event (p_result,
-- p_error) and, unless the parent is finishing, bumps its version. No workflow task is
-- enqueued: the step consumed the event. A failed check raises SL007, which undoes the
-- whole transaction, the child's end included: the caller ends the child the usual way.
CREATE FUNCTION stent_begin_parent_step(p_child text, p_parent text, p_version bigint, p_seen bigint,
    p_finishing boolean, p_now bigint, p_result text, p_error text)
RETURNS TABLE (o_queue text, o_version bigint, o_event bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c_seq     integer;
    c_run     integer;
    c_entry   text;
    e_status  text;
    e_version bigint;
    e_run     integer;
BEGIN
    SELECT x.parent_seq, x.parent_run, x.entry INTO c_seq, c_run, c_entry
        FROM executions x WHERE x.id = p_child AND x.parent_id = p_parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'execution % is not a child of %', p_child, p_parent USING ERRCODE = 'SL007';
    END IF;
    SELECT x.status, x.version, x.run, x.queue INTO e_status, e_version, e_run, o_queue
        FROM executions x WHERE x.id = p_parent FOR UPDATE;
    IF e_status IS DISTINCT FROM 'running' OR e_version <> p_version OR e_run <> c_run THEN
        RAISE EXCEPTION 'parent % is % at version % (run %), expected running at version % (run %)',
            p_parent, e_status, e_version, e_run, p_version, c_run USING ERRCODE = 'SL007';
    END IF;
    IF EXISTS (SELECT 1 FROM events e WHERE e.execution_id = p_parent AND e.id > p_seen
            AND e.kind NOT IN ('started', 'activity_scheduled', 'child_scheduled', 'timer_scheduled',
                'signal_wait', 'signal_received', 'side_effect')) THEN
        RAISE EXCEPTION 'parent % has events its step did not see', p_parent USING ERRCODE = 'SL007';
    END IF;
    INSERT INTO events (execution_id, seq, kind, name, data, error, at)
        VALUES (p_parent, c_seq, 'child_completed', c_entry, p_result, p_error, p_now)
        RETURNING id INTO o_event;
    IF NOT p_finishing THEN
        UPDATE executions SET version = version + 1, updated_at = p_now WHERE id = p_parent
            RETURNING version INTO o_version;
    END IF;
    RETURN NEXT;
END
$$;
