package postgres

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stent-go/stent/backend"
)

// The hot path must cost the same whatever the store holds: a claim and a step read
// and write a few rows through indexes, never a sequential scan of executions, events
// or tasks, which grow with every execution ever run. These tests fill a store with
// tens of thousands of ended executions and their histories, a backlog of sleeping
// executions (future timers) and a few tasks held by another worker, then run the real
// calls (the claim in each of its forms, the dispatch claim, the hand-off, the
// sequential and the fused step) and check the plan of every statement they send,
// nested ones inside the stent_* functions included, as the server ran it: the
// auto_explain module reports each plan to the client as a notice. The pool's plans
// are generic (plan_cache_mode = force_generic_plan, see Open), and so are these.

// planEndedExecutions is how many ended root executions (6 events each) the plan tests
// put in the store; a tenth as many sleep on a timer task.
const planEndedExecutions = 20000

// planLog collects the plans auto_explain reports on the backend's connections while
// recording.
type planLog struct {
	mu    sync.Mutex
	on    bool
	plans []string
}

func (l *planLog) notice(_ *pgconn.PgConn, n *pgconn.Notice) {
	if !strings.Contains(n.Message, "Query Text:") {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.on {
		l.plans = append(l.plans, n.Message)
	}
}

// record runs f and returns the plans of the statements run meanwhile.
func (l *planLog) record(t *testing.T, what string, f func() error) []string {
	t.Helper()
	l.mu.Lock()
	l.on, l.plans = true, nil
	l.mu.Unlock()
	err := f()
	l.mu.Lock()
	plans := l.plans
	l.on, l.plans = false, nil
	l.mu.Unlock()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return plans
}

// withPoolConfig adjusts the pool's configuration before Open creates the pool.
func withPoolConfig(f func(*pgxpool.Config)) Option {
	return func(cfg *config) { cfg.poolHook = f }
}

// openExplainingBackend opens a test backend whose connections load auto_explain and
// report the plan of every statement, nested ones included, as a notice to log. It
// needs a superuser (as the test DSN's root is): outside CI the test is skipped
// without one.
func openExplainingBackend(t *testing.T) (*Backend, *planLog) {
	t.Helper()
	dsn := testDSN(t)
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	_, loadErr := conn.Exec(ctx, "LOAD 'auto_explain'").ReadAll()
	_ = conn.Close(ctx)
	if loadErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("loading auto_explain (the plan tests need a superuser and the contrib module): %v", loadErr)
		}
		t.Skipf("cannot load auto_explain (the plan tests need a superuser and the contrib module): %v", loadErr)
	}
	plog := &planLog{}
	b := openTestBackend(t, backend.SystemClock{}, withPoolConfig(func(cfg *pgxpool.Config) {
		p := cfg.ConnConfig.RuntimeParams
		p["session_preload_libraries"] = "auto_explain"
		p["auto_explain.log_min_duration"] = "0"
		p["auto_explain.log_level"] = "notice"
		p["auto_explain.log_nested_statements"] = "on"
		cfg.ConnConfig.OnNotice = plog.notice
	}))
	return b, plog
}

// fillEndedStore adds n ended root executions (a tenth failed), completed over the
// last days, each with the history of a two-activity workflow (started, two activities
// scheduled and completed, the end); n/10 running executions asleep on a timer due in
// an hour or more; and 20 running executions whose activity task another worker holds.
// Then it updates the planner's statistics.
func fillEndedStore(t *testing.T, b *Backend, n int, nowMS int64) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	const bundle = `{"main":"flow.star","files":{"flow.star":"h-flow"}}`
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO executions (id, parent_id, bundle, entry, args, queue, status, result, error, version,
				created_at, updated_at, start_at, completed_at)
			SELECT 'ended-' || lpad(i::text, 7, '0'), '', $3, 'main', '[]', 'default',
				CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END,
				CASE WHEN i % 10 = 0 THEN NULL ELSE '"ok"' END,
				CASE WHEN i % 10 = 0 THEN '{"message":"boom","type":"error"}' END,
				4, c, c + 50, c, c + 50
			FROM generate_series(1, $1::int) AS g(i)
			CROSS JOIN LATERAL (SELECT $2::bigint - 3600000 - ($1::int - i)::bigint * 20000 AS c) x`,
			[]any{n, nowMS, bundle}},
		{`INSERT INTO events (execution_id, seq, kind, name, data, error, at)
			SELECT 'ended-' || lpad(i::text, 7, '0'), k.seq,
				CASE WHEN k.n = 5 AND i % 10 = 0 THEN 'failed' ELSE k.kind END, k.name,
				CASE WHEN k.n = 5 AND i % 10 = 0 THEN NULL ELSE k.data END,
				CASE WHEN k.n = 5 AND i % 10 = 0 THEN '{"message":"boom","type":"error"}' END,
				$2::bigint - 3600000 - ($1::int - i)::bigint * 20000 + k.n * 10
			FROM generate_series(1, $1::int) AS g(i)
			CROSS JOIN (VALUES (0, 0, 'started', '', '[]'),
				(1, 1, 'activity_scheduled', 'work', '{"args":[0]}'),
				(2, 1, 'activity_completed', 'work', '"' || repeat('0123456789', 10) || '"'),
				(3, 2, 'activity_scheduled', 'work', '{"args":[1]}'),
				(4, 2, 'activity_completed', 'work', '"' || repeat('0123456789', 10) || '"'),
				(5, 0, 'completed', '', '"ok"')) AS k(n, seq, kind, name, data)
			ORDER BY i, k.n`,
			[]any{n, nowMS}},
		{`INSERT INTO executions (id, bundle, entry, args, queue, status, version, created_at, updated_at, start_at)
			SELECT 'asleep-' || lpad(i::text, 6, '0'), $3, 'main', '[]', 'default', 'running', 1, $2::bigint - i,
				$2::bigint - i, $2::bigint - i
			FROM generate_series(1, $1::int) AS g(i)`,
			[]any{n / 10, nowMS, bundle}},
		{`INSERT INTO events (execution_id, seq, kind, name, data, at)
			SELECT 'asleep-' || lpad(i::text, 6, '0'), k.seq, k.kind, '', k.data, $2::bigint - i
			FROM generate_series(1, $1::int) AS g(i)
			CROSS JOIN (VALUES (0, 'started', '[]'), (1, 'timer_scheduled', '{}')) AS k(seq, kind, data)`,
			[]any{n / 10, nowMS}},
		{`INSERT INTO tasks (kind, execution_id, seq, queue, run_at)
			SELECT 'timer', 'asleep-' || lpad(i::text, 6, '0'), 1, 'default', $2::bigint + 3600000 + i::bigint * 1000
			FROM generate_series(1, $1::int) AS g(i)`,
			[]any{n / 10, nowMS}},
		{`INSERT INTO executions (id, bundle, entry, args, queue, status, version, created_at, updated_at, start_at)
			SELECT 'busy-' || i, $2, 'main', '[]', 'default', 'running', 1, $1::bigint, $1::bigint, $1::bigint
			FROM generate_series(1, 20) AS g(i)`,
			[]any{nowMS, bundle}},
		{`INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, payload, status, fence, lease_owner,
				lease_expires_at, activity)
			SELECT 'activity', 'busy-' || i, 1, 'default', $1::bigint, 1, '{"name":"work","args":[0]}', 'claimed', 1,
				'w-busy', $1::bigint + 3600000, 'work'
			FROM generate_series(1, 20) AS g(i)`,
			[]any{nowMS}},
		{`ANALYZE executions`, nil},
		{`ANALYZE events`, nil},
		{`ANALYZE tasks`, nil},
	} {
		if _, err := b.pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("filling the store: %v\n%s", err, q.sql)
		}
	}
	t.Logf("filled the store with %d ended executions in %v", n, time.Since(start).Round(time.Millisecond))
}

// seqScan matches a sequential scan of a table that grows with the executions run.
var seqScan = regexp.MustCompile(`Seq Scan on (executions|events|tasks)\b`)

// checkPlans fails unless plans were captured, none scans executions, events or tasks
// sequentially, and each of want (a regular expression matching whole words: an index
// name, or a function the statements call) occurs in them.
func checkPlans(t *testing.T, what string, plans []string, want ...string) {
	t.Helper()
	if len(plans) == 0 {
		t.Errorf("%s: no plan captured", what)
		return
	}
	bad := false
	for _, p := range plans {
		if seqScan.MatchString(p) {
			t.Errorf("%s: a sequential scan:\n%s", what, p)
			bad = true
		}
	}
	all := strings.Join(plans, "\n")
	for _, w := range want {
		if !regexp.MustCompile(`\b(` + w + `)\b`).MatchString(all) {
			t.Errorf("%s: %q occurs in no plan", what, w)
			bad = true
		}
	}
	if bad || testing.Verbose() {
		t.Logf("%s: %d plans:\n%s", what, len(plans), strings.Join(plans, "\n--\n"))
	}
}

// TestClaimPlans checks the plans of ClaimTasks in each of its forms (one queue, any
// queue, several, a kind, with caps, with activity routing) over a store of ended
// executions: the pending tasks are read off their partial indexes, the claimed rows
// by key.
func TestClaimPlans(t *testing.T) {
	b, plog := openExplainingBackend(t)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	fillEndedStore(t, b, planEndedExecutions, now)
	// A few due tasks to claim.
	if _, err := b.pool.Exec(ctx, `INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, payload, activity)
		SELECT 'activity', 'asleep-' || lpad(i::text, 6, '0'), 2, CASE WHEN i % 2 = 0 THEN 'default' ELSE 'other' END,
			$1::bigint - 1000, 1, '{"name":"work","args":[0]}', 'work'
		FROM generate_series(1, 12) AS g(i)`, now); err != nil {
		t.Fatal(err)
	}
	claimed := 0
	for _, tc := range []struct {
		name string
		req  backend.ClaimRequest
		want []string
	}{
		{"one queue", backend.ClaimRequest{Queues: []string{"default"}, Limit: 2},
			[]string{"tasks_pending_queue", "tasks_pkey"}},
		{"any queue", backend.ClaimRequest{Limit: 2}, []string{"tasks_pending", "tasks_pkey"}},
		{"two queues", backend.ClaimRequest{Queues: []string{"default", "other"}, Limit: 2},
			[]string{"tasks_pending", "tasks_pkey"}},
		{"activities", backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}, Queues: []string{"default"}, Limit: 2},
			[]string{"tasks_pending_queue", "tasks_pkey"}},
		{"capped", backend.ClaimRequest{Queues: []string{"default"}, Limit: 2, MaxConcurrent: map[string]int{"work": 30}},
			[]string{"tasks_pending_queue", "tasks_pending_activity", "tasks_claimed", "tasks_pkey"}},
		{"routed", backend.ClaimRequest{Queues: []string{"other"}, Limit: 2, RouteActivities: true, Activities: []string{"work"}},
			[]string{"tasks_pending_queue", "tasks_pkey"}},
	} {
		req := tc.req
		req.WorkerID, req.Lease = "w1", time.Minute
		plans := plog.record(t, "claim, "+tc.name, func() error {
			tasks, err := b.ClaimTasks(ctx, req)
			claimed += len(tasks)
			return err
		})
		checkPlans(t, "claim, "+tc.name, plans, tc.want...)
	}
	if claimed == 0 {
		t.Error("the claims took no task")
	}
}

// TestStepPlans checks the plans of a workflow's hot path over a store of ended
// executions: the dispatch that claims the new execution's workflow task, the step
// that hands off its activity task, the sequential step (stent_sequential_step), the
// fused step that ends the execution (stent_begin_fused_step), and the dispatch with
// the first step in place of the workflow task.
func TestStepPlans(t *testing.T) {
	b, plog := openExplainingBackend(t)
	ctx := context.Background()
	fillEndedStore(t, b, planEndedExecutions, time.Now().UnixMilli())
	claim := backend.ClaimRequest{WorkerID: "w1", Queues: []string{"default"}, Limit: 1, Lease: time.Minute}
	work := func(seq int) ([]backend.NewEvent, []backend.NewTask) {
		return []backend.NewEvent{{Seq: seq, Kind: backend.EventActivityScheduled, Name: "work", Data: []byte(`{"args":[0]}`)}},
			[]backend.NewTask{{Kind: backend.TaskActivity, Seq: seq, Payload: []byte(`{"name":"work","args":[0]}`)}}
	}
	result := []byte(`"` + strings.Repeat("0123456789", 10) + `"`)

	var wf *backend.Task
	plans := plog.record(t, "dispatch claim", func() error {
		_, tk, err := b.CreateExecutionAndClaim(ctx, newExec("hot-1"), claim)
		wf = tk
		return err
	})
	checkPlans(t, "dispatch claim", plans, "executions_pkey", "tasks_workflow")
	if wf == nil {
		t.Fatal("the dispatch claimed no workflow task")
	}

	var act backend.Task
	plans = plog.record(t, "step with hand-off", func() error {
		evs, tks := work(1)
		_, claimed, err := b.CompleteWorkflowTaskAndClaim(ctx, backend.WorkflowTaskResult{
			Task: wf.Ref(), ExecutionID: "hot-1", Events: evs, Tasks: tks}, claim)
		if err == nil && len(claimed) == 1 {
			act = claimed[0]
		}
		return err
	})
	checkPlans(t, "step with hand-off", plans, "stent_begin_workflow_task", "executions_pkey", "tasks_pkey")
	if act.ID == 0 {
		t.Fatal("the step handed off no activity task")
	}

	plans = plog.record(t, "sequential step", func() error {
		evs, tks := work(2)
		sc, err := b.CompleteActivityAndStep(ctx,
			backend.ActivityResult{Task: act.Ref(), ExecutionID: "hot-1", Seq: 1, Name: "work", Result: result},
			backend.WorkflowTaskResult{ExecutionID: "hot-1", ExpectedVersion: 1, Events: evs, Tasks: tks}, claim)
		if err == nil && len(sc.Claimed) == 1 {
			act = sc.Claimed[0]
		}
		return err
	})
	checkPlans(t, "sequential step", plans, "stent_sequential_step", "executions_pkey", "tasks_(pkey|execution)")

	plans = plog.record(t, "fused step, ending", func() error {
		_, err := b.CompleteActivityAndStep(ctx,
			backend.ActivityResult{Task: act.Ref(), ExecutionID: "hot-1", Seq: 2, Name: "work", Result: result},
			backend.WorkflowTaskResult{ExecutionID: "hot-1", ExpectedVersion: 2, NoParent: true,
				Finish: &backend.Finish{Status: backend.StatusCompleted, Result: []byte(`2`)}}, claim)
		return err
	})
	checkPlans(t, "fused step, ending", plans, "stent_begin_fused_step", "executions_pkey", "tasks_pkey",
		"tasks_execution")

	plans = plog.record(t, "dispatch with the first step", func() error {
		evs, tks := work(1)
		created, sc, err := b.CreateExecutionAndStep(ctx, newExec("hot-2"),
			backend.WorkflowTaskResult{Events: evs, Tasks: tks}, claim)
		if err == nil && (!created || len(sc.Claimed) != 1) {
			t.Errorf("CreateExecutionAndStep = %v, %d claimed; want created, 1 claimed", created, len(sc.Claimed))
		}
		return err
	})
	checkPlans(t, "dispatch with the first step", plans, "stent_begin_created_step", "executions_pkey")

	e, err := b.GetExecution(ctx, "hot-1")
	if err != nil || e.Status != backend.StatusCompleted {
		t.Fatalf("hot-1 = %+v, %v; want completed", e, err)
	}
}
