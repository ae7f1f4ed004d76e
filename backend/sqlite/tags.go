package sqlite

import (
	"context"
	"database/sql"

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

var _ backend.Tagger = (*Backend)(nil)
