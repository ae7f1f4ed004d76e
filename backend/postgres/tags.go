package postgres

import (
	"context"

	"github.com/stent-go/stent/backend"
)

// ExecutionTags returns the tags of an execution.
func (b *Backend) ExecutionTags(ctx context.Context, id string) (map[string]string, error) {
	out, err := queryAll(ctx, b, "reading the tags of "+id, backend.ScanTags,
		`SELECT key, value FROM execution_tags WHERE execution_id = $1`, id)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

var _ backend.Tagger = (*Backend)(nil)
