package postgres

import (
	"context"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// defaultPruneBatch is how many candidate roots a prune batch looks at by default.
const defaultPruneBatch = 200

// retentionLockClass is the first key of the advisory lock that elects the one process
// running exclusive (retention) prune batches; the second is a hash of the schema.
const retentionLockClass = 0x5354454f

// sqlPruneCandidates selects, after the cursor ($2 completed_at, $3 id), up to $4 ended
// root executions that ended before $1 (of status $5 unless NULL).
const sqlPruneCandidates = `SELECT id, completed_at FROM executions
	WHERE parent_id = '' AND completed_at IS NOT NULL AND completed_at < $1 AND status <> 'running'
		AND (completed_at, id) > ($2, $3) AND ($5::text IS NULL OR status = $5::text)
	ORDER BY completed_at, id LIMIT $4`

// sqlPruneTree lists every execution of the trees of the roots $1, locked, with its
// root, status, bundle and whether it has an open dead letter.
const sqlPruneTree = `WITH RECURSIVE tree(root, id) AS (
		SELECT r, r FROM unnest($1::text[]) AS r
		UNION ALL
		-- parent_id <> '' lets the planner use the partial executions_parent index.
		SELECT tree.root, e.id FROM executions e JOIN tree ON e.parent_id = tree.id AND e.parent_id <> ''
	)
	SELECT tree.root, tree.id, e.status, e.bundle,
		EXISTS (SELECT 1 FROM dead_letters d WHERE d.execution_id = tree.id AND d.status = 'open')
	FROM tree JOIN executions e ON e.id = tree.id
	FOR UPDATE OF e`

// PruneExecutions deletes one batch of ended execution trees (see backend.Retention),
// in one transaction that locks the trees' rows first. With Exclusive it first takes
// the retention advisory lock without waiting, and skips the batch if another process
// holds it.
func (b *Backend) PruneExecutions(ctx context.Context, pb backend.PruneBatch) (backend.PruneResult, error) {
	limit := pb.Limit
	if limit <= 0 {
		limit = defaultPruneBatch
	}
	var status *string
	if pb.Status != "" {
		s := string(pb.Status)
		status = &s
	}
	var res backend.PruneResult
	err := b.inTx(ctx, "pruning ended executions", func(s *txState) error {
		res = backend.PruneResult{Next: pb.After}
		if pb.Exclusive {
			var got bool
			if err := s.q.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`, retentionLockClass,
				b.schema).Scan(&got); err != nil {
				return err
			}
			if !got {
				res.Skipped = true
				return nil
			}
		}
		after := int64(-1 << 62)
		if !pb.After.CompletedAt.IsZero() {
			after = toMS(pb.After.CompletedAt)
		}
		query := func(sql string, args ...any) (backend.Rows, func(), error) {
			rows, err := s.q.Query(ctx, sql, args...)
			if err != nil {
				return nil, nil, err
			}
			return rows, rows.Close, nil
		}
		ids, err := backend.SelectPruneBatch(query, sqlPruneCandidates, []any{toMS(pb.EndedBefore), after, pb.After.ID, limit, status},
			sqlPruneTree, func(roots []string) any { return roots }, &res)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		for _, d := range backend.PruneTables(&res) {
			if pb.DryRun {
				if err := s.q.QueryRow(ctx, `SELECT count(*) FROM `+d.Name+` WHERE execution_id = ANY($1)`, ids).
					Scan(d.Count); err != nil {
					return err
				}
				continue
			}
			tag, err := s.q.Exec(ctx, `DELETE FROM `+d.Name+` WHERE execution_id = ANY($1)`, ids)
			if err != nil {
				return fmt.Errorf("deleting %s: %w", d.Name, err)
			}
			*d.Count = tag.RowsAffected()
		}
		if pb.DryRun {
			return nil
		}
		tag, err := s.q.Exec(ctx, `DELETE FROM executions WHERE id = ANY($1) AND status <> 'running'`, ids)
		if err != nil {
			return fmt.Errorf("deleting executions: %w", err)
		}
		res.Executions = tag.RowsAffected()
		return nil
	})
	return res, err
}

// PruneScripts deletes the scripts among hashes that no execution or schedule
// references.
func (b *Backend) PruneScripts(ctx context.Context, hashes []string) (int64, error) {
	var n int64
	for _, h := range hashes {
		tag, err := b.pool.Exec(ctx, `DELETE FROM scripts WHERE hash = $1
			AND NOT EXISTS (SELECT 1 FROM executions WHERE strpos(bundle, $1) > 0)
			AND NOT EXISTS (SELECT 1 FROM schedules WHERE strpos(bundle, $1) > 0)`, h)
		if err != nil {
			return n, b.dbError("pruning script "+h, err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

var _ backend.Retention = (*Backend)(nil)
