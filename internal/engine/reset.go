package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/telemetry"
	"github.com/stent-go/stent/interpreter"
)

// Reset to a step: a new execution runs an ended one again from one of its steps,
// reusing the recorded results of the steps before it.
//
// A step is one entry of the history with a sequence number: a durable() activity or
// child call, a sleep(), a wait_signal() or a recorded side effect (now(), uuid(),
// set_status(), ...). Each takes the next number, from 1; step N is the SEQ column of
// `stent history`, the "step N" of failure and replay messages.

// ResetOptions tunes Reset.
type ResetOptions struct {
	// Script is the script (a path, with the files it loads) the new execution runs;
	// empty: the execution's pinned script.
	Script string
	// ModulePath widens the directory tree Script's load() statements may read from,
	// as the ModulePath dispatch option does.
	ModulePath string
}

// ResetReport is what Reset did.
type ResetReport struct {
	// From is the execution reset; ID the new execution that runs it again.
	From, ID string
	// Step is the first step the new execution runs for real; Reused counts the
	// recorded steps before it whose results it reuses.
	Step, Reused int
	// Script is the new execution's main script, Hash its bundle hash (see BundleHash).
	Script, Hash string
}

// ResetMismatchError is a reset refused because the script does not replay the steps
// before the step reset to: Divergence is the first step where it differs.
type ResetMismatchError struct {
	ID         string
	Step       int
	Divergence *interpreter.Divergence
}

func (e *ResetMismatchError) Error() string {
	return fmt.Sprintf("cannot reset %s to step %d: the script does not replay the steps before it; %s", e.ID, e.Step, e.Divergence)
}

// maxResets bounds the -rN suffixes tried for the new execution's ID.
const maxResets = 1000

// Reset starts a new execution, with the ID "ID-r1" (or the next free "-rN"), that runs
// ended execution id again from step: the recorded results of the steps before it are
// copied into the new execution's history, so replay returns them without running them
// (children's results included: the children do not run again), and step onward runs
// for real, on opts.Script or on the pinned script. The script must replay the steps
// before step as recorded (the check `stent replay` makes); when it does not, Reset
// returns a *ResetMismatchError naming the first differing step and creates nothing.
// The two executions are linked both ways: the new one's history starts with a
// reset_from event, the old one's gets a reset_into event (see ResetLinks).
func (e *Engine) Reset(ctx context.Context, id string, step int, opts ResetOptions) (*ResetReport, error) {
	if err := validateID(id); err != nil {
		return nil, &InputError{Err: err}
	}
	if step < 1 {
		return nil, &InputError{Err: fmt.Errorf("reset: step %d: steps are numbered from 1 (the SEQ column of `stent history`)", step)}
	}
	r, ok := e.b.(backend.Resetter)
	if !ok {
		return nil, fmt.Errorf("reset: the %T backend cannot reset executions", e.b)
	}
	ex, err := e.b.GetExecution(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("resetting %s: %w", id, err)
	}
	switch {
	case ex.ParentID != "":
		return nil, &InputError{Err: fmt.Errorf("reset: execution %s is a child of %s: reset its root execution instead", id, ex.ParentID)}
	case !ex.Status.Terminal():
		return nil, &InputError{Err: fmt.Errorf("reset: execution %s is %s: only an ended execution can be reset (end it first with `stent terminate %s`)", id, ex.Status, id)}
	}
	events, err := e.b.History(ctx, id, 0)
	if err != nil {
		return nil, fmt.Errorf("resetting %s: reading history: %w", id, err)
	}
	prefix, err := resetPrefix(id, events, step)
	if err != nil {
		return nil, err
	}
	bundle, sources, prog, err := e.resetProgram(ctx, ex, opts)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("resetting %s: %w", id, err)}
	}
	div, err := prog.CheckHistory(ex.Entry, ex.Args, prefix)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("resetting %s: %w", id, err)}
	}
	if div != nil {
		return nil, &ResetMismatchError{ID: id, Step: step, Divergence: div}
	}
	tags, err := e.Tags(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("resetting %s: %w", id, err)
	}
	bundle.Trace, bundle.TraceParent = "", ""
	ne := backend.NewExecution{Bundle: bundle, Sources: sources, Entry: ex.Entry, Args: ex.Args,
		Queue: ex.Queue, StartAt: e.clock.Now(), Tags: tags}
	rep := &ResetReport{From: id, Step: step, Reused: countSteps(prefix), Script: bundle.Main, Hash: BundleHash(bundle)}
	for n := 1; n <= maxResets; n++ {
		ne.ID = fmt.Sprintf("%s-r%d", id, n)
		if validateID(ne.ID) != nil {
			break
		}
		if _, err := e.b.GetExecution(ctx, ne.ID); err == nil {
			continue
		} else if !errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("resetting %s: looking up %s: %w", id, ne.ID, err)
		}
		telemetry.TraceNewExecution(ctx, &ne.Bundle, ne.ID)
		from, _ := json.Marshal(backend.ResetLink{ID: id, Step: step, Script: bundle.Main})
		into, _ := json.Marshal(backend.ResetLink{ID: ne.ID, Step: step, Script: bundle.Main})
		events := make([]backend.NewEvent, 0, len(prefix)+1)
		events = append(events, backend.NewEvent{Kind: backend.EventResetFrom, Data: from})
		for _, ev := range prefix {
			events = append(events, backend.NewEvent{Seq: ev.Seq, Kind: ev.Kind, Name: ev.Name, Data: ev.Data, Error: ev.Error})
		}
		created, err := r.ResetExecution(ctx, ne, events, id, into)
		if err != nil {
			return nil, fmt.Errorf("resetting %s into %s: %w", id, ne.ID, err)
		}
		if created {
			rep.ID = ne.ID
			e.taskReady(ne.Queue)
			return rep, nil
		}
	}
	return nil, fmt.Errorf("resetting %s: no free ID of the form %s-rN", id, id)
}

// resetProgram is the bundle, its sources and its compiled program that a reset of ex
// runs: opts.Script's, or the pinned one.
func (e *Engine) resetProgram(ctx context.Context, ex *backend.Execution, opts ResetOptions) (backend.Bundle, map[string][]byte, *interpreter.Program, error) {
	if opts.Script == "" {
		prog, err := e.pinnedProgram(ctx, ex.Bundle)
		if err != nil {
			return backend.Bundle{}, nil, nil, err
		}
		sources := make(map[string][]byte, len(ex.Bundle.Files))
		for _, h := range ex.Bundle.Files {
			src, err := e.b.GetScript(ctx, h)
			if err != nil {
				return backend.Bundle{}, nil, nil, fmt.Errorf("reading pinned script %s: %w", h, err)
			}
			sources[h] = src
		}
		return ex.Bundle, sources, prog, nil
	}
	bundle, sources, err := interpreter.CollectBundleIn(opts.Script, opts.ModulePath)
	if err != nil {
		return backend.Bundle{}, nil, nil, err
	}
	prog, err := interpreter.CompileWith(bundle, sources, e.cfg.builtins)
	if err != nil {
		return backend.Bundle{}, nil, nil, err
	}
	return bundle, sources, prog, nil
}

// isStep reports whether an event records a step (the call that takes a sequence number).
func isStep(k backend.EventKind) bool {
	switch k {
	case backend.EventActivityScheduled, backend.EventChildScheduled, backend.EventTimerScheduled,
		backend.EventSignalWait, backend.EventSideEffect:
		return true
	}
	return false
}

// isOutcome reports whether an event records a step's result.
func isOutcome(k backend.EventKind) bool {
	switch k {
	case backend.EventActivityCompleted, backend.EventActivityFailed, backend.EventChildCompleted,
		backend.EventTimerFired, backend.EventSignalReceived, backend.EventSignalTimedOut:
		return true
	}
	return false
}

// resetPrefix picks from history the events a reset of execution id to step reuses:
// those of the steps before step (their calls and results, in recorded order), without
// the results a later retry or dead-letter replay cleared. Every step before step must
// have its result; step must be a recorded step or the one after the last.
func resetPrefix(id string, history []backend.Event, step int) ([]backend.Event, error) {
	var (
		prefix []backend.Event
		last   int
		calls  = map[int]backend.Event{}
		done   = map[int]bool{}
	)
	for _, ev := range history {
		if ev.Seq <= 0 {
			continue
		}
		if isStep(ev.Kind) {
			last = max(last, ev.Seq)
		}
		if ev.Seq >= step {
			continue
		}
		switch {
		case isStep(ev.Kind):
			prefix = append(prefix, ev)
			calls[ev.Seq] = ev
			done[ev.Seq] = done[ev.Seq] || ev.Kind == backend.EventSideEffect
		case isOutcome(ev.Kind):
			prefix = append(prefix, ev)
			done[ev.Seq] = true
		case ev.Kind == backend.EventRetried || ev.Kind == backend.EventDeadLetterReplayed:
			// The step ran again: its earlier result no longer counts.
			kept := prefix[:0]
			for _, p := range prefix {
				if p.Seq != ev.Seq || !isOutcome(p.Kind) {
					kept = append(kept, p)
				}
			}
			prefix, done[ev.Seq] = kept, false
		}
	}
	if step > last+1 {
		return nil, &InputError{Err: fmt.Errorf("reset: execution %s has %d steps: reset to a step from 1 to %d (%d: after the last one; see `stent history %s`, column SEQ)",
			id, last, last+1, last+1, id)}
	}
	for seq := 1; seq < step; seq++ {
		call, ok := calls[seq]
		if ok && !done[seq] {
			what, _ := callOf(call)
			return nil, &InputError{Err: fmt.Errorf("reset: step %d of %s (%s) has no recorded result to reuse: reset to step %d or earlier", seq, id, what, seq)}
		}
	}
	return prefix, nil
}

// countSteps counts the steps a prefix records.
func countSteps(prefix []backend.Event) int {
	n := 0
	for _, ev := range prefix {
		if isStep(ev.Kind) {
			n++
		}
	}
	return n
}

// callOf writes a recorded step as the script called it (see interpreter.Divergence).
func callOf(ev backend.Event) (string, string) {
	var d interpreter.ScheduledData
	_ = json.Unmarshal(ev.Data, &d)
	name := ev.Name
	switch ev.Kind {
	case backend.EventTimerScheduled:
		return "sleep", d.Pos
	case backend.EventSignalWait:
		return fmt.Sprintf("wait_signal(%q)", name), d.Pos
	case backend.EventSideEffect:
		return name + "()", ""
	case backend.EventActivityScheduled:
		name = fmt.Sprintf("%q", name)
	}
	return "durable(" + name + ")", d.Pos
}

// ResetLinks reads how execution id is linked by resets: from is the execution it
// runs again (nil when it was not started by a reset), into the executions it was
// reset into, oldest first.
func (e *Engine) ResetLinks(ctx context.Context, id string) (from *backend.ResetLink, into []backend.ResetLink, err error) {
	events, err := e.b.History(ctx, id, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the resets of %s: %w", id, err)
	}
	return resetLinks(id, events)
}

// resetLinks is ResetLinks from the execution's history.
func resetLinks(id string, events []backend.Event) (from *backend.ResetLink, into []backend.ResetLink, err error) {
	for _, ev := range events {
		if ev.Kind != backend.EventResetFrom && ev.Kind != backend.EventResetInto {
			continue
		}
		var l backend.ResetLink
		if err := json.Unmarshal(ev.Data, &l); err != nil {
			return nil, nil, fmt.Errorf("reading the resets of %s: %s event: %w", id, ev.Kind, err)
		}
		if ev.Kind == backend.EventResetFrom {
			from = &l
		} else {
			into = append(into, l)
		}
	}
	return from, into, nil
}
