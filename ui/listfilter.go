package ui

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/where"
)

// applyListFilter sets the script, ID prefix, time range and cursor filters of q.
func applyListFilter(f *backend.ListFilter, q listQuery) error {
	f.Script, f.IDPrefix, f.After = q.Script, q.IDPrefix, q.After
	var err error
	if f.Since, err = parseTimeInput("from", q.Since); err != nil {
		return err
	}
	if f.Until, err = parseTimeInput("to", q.Until); err != nil {
		return err
	}
	if f.After != "" {
		if _, _, err := backend.DecodeListCursor(f.After); err != nil {
			return errors.New("this page link is broken (bad cursor): start again from the newest executions")
		}
	}
	return nil
}

// countByStatus counts the root executions q matches, per status (whatever q.Status).
// Each status is counted up to Options.CountAtMost; the counts of a filter are
// kept for Options.CountTTL: live pages of many viewers then share one count.
func (s *Server) countByStatus(r *http.Request, q listQuery) (map[backend.Status]int, bool, error) {
	f, err := q.filter(0)
	if err != nil {
		return nil, false, err
	}
	f.CountAtMost = s.opts.CountAtMost
	key := q.withStatus("")
	s.countsMu.Lock()
	c, ok := s.counts[key]
	s.countsMu.Unlock()
	if ok && time.Since(c.at) < s.opts.CountTTL {
		return c.counts, true, nil
	}
	counts, err := s.b.CountExecutions(r.Context(), f)
	if err != nil {
		return nil, false, fmt.Errorf("counting executions: %w", err)
	}
	s.countsMu.Lock()
	if len(s.counts) >= 256 {
		clear(s.counts)
	}
	s.counts[key] = countsAt{counts: counts, at: time.Now()}
	s.countsMu.Unlock()
	return counts, true, nil
}

type countsAt struct {
	counts map[backend.Status]int
	at     time.Time
}

// applyWhere narrows f by expr, the --where language of the CLI (one parser:
// internal/where). A term the form's fields also set must agree with them; a parent
// term lists that execution's children instead of the root executions.
func applyWhere(f *backend.ListFilter, expr string, now time.Time) error {
	if expr == "" {
		return nil
	}
	w, err := where.Parse(expr, now)
	if err != nil {
		return err
	}
	for _, m := range []struct {
		name     string
		to, from *string
	}{{"status", (*string)(&f.Status), (*string)(&w.Status)}, {"script", &f.Script, &w.Script},
		{"id", &f.IDPrefix, &w.IDPrefix}} {
		if *m.from == "" {
			continue
		}
		if *m.to != "" && *m.to != *m.from {
			return fmt.Errorf("the filter's %s=%s contradicts the %s field (%s): clear one", m.name, *m.from, m.name, *m.to)
		}
		*m.to = *m.from
	}
	if w.Queue != "" {
		f.Queue = w.Queue
	}
	if w.ParentID != "" {
		f.ParentID, f.RootOnly = w.ParentID, false
	}
	if !w.Since.IsZero() && w.Since.After(f.Since) {
		f.Since = w.Since
	}
	if !w.Until.IsZero() && (f.Until.IsZero() || w.Until.Before(f.Until)) {
		f.Until = w.Until
	}
	if len(w.Tags) > 0 {
		f.Tags = w.Tags
	}
	return nil
}
