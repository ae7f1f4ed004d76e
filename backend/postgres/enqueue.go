package postgres

// sqlEnqueueConflict is the ON CONFLICT clause that enqueues an execution's workflow
// task: a new pending task, an earlier run_at for a pending one, the rerun flag for a
// claimed one (CompleteWorkflowTask then makes it runnable again). Inserts pass
// GREATEST(now, the execution's start_at) as run_at, so an execution dispatched with a
// delay is never made runnable early.
const sqlEnqueueConflict = `ON CONFLICT (execution_id) WHERE kind = 'workflow' DO UPDATE SET
	rerun = tasks.rerun OR tasks.status = 'claimed',
	run_at = CASE WHEN tasks.status = 'pending' THEN LEAST(tasks.run_at, EXCLUDED.run_at)
		ELSE tasks.run_at END`

// sqlEnqueueAndClaimConflict is sqlEnqueueConflict for an insert that may claim the
// workflow task (EXCLUDED.status 'claimed'): a pending task is then claimed as
// ClaimTasks would (fence bumped, lease set); a claimed one only gets the rerun flag.
// The caller claimed it iff the row comes back claimed, by it, without rerun.
const sqlEnqueueAndClaimConflict = `ON CONFLICT (execution_id) WHERE kind = 'workflow' DO UPDATE SET
	rerun = CASE WHEN tasks.status = 'claimed' THEN true WHEN EXCLUDED.status = 'claimed' THEN false
		ELSE tasks.rerun END,
	run_at = CASE WHEN tasks.status = 'pending' THEN LEAST(tasks.run_at, EXCLUDED.run_at)
		ELSE tasks.run_at END,
	status = CASE WHEN tasks.status = 'pending' THEN EXCLUDED.status ELSE tasks.status END,
	fence = CASE WHEN tasks.status = 'pending' AND EXCLUDED.status = 'claimed' THEN stent_fence(tasks.fence)
		ELSE tasks.fence END,
	lease_owner = CASE WHEN tasks.status = 'pending' THEN EXCLUDED.lease_owner ELSE tasks.lease_owner END,
	lease_expires_at = CASE WHEN tasks.status = 'pending' THEN EXCLUDED.lease_expires_at
		ELSE tasks.lease_expires_at END`
