package tests

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitForOutput runs the CLI until its stdout contains want, or fails after timeout.
func waitForOutput(t *testing.T, dir, dsn, want string, timeout time.Duration, args ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last result
	for time.Now().Before(deadline) {
		if last = stentOn(t, dir, dsn, args...); strings.Contains(last.stdout, want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("stent %v never printed %q within %s; last stdout:\n%s\nstderr:\n%s", args, want, timeout, last.stdout, last.stderr)
}

const routingFlow = `def main(n, queue):
    a = durable("step_a", n)
    b = durable("step_b", n)
    c = durable("charge", n, queue = queue)
    return [a, b, c]
`

// Three worker processes with different activities share one PostgreSQL database: A
// runs step_a and step_b, B runs step_b, C (started last) runs charge. Workflows that
// call charge wait, and `stent status` says so, until C starts; then every one
// completes, and none failed for a missing activity meanwhile. The same holds when
// charge runs on a queue of its own that only C serves.
func TestPostgresActivityRouting(t *testing.T) {
	for _, tc := range []struct {
		name, queue string
		abQueues    []string
		cQueues     []string
	}{
		{name: "OneQueue", queue: "default"},
		{name: "TwoQueues", queue: "payments", abQueues: []string{"--queue", "default"}, cQueues: []string{"--queue", "payments"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := newPostgresDB(t)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "flow.star"), routingFlow, 0o644)
			a, _, aErr := startStent(t, dir, pgEnv(db.dsn), append([]string{"worker", "--activity", "step_a=/bin/cat",
				"--activity", "step_b=/bin/cat"}, tc.abQueues...)...)
			b, _, bErr := startStent(t, dir, pgEnv(db.dsn), append([]string{"worker", "--activity", "step_b=/bin/cat"},
				tc.abQueues...)...)
			eng := openPgEngine(t, db.dsn)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var ids []string
			for i := range 6 {
				id, err := eng.Dispatch(ctx, filepath.Join(dir, "flow.star"), []any{i, tc.queue})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			waitForOutput(t, dir, db.dsn, `waiting for a worker that runs "charge" (none alive)`, time.Minute, "status", ids[0])
			// Every execution waits at charge; none failed.
			for _, id := range ids {
				ex, err := eng.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if ex.Status != "running" {
					t.Fatalf("execution %s is %s before a worker that runs charge started, want running (error %v)", id, ex.Status, ex.Error)
				}
			}
			c, _, cErr := startStent(t, dir, pgEnv(db.dsn), append([]string{"worker", "--activity", "charge=/bin/cat"}, tc.cQueues...)...)
			for i, id := range ids {
				res, err := eng.WaitFor(ctx, id)
				if err != nil {
					t.Fatalf("waiting for %s: %v", id, err)
				}
				var got [][]int
				if err := res.Decode(&got); err != nil {
					t.Fatalf("execution %s: %v", id, err)
				}
				if len(got) != 3 || got[0][0] != i || got[1][0] != i || got[2][0] != i {
					t.Fatalf("execution %s returned %v, want [[%d] [%d] [%d]]", id, got, i, i, i)
				}
			}
			if st := stentOn(t, dir, db.dsn, "status", ids[0]); strings.Contains(st.stdout, "waiting") {
				t.Fatalf("status of a completed execution still says it waits:\n%s", st.stdout)
			}
			// stent workers lists the three with what they serve.
			out := stentOn(t, dir, db.dsn, "workers", "--json")
			var acts []string
			for line := range strings.SplitSeq(strings.TrimSpace(out.stdout), "\n") {
				var w struct {
					Activities []string `json:"activities"`
					Queues     []string `json:"queues"`
					PID        int      `json:"pid"`
				}
				if err := json.Unmarshal([]byte(line), &w); err != nil {
					t.Fatalf("stent workers --json: %v in %q", err, out.stdout)
				}
				acts = append(acts, strings.Join(w.Activities, "+")+"@"+strings.Join(w.Queues, "+"))
			}
			want := map[string]bool{"step_a+step_b@" + strings.Join(tc.abQueues[min(1, len(tc.abQueues)):], ""): true,
				"step_b@" + strings.Join(tc.abQueues[min(1, len(tc.abQueues)):], ""): true,
				"charge@" + strings.Join(tc.cQueues[min(1, len(tc.cQueues)):], ""):   true}
			for _, a := range acts {
				delete(want, a)
			}
			if len(acts) != 3 || len(want) != 0 {
				t.Fatalf("stent workers --json listed %v, missing %v:\n%s", acts, want, out.stdout)
			}
			stopWorker(t, "A", a, aErr, 30*time.Second)
			stopWorker(t, "B", b, bErr, 30*time.Second)
			stopWorker(t, "C", c, cErr, 30*time.Second)
			if ws, err := eng.Workers(ctx); err != nil || len(ws) != 0 {
				t.Fatalf("Workers after every worker stopped = %+v, %v; want none (a stopping worker removes its row)", ws, err)
			}
		})
	}
}

// stent exec, alone with its execution, still fails at once on an activity no live
// worker runs, naming the registered ones.
func TestExecFailsFastOnUnroutedActivity(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), "def main():\n    return durable(\"charge\", 1)\n", 0o644)
	r := stent(t, dir, "exec", "flow.star", "--activity", "known=/bin/cat")
	if r.code != 1 || !strings.Contains(r.stderr, `unknown activity "charge" (registered: known)`) {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 naming charge and the registered activities", r.code, r.stderr)
	}
}
