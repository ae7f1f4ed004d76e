package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
)

var _ backend.Resetter = (*Backend)(nil)

// ResetExecution creates e with a history prefix copied from execution from and links
// the two, in one transaction.
func (b *Backend) ResetExecution(ctx context.Context, e backend.NewExecution, prefix []backend.NewEvent, from string, intoData json.RawMessage) (bool, error) {
	var created bool
	err := b.write(ctx, "resetting "+from+" into "+e.ID, func(t *wtx) error {
		var one int
		if err := t.queryRowSQL(`SELECT 1 FROM executions WHERE id = ?`, from).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("execution %q: %w", from, backend.ErrNotFound)
			}
			return fmt.Errorf("reading execution %s: %w", from, err)
		}
		var err error
		if created, err = t.createExecution(e, backend.DefaultQueue, 1); err != nil || !created {
			return err
		}
		for _, ev := range prefix {
			if err := t.appendEvent(e.ID, ev); err != nil {
				return fmt.Errorf("copying the history of %s: %w", from, err)
			}
		}
		return t.appendEvent(from, backend.NewEvent{Kind: backend.EventResetInto, Data: intoData})
	})
	return created, err
}
