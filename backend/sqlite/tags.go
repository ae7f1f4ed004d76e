package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// ExecutionTags returns the tags of an execution.
func (b *Backend) ExecutionTags(ctx context.Context, id string) (map[string]string, error) {
	out, err := readRows(b, ctx, "reading the tags of "+id, func(q queryer, _ *stmts) (*sql.Rows, error) {
		return q.QueryContext(ctx, `SELECT key, value FROM execution_tags WHERE execution_id = ?`, id)
	}, backend.ScanTags)
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
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("reading the tags of %d executions: %w", len(ids), err)
	}
	out, err := readRows(b, ctx, fmt.Sprintf("reading the tags of %d executions", len(ids)), func(q queryer, _ *stmts) (*sql.Rows, error) {
		return q.QueryContext(ctx, `SELECT execution_id, key, value FROM execution_tags
			WHERE execution_id IN (SELECT value FROM json_each(?))`, string(list))
	}, backend.ScanTagsOf)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

var (
	_ backend.Tagger    = (*Backend)(nil)
	_ backend.TagLister = (*Backend)(nil)
)
