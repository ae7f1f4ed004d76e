package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/batch"
)

// Batch actions of the list page: retry, cancel or terminate the executions selected
// on the page, or all those the page's filter matches. They share the CSRF, read-only
// and confirmation rules of the other actions (see action) and the CLI's batch code
// (internal/batch): each execution is read again and skipped when the action no longer
// takes it, a failure is reported and the batch goes on, and at most
// Options.BatchRate actions are taken per second.

// maxPicked bounds how many executions one form may name by ID.
const maxPicked = 1000

// maxBatchRows bounds the skipped and failed executions a result page lists.
const maxBatchRows = 500

// batchRow is a skipped or failed execution of a batch's result.
type batchRow struct {
	ID, Outcome, Reason string
}

type batchData struct {
	Verb, Done   string
	Title        string // "Retry"
	Asked        int    // executions the batch took
	Sum          batch.Summary
	NotTaken     int // matching the filter but not taken by the action: skipped at selection
	Interrupted  bool
	Rows         []batchRow
	RowsMore     int
	Back         string
	Scope, Where string
}

func (s *Server) batchOf(verb string) (batch.Action, bool) {
	switch verb {
	case "retry":
		return batch.Retry(s.eng.Retry), true
	case "cancel":
		return batch.Cancel(func(ctx context.Context, id string) error { return s.eng.Cancel(ctx, id) }), true
	case "terminate":
		return batch.Terminate(s.eng.Terminate), true
	}
	return batch.Action{}, false
}

// batchAction serves POST /actions/batch-VERB (the CSRF token is checked already):
// scope=selected acts on the IDs of the checked rows (ids), scope=all on every root
// execution the list query of the form (status, script, id, since, until, where)
// matches. Unconfirmed, it shows how many executions it would act on.
func (s *Server) batchAction(w http.ResponseWriter, r *http.Request, verb string) {
	a, ok := s.batchOf(verb)
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no batch action %q", verb))
		return
	}
	ctx := r.Context()
	q := readListQuery(r.PostForm)
	q.After = ""
	d := &batchData{Verb: a.Verb, Done: a.Done, Title: capital(a.Verb), Back: s.base + "?" + q.encode(), Where: q.describe()}
	c := confirmData{Action: "batch-" + verb, Cancel: d.Back}
	var ids []string
	switch scope := r.PostFormValue("scope"); scope {
	case "all":
		f, err := q.filter(0)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, err)
			return
		}
		if ids, d.NotTaken, err = batch.Select(ctx, s.eng, f, a); err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		c.Fields = append(append(c.Fields, [2]string{"scope", "all"}), q.fields()...)
		d.Scope = "all matching " + d.Where
	case "selected", "":
		picked := uniq(r.PostForm["ids"])
		if len(picked) == 0 {
			s.fail(w, r, http.StatusBadRequest, errors.New("no execution selected: tick the rows to act on, or choose all matching the filter"))
			return
		}
		if len(picked) > maxPicked {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("%d executions selected: at most %d by ID; use all matching the filter", len(picked), maxPicked))
			return
		}
		c.Fields = append(c.Fields, [2]string{"scope", "selected"})
		for _, id := range picked {
			c.Fields = append(c.Fields, [2]string{"ids", id})
			ex, err := s.b.GetExecution(ctx, id)
			switch {
			case errors.Is(err, backend.ErrNotFound):
				d.NotTaken++
			case err != nil:
				s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("reading execution %s: %w", id, err))
				return
			case a.Wants(ex):
				ids = append(ids, id)
			default:
				d.NotTaken++
			}
		}
		d.Scope = strconv.Itoa(len(picked)) + " selected"
	default:
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("scope %q: want selected or all", scope))
		return
	}
	d.Asked = len(ids)
	if r.PostFormValue("confirmed") != "1" && len(ids) > 0 {
		c.Question = fmt.Sprintf("%s %d %s?", capital(a.Verb), len(ids), plural(len(ids), "execution"))
		c.Detail = batchDetail(a.Verb)
		if d.NotTaken > 0 {
			c.Detail += fmt.Sprintf(" %d more %s (%s) cannot be %s and %s skipped.", d.NotTaken,
				plural(d.NotTaken, "execution"), d.Scope, a.Done, map[bool]string{true: "is", false: "are"}[d.NotTaken == 1])
		}
		s.render(w, r, "confirm", page{Title: "Confirm", Data: c})
		return
	}
	sum, err := batch.Run(ctx, s.eng, a, ids, batch.Options{Rate: s.opts.BatchRate, Each: func(_ int, res batch.Result) {
		if res.Outcome == batch.Done {
			s.audit(r, a.Verb, [][2]string{{"id", res.ID}, {"batch", d.Scope}})
			return
		}
		if len(d.Rows) >= maxBatchRows {
			d.RowsMore++
			return
		}
		d.Rows = append(d.Rows, batchRow{ID: res.ID, Outcome: string(res.Outcome), Reason: res.Reason(a)})
	}})
	d.Sum, d.Interrupted = sum, err != nil
	s.log.Info("ui: batch done", "action", a.Verb, "by", s.who(r), "remote", r.RemoteAddr, "scope", shortText(d.Scope, 200),
		"asked", len(ids), "done", sum.Done, "skipped", sum.Skipped+d.NotTaken, "failed", sum.Failed, "interrupted", d.Interrupted)
	s.render(w, r, "batch", page{Title: capital(a.Verb) + " executions", Nav: "executions", Data: d})
}

func batchDetail(verb string) string {
	switch verb {
	case "retry":
		return "Each failed execution runs its failed step again (or its script goes on from its failure); histories are kept."
	case "cancel":
		return "Each execution is asked to cancel: its script sees the cancellation and may compensate; its children are cancelled too."
	}
	return "Each execution ends at once as cancelled, with its children, without running its script again."
}

// describe says what the list query selects, for messages.
func (q listQuery) describe() string {
	out := ""
	for _, kv := range q.fields() {
		if kv[0] == "where" {
			out += " " + kv[1]
		} else {
			out += " " + kv[0] + "=" + kv[1]
		}
	}
	if out == "" {
		return "(no filter: every execution)"
	}
	return out[1:]
}

// fields lists the set fields of q (not the cursor) as form fields.
func (q listQuery) fields() [][2]string {
	var out [][2]string
	for _, kv := range [][2]string{{"status", q.Status}, {"script", q.Script}, {"id", q.IDPrefix},
		{"since", q.Since}, {"until", q.Until}, {"where", q.Where}} {
		if kv[1] != "" {
			out = append(out, kv)
		}
	}
	return out
}

func uniq(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
