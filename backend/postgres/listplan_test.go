package postgres

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// TestListPagePlans checks with EXPLAIN that the queries of the web view's list page
// (root executions, by status, by page, children) read an index in list order: no
// sequential scan, no sort.
func TestListPagePlans(t *testing.T) {
	b := openTestBackend(t, backend.SystemClock{})
	ctx := context.Background()
	// 20,000 roots and as many children (400 parents), then statistics for the planner.
	for _, q := range []string{
		`INSERT INTO executions (id, parent_id, bundle, entry, queue, status, created_at, updated_at, start_at)
		SELECT 'e-' || lpad(i::text, 6, '0'), CASE WHEN i % 2 = 0 THEN 'e-' || lpad((i % 400 + 1)::text, 6, '0') ELSE '' END,
			'{"main":"flow.star"}', 'main', 'default',
			CASE i % 5 WHEN 0 THEN 'failed' WHEN 1 THEN 'running' ELSE 'completed' END, i, i, i
		FROM generate_series(1, 40000) AS g(i)`,
		`ANALYZE executions`,
	} {
		if _, err := b.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	cursor := backend.ListCursor(&backend.Execution{ID: "e-020001", CreatedAt: time.UnixMilli(20001)})
	for _, tc := range []struct {
		name string
		f    backend.ListFilter
	}{
		{"roots", backend.ListFilter{RootOnly: true}},
		{"roots, next page", backend.ListFilter{RootOnly: true, After: cursor}},
		{"failed roots", backend.ListFilter{RootOnly: true, Status: backend.StatusFailed}},
		{"running roots", backend.ListFilter{RootOnly: true, Status: backend.StatusRunning}},
		{"roots of a script", backend.ListFilter{RootOnly: true, Script: "flow.star"}},
		{"roots on a queue", backend.ListFilter{RootOnly: true, Queue: "default"}},
		{"children", backend.ListFilter{ParentID: "e-000001"}},
		{"all", backend.ListFilter{}},
	} {
		p := strings.Join(explainList(t, b, "EXPLAIN", tc.f, now), "; ")
		if !strings.Contains(p, "Index Scan") || strings.Contains(p, "Seq Scan") || strings.Contains(p, "Sort") {
			t.Errorf("%s: plan %q, want an index scan in list order (no sequential scan, no sort)", tc.name, p)
		}
	}
	// The page's counts, bounded: each status stops at CountAtMost (a limit per
	// status), so counting the 20,000 roots (8,000 failed, 8,000 running, 4,000
	// completed) reads far fewer rows than a full count, which reads them all. With a
	// filter the planner may read a whole index to find that a status has none.
	for i, f := range []backend.ListFilter{{RootOnly: true}, {RootOnly: true, Script: "flow.star"}, {RootOnly: true, Queue: "default"}} {
		f.CountAtMost = 100
		sql, args, err := countSQL(f, now)
		if err != nil {
			t.Fatal(err)
		}
		lines := explainSQL(t, b, "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF)", sql, args)
		p := strings.Join(lines, "; ")
		if n := strings.Count(p, "Limit"); n != len(backend.Statuses) {
			t.Errorf("counts of %+v: %d limits, want one per status (%d): plan %q", f, n, len(backend.Statuses), p)
		}
		if read := rowsRead(lines); i == 0 && read >= 20000 {
			t.Errorf("counts of the roots read %d rows, want fewer than the 20,000 roots: plan %q", read, p)
		}
		counts, err := b.CountExecutions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		want := map[backend.Status]int{backend.StatusRunning: 100, backend.StatusCompleted: 100, backend.StatusFailed: 100}
		if !reflect.DeepEqual(counts, want) {
			t.Errorf("counts of %+v = %v, want %v", f, counts, want)
		}
	}
}

// TestTagFilterPlan checks with EXPLAIN ANALYZE that a list filtered by a tag, over
// 100,000 executions of which 1% carry the tag value, reads the tag index and the
// executions by key: no sequential scan of either table. Its server time is logged.
func TestTagFilterPlan(t *testing.T) {
	b := openTestBackend(t, backend.SystemClock{})
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO executions (id, parent_id, bundle, entry, queue, status, created_at, updated_at, start_at)
		SELECT 't-' || lpad(i::text, 6, '0'), '', '{"main":"flow.star"}', 'main', 'default',
			CASE i % 5 WHEN 0 THEN 'failed' ELSE 'completed' END, i, i, i
		FROM generate_series(1, 100000) AS g(i)`,
		`INSERT INTO execution_tags (execution_id, key, value)
		SELECT 't-' || lpad(i::text, 6, '0'), 'customer', (i % 100)::text FROM generate_series(1, 100000) AS g(i)`,
		`ANALYZE executions`,
		`ANALYZE execution_tags`,
	} {
		if _, err := b.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	f := backend.ListFilter{RootOnly: true, Tags: map[string]string{"customer": "42"}, Status: backend.StatusFailed}
	lines := explainList(t, b, "EXPLAIN ANALYZE", f, time.Now().UnixMilli())
	p := strings.Join(lines, "; ")
	if !strings.Contains(p, "execution_tags_key_value") || strings.Contains(p, "Seq Scan") {
		t.Errorf("tag filter: plan %q, want the tag index and no sequential scan", p)
	}
	t.Logf("tag filter over 100,000 executions: %s", lines[len(lines)-1])
}

// explainList runs explain (EXPLAIN or EXPLAIN ANALYZE) on the query ListExecutions
// asks for f, and returns the plan's lines.
func explainList(t *testing.T, b *Backend, explain string, f backend.ListFilter, nowMS int64) []string {
	t.Helper()
	var lq listQuery
	if err := listConditions(&lq, f, nowMS, true, true); err != nil {
		t.Fatal(err)
	}
	q := "SELECT " + backend.ExecutionColumns + " FROM executions" + lq.whereClause() +
		" ORDER BY created_at DESC, id DESC LIMIT " + lq.arg(51)
	return explainSQL(t, b, explain, q, lq.args)
}

// explainSQL returns the lines of explain (EXPLAIN, EXPLAIN ANALYZE…) of query q.
func explainSQL(t *testing.T, b *Backend, explain, q string, args []any) []string {
	t.Helper()
	q = explain + " " + q
	rows, err := b.pool.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	return lines
}

// rowsRead adds up what the scans of an EXPLAIN ANALYZE plan read: the rows each
// returned and those its filter removed.
func rowsRead(lines []string) int {
	total := 0
	for _, l := range lines {
		var n int
		switch {
		case strings.Contains(l, "Scan") && strings.Contains(l, "actual rows="):
			fmt.Sscanf(l[strings.Index(l, "actual rows=")+len("actual rows="):], "%d", &n)
		case strings.HasPrefix(l, "Rows Removed by Filter:"):
			fmt.Sscanf(strings.TrimPrefix(l, "Rows Removed by Filter:"), "%d", &n)
		}
		total += n
	}
	return total
}
