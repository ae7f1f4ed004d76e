package sqlite

import (
	"context"

	"github.com/stent-go/stent/backend"
)

var _ backend.CommitCounter = (*Backend)(nil)

// Commits returns how many write transactions this Backend has committed since it was
// opened. Every state change is one write transaction, so the count is exact.
func (b *Backend) Commits(ctx context.Context) (int64, error) { return b.commits.Load(), nil }
