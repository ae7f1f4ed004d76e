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

// Tags returns the tags of an execution: those given at dispatch and those its script
// set with set_tags (empty when it has none).
func (e *Engine) Tags(ctx context.Context, id string) (map[string]string, error) {
	t, ok := e.b.(backend.Tagger)
	if !ok {
		return map[string]string{}, nil
	}
	tags, err := t.ExecutionTags(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the tags of %s: %w", id, err)
	}
	return tags, nil
}
