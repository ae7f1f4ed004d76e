package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// putCache stores an activity's result (result: its JSON text) under c.Key.
// name is the activity's name, used when c.Activity is empty.
func (t *wtx) putCache(c backend.CacheEntry, name string, result any) error {
	if c.Key == "" {
		return errors.New("caching a result: empty cache key")
	}
	activity := c.Activity
	if activity == "" {
		activity = name
	}
	var expires any
	if c.ExpiresAt != nil {
		expires = ms(*c.ExpiresAt)
	}
	if _, err := t.exec(t.st.upsertCache, c.Key, activity, result, t.now, expires); err != nil {
		return fmt.Errorf("caching the result of %s: %w", activity, err)
	}
	return nil
}

// CachedResult returns a stored activity result that has not expired by the
// backend's clock (an entry expires at its ExpiresAt).
func (b *Backend) CachedResult(ctx context.Context, key string) (json.RawMessage, bool, error) {
	var result []byte
	now := ms(b.clock.Now())
	err := b.read(ctx, "reading the result cache", func(_ queryer, st *stmts) error {
		err := st.cachedResult.QueryRowContext(ctx, key, now).Scan(&result)
		if errors.Is(err, sql.ErrNoRows) {
			result = nil
			return nil
		}
		if err == nil && result == nil {
			result = []byte("null")
		}
		return err
	})
	if err != nil || result == nil {
		return nil, false, err
	}
	return json.RawMessage(result), true, nil
}

// ClearCache deletes the cached results of one activity, or all when activity is "",
// and returns how many it deleted (expired ones included).
func (b *Backend) ClearCache(ctx context.Context, activity string) (int, error) {
	var n int64
	err := b.write(ctx, "clearing the result cache", func(t *wtx) error {
		var (
			res sql.Result
			err error
		)
		if activity == "" {
			res, err = t.execSQL(`DELETE FROM cache`)
		} else {
			res, err = t.execSQL(`DELETE FROM cache WHERE activity = ?`, activity)
		}
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
