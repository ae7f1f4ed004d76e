package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// CustomStatus returns the value the execution's script last recorded with
// set_status(value), or nil when it recorded none.
func (e *Engine) CustomStatus(ctx context.Context, id string) (json.RawMessage, error) {
	r, ok := e.b.(backend.Repairer)
	if !ok {
		return nil, fmt.Errorf("custom status: the %T backend cannot read it", e.b)
	}
	s, err := r.CustomStatus(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the custom status of %s: %w", id, err)
	}
	return s, nil
}
