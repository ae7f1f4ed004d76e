package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

var _ backend.FusedStep = (*Backend)(nil)

const (
	sqlBeginFusedStep = `SELECT o_queue, o_version, o_event
		FROM stent_begin_fused_step($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
	sqlCheckSeen = `SELECT stent_check_seen($1, $2, $3)`
	sqlPutCache  = `INSERT INTO cache (key, activity, result, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (key) DO UPDATE SET activity = EXCLUDED.activity, result = EXCLUDED.result,
			created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`
)

// fusedActivity is the activity completion a fused step opens with.
type fusedActivity struct {
	ref        backend.TaskRef
	seq        int
	kind       backend.EventKind
	name       string
	data, errv *string
	cacheHit   bool
	checkSeen  bool                // stent_check_seen was queued
	cache      *backend.CacheEntry // with its Activity filled
	eventID    int64               // set by read
}

// queue queues the statements that open the commit: stent_begin_fused_step and the
// result cache entry.
func (a *fusedActivity) queue(bt *pgx.Batch, r backend.WorkflowTaskResult, ending bool, now int64) {
	bt.Queue(sqlBeginFusedStep, r.ExecutionID, a.ref.ID, a.ref.Fence, r.ExpectedVersion, ending, now, a.seq,
		string(a.kind), a.name, a.data, a.errv, a.cacheHit)
	if a.checkSeen = r.CheckSeen; a.checkSeen {
		// After stent_begin_fused_step, which locks the execution: every writer of
		// events locks it first, so nothing can slip in before the commit.
		bt.Queue(sqlCheckSeen, r.ExecutionID, r.SeenThrough, a.seq)
	}
	if c := a.cache; c != nil {
		var expires *int64
		if c.ExpiresAt != nil {
			ms := toMS(*c.ExpiresAt)
			expires = &ms
		}
		bt.Queue(sqlPutCache, c.Key, c.Activity, a.data, now, expires)
	}
}

// stepOpener queues the statements that open the commit of a step other than a
// workflow task's, and reads their answers: the execution's queue and new version.
type stepOpener interface {
	queue(bt *pgx.Batch, r backend.WorkflowTaskResult, ending bool, now int64)
	read(br pgx.BatchResults, queue *string, version **int64, s *txState) error
}

// read reads the answers of the statements queue queued.
func (a *fusedActivity) read(br pgx.BatchResults, queue *string, version **int64, _ *txState) error {
	if err := br.QueryRow().Scan(queue, version, &a.eventID); err != nil {
		return err
	}
	if a.checkSeen {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	if a.cache != nil {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("caching the result of %s: %w", a.cache.Activity, err)
		}
	}
	return nil
}

// CompleteActivityAndStep records an activity's outcome and commits the workflow step
// its script took with it, in one transaction and one round trip, with no workflow
// task (see backend.FusedStep).
func (b *Backend) CompleteActivityAndStep(ctx context.Context, r backend.ActivityResult, step backend.WorkflowTaskResult, claim backend.ClaimRequest) (backend.StepCommit, error) {
	act := &fusedActivity{ref: r.Task, seq: r.Seq, kind: backend.EventActivityCompleted, name: r.Name, cacheHit: r.CacheHit}
	if r.Error != nil {
		act.kind = backend.EventActivityFailed
		var err error
		if act.errv, err = errArg(r.Error); err != nil {
			return backend.StepCommit{}, err
		}
	} else {
		act.data = jsonArg(r.Result)
		if act.data == nil {
			null := "null"
			act.data = &null
		}
		if r.Cache != nil {
			c := *r.Cache
			if c.Key == "" {
				return backend.StepCommit{}, fmt.Errorf("completing activity task %d: caching a result: empty cache key", r.Task.ID)
			}
			if c.Activity == "" {
				c.Activity = r.Name
			}
			act.cache = &c
		}
	}
	c := newHandOffClaim(claim)
	if nt, ok := backend.SequentialStep(step, claim, toMS(b.now())); ok {
		if out, done, err := b.sequentialStep(ctx, act, step, nt, &c); done {
			return out, err
		}
	}
	version, claimed, err := b.completeWorkflow(ctx, step, &c, act)
	if err != nil {
		return backend.StepCommit{}, err
	}
	return backend.StepCommit{Version: version, EventID: act.eventID, Claimed: claimed}, nil
}
