package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stent-go/stent/backend"
)

// defaultPruneBatch is how many candidate roots a prune batch looks at by default.
const defaultPruneBatch = 200

// sqlPruneCandidates selects, after the cursor (?2 completed_at, ?3 id), up to ?4 ended
// root executions that ended before ?1 (of status ?5 unless NULL).
const sqlPruneCandidates = `SELECT id, completed_at FROM executions INDEXED BY executions_ended
	WHERE parent_id = '' AND completed_at IS NOT NULL AND completed_at < ?1 AND status <> 'running'
		AND (completed_at, id) > (?2, ?3)
		AND (?5 IS NULL OR status = ?5)
	ORDER BY completed_at, id LIMIT ?4`

// sqlPruneTree lists every execution of the trees of the roots in the JSON array ?1,
// with its root, status, bundle and whether it has an open dead letter.
const sqlPruneTree = `WITH RECURSIVE tree(root, id) AS (
		SELECT value, value FROM json_each(?1)
		UNION ALL
		SELECT tree.root, e.id FROM executions e JOIN tree ON e.parent_id = tree.id
	)
	SELECT tree.root, tree.id, e.status, e.bundle,
		EXISTS (SELECT 1 FROM dead_letters d WHERE d.execution_id = tree.id AND d.status = 'open')
	FROM tree JOIN executions e ON e.id = tree.id`

// PruneExecutions deletes one batch of ended execution trees (see backend.Retention).
// Writes are serialised, so the batch sees and deletes a consistent set; Exclusive
// needs nothing more.
func (b *Backend) PruneExecutions(ctx context.Context, pb backend.PruneBatch) (backend.PruneResult, error) {
	limit := pb.Limit
	if limit <= 0 {
		limit = defaultPruneBatch
	}
	var status any
	if pb.Status != "" {
		status = string(pb.Status)
	}
	var res backend.PruneResult
	// A dry run only reads, but in a write transaction, so that it sees what a real
	// batch would.
	err := b.write(ctx, "pruning ended executions", func(t *wtx) error {
		res = backend.PruneResult{Next: pb.After}
		query := func(sql string, args ...any) (backend.Rows, func(), error) {
			rows, err := t.conn.QueryContext(t.ctx, sql, args...)
			if err != nil {
				return nil, nil, err
			}
			return rows, func() { _ = rows.Close() }, nil
		}
		ids, err := backend.SelectPruneBatch(query, sqlPruneCandidates, []any{ms(pb.EndedBefore), cursorMS(pb.After), pb.After.ID, limit, status},
			sqlPruneTree, func(roots []string) any { js, _ := json.Marshal(roots); return string(js) }, &res)
		if err != nil {
			return err
		}
		if pb.DryRun || len(ids) == 0 {
			return countPrunedRows(t, ids, &res)
		}
		idJSON, _ := json.Marshal(ids)
		for _, d := range backend.PruneTables(&res) {
			r, err := t.execSQL(`DELETE FROM `+d.Name+` WHERE execution_id IN (SELECT value FROM json_each(?))`, string(idJSON))
			if err != nil {
				return fmt.Errorf("deleting %s: %w", d.Name, err)
			}
			if *d.Count, err = r.RowsAffected(); err != nil {
				return err
			}
		}
		r, err := t.execSQL(`DELETE FROM executions WHERE id IN (SELECT value FROM json_each(?)) AND status <> 'running'`, string(idJSON))
		if err != nil {
			return fmt.Errorf("deleting executions: %w", err)
		}
		res.Executions, err = r.RowsAffected()
		return err
	})
	return res, err
}

// countPrunedRows fills the row counts of a dry run.
func countPrunedRows(t *wtx, ids []string, res *backend.PruneResult) error {
	if len(ids) == 0 {
		return nil
	}
	idJSON, _ := json.Marshal(ids)
	for _, d := range backend.PruneTables(res) {
		if err := t.queryRowSQL(`SELECT count(*) FROM `+d.Name+` WHERE execution_id IN (SELECT value FROM json_each(?))`,
			string(idJSON)).Scan(d.Count); err != nil {
			return err
		}
	}
	return nil
}

func cursorMS(c backend.PruneCursor) int64 {
	if c.CompletedAt.IsZero() {
		return -1 << 62
	}
	return ms(c.CompletedAt)
}

// PruneScripts deletes the scripts among hashes that no execution or schedule
// references.
func (b *Backend) PruneScripts(ctx context.Context, hashes []string) (int64, error) {
	var n int64
	for _, h := range hashes {
		if strings.ContainsAny(h, "%_\\") {
			continue // not a content hash
		}
		err := b.write(ctx, "pruning script "+h, func(t *wtx) error {
			r, err := t.execSQL(`DELETE FROM scripts WHERE hash = ?1
				AND NOT EXISTS (SELECT 1 FROM executions WHERE bundle LIKE '%' || ?1 || '%')
				AND NOT EXISTS (SELECT 1 FROM schedules WHERE bundle LIKE '%' || ?1 || '%')`, h)
			if err != nil {
				return err
			}
			d, err := r.RowsAffected()
			n += d
			return err
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

var _ backend.Retention = (*Backend)(nil)
