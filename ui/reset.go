package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// "Reset from here": a step of an ended root execution's history offers to run the
// execution again from that step (engine Reset, on the pinned script), as
// `stent reset ID --to-step N` does.

// resetLinks reads how the execution of events is linked by resets: the execution it
// runs again, and those it was reset into (see stent.Engine.ResetLinks).
func resetLinks(events []backend.Event) (from *backend.ResetLink, into []backend.ResetLink) {
	for _, ev := range events {
		if ev.Kind != backend.EventResetFrom && ev.Kind != backend.EventResetInto {
			continue
		}
		var l backend.ResetLink
		if json.Unmarshal(ev.Data, &l) != nil {
			continue
		}
		if ev.Kind == backend.EventResetFrom {
			from = &l
		} else {
			into = append(into, l)
		}
	}
	return from, into
}

// canReset says whether ex may be reset from one of its steps.
func canReset(ex *backend.Execution) bool {
	return ex.ParentID == "" && ex.Status.Terminal()
}

// resetAction prepares the reset action of the POSTed form (id, step): its
// confirmation, and what it does, which sets *back to the new execution's page.
func (s *Server) resetAction(r *http.Request, c *confirmData, back *string) (func() error, int, error) {
	id := r.PostFormValue("id")
	step, err := strconv.Atoi(r.PostFormValue("step"))
	if err != nil || step < 1 {
		return nil, http.StatusBadRequest, fmt.Errorf("step %q is not a step number (1 or more)", r.PostFormValue("step"))
	}
	ex, err := s.b.GetExecution(r.Context(), id)
	if err != nil {
		return nil, http.StatusNotFound, fmt.Errorf("reading execution %s: %w", id, err)
	}
	switch {
	case ex.ParentID != "":
		return nil, http.StatusConflict, fmt.Errorf("execution %s is a child of %s: reset its root execution instead", id, ex.ParentID)
	case !ex.Status.Terminal():
		return nil, http.StatusConflict, fmt.Errorf("execution %s is %s: only an ended execution can be reset (cancel or terminate it first)", id, ex.Status)
	}
	c.Fields = append(c.Fields, [2]string{"step", strconv.Itoa(step)})
	c.Question = fmt.Sprintf("Reset execution %s from step #%d?", id, step)
	c.Detail = fmt.Sprintf("A new execution (%s-r1, or the next free -rN) runs it again on its pinned script: the recorded results of the steps before #%d are reused, step #%d onward runs for real. This execution is kept, linked to the new one.", id, step, step)
	return func() error {
		rep, err := s.eng.Reset(r.Context(), id, step, stent.ResetOptions{})
		if err != nil {
			return err
		}
		*back = s.base + "executions/" + pathID(rep.ID)
		return nil
	}, 0, nil
}
