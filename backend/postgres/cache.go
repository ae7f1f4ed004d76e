package postgres

import (
	"context"
	"encoding/json"
)

// CachedResult returns a stored activity result that has not expired by the
// backend's clock (an entry expires at its ExpiresAt).
func (b *Backend) CachedResult(ctx context.Context, key string) (json.RawMessage, bool, error) {
	var result *string
	err := b.pool.QueryRow(ctx, `SELECT result FROM cache
		WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)`, key, toMS(b.now())).Scan(&result)
	if isNoRows(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, b.dbError("reading the result cache", err)
	}
	if result == nil {
		return json.RawMessage("null"), true, nil
	}
	return json.RawMessage(*result), true, nil
}

// ClearCache deletes the cached results of one activity, or all when activity is "",
// and returns how many it deleted (expired ones included).
func (b *Backend) ClearCache(ctx context.Context, activity string) (int, error) {
	var n int64
	err := b.single(ctx, "clearing the result cache", func(s *txState) error {
		var err error
		if activity == "" {
			tag, e := s.q.Exec(ctx, `DELETE FROM cache`)
			n, err = tag.RowsAffected(), e
		} else {
			tag, e := s.q.Exec(ctx, `DELETE FROM cache WHERE activity = $1`, activity)
			n, err = tag.RowsAffected(), e
		}
		return err
	})
	return int(n), err
}
