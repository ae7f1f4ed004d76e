package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// confirmData is the confirmation step of an action: what will happen, and the same
// form again with confirmed=1.
type confirmData struct {
	Action   string
	Question string
	Detail   string
	Fields   [][2]string
	Cancel   string
}

// action runs one POSTed action. It needs a valid CSRF token, then a confirmation
// (the page's dialog sends confirmed=1; without script, a confirmation page does),
// then it acts and redirects to the page the action belongs to.
func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	if s.opts.ReadOnly {
		s.fail(w, r, http.StatusForbidden, errors.New("the web view is read-only: actions are turned off"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("reading the form: %w", err))
		return
	}
	if err := s.checkCSRF(r); err != nil {
		s.fail(w, r, http.StatusForbidden, err)
		return
	}
	act := r.PathValue("action")
	if verb, ok := strings.CutPrefix(act, "batch-"); ok {
		s.batchAction(w, r, verb)
		return
	}
	id := r.PostFormValue("id")
	c := confirmData{Action: act, Fields: [][2]string{{"id", id}}}
	var (
		do   func() error
		back = s.base + "executions/" + pathID(id)
	)
	if act == "cancel" || act == "signal" {
		ex, err := s.b.GetExecution(r.Context(), id)
		if err != nil {
			s.notFoundOr(w, r, "execution "+id, err)
			return
		}
		if ex.Status.Terminal() {
			s.fail(w, r, http.StatusConflict, fmt.Errorf("execution %s already ended (%s)", id, ex.Status))
			return
		}
	}
	switch act {
	case "cancel":
		c.Question = "Cancel execution " + id + "?"
		c.Detail = "Its pending steps never start, running activities are cancelled, and its running children are cancelled too."
		do = func() error { return s.eng.Cancel(r.Context(), id) }
	case "signal":
		name := strings.TrimSpace(r.PostFormValue("name"))
		payload := strings.TrimSpace(r.PostFormValue("payload"))
		if name == "" {
			s.fail(w, r, http.StatusBadRequest, errors.New("a signal needs a name"))
			return
		}
		if payload == "" {
			payload = "null"
		}
		if !json.Valid([]byte(payload)) {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("the payload of signal %q is not valid JSON: %s", name, shortText(payload, 80)))
			return
		}
		c.Question = fmt.Sprintf("Send signal %q to %s?", name, id)
		c.Detail = "Payload: " + shortText(payload, 500)
		c.Fields = append(c.Fields, [2]string{"name", name}, [2]string{"payload", payload})
		do = func() error { return s.eng.SignalJSON(r.Context(), id, name, json.RawMessage(payload)) }
	case "retry":
		ex, err := s.b.GetExecution(r.Context(), id)
		if err != nil {
			s.notFoundOr(w, r, "execution "+id, err)
			return
		}
		if ex.Status != backend.StatusFailed {
			s.fail(w, r, http.StatusConflict, fmt.Errorf("execution %s is %s; only a failed execution can be retried", id, ex.Status))
			return
		}
		c.Question = "Retry execution " + id + "?"
		c.Detail = "The step whose failure failed it runs again (or the script goes on from its failure); its history is kept."
		do = func() error { return s.eng.Retry(r.Context(), id) }
	case "reset":
		var (
			code int
			err  error
		)
		if do, code, err = s.resetAction(r, &c, &back); err != nil {
			s.fail(w, r, code, err)
			return
		}
	case "replay", "discard":
		dlID, err := strconv.ParseInt(r.PostFormValue("dl"), 10, 64)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("dead letter %q is not a number", r.PostFormValue("dl")))
			return
		}
		c.Fields = [][2]string{{"dl", strconv.FormatInt(dlID, 10)}}
		back = s.base + "dead-letters"
		dl, err := s.b.GetDeadLetter(r.Context(), dlID)
		if err != nil {
			s.notFoundOr(w, r, "dead letter "+strconv.FormatInt(dlID, 10), err)
			return
		}
		if dl.Status != "open" {
			s.fail(w, r, http.StatusConflict, fmt.Errorf("dead letter %d is %s, not open", dl.ID, dl.Status))
			return
		}
		what := fmt.Sprintf("dead letter %d (%s, step %d of %s)", dl.ID, dl.Activity, dl.Seq, dl.ExecutionID)
		if act == "replay" {
			c.Question = "Replay " + what + "?"
			c.Detail = "The step runs again and its execution resumes from there. Fix the cause of its failure first."
			do = func() error { return s.eng.ReplayDeadLetter(r.Context(), dlID) }
		} else {
			c.Question = "Discard " + what + "?"
			c.Detail = "The execution stays failed; the dead letter is kept, marked discarded."
			do = func() error { return s.b.DiscardDeadLetter(r.Context(), dlID) }
		}
	case "pause-schedule", "resume-schedule", "trigger-schedule", "delete-schedule":
		var (
			code int
			err  error
		)
		if do, code, err = s.scheduleAction(r, act, &c); err != nil {
			s.fail(w, r, code, err)
			return
		}
		back = s.base + "schedules"
	default:
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no action %q", act))
		return
	}
	if r.PostFormValue("confirmed") != "1" {
		c.Cancel = back
		s.render(w, r, "confirm", page{Title: "Confirm", Data: c})
		return
	}
	if err := do(); err != nil {
		code := http.StatusInternalServerError
		var (
			ie *stent.InputError
			me *stent.ResetMismatchError
		)
		if errors.As(err, &ie) || errors.As(err, &me) || errors.Is(err, backend.ErrNotRunning) {
			code = http.StatusConflict // it changed since the checks above, or the script differs
		}
		s.fail(w, r, code, err)
		return
	}
	s.audit(r, act, c.Fields)
	http.Redirect(w, r, back+"?done="+act, http.StatusSeeOther)
}

// audit records a done action at info: what, on what, by whom, from where. The log is
// the record of the web view's actions; a schedule's trigger is also kept by the store
// as a "triggered" tick.
func (s *Server) audit(r *http.Request, act string, fields [][2]string) {
	attrs := []any{"action", act, "by", s.who(r), "remote", r.RemoteAddr}
	for _, f := range fields {
		attrs = append(attrs, f[0], shortText(f[1], 200))
	}
	s.log.Info("ui: action done", attrs...)
}
