package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
)

// cacheModes runs a test with the live-execution cache on and off, so both the live
// path and the replay path are proven.
var cacheModes = []struct {
	name string
	size int
}{{"cache", 4096}, {"replay", 0}}

type fixture struct {
	eng *Engine
	dir string
	db  string
}

func newFixture(t *testing.T, cacheSize int, register func(e *Engine)) *fixture {
	t.Helper()
	return newFixtureWith(t, filepath.Join(t.TempDir(), "stent.db"), register, WithCacheSize(cacheSize))
}

func newFixtureWith(t *testing.T, db string, register func(e *Engine), opts ...Option) *fixture {
	t.Helper()
	dir := filepath.Dir(db)
	eng, err := Open(context.Background(), db, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if register != nil {
		register(eng)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx, WorkerOptions{Concurrency: 8, PollInterval: 50 * time.Millisecond}) }()
	if err := eng.WaitUntilReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = eng.Close()
	})
	return &fixture{eng: eng, dir: dir, db: db}
}

func (f *fixture) script(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(f.dir, fmt.Sprintf("wf%d.star", time.Now().UnixNano()))
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runDeadline bounds a test's wait for an execution to end. It is generous: the
// machine may be loaded (make test-loaded), and a test asserts the outcome, not how
// long it took. A wake-up lost where the safety-net poll is an hour still fails it.
const runDeadline = 5 * time.Minute

func (f *fixture) run(t *testing.T, src string, args ...any) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	res, err := f.eng.Run(ctx, f.script(t, src), args)
	if res == nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func mustValue(t *testing.T, res *Result, want string) {
	t.Helper()
	if err := res.Err(); err != nil {
		t.Fatalf("execution failed: %v", err)
	}
	if string(res.Value) != want {
		t.Fatalf("result = %s, want %s", res.Value, want)
	}
}

func registerBasics(e *Engine) {
	_ = e.Register("upper", func(ctx context.Context, s string) (string, error) { return strings.ToUpper(s), nil })
	_ = e.Register("add", func(ctx context.Context, a, b int) (int, error) { return a + b, nil })
	_ = e.Register("boom", func(ctx context.Context, msg string) (string, error) { return "", errors.New(msg) })
}

func TestEngine(t *testing.T) {
	for _, tb := range testBackends(t) {
		for _, mode := range cacheModes {
			t.Run(tb.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				f := newFixtureOn(t, tb, mode.size, registerBasics)
				testEngine(t, f, tb.name+mode.name)
			})
		}
	}
}

func testEngine(t *testing.T, f *fixture, mode string) {
	t.Run("children", func(t *testing.T) {
		res := f.run(t, "def greet(n):\n    return 'Hello, ' + n + '!'\n\ndef main(names):\n    return [durable(greet, n) for n in names]\n", []string{"A", "B"})
		mustValue(t, res, `["Hello, A!","Hello, B!"]`)
		kids, err := f.eng.List(context.Background(), backend.ListFilter{ParentID: res.ID})
		if err != nil || len(kids) != 2 {
			t.Fatalf("want 2 child executions, got %d (%v)", len(kids), err)
		}
	})
	t.Run("activities in sequence", func(t *testing.T) {
		res := f.run(t, "def main(n):\n    total = 0\n    for i in range(n):\n        total = durable('add', total, i)\n    return {'total': total, 'up': durable('upper', 'x')}\n", 20)
		mustValue(t, res, `{"total":190,"up":"X"}`)
	})
	t.Run("fan out", func(t *testing.T) {
		res := f.run(t, "def main():\n    fs = [start('add', i, i) for i in range(10)]\n    return gather(fs)\n")
		mustValue(t, res, `[0,2,4,6,8,10,12,14,16,18]`)
	})
	t.Run("failure keeps the activity message", func(t *testing.T) {
		res := f.run(t, "def main():\n    durable('upper', 'ok')\n    return durable('boom', 'card declined')\n")
		err := res.Err()
		var ee *ExecutionError
		if !errors.As(err, &ee) {
			t.Fatalf("want *ExecutionError, got %v", err)
		}
		if !strings.Contains(ee.Info.Message, "card declined") || ee.Info.Activity != "boom" || !strings.Contains(ee.Info.Message, ".star:3:19") {
			t.Fatalf("error = %+v; want the activity's message, its name and the script position", ee.Info)
		}
	})
	t.Run("attempt", func(t *testing.T) {
		res := f.run(t, "def main():\n    r = attempt('boom', 'nope')\n    ok = attempt('upper', 'y')\n    return [r.ok, r.error.message, ok.ok, ok.value]\n")
		mustValue(t, res, `[false,"nope",true,"Y"]`)
	})
	t.Run("sleep", func(t *testing.T) {
		start := time.Now()
		res := f.run(t, "def main():\n    sleep('300ms')\n    return 'woke'\n")
		mustValue(t, res, `"woke"`)
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("slept only %s", d)
		}
	})
	t.Run("side effects are recorded once", func(t *testing.T) {
		res := f.run(t, "def main():\n    a = [uuid(), random(), str(now())]\n    sleep('50ms')\n    b = durable('upper', a[0])\n    return [a, b == a[0].upper()]\n")
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		var out []any
		_ = json.Unmarshal(res.Value, &out)
		if len(out) != 2 || out[1] != true {
			t.Fatalf("result = %s; want the recorded uuid to survive the sleep", res.Value)
		}
	})
	t.Run("logs are written once", func(t *testing.T) {
		res := f.run(t, "def main():\n    for i in range(3):\n        print('before', i)\n        durable('add', i, 1)\n    f = start('add', 1, 1)\n    print('between')\n    gather([f])\n    log('end')\n    return 1\n")
		mustValue(t, res, `1`)
		lines, err := f.eng.Backend().Logs(context.Background(), res.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range lines {
			got = append(got, l.Message)
		}
		if want := "before 0|before 1|before 2|between|end"; strings.Join(got, "|") != want {
			t.Fatalf("logs = %q, want %q", strings.Join(got, "|"), want)
		}
	})
	t.Run("dispatch with an ID is idempotent", func(t *testing.T) {
		p := f.script(t, "def main(x):\n    return durable('upper', x)\n")
		ctx := context.Background()
		id1, err := f.eng.Dispatch(ctx, p, []any{"a"}, ID("same-"+mode))
		if err != nil {
			t.Fatal(err)
		}
		id2, err := f.eng.Dispatch(ctx, p, []any{"a"}, ID("same-"+mode))
		if err != nil || id1 != id2 {
			t.Fatalf("second dispatch: id %q err %v; want the same id", id2, err)
		}
		if _, err := f.eng.Dispatch(ctx, p, []any{"b"}, ID("same-"+mode)); !errors.Is(err, ErrIDConflict) {
			t.Fatalf("dispatch with other arguments: %v; want ErrIDConflict", err)
		}
		res, _ := f.eng.WaitFor(ctx, id1)
		mustValue(t, res, `"A"`)
	})
}

func TestRetriesFollowThePolicy(t *testing.T) {
	for _, tb := range testBackends(t) {
		for _, mode := range cacheModes {
			t.Run(tb.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				var calls atomic.Int32
				f := newFixtureOn(t, tb, mode.size, func(e *Engine) {
					_ = e.Register("flaky", func(ctx context.Context) (string, error) {
						info, _ := activities.InfoFromContext(ctx)
						if calls.Add(1) < 3 {
							return "", fmt.Errorf("attempt %d failed", info.Attempt)
						}
						return fmt.Sprintf("ok on attempt %d", info.Attempt), nil
					})
				})
				res := f.run(t, "def main():\n    return durable('flaky', retry=retry_policy(max_attempts=3, initial_delay='20ms'))\n")
				mustValue(t, res, `"ok on attempt 3"`)
				calls.Store(0)
				res = f.run(t, "def main():\n    return durable('flaky', retry=retry_policy(max_attempts=2, initial_delay='20ms'))\n")
				if err := res.Err(); err == nil || !strings.Contains(err.Error(), "attempt 2 failed") {
					t.Fatalf("want the second attempt's failure, got %v", err)
				}
			})
		}
	}
}

func TestLiveRunsAreParked(t *testing.T) {
	block := make(chan struct{})
	f := newFixture(t, 16, func(e *Engine) {
		_ = e.Register("wait", func(ctx context.Context) (int, error) { <-block; return 1, nil })
	})
	ctx := context.Background()
	id, err := f.eng.Dispatch(ctx, f.script(t, "def main():\n    return durable('wait')\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(runDeadline)
	for f.eng.cache.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.eng.cache.Len() != 1 {
		t.Fatalf("want the waiting execution parked in the cache, cache has %d", f.eng.cache.Len())
	}
	close(block)
	res, _ := f.eng.WaitFor(ctx, id)
	mustValue(t, res, `1`)
	if f.eng.cache.Len() != 0 {
		t.Fatalf("a finished execution must leave the cache, it has %d", f.eng.cache.Len())
	}
}

// TestNonDeterminismFromTamperedHistory records history for another call than the
// script makes and checks that replay fails naming the line and both calls.
func TestNonDeterminismFromTamperedHistory(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "stent.db")
	script := filepath.Join(dir, "flow.star")
	if err := os.WriteFile(script, []byte("def main():\n    a = durable('upper', 'x')\n    sleep('200ms')\n    return a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eng, err := Open(ctx, dbPath, WithCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	registerBasics(eng)
	id, err := eng.Dispatch(ctx, script, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = eng.Close()

	// Pretend history recorded durable("add") at step 1.
	db, err := sql.Open("sqlite", dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	eng2, err := Open(ctx, dbPath, WithCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	registerBasics(eng2)
	serve := func() (stop func()) {
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = eng2.Serve(sctx, WorkerOptions{PollInterval: 20 * time.Millisecond})
		}()
		return func() { cancel(); <-done }
	}
	// Run until the timer is scheduled (step 1 done), stop the worker so that the timer
	// cannot fire meanwhile (however slow the machine), tamper with step 1, serve again.
	stop := serve()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		evs, _ := eng2.History(ctx, id)
		if len(evs) > 0 && evs[len(evs)-1].Kind == backend.EventTimerScheduled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the timer was not scheduled within 2 minutes; history: %v", evs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if _, err := db.Exec(`UPDATE events SET name = 'add' WHERE execution_id = ? AND seq = 1 AND kind = 'activity_scheduled'`, id); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	stop = serve()
	res, _ := eng2.WaitFor(ctx, id)
	stop()
	if res == nil || res.Failure == nil || res.Failure.Type != "nondeterminism" {
		t.Fatalf("want a nondeterminism failure, got %+v", res)
	}
	for _, want := range []string{"flow.star:2:", `durable("add"`, `durable("upper"`} {
		if !strings.Contains(res.Failure.Message, want) {
			t.Errorf("message %q does not mention %q", res.Failure.Message, want)
		}
	}
	_ = eng2.Close()
}

// TestHeartbeatTimeoutRetriesAHungActivity: a hung activity with heartbeat_timeout="2s"
// and timeout="1m" is retried after about 2 s, and the next attempt sees the last
// heartbeat details.
func TestHeartbeatTimeoutRetriesAHungActivity(t *testing.T) {
	t.Parallel()
	var firstStarted atomic.Int64
	var retriedAfter atomic.Int64
	f := newFixture(t, 4096, func(e *Engine) {
		_ = e.Register("hang", func(ctx context.Context) (string, error) {
			info, _ := activities.InfoFromContext(ctx)
			if info.Attempt == 1 {
				firstStarted.Store(time.Now().UnixNano())
				activities.Heartbeat(ctx, map[string]int{"done": 7})
				<-ctx.Done() // hangs (until the worker gives up on it)
				return "", ctx.Err()
			}
			retriedAfter.Store(time.Now().UnixNano() - firstStarted.Load())
			return "resumed from " + string(info.LastHeartbeat), nil
		})
	})
	res := f.run(t, "def main():\n    return durable('hang', heartbeat_timeout='2s', timeout='1m', retry=retry_policy(max_attempts=2, initial_delay='10ms'))\n")
	mustValue(t, res, `"resumed from {\"done\":7}"`)
	gap := time.Duration(retriedAfter.Load())
	if gap < 2*time.Second || gap > 5*time.Second {
		t.Fatalf("the second attempt started %s after the first; want about 2s (the heartbeat timeout), not the 1m timeout", gap)
	}
	t.Logf("retried %s after the hung attempt started", gap.Round(time.Millisecond))
}

func TestActivityBuiltinCarriesDefaults(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	f := newFixture(t, 4096, func(e *Engine) {
		_ = e.Register("flaky", func(ctx context.Context, x int) (int, error) {
			if calls.Add(1) < 2 {
				return 0, errors.New("transient")
			}
			return x * 2, nil
		})
	})
	res := f.run(t, "flaky = activity('flaky', retry=retry_policy(max_attempts=3, initial_delay='10ms'))\n\ndef main():\n    return [flaky(21), durable(flaky, 1)]\n")
	mustValue(t, res, `[42,2]`)
}
