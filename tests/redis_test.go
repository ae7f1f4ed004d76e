package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	stentapi "github.com/stent-go/stent"
	stentredis "github.com/stent-go/stent/backend/redis"
)

// testRedisURL returns STENT_TEST_REDIS. Unset: the test is skipped, or fails in CI
// where the variable is required. Set but unreachable: the test fails.
func testRedisURL(t *testing.T) string {
	t.Helper()
	u := requiredEnv(t, "STENT_TEST_REDIS", "redis://127.0.0.1:6379/0", "Redis tests")
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatalf("STENT_TEST_REDIS: %v", err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("STENT_TEST_REDIS=%s is set but Redis does not answer: %v", u, err)
	}
	return u
}

// redisServer is a private redis-server child process on a free port, which a test may
// kill and restart without disturbing other tests.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server must be on PATH in CI: this test stops and restarts a private Redis")
		}
		t.Skip("redis-server not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &redisServer{t: t, port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", fmt.Sprint(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redis-server did not start on port %d", s.port)
}

// kill stops the server at once (SIGKILL: no goodbye to the clients).
func (s *redisServer) kill() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// subscribers counts the connections subscribed to the engine's task channel.
func subscribers(t *testing.T, url string) int64 {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	m, err := c.PubSubNumSub(context.Background(), "stent:task").Result()
	if err != nil {
		return -1
	}
	return m["stent:task"]
}

func quietEngineLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// roundTrips dispatches script n times one after the other and returns how long each
// took from dispatch to result.
func roundTrips(t *testing.T, eng *stentapi.Engine, script string, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	var slowest string
	var worst time.Duration
	var starts = map[string]time.Time{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		id, err := eng.Dispatch(ctx, script, nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if _, err := eng.WaitFor(ctx, id); err != nil {
			cancel()
			t.Fatalf("execution %s: %v", id, err)
		}
		cancel()
		d := time.Since(start)
		out = append(out, d)
		starts[id] = start
		if d > worst {
			worst, slowest = d, id
		}
	}
	// Where the slowest one spent its time, should the test fail.
	if evs, err := eng.History(context.Background(), slowest); err == nil {
		var sb strings.Builder
		for _, ev := range evs {
			fmt.Fprintf(&sb, " %s@+%s", ev.Kind, ev.At.Sub(starts[slowest]).Round(100*time.Microsecond))
		}
		t.Logf("slowest (%s): dispatched@0%s, result@+%s", slowest, sb.String(), worst.Round(100*time.Microsecond))
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Microsecond)
	}
	return out
}

const oneStep = `
def main():
    return durable("work", "ping")
`

// A worker in another process polls only once an hour, yet picks up every dispatch:
// the dispatching process tells it through Redis, and it tells the waiter back. Each
// round trip must end within its 30s deadline, which polling could not do; the
// latencies are logged, not asserted (a busy machine may slow them).
func TestRedisWakesWorkerInAnotherProcess(t *testing.T) {
	url := testRedisURL(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), oneStep, 0o644)
	db := filepath.Join(dir, "stent.db")

	worker, _, errb := startStent(t, dir, nil, "worker", "--poll", "1h", "--redis", url, "--db", db, "--activity", "work=/bin/cat")

	ctx := context.Background()
	eng, err := stentapi.Open(ctx, db, stentapi.WithRedis(url), stentapi.WithLogger(quietEngineLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	script := filepath.Join(dir, "flow.star")

	// Warm up: the worker's first claim may have happened before the dispatch, and
	// subscriptions start on first use. A loaded machine may take minutes to start the
	// worker process and run its first task.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	id, err := eng.Dispatch(wctx, script, nil)
	if err == nil {
		var res *stentapi.Result
		if res, err = eng.WaitFor(wctx, id); err == nil {
			var got []any
			if err = res.Decode(&got); err == nil && (len(got) != 1 || got[0] != "ping") {
				err = fmt.Errorf("result %s, want [\"ping\"]", res.Value)
			}
		}
	}
	cancel()
	if err != nil {
		_ = worker.Process.Kill()
		_ = worker.Wait()
		t.Fatalf("warm-up execution: %v\nworker stderr:\n%s", err, errb)
	}

	lat := roundTrips(t, eng, script, 10)
	t.Logf("dispatch→result (worker polls every hour): median %s, all %v", median(lat).Round(100*time.Microsecond), roundAll(lat))
}

// stepSh is a slow command activity: it echoes its argument after 0.2s.
const stepSh = `#!/bin/sh
n=$(cat | tr -d '[] \n')
sleep 0.2
echo "$n"
`

const threeSteps = `
def main(n):
    out = []
    for i in range(3):
        out.append(durable("step", n * 10 + i))
    return out
`

const noSteps = `
def main():
    return "done"
`

// Killing Redis in the middle of a run loses nothing: the workers fall back to polling,
// and once Redis is back the notifiers reconnect and wake-ups are fast again.
func TestRedisKilledMidRunLosesNothing(t *testing.T) {
	t.Parallel()
	testRedisURL(t) // Redis tests are on
	srv := startRedisServer(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), threeSteps, 0o644)
	writeFile(t, filepath.Join(dir, "quick.star"), noSteps, 0o644)
	writeFile(t, filepath.Join(dir, "step.sh"), stepSh, 0o755)
	db := filepath.Join(dir, "stent.db")

	worker, _, errb := startStent(t, dir, nil, "worker", "--poll", "200ms", "--redis", srv.url(), "--db", db,
		"--activity", "step=./step.sh", "--concurrency", "32")
	dumpWorker := func() string {
		_ = worker.Process.Kill()
		_ = worker.Wait()
		return errb.String()
	}

	ctx := context.Background()
	eng, err := stentapi.Open(ctx, db, stentapi.WithRedis(srv.url()), stentapi.WithLogger(quietEngineLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	flow := filepath.Join(dir, "flow.star")

	// The first dispatch waits for the worker to be up.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := eng.Run(wctx, filepath.Join(dir, "quick.star"), nil); err != nil {
		t.Fatalf("warm-up: %v\nworker stderr:\n%s", err, dumpWorker())
	}

	var ids []string
	var slowestDispatch time.Duration
	for i := range 20 {
		if i == 10 {
			// Halfway: the first ten are running their steps.
			time.Sleep(300 * time.Millisecond)
			srv.kill()
			t.Log("redis-server killed")
		}
		start := time.Now()
		id, err := eng.Dispatch(ctx, flow, []any{i})
		if err != nil {
			t.Fatalf("dispatch %d: %v", i, err)
		}
		// Publish never waits for Redis; what a dispatch may wait for is the SQLite
		// file, which the busy worker process writes too.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("dispatch %d took %s with Redis down", i, d)
		} else if d > slowestDispatch {
			slowestDispatch = d
		}
		ids = append(ids, id)
	}
	t.Logf("slowest dispatch: %s", slowestDispatch.Round(time.Millisecond))

	waitAll := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, 90*time.Second)
	defer rcancel()
	for i, id := range ids {
		res, err := eng.WaitFor(rctx, id)
		if err != nil {
			t.Fatalf("execution %d (%s): %v\nworker stderr:\n%s", i, id, err, dumpWorker())
		}
		var got []int
		if err := res.Decode(&got); err != nil {
			t.Fatalf("execution %d: %v", i, err)
		}
		if want := []int{i * 10, i*10 + 1, i*10 + 2}; !slices.Equal(got, want) {
			t.Errorf("execution %d returned %v, want %v", i, got, want)
		}
	}
	t.Logf("all 20 executions completed %s after the last dispatch, with Redis down", time.Since(waitAll).Round(time.Millisecond))

	// Redis comes back on the same port: both processes subscribe again by themselves.
	srv.start()
	back := time.Now()
	for subscribers(t, srv.url()) < 2 {
		if time.Since(back) > 3*time.Minute {
			t.Fatalf("after Redis restarted, %d of 2 processes subscribed again within 3 minutes\nworker stderr:\n%s",
				max(subscribers(t, srv.url()), 0), dumpWorker())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("both notifiers resubscribed %s after Redis restarted", time.Since(back).Round(time.Millisecond))

	// Both processes subscribed again (checked above); executions run on. Latencies
	// are logged, not asserted: a busy machine may slow them.
	lat := roundTrips(t, eng, filepath.Join(dir, "quick.star"), 10)
	t.Logf("dispatch→result after the restart: median %s, all %v", median(lat).Round(100*time.Microsecond), roundAll(lat))
	if out := dumpWorker(); strings.Contains(out, "panic") {
		t.Errorf("worker panicked:\n%s", out)
	}
}

// With PostgreSQL, Redis carries the end of an execution only when someone awaits it
// (as LISTEN/NOTIFY does): an execution dispatched and not waited for ends without a
// message, and one a WaitFor in another engine awaits ends with one.
func TestRedisAnnouncesOnlyAwaitedEnds(t *testing.T) {
	url := testRedisURL(t)
	db := newPostgresDB(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "quiet.star"), noSteps, 0o644)
	writeFile(t, filepath.Join(dir, "awaited.star"), "def main():\n    return wait_signal(\"go\")\n", 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opts)
	defer rc.Close()
	sub := rc.Subscribe(ctx, stentredis.DefaultPrefix+"finished")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}

	serving, err := stentapi.Open(ctx, db.dsn, stentapi.WithRedis(url), stentapi.WithLogger(quietEngineLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer serving.Close()
	wctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serving.Serve(wctx, stentapi.WorkerOptions{}) }()
	defer func() {
		stop()
		<-served
	}()

	quiet, err := serving.Dispatch(ctx, filepath.Join(dir, "quiet.star"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		ex, err := serving.Get(ctx, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Status == "completed" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not complete: %s", quiet, ex.Status)
		case <-time.After(20 * time.Millisecond):
		}
	}

	awaited, err := serving.Dispatch(ctx, filepath.Join(dir, "awaited.star"), nil)
	if err != nil {
		t.Fatal(err)
	}
	waiter, err := stentapi.Open(ctx, db.dsn, stentapi.WithRedis(url), stentapi.WithLogger(quietEngineLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	waited := make(chan error, 1)
	go func() {
		_, err := waiter.WaitFor(ctx, awaited)
		waited <- err
	}()
	for n := int64(0); n == 0; {
		n = pgQueryInt(t, db.dsn, "SELECT count(*) FROM executions WHERE id = '"+awaited+"' AND awaited")
		if n == 0 {
			select {
			case <-ctx.Done():
				t.Fatal("the WaitFor did not mark the execution awaited")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if err := serving.Signal(ctx, awaited, "go", "now"); err != nil {
		t.Fatal(err)
	}
	// Messages arrive in the order they were published: everything before the awaited
	// execution's end, which came after the quiet one's.
	for found := false; !found; {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("no message naming %s: %v", awaited, err)
		}
		for _, id := range strings.Split(msg.Payload, "\n") {
			switch id {
			case quiet:
				t.Errorf("Redis announced the end of %s, which no one awaited", quiet)
			case awaited:
				found = true
			}
		}
	}
	if err := <-waited; err != nil {
		t.Fatalf("WaitFor(%s): %v", awaited, err)
	}
}
