package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/store"
	"github.com/stent-go/stent/internal/telemetry"
)

// The span names the engine emits (see package telemetry).
const (
	spanDispatch     = "stent.dispatch"
	spanExecution    = "stent.execution"
	spanWorkflowTask = "stent.workflow_task"
	spanActivity     = "stent.activity"
)

// tracedEngine is an engine with a worker whose spans go to an in-memory recorder.
type tracedEngine struct {
	eng  *Engine
	rec  spanRecorder
	dir  string
	stop func() // ends the worker (every span ended) and closes the engine; idempotent
}

// spanRecorder gives the spans ended so far.
type spanRecorder interface {
	Ended() []sdktrace.ReadOnlySpan
}

func newTracer() (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithIDGenerator(telemetry.IDGenerator())), rec
}

func startTraced(t *testing.T, dir string, register func(*Engine), wopts WorkerOptions, opts ...Option) *tracedEngine {
	t.Helper()
	tp, rec := newTracer()
	opts = append([]Option{WithTracerProvider(tp)}, opts...)
	eng, err := Open(context.Background(), filepath.Join(dir, "stent.db"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if register != nil {
		register(eng)
	}
	if wopts.PollInterval == 0 {
		wopts.PollInterval = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx, wopts) }()
	if err := eng.WaitUntilReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	te := &tracedEngine{eng: eng, rec: rec, dir: dir}
	te.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
			_ = eng.Close()
		})
	}
	t.Cleanup(te.stop)
	return te
}

func (te *tracedEngine) run(t *testing.T, script string, args ...any) (string, *Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	id, err := te.eng.Dispatch(ctx, script, args)
	if err != nil {
		t.Fatalf("Dispatch: %v", err)
	}
	res, err := te.eng.WaitFor(ctx, id)
	if res == nil {
		t.Fatalf("WaitFor: %v", err)
	}
	return id, res
}

func writeScript(t *testing.T, dir, src string) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("wf%d.star", time.Now().UnixNano()))
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// spanTree indexes recorded spans; newSpanTree checks that they form one trace in
// which every parent was recorded too (the dispatch span's parent aside).
type spanTree struct {
	t     *testing.T
	spans []sdktrace.ReadOnlySpan
	byID  map[trace.SpanID]sdktrace.ReadOnlySpan
}

func newSpanTree(t *testing.T, spans []sdktrace.ReadOnlySpan) *spanTree {
	t.Helper()
	st := &spanTree{t: t, spans: spans, byID: map[trace.SpanID]sdktrace.ReadOnlySpan{}}
	if len(spans) == 0 {
		t.Fatal("no spans recorded")
	}
	for _, s := range spans {
		if _, dup := st.byID[s.SpanContext().SpanID()]; dup {
			t.Fatalf("span ID %s recorded twice:\n%s", s.SpanContext().SpanID(), st)
		}
		st.byID[s.SpanContext().SpanID()] = s
		if s.SpanContext().TraceID() != spans[0].SpanContext().TraceID() {
			t.Fatalf("spans of two traces (%s and %s):\n%s", spans[0].SpanContext().TraceID(), s.SpanContext().TraceID(), st)
		}
	}
	for _, s := range spans {
		if s.Name() == spanDispatch || !s.Parent().IsValid() {
			continue
		}
		if _, ok := st.byID[s.Parent().SpanID()]; !ok {
			t.Fatalf("span %s %s has parent %s, which was not recorded:\n%s", s.Name(), attrs(s), s.Parent().SpanID(), st)
		}
	}
	return st
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func attrs(s sdktrace.ReadOnlySpan) string {
	var parts []string
	for _, k := range []string{"stent.execution.id", "stent.seq", "stent.activity.name", "stent.attempt", "stent.outcome"} {
		if v := attrOf(s, k); v != "" {
			parts = append(parts, k[len("stent."):]+"="+v)
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// String draws the tree, children in start order.
func (st *spanTree) String() string {
	var b strings.Builder
	var draw func(parent trace.SpanID, depth int)
	draw = func(parent trace.SpanID, depth int) {
		for _, s := range st.sorted() {
			if s.Parent().SpanID() == parent || (depth == 0 && s.Name() == spanDispatch) {
				if depth == 0 && s.Name() != spanDispatch {
					continue
				}
				fmt.Fprintf(&b, "%s%s %s\n", strings.Repeat("  ", depth), s.Name(), attrs(s))
				draw(s.SpanContext().SpanID(), depth+1)
			}
		}
	}
	draw(trace.SpanID{}, 0)
	return b.String()
}

func (st *spanTree) sorted() []sdktrace.ReadOnlySpan {
	out := append([]sdktrace.ReadOnlySpan(nil), st.spans...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartTime().Before(out[j].StartTime()) })
	return out
}

// children returns parent's children named name.
func (st *spanTree) children(parent sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range st.sorted() {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the only span named name whose attribute key is value.
func (st *spanTree) one(name, key, value string) sdktrace.ReadOnlySpan {
	st.t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range st.spans {
		if s.Name() == name && (key == "" || attrOf(s, key) == value) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		st.t.Fatalf("want one %s span with %s=%s, found %d:\n%s", name, key, value, len(found), st)
	}
	return found[0]
}

// execution checks the execution span of id (under parent) and its workflow tasks.
func (st *spanTree) execution(id string, parent sdktrace.ReadOnlySpan, outcome string) sdktrace.ReadOnlySpan {
	st.t.Helper()
	ex := st.one(spanExecution, "stent.execution.id", id)
	if ex.Parent().SpanID() != parent.SpanContext().SpanID() {
		st.t.Fatalf("execution span of %s is not under %s:\n%s", id, parent.Name(), st)
	}
	if got := attrOf(ex, "stent.outcome"); got != outcome {
		st.t.Fatalf("execution %s outcome = %q, want %q", id, got, outcome)
	}
	if len(st.children(ex, spanWorkflowTask)) == 0 {
		st.t.Fatalf("execution %s has no workflow task span:\n%s", id, st)
	}
	return ex
}

// activities returns "name#seq/attempt=outcome" of ex's activity spans, sorted.
func (st *spanTree) activities(ex sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range st.children(ex, spanActivity) {
		out = append(out, fmt.Sprintf("%s#%s/%s=%s", attrOf(s, "stent.activity.name"), attrOf(s, "stent.seq"), attrOf(s, "stent.attempt"), attrOf(s, "stent.outcome")))
	}
	sort.Strings(out)
	return out
}

func wantList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func hasEvent(s sdktrace.ReadOnlySpan, name string) bool {
	for _, ev := range s.Events() {
		if ev.Name == name {
			return true
		}
	}
	return false
}

func TestTraceSpanTrees(t *testing.T) {
	for _, tb := range testBackends(t) {
		for _, mode := range cacheModes {
			t.Run(tb.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				testTraceSpanTrees(t, tb, mode.size)
			})
		}
	}
}

func testTraceSpanTrees(t *testing.T, tb testBackend, cacheSize int) {
	var flaky atomic.Int32
	var sawSpan atomic.Bool
	scenarios := []struct {
		name  string
		src   string
		args  []any
		check func(t *testing.T, st *spanTree, id string)
	}{
		{"greeting", "", []any{[]string{"Alice", "Bob", "Charlie"}}, func(t *testing.T, st *spanTree, id string) {
			root := st.execution(id, st.one(spanDispatch, "stent.execution.id", id), "completed")
			for i := 1; i <= 3; i++ {
				st.execution(fmt.Sprintf("%s/%d", id, i), root, "completed")
			}
			if n := len(st.children(root, spanExecution)); n != 3 {
				t.Fatalf("root has %d child execution spans, want 3:\n%s", n, st)
			}
		}},
		{"fanout", "def main(xs):\n    return gather([start('upper', x) for x in xs])\n", []any{[]string{"a", "b", "c", "d"}}, func(t *testing.T, st *spanTree, id string) {
			root := st.execution(id, st.one(spanDispatch, "", ""), "completed")
			wantList(t, "activity spans", st.activities(root), "upper#1/1=completed", "upper#2/1=completed", "upper#3/1=completed", "upper#4/1=completed")
		}},
		{"retry", "def main():\n    return durable('flaky2', retry=retry_policy(max_attempts=3, initial_delay='10ms'))\n", nil, func(t *testing.T, st *spanTree, id string) {
			root := st.execution(id, st.one(spanDispatch, "", ""), "completed")
			wantList(t, "activity spans", st.activities(root), "flaky2#1/1=failed", "flaky2#1/2=failed", "flaky2#1/3=completed")
			first := st.children(root, spanActivity)[0]
			if got := attrOf(first, "stent.error.type"); got != "FlakyError" {
				t.Fatalf("failed attempt's error type = %q, want FlakyError", got)
			}
		}},
		{"child", "def child(x):\n    sleep('20ms')\n    return durable('upper', x)\n\ndef main():\n    return [durable(child, 'a'), durable('traced')]\n", nil, func(t *testing.T, st *spanTree, id string) {
			root := st.execution(id, st.one(spanDispatch, "", ""), "completed")
			child := st.execution(id+"/1", root, "completed")
			wantList(t, "child's activity spans", st.activities(child), "upper#2/1=completed")
			wantList(t, "root's activity spans", st.activities(root), "traced#2/1=completed")
			var scheduled, fired bool
			for _, wt := range st.children(child, spanWorkflowTask) {
				scheduled = scheduled || hasEvent(wt, "timer_scheduled")
				fired = fired || hasEvent(wt, "timer_fired")
			}
			if !scheduled || !fired {
				t.Fatalf("child's workflow tasks: timer_scheduled event %v, timer_fired event %v; want both", scheduled, fired)
			}
			if !sawSpan.Load() {
				t.Fatal("a Go activity found no span in its context")
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			flaky.Store(0)
			dir := t.TempDir()
			te := startTraced(t, dir, func(e *Engine) {
				registerBasics(e)
				_ = e.Register("flaky2", func(ctx context.Context) (string, error) {
					if flaky.Add(1) < 3 {
						return "", &activities.Error{Type: "FlakyError", Message: "not yet"}
					}
					return "ok", nil
				})
				_ = e.Register("traced", func(ctx context.Context) (bool, error) {
					sawSpan.Store(trace.SpanFromContext(ctx).SpanContext().IsValid())
					return true, nil
				})
			}, WorkerOptions{Concurrency: 8}, traceTestOptions(t, tb, cacheSize)...)
			script := filepath.Join("..", "..", "workflows", "greeting.star")
			if sc.src != "" {
				script = writeScript(t, dir, sc.src)
			}
			id, res := te.run(t, script, sc.args...)
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			te.stop()
			sc.check(t, newSpanTree(t, te.rec.Ended()), id)
		})
	}
}

func TestTraceCancelIsASpanEvent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	te := startTraced(t, dir, nil, WorkerOptions{})
	ctx := context.Background()
	id, err := te.eng.Dispatch(ctx, writeScript(t, dir, "def main():\n    return wait_signal('go')\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the signal wait", func() bool { return lastEventKind(t, te.eng, id) == backend.EventSignalWait })
	if err := te.eng.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	// The script sees the cancellation at its wait and ends cancelled.
	wctx, cancel := context.WithTimeout(ctx, runDeadline)
	defer cancel()
	if res, err := te.eng.WaitFor(wctx, id); res == nil || res.Status != backend.StatusCancelled {
		t.Fatalf("WaitFor after Cancel: %+v, %v", res, err)
	}
	te.stop()
	st := newSpanTree(t, te.rec.Ended())
	ex := st.execution(id, st.one(spanDispatch, "", ""), "cancelled")
	if !hasEvent(ex, "cancel_requested") {
		t.Fatalf("cancelled execution span has no cancel_requested event")
	}
	if !hasEvent(st.children(ex, spanWorkflowTask)[0], "signal_wait") {
		t.Fatal("the workflow task that waits has no signal_wait event")
	}
}

// flakyBackend stands for a worker's connection to the database; cutting it makes the
// worker look like a process that died: no heartbeat, no commit.
type flakyBackend struct {
	backend.Backend
	dead atomic.Bool
}

var errCut = errors.New("connection cut (simulated crash)")

func (f *flakyBackend) Heartbeat(ctx context.Context, id string) error {
	if f.dead.Load() {
		return errCut
	}
	return f.Backend.Heartbeat(ctx, id)
}

func (f *flakyBackend) ClaimTasks(ctx context.Context, r backend.ClaimRequest) ([]backend.Task, error) {
	if f.dead.Load() {
		return nil, errCut
	}
	return f.Backend.ClaimTasks(ctx, r)
}

func (f *flakyBackend) CompleteActivityTask(ctx context.Context, r backend.ActivityResult) error {
	if f.dead.Load() {
		return errCut
	}
	return f.Backend.CompleteActivityTask(ctx, r)
}

func (f *flakyBackend) ReleaseTask(ctx context.Context, ref backend.TaskRef, at time.Time) error {
	if f.dead.Load() {
		return backend.ErrLeaseLost
	}
	return f.Backend.ReleaseTask(ctx, ref, at)
}

func (f *flakyBackend) ReclaimTasks(ctx context.Context, grace time.Duration) (int, error) {
	if f.dead.Load() {
		return 0, errCut
	}
	return f.Backend.ReclaimTasks(ctx, grace)
}

func (f *flakyBackend) ExtendLeases(ctx context.Context, w string, refs []backend.TaskRef, lease time.Duration) ([]backend.TaskRef, error) {
	if f.dead.Load() {
		return nil, errCut
	}
	return f.Backend.ExtendLeases(ctx, w, refs, lease)
}

// traceTestOptions puts an engine on tb's store with the given cache size.
func traceTestOptions(t *testing.T, tb testBackend, cacheSize int) []Option {
	opts := []Option{WithCacheSize(cacheSize)}
	if tb.open != nil {
		opts = append(opts, WithBackend(tb.open(t)))
	}
	return opts
}

// TestTraceSurvivesAWorkerCrash runs four sequential steps; the first worker dies
// during step 3 and a second one, with its own tracer, finishes. What both exported
// forms one trace with each committed step's activity span once.
func TestTraceSurvivesAWorkerCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "stent.db")
	stepFn := func(block chan struct{}) func(ctx context.Context, i int) (int, error) {
		return func(ctx context.Context, i int) (int, error) {
			if i == 3 && block != nil {
				block <- struct{}{}
				<-ctx.Done() // hangs until its worker goes away
				return 0, ctx.Err()
			}
			return i * 10, nil
		}
	}
	inStep3 := make(chan struct{}, 1)
	b, err := store.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	cut := &flakyBackend{Backend: b}
	a := startTraced(t, dir, func(e *Engine) { _ = e.Register("step", stepFn(inStep3)) },
		WorkerOptions{ID: "worker-a", ShutdownTimeout: 50 * time.Millisecond}, WithBackend(cut))
	src := "def main():\n    return [durable('step', i) for i in [1, 2, 3, 4]]\n"
	id, err := a.eng.Dispatch(context.Background(), writeScript(t, dir, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-inStep3
	cut.dead.Store(true)
	exportedByA := a.rec.Ended() // what worker A had exported when it died

	bEng := startTraced(t, dir, func(e *Engine) { _ = e.Register("step", stepFn(nil)) },
		// Worker B takes worker A for dead after the grace. A short grace would let a
		// loaded machine take B itself for dead between two of its heartbeats, and run
		// one of its steps again (rightly: at least once).
		WorkerOptions{ID: "worker-b", HeartbeatInterval: 100 * time.Millisecond, DeadWorkerGrace: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := bEng.eng.WaitFor(ctx, id)
	if res == nil || res.Err() != nil {
		t.Fatalf("WaitFor after the crash: %v", err)
	}
	if string(res.Value) != "[10,20,30,40]" {
		t.Fatalf("result %s", res.Value)
	}
	bEng.stop()
	a.stop()

	st := newSpanTree(t, append(exportedByA, bEng.rec.Ended()...))
	t.Logf("span tree:\n%s", st)
	root := st.execution(id, st.one(spanDispatch, "", ""), "completed")
	checkCrashTrace(t, st, root)
	workers := map[string]bool{}
	replayed := false
	for _, s := range st.spans {
		if w := attrOf(s, "stent.worker.id"); w != "" {
			workers[w] = true
		}
		if s.Name() == spanWorkflowTask && attrOf(s, "stent.replay") == "true" {
			replayed = true
		}
	}
	if !workers["worker-a"] || !workers["worker-b"] {
		t.Fatalf("want spans of both workers, got %v:\n%s", workers, st)
	}
	if !replayed {
		t.Fatalf("worker B's first workflow task should be marked as a replay:\n%s", st)
	}
}

// checkCrashTrace checks the activity spans of TestTraceSurvivesAWorkerCrash's
// execution: each step completes in exactly one span; steps 1 and 2, completed by
// worker A and replayed by worker B, have no span of B's (a replayed step emits none);
// steps 3 and 4 complete on worker B, step 3 after the attempt that died with A (a
// crash is an attempt). Attempts are never assumed to be the first: a step of B's that
// runs again (a lease lost on a loaded machine: at least once) has its span too.
func checkCrashTrace(t *testing.T, st *spanTree, root sdktrace.ReadOnlySpan) {
	t.Helper()
	completed := map[string][]string{} // seq → workers
	for _, s := range st.children(root, spanActivity) {
		seq, worker := attrOf(s, "stent.seq"), attrOf(s, "stent.worker.id")
		if attrOf(s, "stent.outcome") == "completed" {
			completed[seq] = append(completed[seq], worker)
			if a, _ := strconv.Atoi(attrOf(s, "stent.attempt")); seq == "3" && a < 2 {
				t.Errorf("step 3 completed on attempt %d, want ≥ 2: the attempt that died with worker A counts\n%s", a, st)
			}
		}
		if (seq == "1" || seq == "2") && worker != "worker-a" {
			t.Errorf("step %s, replayed by %s, has a span of its own:\n%s", seq, worker, st)
		}
	}
	for seq, want := range map[string]string{"1": "worker-a", "2": "worker-a", "3": "worker-b", "4": "worker-b"} {
		got := completed[seq]
		// Worker A ran steps 1 and 2 alone: once each. Worker B's steps may have run
		// twice if B lost a lease, each run with its span; never on A.
		if len(got) == 0 || (want == "worker-a" && len(got) != 1) || slices.ContainsFunc(got, func(w string) bool { return w != want }) {
			t.Errorf("step %s completed in spans of %v, want %s's:\n%s", seq, got, want, st)
		}
	}
}

// TestTraceJoinsTheCallersTrace: Dispatch under a span of the caller puts the whole
// execution in the caller's trace.
func TestTraceJoinsTheCallersTrace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	te := startTraced(t, dir, registerBasics, WorkerOptions{})
	caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), caller)
	id, err := te.eng.Dispatch(ctx, writeScript(t, dir, "def main():\n    return durable('upper', 'x')\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := te.eng.WaitFor(context.Background(), id); res == nil || res.Err() != nil {
		t.Fatal(err)
	}
	te.stop()
	st := newSpanTree(t, te.rec.Ended())
	d := st.one(spanDispatch, "", "")
	if d.SpanContext().TraceID() != caller.TraceID() || d.Parent().SpanID() != caller.SpanID() {
		t.Fatalf("dispatch span is in trace %s under %s, want the caller's %s under %s", d.SpanContext().TraceID(), d.Parent().SpanID(), caller.TraceID(), caller.SpanID())
	}
}

// TestTraceOfAnUntracedDispatch: an execution dispatched by a process that does not
// trace is still one trace across the workers that do, rooted at its execution span.
func TestTraceOfAnUntracedDispatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	untraced, err := Open(context.Background(), filepath.Join(dir, "stent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer untraced.Close()
	id, err := untraced.Dispatch(context.Background(), writeScript(t, dir, "def c(x):\n    return durable('upper', x)\n\ndef main():\n    return [durable(c, 'a'), durable('upper', 'b')]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	te := startTraced(t, dir, registerBasics, WorkerOptions{})
	if res, err := te.eng.WaitFor(context.Background(), id); res == nil || res.Err() != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	te.stop()
	st := newSpanTree(t, te.rec.Ended())
	root := st.one(spanExecution, "stent.execution.id", id)
	if root.Parent().IsValid() {
		t.Fatalf("the execution span of an untraced dispatch should be a root span:\n%s", st)
	}
	child := st.execution(id+"/1", root, "completed")
	wantList(t, "child's activity spans", st.activities(child), "upper#1/1=completed")
	wantList(t, "root's activity spans", st.activities(root), "upper#2/1=completed")
}
