package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/stent-go/stent/backend"
)

// listQuery collects WHERE conditions and their numbered arguments.
type listQuery struct {
	where []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (q *listQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// whereClause is " WHERE c1 AND c2 …", or "" without conditions.
func (q *listQuery) whereClause() string {
	if len(q.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.where, " AND ")
}

// listConditions turns a filter into WHERE conditions. withStatus and withCursor say
// whether f.Status and f.After take part (CountExecutions ignores them). Scheduled is
// running with start_at still ahead of nowMS.
func listConditions(q *listQuery, f backend.ListFilter, nowMS int64, withStatus, withCursor bool) error {
	if withStatus {
		switch f.Status {
		case "":
		case backend.StatusScheduled:
			q.where = append(q.where, "status = 'running' AND start_at > "+q.arg(nowMS))
		case backend.StatusRunning:
			q.where = append(q.where, "status = 'running' AND start_at <= "+q.arg(nowMS))
		default:
			q.where = append(q.where, "status = "+q.arg(string(f.Status)))
		}
	}
	if f.ParentID != "" {
		q.where = append(q.where, "parent_id = "+q.arg(f.ParentID))
	}
	if f.RootOnly {
		q.where = append(q.where, "parent_id = ''")
	}
	if f.Script != "" {
		q.where = append(q.where, "((bundle::jsonb) ->> 'main') = "+q.arg(f.Script))
	}
	if f.IDPrefix != "" {
		q.where = append(q.where, "starts_with(id, "+q.arg(f.IDPrefix)+")")
	}
	if !f.Since.IsZero() {
		q.where = append(q.where, "created_at >= "+q.arg(toMS(f.Since)))
	}
	if !f.Until.IsZero() {
		q.where = append(q.where, "created_at < "+q.arg(toMS(f.Until)))
	}
	if f.Queue != "" {
		q.where = append(q.where, "queue = "+q.arg(f.Queue))
	}
	for _, k := range backend.SortedTagKeys(f.Tags) {
		// An array rather than IN (subquery): the executions are then read by key, those
		// with the tag first (a tag names few executions), not scanned and hash-joined.
		q.where = append(q.where, "id = ANY(ARRAY(SELECT execution_id FROM execution_tags WHERE key = "+q.arg(k)+" AND value = "+q.arg(f.Tags[k])+"))")
	}
	if withCursor && f.After != "" {
		createdMS, id, err := backend.DecodeListCursor(f.After)
		if err != nil {
			return err
		}
		q.where = append(q.where, "(created_at, id) < ("+q.arg(createdMS)+", "+q.arg(id)+")")
	}
	return nil
}

// CountExecutions counts the executions matching f per status, scheduled apart from
// running; f.Status, f.After and f.Limit are ignored.
func (b *Backend) CountExecutions(ctx context.Context, f backend.ListFilter) (map[backend.Status]int, error) {
	sql, args, err := countSQL(f, toMS(b.clock.Now()))
	if err != nil {
		return nil, err
	}
	rows, err := b.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, b.dbError("counting executions", err)
	}
	defer rows.Close()
	out := map[backend.Status]int{}
	for rows.Next() {
		var (
			st string
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, b.dbError("counting executions", err)
		}
		if n > 0 {
			out[backend.Status(st)] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, b.dbError("counting executions", err)
	}
	return out, nil
}

// countSQL is CountExecutions' query: grouped by status, or with f.CountAtMost one
// bounded count per status, each of which reads at most CountAtMost index entries
// (executions_root_status for roots) however many executions match.
func countSQL(f backend.ListFilter, nowMS int64) (string, []any, error) {
	var q listQuery
	if f.CountAtMost <= 0 {
		now := q.arg(nowMS)
		if err := listConditions(&q, f, nowMS, false, false); err != nil {
			return "", nil, err
		}
		return "SELECT CASE WHEN status = 'running' AND start_at > " + now + " THEN 'scheduled' ELSE status END AS st, count(*) FROM executions" +
			q.whereClause() + " GROUP BY st", q.args, nil
	}
	branches := make([]string, 0, len(backend.Statuses))
	for _, st := range backend.Statuses {
		g := f
		g.Status = st
		q.where = q.where[:0]
		if err := listConditions(&q, g, nowMS, true, false); err != nil {
			return "", nil, err
		}
		branches = append(branches, "SELECT "+q.arg(string(st))+"::text, count(*) FROM (SELECT 1 FROM executions"+
			q.whereClause()+" LIMIT "+q.arg(f.CountAtMost)+") AS x")
	}
	return strings.Join(branches, " UNION ALL "), q.args, nil
}
