-- stent_sequential_steps commits several sequential steps of different executions in
-- one transaction (group commit, see groupcommit.go), each as stent_sequential_step
-- would. A step that is not the plain sequential step stent_sequential_step commits is
-- found by the same checks made first without writing or locking anything, reported
-- (o_code SL006) and skipped, for its caller to commit the general way. Should a
-- step's rows change between that check and its commit, stent_sequential_step raises
-- SL006 and the whole statement is undone: every caller then commits alone. The
-- arguments are stent_sequential_step's, one array element per step; p_now, p_owner
-- and p_queues are the same for all.
CREATE FUNCTION stent_sequential_steps(p_execution text[], p_version bigint[], p_now bigint,
    p_task bigint[], p_fence bigint[], p_seq integer[], p_kind text[], p_name text[], p_data text[],
    p_error text[], p_cache_hit boolean[], p_next_seq integer[], p_next_queue text[], p_payload text[],
    p_priority integer[], p_activity text[], p_owner text, p_expires bigint[], p_sched_name text[],
    p_sched_data text[], p_queues text[])
RETURNS TABLE (o_i integer, o_version bigint, o_event bigint, o_queue text, o_fence bigint, o_code text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_execution, 1), 0) LOOP
        o_i := i;
        o_version := NULL;
        o_event := NULL;
        o_queue := NULL;
        o_fence := NULL;
        o_code := NULL;
        SELECT COALESCE(NULLIF(p_next_queue[i], ''), x.queue) INTO o_queue FROM executions x
            WHERE x.id = p_execution[i] AND x.status = 'running' AND x.version = p_version[i];
        IF NOT FOUND OR (p_queues IS NOT NULL AND NOT (o_queue = ANY (p_queues)))
            OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = p_task[i] AND t.fence = p_fence[i] AND t.status = 'claimed'
                AND t.kind = 'activity' AND t.execution_id = p_execution[i] AND t.priority = p_priority[i]) THEN
            o_queue := NULL;
            o_code := 'SL006';
        ELSE
            SELECT s.o_version, s.o_event, s.o_queue, s.o_fence INTO o_version, o_event, o_queue, o_fence
                FROM stent_sequential_step(p_execution[i], p_version[i], p_now, p_task[i], p_fence[i], p_seq[i],
                    p_kind[i], p_name[i], p_data[i], p_error[i], p_cache_hit[i], p_next_seq[i], p_next_queue[i],
                    p_payload[i], p_priority[i], p_activity[i], p_owner, p_expires[i], p_sched_name[i],
                    p_sched_data[i], p_queues) s;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
