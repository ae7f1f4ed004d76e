// Package batch acts on many executions at once: those a --where filter selects
// (`stent cancel|terminate|retry --where`) or those picked on the web view's list. One
// implementation serves the CLI and the web view.
//
// A batch is resumable without a record of its own: each action skips the executions
// already past it (cancel and terminate take only running executions, retry only
// failed ones), and every execution is read again just before it is acted on, so a
// batch killed half-way and run again acts on the rest and never twice on one
// execution. A failure on one execution is reported and the batch goes on.
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
}

// Retry, Cancel and Terminate are the batch actions, acting with do.
func Retry(do func(ctx context.Context, id string) error) Action {
	return Action{Verb: "retry", Done: "retried", Act: do,
		Wants: func(ex *backend.Execution) bool { return ex.Status == backend.StatusFailed }}
}

// Cancel takes the executions that have not ended.
func Cancel(do func(ctx context.Context, id string) error) Action {
	return Action{Verb: "cancel", Done: "cancelled", Act: do,
		Wants: func(ex *backend.Execution) bool { return !ex.Status.Terminal() }}
}

// Terminate takes the executions that have not ended.
func Terminate(do func(ctx context.Context, id string) error) Action {
	return Action{Verb: "terminate", Done: "terminated", Act: do,
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
	var (
		sum      Summary
		interval time.Duration
		next     time.Time
	)
	if opts.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opts.Rate)
	}
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		r := Result{ID: id}
		ex, err := eng.Get(ctx, id)
		switch {
		case err != nil:
			r.Outcome, r.Err = Failed, err
		case !a.Wants(ex):
			r.Outcome, r.Status = Skipped, ex.Status
		default:
			if interval > 0 {
				if err := waitUntil(ctx, next); err != nil {
					return sum, err
				}
				next = time.Now().Add(interval)
			}
			if err := a.Act(ctx, id); err != nil {
				r.Outcome, r.Err, r.Acted = Failed, err, true
			} else {
				r.Outcome = Done
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
