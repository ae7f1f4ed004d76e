package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

// Retention: ended executions older than a retention period are deleted with their
// history, logs, signals, resolved dead letters and the scripts nothing references
// any more, in small batches (each its own short transaction). A tree (a root
// execution and its descendants) is deleted whole, and only when every execution in it
// ended and none has an open dead letter: running executions and their ancestors are
// never touched. Workers run it periodically (WorkerOptions.Retention); on PostgreSQL
// an advisory lock elects one process at a time. `stent prune` runs it on demand.

// PruneOptions selects what Prune deletes.
type PruneOptions struct {
	// OlderThan: executions that ended at least this long ago. Required (> 0).
	OlderThan time.Duration
	// Status, when set, prunes only root executions that ended with it.
	Status backend.Status
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
	// BatchSize is how many root executions a batch looks at (default 200).
	BatchSize int
	// Pause between batches, so that other writers get the database in between.
	Pause time.Duration
	// exclusive: skip when another process prunes (retention by workers).
	exclusive bool
}

// PruneReport counts what Prune deleted (or, with DryRun, would delete).
type PruneReport struct {
	Roots, Executions, Events, Logs, Signals, DeadLetters, Tasks, Scripts int64
	// Skipped: another process was pruning (workers' retention only).
	Skipped bool
}

// Prune deletes the ended executions that match o, batch by batch.
func (e *Engine) Prune(ctx context.Context, o PruneOptions) (PruneReport, error) {
	var rep PruneReport
	r, ok := e.b.(backend.Retention)
	if !ok {
		return rep, fmt.Errorf("this backend (%T) cannot prune executions", e.b)
	}
	if o.OlderThan <= 0 {
		return rep, &InputError{Err: fmt.Errorf("prune: the age must be positive, got %s", o.OlderThan)}
	}
	if o.Status != "" && !o.Status.Terminal() {
		return rep, &InputError{Err: fmt.Errorf("prune: status %q is not an ended status (completed, failed, cancelled, timed_out)", o.Status)}
	}
	batch := backend.PruneBatch{EndedBefore: e.clock.Now().Add(-o.OlderThan), Status: o.Status, Limit: o.BatchSize,
		DryRun: o.DryRun, Exclusive: o.exclusive}
	if batch.Limit <= 0 {
		batch.Limit = 200
	}
	hashes := map[string]bool{}
	for {
		res, err := r.PruneExecutions(ctx, batch)
		if err != nil {
			return rep, fmt.Errorf("pruning executions: %w", err)
		}
		if res.Skipped {
			rep.Skipped = true
			return rep, nil
		}
		rep.Roots += res.Roots
		rep.Executions += res.Executions
		rep.Events += res.Events
		rep.Logs += res.Logs
		rep.Signals += res.Signals
		rep.DeadLetters += res.DeadLetters
		rep.Tasks += res.Tasks
		for _, h := range res.ScriptHashes {
			hashes[h] = true
		}
		if res.Candidates < batch.Limit {
			break
		}
		batch.After = res.Next
		if o.Pause > 0 {
			backend.Sleep(ctx, o.Pause)
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	if o.DryRun || len(hashes) == 0 {
		return rep, nil
	}
	list := make([]string, 0, len(hashes))
	for h := range hashes {
		list = append(list, h)
	}
	n, err := r.PruneScripts(ctx, list)
	rep.Scripts = n
	if err != nil {
		return rep, fmt.Errorf("pruning scripts: %w", err)
	}
	return rep, nil
}

// retentionLoop runs a worker's retention: every RetentionInterval, executions that
// ended more than Retention ago are pruned (by one process at a time on PostgreSQL).
func (w *worker) retentionLoop(ctx context.Context) {
	e := w.e
	if w.opts.Retention <= 0 || e.cfg.virtual != nil {
		return
	}
	if _, ok := e.b.(backend.Retention); !ok {
		return
	}
	t := time.NewTimer(min(w.opts.RetentionInterval, 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := e.Prune(ctx, PruneOptions{OlderThan: w.opts.Retention, Pause: 10 * time.Millisecond, exclusive: true})
		switch {
		case err != nil && ctx.Err() == nil:
			e.logger.Warn("retention", "worker", w.opts.ID, "err", err)
		case rep.Executions > 0:
			e.logger.Info("retention pruned ended executions", "worker", w.opts.ID, "executions", rep.Executions,
				"events", rep.Events, "scripts", rep.Scripts)
		}
		t.Reset(w.opts.RetentionInterval)
	}
}
