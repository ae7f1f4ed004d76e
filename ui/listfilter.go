package ui

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stent-go/stent/backend"
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
// Counting reads every matching execution's index entry, so the counts of a filter are
// kept for Options.CountTTL: live pages of many viewers then share one count.
func (s *Server) countByStatus(r *http.Request, q listQuery) (map[backend.Status]int, bool, error) {
	f, err := q.filter(0)
	if err != nil {
		return nil, false, err
	}
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
