package ui_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// Scripts the UI tests run. flow issues three steps (activity, timer, activity);
// wait blocks on a signal and then on the gate activity the test opens; flaky's
// activity fails (and dead-letters) until the test lets it succeed; bumpy's fails its
// first attempt and is retried.
var scripts = map[string]string{
	"flow.star": `
def main(name):
    a = durable("greet", name)
    sleep("20ms")
    b = durable("greet", name + "!")
    print("greeted " + name)
    return [a, b]
`,
	"wait.star": `
def main():
    v = wait_signal("approve")
    durable("gate")
    return v
`,
	"sleepy.star": `
def main():
    sleep("1h")
    return 1
`,
	"flaky.star": `
def main(x):
    return durable("flaky", x)
`,
	"bumpy.star": `
def main(x):
    return durable("bumpy", x, retry=retry_policy(max_attempts=3, initial_delay="50ms"))
`,
	"parent.star": `
def child(n):
    return durable("greet", str(n))

def main():
    return [durable(child, i) for i in range(2)]
`,
}

type fixture struct {
	eng     *stent.Engine
	srv     *httptest.Server
	dir     string
	healthy atomic.Bool   // flaky succeeds when set
	gate    chan struct{} // closed by the test to let gate() return
}

// newFixture opens an engine on a fresh SQLite file with a running worker and serves
// its web view.
func newFixture(t *testing.T, opts ui.Options) *fixture {
	t.Helper()
	return newFixtureOn(t, opts, nil)
}

// newFixtureOn is newFixture on the given backend (nil: a fresh SQLite file).
func newFixtureOn(t *testing.T, opts ui.Options, be backend.Backend) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), gate: make(chan struct{})}
	for name, src := range scripts {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engOpts := []stent.Option{stent.WithLogger(quiet)}
	if be != nil {
		engOpts = append(engOpts, stent.WithBackend(be))
	}
	eng, err := stent.Open(ctx, filepath.Join(f.dir, "stent.db"), engOpts...)
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	must(t, eng.Register("greet", func(_ context.Context, name string) (string, error) { return "Hello, " + name, nil }))
	must(t, eng.Register("flaky", func(_ context.Context, x string) (string, error) {
		if !f.healthy.Load() {
			return "", errors.New("upstream unavailable for " + x)
		}
		return "ok " + x, nil
	}))
	bumped := map[string]bool{}
	var bumpMu sync.Mutex
	must(t, eng.Register("bumpy", func(_ context.Context, x string) (string, error) {
		bumpMu.Lock()
		defer bumpMu.Unlock()
		if !bumped[x] {
			bumped[x] = true
			return "", errors.New("first attempt refused for " + x)
		}
		return "ok " + x, nil
	}))
	must(t, eng.Register("gate", func(ctx context.Context) error {
		select {
		case <-f.gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = eng.Serve(ctx, stent.WorkerOptions{Concurrency: 4, PollInterval: 50 * time.Millisecond})
	}()
	if err := eng.WaitUntilReady(ctx); err != nil {
		t.Fatal(err)
	}
	if opts.Poll == 0 {
		opts.Poll = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	h, err := ui.Handler(eng, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
		cancel()
		<-done
		_ = eng.Close()
	})
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dispatch starts script with args and returns the execution's ID.
func (f *fixture) dispatch(t *testing.T, script string, args []any, opts ...stent.DispatchOption) string {
	t.Helper()
	id, err := f.eng.Dispatch(context.Background(), filepath.Join(f.dir, script), args, opts...)
	if err != nil {
		t.Fatalf("dispatching %s: %v", script, err)
	}
	return id
}

// waitStatus waits (bounded) until the execution is in status want.
func (f *fixture) waitStatus(t *testing.T, id string, want backend.Status) *backend.Execution {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ex, err := f.eng.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Status == want {
			return ex
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s is %s after 30s, want %s", id, ex.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHistory waits until the execution's history has an event of kind.
func (f *fixture) waitHistory(t *testing.T, id string, kind backend.EventKind, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := f.eng.History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Kind == kind && (name == "" || ev.Name == name) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s has no %s %s event after 30s", id, kind, name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
