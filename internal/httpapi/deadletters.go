package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/wire"
)

// The dead-letter endpoints are `stent dlq`'s: list, show, replay, discard.
func (a *API) deadLetterRoutes() {
	m := a.mux
	m.HandleFunc("GET /api/v1/dead-letters", a.deadLetters)
	m.HandleFunc("GET /api/v1/dead-letters/{id}", a.deadLetter)
	m.HandleFunc("POST /api/v1/dead-letters/{id}/replay", a.replayDeadLetter)
	m.HandleFunc("POST /api/v1/dead-letters/{id}/discard", a.discardDeadLetter)
}

// deadLetters lists dead letters of one status (default open; "all" for every one),
// newest first, as `dlq list --json`.
func (a *API) deadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	switch {
	case status == "":
		status = backend.DeadLetterOpen
	case status == "all":
		status = ""
	case !slices.Contains(backend.DeadLetterStatuses, status):
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad status",
			fmt.Sprintf("status %q: want %s or all", status, strings.Join(backend.DeadLetterStatuses, ", ")))
		return
	}
	limit, ok := a.limit(w, q.Get("limit"), 200)
	if !ok {
		return
	}
	list, err := a.eng.DeadLetters(r.Context(), status, limit)
	if err != nil {
		a.fail(w, fmt.Errorf("listing dead letters: %w", err))
		return
	}
	out := make([]wire.DeadLetter, len(list))
	for i := range list {
		out[i] = wire.NewDeadLetter(&list[i])
	}
	a.json(w, http.StatusOK, map[string]any{"dead_letters": out})
}

// limit reads a ?limit= from 1 to 1000, def when absent, answering 400 when bad.
func (a *API) limit(w http.ResponseWriter, s string, def int) (int, bool) {
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad limit", fmt.Sprintf("limit %q: want a number from 1 to 1000", s))
		return 0, false
	}
	return n, true
}

// loadDeadLetter reads the dead letter the path names, answering 404 when there is
// none (or the ID is not a number).
func (a *API) loadDeadLetter(w http.ResponseWriter, r *http.Request) (*backend.DeadLetter, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		a.problem(w, http.StatusNotFound, "no-such-dead-letter", "no such dead letter", fmt.Sprintf("dead-letter ID %q is not a number", raw))
		return nil, false
	}
	d, err := a.eng.Backend().GetDeadLetter(r.Context(), id)
	if errors.Is(err, backend.ErrNotFound) {
		a.problem(w, http.StatusNotFound, "no-such-dead-letter", "no such dead letter", fmt.Sprintf("no dead letter %d", id))
		return nil, false
	}
	if err != nil {
		a.fail(w, fmt.Errorf("reading dead letter %d: %w", id, err))
		return nil, false
	}
	return d, true
}

func (a *API) deadLetter(w http.ResponseWriter, r *http.Request) {
	if d, ok := a.loadDeadLetter(w, r); ok {
		a.json(w, http.StatusOK, wire.NewDeadLetter(d))
	}
}

// openDeadLetter reads the dead letter the path names and answers 409 when it is not
// open (already replayed, discarded or retried).
func (a *API) openDeadLetter(w http.ResponseWriter, r *http.Request) (*backend.DeadLetter, bool) {
	d, ok := a.loadDeadLetter(w, r)
	if ok && d.Status != backend.DeadLetterOpen {
		a.problem(w, http.StatusConflict, "dead-letter-resolved", "the dead letter is not open",
			fmt.Sprintf("dead letter %d is %s", d.ID, d.Status))
		return nil, false
	}
	return d, ok
}

// replayDeadLetter runs the failed step again and resumes its execution: 202, as a
// worker does the rest.
func (a *API) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	d, ok := a.openDeadLetter(w, r)
	if !ok {
		return
	}
	if d.Seq == 0 {
		a.problem(w, http.StatusConflict, "not-replayable", "this dead letter cannot be replayed",
			fmt.Sprintf("dead letter %d records a workflow step that killed its workers, not an activity", d.ID))
		return
	}
	if err := a.eng.ReplayDeadLetter(r.Context(), d.ID); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/executions/"+url.PathEscape(d.ExecutionID))
	w.WriteHeader(http.StatusAccepted)
}

// discardDeadLetter marks the dead letter discarded and returns it.
func (a *API) discardDeadLetter(w http.ResponseWriter, r *http.Request) {
	d, ok := a.openDeadLetter(w, r)
	if !ok {
		return
	}
	if err := a.eng.Backend().DiscardDeadLetter(r.Context(), d.ID); err != nil {
		a.fail(w, fmt.Errorf("discarding dead letter %d: %w", d.ID, err))
		return
	}
	if d, ok = a.loadDeadLetter(w, r); ok {
		a.json(w, http.StatusOK, wire.NewDeadLetter(d))
	}
}
