package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// TestListPagePlans checks with EXPLAIN QUERY PLAN that the queries of the web view's
// list page (root executions, by status, script or queue, by page, children, status
// counts, every execution) read an index in list order, never the whole table nor a sort.
func TestListPagePlans(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "plans.db")
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// 20,000 roots and as many children (200 parents), then statistics for the planner.
	for _, q := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
		INSERT INTO executions (id, parent_id, bundle, entry, queue, status, created_at, updated_at, start_at)
		SELECT printf('e-%06d', i), CASE WHEN i % 2 = 0 THEN printf('e-%06d', i % 400 + 1) ELSE '' END,
			'{"main":"flow.star"}', 'main', 'default',
			CASE i % 5 WHEN 0 THEN 'failed' WHEN 1 THEN 'running' ELSE 'completed' END, i, i, i
		FROM n`,
		`ANALYZE`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	cursor := backend.ListCursor(&backend.Execution{ID: "e-020001", CreatedAt: time.UnixMilli(20001)})
	plan := func(q string, args []any) string {
		t.Helper()
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, detail)
		}
		return strings.Join(lines, "; ")
	}
	for _, tc := range []struct {
		name  string
		f     backend.ListFilter
		count bool
		index string
	}{
		{"roots", backend.ListFilter{RootOnly: true}, false, "executions_parent "},
		{"roots, next page", backend.ListFilter{RootOnly: true, After: cursor}, false, "executions_parent "},
		{"failed roots", backend.ListFilter{RootOnly: true, Status: backend.StatusFailed}, false, "executions_parent_status"},
		{"running roots", backend.ListFilter{RootOnly: true, Status: backend.StatusRunning}, false, "executions_parent_status"},
		{"roots of a script", backend.ListFilter{RootOnly: true, Script: "flow.star"}, false, "executions_root_script"},
		{"roots on a queue", backend.ListFilter{RootOnly: true, Queue: "default"}, false, "executions_root_queue"},
		{"children", backend.ListFilter{ParentID: "e-000001"}, false, "executions_parent "},
		{"all", backend.ListFilter{}, false, "executions_created"},
		{"status counts of roots", backend.ListFilter{RootOnly: true}, true, "COVERING INDEX executions_parent_status"},
	} {
		where, args, err := listConditions(tc.f, now, !tc.count, !tc.count)
		if err != nil {
			t.Fatal(err)
		}
		if len(where) == 0 {
			where = []string{"1"}
		}
		var q string
		if tc.count { // as CountExecutions asks
			q = "SELECT status, count(*) - total(status = 'running' AND start_at > ?), total(status = 'running' AND start_at > ?) FROM executions WHERE " +
				strings.Join(where, " AND ") + " GROUP BY status"
			args = append([]any{now, now}, args...)
		} else { // as ListExecutions asks
			q = "SELECT " + backend.ExecutionColumns + " FROM executions WHERE " + strings.Join(where, " AND ") +
				" ORDER BY created_at DESC, id DESC LIMIT ?"
			args = append(args, 51)
		}
		p := plan(q, args) + " "
		// A scan of an index in list order is fine (LIMIT stops it); a scan of the table is not.
		tableScan := strings.Contains(strings.ReplaceAll(p, "SCAN executions USING ", ""), "SCAN executions ")
		if !strings.Contains(p, tc.index) || tableScan || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s: plan %q, want a search of %s without a scan or a sort", tc.name, p, strings.TrimSpace(tc.index))
		}
	}
}
