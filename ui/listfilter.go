package ui

import (
	"errors"
	"fmt"
	"net/http"

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
func (s *Server) countByStatus(r *http.Request, q listQuery) (map[backend.Status]int, bool, error) {
	f, err := q.filter(0)
	if err != nil {
		return nil, false, err
	}
	counts, err := s.b.CountExecutions(r.Context(), f)
	if err != nil {
		return nil, false, fmt.Errorf("counting executions: %w", err)
	}
	return counts, true, nil
}
