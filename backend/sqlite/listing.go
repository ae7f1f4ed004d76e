package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/stent-go/stent/backend"
)

// listConditions turns a filter into WHERE conditions and their arguments. withStatus
// and withCursor say whether f.Status and f.After take part (CountExecutions ignores
// them). Scheduled is running with start_at still ahead of nowMS.
func listConditions(f backend.ListFilter, nowMS int64, withStatus, withCursor bool) ([]string, []any, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, vs ...any) {
		where = append(where, cond)
		args = append(args, vs...)
	}
	if withStatus {
		switch f.Status {
		case "":
		case backend.StatusScheduled:
			add("status = 'running' AND start_at > ?", nowMS)
		case backend.StatusRunning:
			add("status = 'running' AND start_at <= ?", nowMS)
		default:
			add("status = ?", string(f.Status))
		}
	}
	if f.ParentID != "" {
		add("parent_id = ?", f.ParentID)
	}
	if f.RootOnly {
		add("parent_id = ''")
	}
	if f.Script != "" {
		add("json_extract(bundle, '$.main') = ?", f.Script)
	}
	if f.IDPrefix != "" {
		add("substr(id, 1, ?) = ?", len([]rune(f.IDPrefix)), f.IDPrefix)
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", ms(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at < ?", ms(f.Until))
	}
	if f.Queue != "" {
		add("queue = ?", f.Queue)
	}
	for _, k := range backend.SortedTagKeys(f.Tags) {
		add("id IN (SELECT execution_id FROM execution_tags WHERE key = ? AND value = ?)", k, f.Tags[k])
	}
	if withCursor && f.After != "" {
		createdMS, id, err := backend.DecodeListCursor(f.After)
		if err != nil {
			return nil, nil, err
		}
		add("(created_at < ? OR (created_at = ? AND id < ?))", createdMS, createdMS, id)
	}
	return where, args, nil
}

// CountExecutions counts the executions matching f per status, scheduled apart from
// running; f.Status, f.After and f.Limit are ignored.
func (b *Backend) CountExecutions(ctx context.Context, f backend.ListFilter) (map[backend.Status]int, error) {
	q, args, err := countSQL(f, ms(b.clock.Now()))
	if err != nil {
		return nil, err
	}
	out := map[backend.Status]int{}
	err = b.read(ctx, "counting executions", func(db queryer, _ *stmts) error {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				st           string
				n, scheduled float64
			)
			if err := rows.Scan(&st, &n, &scheduled); err != nil {
				return err
			}
			if n > 0 {
				out[backend.Status(st)] = int(n)
			}
			if scheduled > 0 {
				out[backend.StatusScheduled] = int(scheduled)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("counting executions: %w", err)
	}
	return out, nil
}

// countSQL is CountExecutions' query, whose rows are (status, count, scheduled).
// Grouped by the stored status, the counts read an index on status in order (no
// temporary b-tree); scheduled is counted apart within running. With f.CountAtMost,
// one bounded count per status: each reads at most that many index entries however
// many executions match.
func countSQL(f backend.ListFilter, now int64) (string, []any, error) {
	if f.CountAtMost <= 0 {
		where, args, err := listConditions(f, now, false, false)
		if err != nil {
			return "", nil, err
		}
		q := "SELECT status, count(*) - total(status = 'running' AND start_at > ?), total(status = 'running' AND start_at > ?) FROM executions"
		args = append([]any{now, now}, args...)
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		return q + " GROUP BY status", args, nil
	}
	var (
		branches []string
		args     []any
	)
	for _, st := range backend.Statuses {
		g := f
		g.Status = st
		where, a, err := listConditions(g, now, true, false)
		if err != nil {
			return "", nil, err
		}
		branches = append(branches, "SELECT ?, (SELECT count(*) FROM (SELECT 1 FROM executions WHERE "+
			strings.Join(where, " AND ")+" LIMIT ?)), 0")
		args = append(append(append(args, string(st)), a...), f.CountAtMost)
	}
	return strings.Join(branches, " UNION ALL "), args, nil
}
