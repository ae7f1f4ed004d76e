package interpreter

import (
	"errors"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// CancelledType is the error type a cancellation request gives the steps it answers.
const CancelledType = "cancelled"

// cancelRequested delivers a cancellation to the script at its current wait (Temporal's
// model): every step recorded before the request and still unfinished (activities,
// timers, signal waits) fails with error type "cancelled", as of the request's place in
// history, so a replay answers the same steps. Child workflows are not answered: they
// get the request themselves and their own end reaches the parent. Steps the script
// issues afterwards (compensations) run normally.
func (r *Run) cancelRequested(ev backend.Event) {
	if r.cancelSeen {
		return
	}
	r.cancelSeen = true
	info := &backend.ErrorInfo{Type: CancelledType, Message: "the execution was cancelled"}
	for seq, rec := range r.recorded {
		if r.outcomes[seq].ok || rec.Kind == backend.EventSideEffect || rec.Kind == backend.EventChildScheduled {
			continue
		}
		r.outcomes[seq] = outcome{o: builtins.Outcome{Err: info}, ok: true, at: ev.ID}
		r.cancelled[seq] = true
	}
}

// endsCancelled reports whether the script's failure is the cancellation it was asked
// for (a cancelled step it did not handle, or re-raised), so the execution ends
// cancelled rather than failed.
func (r *Run) endsCancelled(err error) bool {
	var se *builtins.StepError
	return r.cancelSeen && errors.As(err, &se) && se.Info.Type == CancelledType
}
