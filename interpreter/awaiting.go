package interpreter

import "github.com/stent-go/stent/backend"

// AwaitsOnly reports whether the run is parked waiting for the outcome of the activity
// at seq and for nothing else: every other command it issued (activity, child, timer,
// signal wait) has its outcome. Then no event but that activity's outcome (or the end
// of the execution) can arrive for it, so a worker may feed it the outcome it holds and
// commit the step without reading history back. Call it only while the run is parked.
func (r *Run) AwaitsOnly(seq int) bool {
	return r.awaitsOnly(seq, backend.EventActivityScheduled)
}

// AwaitsOnlyChild reports whether the run, parked, waits for the child execution it
// started at seq and for nothing else: the child's outcome is then the only event it
// can take its next step from.
func (r *Run) AwaitsOnlyChild(seq int) bool {
	return r.awaitsOnly(seq, backend.EventChildScheduled)
}

// awaitsOnly reports whether the run, parked, waits for the outcome of the command of
// kind at seq and for nothing else.
func (r *Run) awaitsOnly(seq int, kind backend.EventKind) bool {
	if !r.started || r.done {
		return false
	}
	if ev, ok := r.recorded[seq]; !ok || ev.Kind != kind || r.outcomes[seq].ok {
		return false
	}
	// Outcomes are never taken back, so the low watermark only moves up: the scan is
	// amortised O(1) per step however long the history.
	for r.resolvedBelow <= r.maxSeq && r.resolved(r.resolvedBelow) {
		r.resolvedBelow++
	}
	for s := max(r.resolvedBelow, 1); s <= r.maxSeq; s++ {
		if s != seq && !r.resolved(s) {
			return false
		}
	}
	return true
}

// AwaitsActivity reports whether the run, parked, waits for the outcome of the
// activity at seq, perhaps among other things.
func (r *Run) AwaitsActivity(seq int) bool {
	if !r.started || r.done {
		return false
	}
	ev, ok := r.recorded[seq]
	return ok && ev.Kind == backend.EventActivityScheduled && !r.outcomes[seq].ok
}

// resolved reports whether seq needs nothing more: it has its outcome, or it is not a
// command that waits for one.
func (r *Run) resolved(seq int) bool {
	if r.outcomes[seq].ok {
		return true
	}
	ev, ok := r.recorded[seq]
	if !ok {
		return true
	}
	switch ev.Kind {
	case backend.EventActivityScheduled, backend.EventChildScheduled, backend.EventTimerScheduled, backend.EventSignalWait:
		return false
	}
	return true
}
