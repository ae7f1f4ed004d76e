package ui

import (
	"errors"
	"net/http"

	"github.com/stent-go/stent/backend"
)

// applyListFilter sets the filters of q that the backend's ListFilter has.
func applyListFilter(f *backend.ListFilter, q listQuery) error {
	if q.Script != "" || q.IDPrefix != "" || q.Since != "" || q.Until != "" || q.After != "" {
		return errors.New("this backend filters executions by status only")
	}
	return nil
}

// countByStatus counts the executions q matches, per status; known is false when the
// backend cannot count.
func (s *Server) countByStatus(r *http.Request, q listQuery) (map[backend.Status]int, bool, error) {
	return map[backend.Status]int{}, false, nil
}
