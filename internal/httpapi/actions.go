package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

func (a *API) running(w http.ResponseWriter, r *http.Request) (*backend.Execution, bool) {
	ex, ok := a.execution(w, r)
	if ok && ex.Status != backend.StatusRunning {
		a.problem(w, http.StatusConflict, "execution-ended", "the execution already ended", fmt.Sprintf("execution %s is %s", ex.ID, ex.Status))
		return nil, false
	}
	return ex, ok
}

// control answers a cancel or terminate: 202 when asked, 409 when the execution ended.
func (a *API) control(fn func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ex, ok := a.running(w, r)
		if !ok {
			return
		}
		if err := fn(r.Context(), ex.ID); err != nil {
			a.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

func (a *API) retry(w http.ResponseWriter, r *http.Request) {
	ex, ok := a.execution(w, r)
	if !ok {
		return
	}
	if ex.Status != backend.StatusFailed {
		a.problem(w, http.StatusConflict, "not-failed", "only a failed execution can be retried", fmt.Sprintf("execution %s is %s", ex.ID, ex.Status))
		return
	}
	if err := a.eng.Retry(r.Context(), ex.ID); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// resetRequest is the body of POST /api/v1/executions/{id}/reset.
type resetRequest struct {
	ToStep int    `json:"to_step"`
	Script string `json:"script"`
}

// reset starts a new execution that runs an ended one again from a step: 201 with the
// new execution, 409 when the execution has not ended or the script does not replay
// the steps before the step.
func (a *API) reset(w http.ResponseWriter, r *http.Request) {
	var req resetRequest
	if !a.decode(w, r, &req) {
		return
	}
	if req.ToStep < 1 {
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad to_step", `"to_step" is required: the first step that runs again, from 1 (seq in the history)`)
		return
	}
	opts := stent.ResetOptions{ModulePath: a.opts.ScriptsDir}
	if req.Script != "" {
		script, err := a.scriptPath(req.Script)
		if err != nil {
			a.problem(w, http.StatusBadRequest, "invalid-script", "script not allowed", err.Error())
			return
		}
		opts.Script = script
	}
	ex, ok := a.execution(w, r)
	if !ok {
		return
	}
	if !ex.Status.Terminal() {
		a.problem(w, http.StatusConflict, "not-ended", "only an ended execution can be reset",
			fmt.Sprintf("execution %s is %s: terminate it first", ex.ID, ex.Status))
		return
	}
	rep, err := a.eng.Reset(r.Context(), ex.ID, req.ToStep, opts)
	var mismatch *stent.ResetMismatchError
	if errors.As(err, &mismatch) {
		a.problem(w, http.StatusConflict, "reset-mismatch", "the script does not replay the steps before to_step", err.Error())
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	ex, err = a.eng.Get(r.Context(), rep.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/executions/"+url.PathEscape(rep.ID))
	a.status(w, r, http.StatusCreated, ex)
}
