// Package batch acts on many executions at once: those a --where filter selects
// (`stent cancel|terminate|retry --where`) or those picked on the web view's list. One
// implementation serves the CLI and the web view.
//
// Every execution is read again just before it is acted on and skipped when the action
// no longer takes it (cancel and terminate take only running executions, retry only
// failed ones). A failure on one execution is reported and the batch goes on.
//
// A batch of the CLI is recorded (Start, Resume; backend.Batcher): the IDs its filter
// matched when it started, and each one's outcome as it goes, so that a batch killed
// half-way is resumed from where it stopped and acts on no execution twice, although
// the filter's result has changed meanwhile (a retried execution that failed again
// matches status=failed again).
//
// It imports package backend only; the engine is reached through the Engine interface
// (which *stent.Engine satisfies).
package batch

import (
	"context"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

// Engine is what a batch reads executions through.
type Engine interface {
	List(ctx context.Context, f backend.ListFilter) ([]backend.Execution, error)
	Get(ctx context.Context, id string) (*backend.Execution, error)
}

// Action is what a batch does to each execution it selected.
type Action struct {
	Verb, Done string // "retry", "retried"
	// Wants says whether ex is one the action takes (the others are skipped).
	Wants func(ex *backend.Execution) bool
	Act   func(ctx context.Context, id string) error
	// Idempotent says that acting again on an execution already acted on changes
	// nothing (cancel and terminate do nothing to an ended execution, a second cancel
	// request is ignored); retry is not: a retried execution may have failed again.
	Idempotent bool
}

// Retry, Cancel and Terminate are the batch actions, acting with do.
func Retry(do func(ctx context.Context, id string) error) Action {
	return Action{Verb: "retry", Done: "retried", Act: do,
		Wants: func(ex *backend.Execution) bool { return ex.Status == backend.StatusFailed }}
}

// Cancel takes the executions that have not ended.
func Cancel(do func(ctx context.Context, id string) error) Action {
	return Action{Verb: "cancel", Done: "cancelled", Act: do, Idempotent: true,
		Wants: func(ex *backend.Execution) bool { return !ex.Status.Terminal() }}
}

// Terminate takes the executions that have not ended.
func Terminate(do func(ctx context.Context, id string) error) Action {
	return Action{Verb: "terminate", Done: "terminated", Act: do, Idempotent: true,
		Wants: func(ex *backend.Execution) bool { return !ex.Status.Terminal() }}
}

// Select lists every execution f selects, page by page (f.Limit and f.After are
// replaced), and returns the IDs of those a takes and how many it does not.
func Select(ctx context.Context, eng Engine, f backend.ListFilter, a Action) (ids []string, skipped int, err error) {
	f.Limit, f.After = 1000, ""
	for {
		page, err := eng.List(ctx, f)
		if err != nil {
			return nil, 0, fmt.Errorf("listing the executions of the batch: %w", err)
		}
		for i := range page {
			if a.Wants(&page[i]) {
				ids = append(ids, page[i].ID)
			} else {
				skipped++
			}
		}
		if len(page) < f.Limit {
			return ids, skipped, nil
		}
		f.After = backend.ListCursor(&page[len(page)-1])
	}
}

// Outcome is what became of one execution of a batch.
type Outcome string

// The outcomes.
const (
	Done    Outcome = "done"
	Skipped Outcome = "skipped" // it was no longer one the action takes
	Failed  Outcome = "failed"
)

// Result is the outcome for one execution.
type Result struct {
	ID      string
	Outcome Outcome
	Status  backend.Status // when skipped: its status then
	Err     error          // when failed, as the engine returned it
	Acted   bool           // when failed: the action failed (not reading the execution)
	Before  bool           // when done: by the run of the batch that was interrupted
}

// Reason says why an execution was skipped or failed, for a report.
func (r Result) Reason(a Action) string {
	switch {
	case r.Outcome == Skipped:
		return fmt.Sprintf("now %s: cannot be %s", r.Status, a.Done)
	case r.Outcome == Failed && r.Acted:
		return fmt.Sprintf("%s failed: %v", a.Verb, r.Err)
	case r.Outcome == Failed:
		return fmt.Sprintf("reading it: %v", r.Err)
	case r.Before:
		return a.Done + " before the interruption"
	}
	return a.Done
}

// Options tunes Run.
type Options struct {
	// Rate bounds the actions per second (0: no bound).
	Rate float64
	// Each is called after each execution, with its position (from 0).
	Each func(i int, r Result)
}

// Summary counts a batch's outcomes; Processed is how many executions it went through
// (fewer than asked when ctx ended first).
type Summary struct {
	Processed, Done, Skipped, Failed int
}

// Run acts on each of ids in turn: it reads the execution again, skips it when the
// action no longer takes it, and acts; a failure is counted and reported through
// opts.Each, and the batch goes on. It stops early only when ctx ends, returning the
// summary so far and ctx's error.
func Run(ctx context.Context, eng Engine, a Action, ids []string, opts Options) (Summary, error) {
	items := make([]backend.BatchItem, len(ids))
	for i, id := range ids {
		items[i] = backend.BatchItem{Seq: i + 1, ExecutionID: id}
	}
	return run(ctx, eng, a, items, opts, nil)
}

// marker records outcomes of items (nil: the batch is not recorded).
type marker func(items []backend.BatchItem) error

// markEvery bounds the outcomes a recorded batch keeps unwritten (skips and failures in
// a row; an action writes them with its acting mark).
const markEvery = 100

func run(ctx context.Context, eng Engine, a Action, items []backend.BatchItem, opts Options, mark marker) (sum Summary, err error) {
	var (
		interval time.Duration
		next     time.Time
		unsaved  []backend.BatchItem // outcomes not written yet
	)
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
	}
	flush := func(extra ...backend.BatchItem) error {
		if mark == nil {
			return nil
		}
		out := append(unsaved, extra...)
		unsaved = nil
		return mark(out)
	}
	defer func() {
		// An outcome lost by a kill before this is read again on resume: an action
		// always wrote its acting mark before it took place.
		if ferr := flush(); ferr != nil && err == nil {
			err = ferr
		}
	}()
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		// The rate is kept before reading, so that the execution acted on is the one
		// just read; only an action moves the next slot.
		if err := waitUntil(ctx, next); err != nil {
			return sum, err
		}
		r := Result{ID: it.ExecutionID}
		ex, err := eng.Get(ctx, it.ExecutionID)
		switch {
		case err != nil:
			r.Outcome, r.Err = Failed, err
		case it.Outcome == backend.BatchActing && !a.Idempotent &&
			(ex.Version != it.Version || ex.UpdatedAt.UnixNano() != it.UpdatedNs):
			// Killed while acting on it, and it changed since: the action took place.
			r.Outcome, r.Before = Done, true
		case !a.Wants(ex):
			r.Outcome, r.Status = Skipped, ex.Status
		default:
			// Written with the outcomes before it, before the action: on resume it
			// tells whether the action took place.
			if err := flush(backend.BatchItem{Seq: it.Seq, ExecutionID: it.ExecutionID, Outcome: backend.BatchActing,
				Version: ex.Version, UpdatedNs: ex.UpdatedAt.UnixNano()}); err != nil {
				return sum, err
			}
			if interval > 0 {
				next = time.Now().Add(interval)
			}
			if err := a.Act(ctx, it.ExecutionID); err != nil {
				r.Outcome, r.Err, r.Acted = Failed, err, true
			} else {
				r.Outcome = Done
			}
		}
		if mark != nil {
			unsaved = append(unsaved, backend.BatchItem{Seq: it.Seq, ExecutionID: it.ExecutionID, Outcome: outcomes[r.Outcome]})
			if len(unsaved) >= markEvery {
				if err := flush(); err != nil {
					return sum, err
				}
			}
		}
		sum.Processed++
		switch r.Outcome {
		case Done:
			sum.Done++
		case Skipped:
			sum.Skipped++
		case Failed:
			sum.Failed++
		}
		if opts.Each != nil {
			opts.Each(i, r)
		}
	}
	return sum, nil
}

var outcomes = map[Outcome]string{Done: backend.BatchDone, Skipped: backend.BatchSkipped, Failed: backend.BatchFailed}

func waitUntil(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start records a new batch of a on ids, selected by filter (as the user wrote it).
func Start(ctx context.Context, st backend.Batcher, a Action, filter string, ids []string) (*backend.BatchRecord, error) {
	rec, err := st.CreateBatch(ctx, a.Verb, filter, ids)
	if err != nil {
		return nil, fmt.Errorf("recording the batch: %w", err)
	}
	return rec, nil
}

// Pending returns the items of recorded batch rec it has not gone through yet.
func Pending(ctx context.Context, st backend.Batcher, rec *backend.BatchRecord) ([]backend.BatchItem, error) {
	items, err := st.PendingBatchItems(ctx, rec.ID)
	if err != nil {
		return nil, fmt.Errorf("reading batch %d: %w", rec.ID, err)
	}
	return items, nil
}

// Resume goes through items, the pending items of recorded batch rec, as Run does,
// recording each outcome (and, before acting, that it is acting on the execution as
// it read it: written with the outcomes before it, in one transaction, so that an
// action costs one write of the record), and marks the batch finished once it went
// through them all. An outcome lost to a kill leaves its item pending or acting, read
// again on resume. An item the batch was acting on when it was killed is acted on again only when the action
// is idempotent or the execution has not changed since; otherwise it counts as done
// before the interruption. A failure to record stops the batch (its error is
// returned): going on unrecorded could act twice after a resume.
func Resume(ctx context.Context, eng Engine, st backend.Batcher, a Action, rec *backend.BatchRecord, items []backend.BatchItem, opts Options) (Summary, error) {
	// The records are written even when ctx ends: the action they follow took place.
	wctx := context.WithoutCancel(ctx)
	sum, err := run(ctx, eng, a, items, opts, func(items []backend.BatchItem) error {
		if err := st.MarkBatchItems(wctx, rec.ID, items); err != nil {
			return fmt.Errorf("recording the outcomes of batch %d: %w", rec.ID, err)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	if err := st.FinishBatch(wctx, rec.ID); err != nil {
		return sum, fmt.Errorf("finishing batch %d: %w", rec.ID, err)
	}
	return sum, nil
}
