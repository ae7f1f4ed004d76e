package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/backendtest"
)

// openQuiet opens an engine on a fresh SQLite file of dir that logs nothing.
func openQuiet(t *testing.T, dir string, opts ...Option) *Engine {
	t.Helper()
	opts = append(opts, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	eng, err := Open(context.Background(), filepath.Join(dir, "stent.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// waitLine is the one thing execution id waits for, as `stent status` prints it.
func waitLine(t *testing.T, eng *Engine, id string) string {
	t.Helper()
	ex, err := eng.b.GetExecution(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	waits, err := eng.Waits(context.Background(), ex)
	if err != nil || len(waits) != 1 {
		t.Fatalf("Waits: %v %v, want one", waits, err)
	}
	return waits[0].String()
}

// deadPID is the pid of a process of this host that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("running true(1) to get the pid of an exited process: %v", err)
	}
	return cmd.Process.Pid
}

// holdFor records a worker with info and claims the execution's pending tasks for it
// for an hour, as a worker that then stopped without a word would leave them.
func holdFor(t *testing.T, eng *Engine, info backend.WorkerInfo) {
	t.Helper()
	ctx := context.Background()
	if err := eng.b.(backend.Routing).RecordWorker(ctx, info); err != nil {
		t.Fatal(err)
	}
	tasks, err := eng.b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: info.ID, Limit: 10, Lease: time.Hour})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("claiming for %s: %v %v, want one task", info.ID, tasks, err)
	}
}

var stoppedLine = regexp.MustCompile(`^its next step: worker ghost stopped heartbeating at \S+Z; its work is reclaimed at \S+Z$`)

// A worker of this host whose process is gone (SIGKILL) gives its work back as soon as
// another worker starts, however long its lease and the dead-worker grace; until then
// `stent status` says it stopped heartbeating.
func TestWorkOfAGoneProcessIsReclaimedAtOnce(t *testing.T) {
	dir := t.TempDir()
	eng := openQuiet(t, dir)
	if err := eng.Register("step", func(ctx context.Context) (int, error) { return 7, nil }); err != nil {
		t.Fatal(err)
	}
	id, err := eng.Dispatch(context.Background(), writeScript(t, dir, "def main():\n    return durable('step')\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	holdFor(t, eng, backend.WorkerInfo{ID: "ghost", Host: thisHost(), PID: deadPID(t)})

	if got := waitLine(t, eng, id); !stoppedLine.MatchString(got) {
		t.Fatalf("wait = %q, want the worker's stop and when its work is reclaimed", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { _ = eng.Serve(ctx, WorkerOptions{DeadWorkerGrace: time.Hour}) }()
	res, err := eng.WaitFor(ctx, id)
	if err != nil || res.Err() != nil {
		t.Fatalf("WaitFor: %v %v: the gone worker's lease was not reclaimed", err, res)
	}
}

// A silent worker of another host is not taken for dead before the grace: status says
// when it stopped heartbeating and when its work is reclaimed.
func TestStatusSaysWhenASilentWorkersWorkIsReclaimed(t *testing.T) {
	dir := t.TempDir()
	clock := backendtest.NewFakeClock(backendtest.Epoch)
	eng := openQuiet(t, dir, WithClock(clock))
	id, err := eng.Dispatch(context.Background(), writeScript(t, dir, "def main():\n    return 1\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	holdFor(t, eng, backend.WorkerInfo{ID: "far", Host: "elsewhere.invalid", PID: 1})
	if got := waitLine(t, eng, id); got != "its next step, running on worker far" {
		t.Fatalf("wait with a fresh heartbeat = %q, want it running on far", got)
	}
	clock.Advance(6 * time.Second)
	want := "its next step: worker far stopped heartbeating at 2030-01-02T03:04:05Z; its work is reclaimed at 2030-01-02T03:04:15Z"
	if got := waitLine(t, eng, id); got != want {
		t.Fatalf("wait 6s after the last heartbeat = %q, want %q", got, want)
	}
}

// Only a worker of this host whose process is gone is taken for dead at once: a live
// process (however silent), another host, or a row without a pid waits for the grace.
func TestGoneHereOnlyForAnExitedProcessOfThisHost(t *testing.T) {
	live := exec.Command("sleep", "600")
	if err := live.Start(); err != nil {
		t.Fatalf("starting sleep(1) for a live pid: %v", err)
	}
	defer func() { _ = live.Process.Kill(); _ = live.Wait() }()
	host := thisHost()
	for _, c := range []struct {
		name string
		info backend.WorkerInfo
		want bool
	}{
		{"exited process of this host", backend.WorkerInfo{Host: host, PID: deadPID(t)}, true},
		{"live process of this host", backend.WorkerInfo{Host: host, PID: live.Process.Pid}, false},
		{"this process", backend.WorkerInfo{Host: host, PID: os.Getpid()}, false},
		{"another host", backend.WorkerInfo{Host: "elsewhere.invalid", PID: deadPID(t)}, false},
		{"no host recorded", backend.WorkerInfo{PID: deadPID(t)}, false},
		{"no pid recorded", backend.WorkerInfo{Host: host}, false},
	} {
		if got := goneHere(c.info, host); got != c.want {
			t.Errorf("%s: goneHere = %v, want %v", c.name, got, c.want)
		}
	}
}
