package postgres

import (
	"context"
	"fmt"

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

// TagsOf returns the tags of each of ids that has any.
func (b *Backend) TagsOf(ctx context.Context, ids []string) (map[string]map[string]string, error) {
	if len(ids) == 0 {
		return map[string]map[string]string{}, nil
	}
	out, err := queryAll(ctx, b, fmt.Sprintf("reading the tags of %d executions", len(ids)), backend.ScanTagsOf,
		`SELECT execution_id, key, value FROM execution_tags WHERE execution_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

var (
	_ backend.Tagger    = (*Backend)(nil)
	_ backend.TagLister = (*Backend)(nil)
)
