//go:build linux

package tests

// A full disk under SQLite (issue 28): the database file lives on a small tmpfs that a
// filler file fills while a worker runs workflows. The worker must say once what
// happened and what to do, back off instead of spinning, corrupt nothing, and finish
// every workflow, each step recorded once, when the filler is deleted.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	stentapi "github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/sqlite"
)

const diskFullFlow = `
def main(i):
    out = []
    for j in range(4):
        out.append(len(durable("fill", i * 10 + j)))
    return out
`

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts it when the
// test ends. Outside CI a failing mount (not root, no mount namespace) skips the test.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mounting a tmpfs on %s: %v: %s", dir, err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI must run this test: run it as root)")
		}
		t.Skip(msg + " (the full-disk test needs root)")
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", dir, err, bytes.TrimSpace(out))
		}
	})
	return dir
}

// fillDisk writes path until the file system says it is full, and returns how much it
// wrote.
func fillDisk(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	for _, chunk := range []int{1 << 20, 4096, 512} {
		buf := make([]byte, chunk)
		for {
			m, err := f.Write(buf)
			n += int64(m)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("filling the disk: %v", err)
			}
		}
	}
	return n
}

// writeCounter is the SQLite backend counting the writes a worker retries during an
// outage (claims and activity outcomes) and those that failed. Embedding keeps every
// optional extension of the backend.
type writeCounter struct {
	*sqlite.Backend
	writes, failed atomic.Int64
}

func (c *writeCounter) count(err error) error {
	c.writes.Add(1)
	if err != nil {
		c.failed.Add(1)
	}
	return err
}

func (c *writeCounter) ClaimTasks(ctx context.Context, req backend.ClaimRequest) ([]backend.Task, error) {
	tasks, err := c.Backend.ClaimTasks(ctx, req)
	return tasks, c.count(err)
}

func (c *writeCounter) CompleteActivityTask(ctx context.Context, r backend.ActivityResult) error {
	return c.count(c.Backend.CompleteActivityTask(ctx, r))
}

func (c *writeCounter) CompleteActivityTaskAndClaim(ctx context.Context, r backend.ActivityResult, claim backend.ClaimRequest) (*backend.Task, error) {
	t, err := c.Backend.CompleteActivityTaskAndClaim(ctx, r, claim)
	return t, c.count(err)
}

func (c *writeCounter) CompleteActivityAndStep(ctx context.Context, r backend.ActivityResult, step backend.WorkflowTaskResult, claim backend.ClaimRequest) (backend.StepCommit, error) {
	sc, err := c.Backend.CompleteActivityAndStep(ctx, r, step, claim)
	return sc, c.count(err)
}

// logCapture keeps every log line (text format).
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.buf.String()), "\n")
}

func (l *logCapture) count(sub string) int {
	n := 0
	for _, line := range l.lines() {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// attemptBound is how many times, at most, one operation retried with a backoff
// doubling from first up to max runs within d.
func attemptBound(d, first, max time.Duration) int64 {
	n, wait := int64(1), first
	for spent := time.Duration(0); spent <= d; n++ {
		spent += wait
		wait = min(2*wait, max)
	}
	return n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestSQLiteDiskFull(t *testing.T) {
	disk := mountTmpfs(t, 8<<20)
	dbPath := filepath.Join(disk, "stent.db")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), diskFullFlow, 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	counted := &writeCounter{Backend: sb}
	logs := &logCapture{}
	eng, err := stentapi.Open(ctx, dbPath, stentapi.WithBackend(counted),
		stentapi.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	// The activity returns 16 KiB; until the gate opens, every call waits at it.
	var (
		mu      sync.Mutex
		runs    = map[int]int{}
		waiting atomic.Int64
		gate    = make(chan struct{})
	)
	if err := eng.Register("fill", func(ctx context.Context, n int) (string, error) {
		mu.Lock()
		runs[n]++
		mu.Unlock()
		waiting.Add(1)
		defer waiting.Add(-1)
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return strings.Repeat("x", 16<<10), nil
	}); err != nil {
		t.Fatal(err)
	}
	const workflows, steps, concurrency = 12, 4, 8
	ids := dispatchMany(ctx, t, eng, filepath.Join(dir, "flow.star"), indexArgs(workflows))

	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- eng.Serve(serveCtx, stentapi.WorkerOptions{Concurrency: concurrency}) }()
	defer func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	// The worker runs eight activities; then the disk fills up under it.
	eventually(t, time.Minute, "the worker running 8 activities", func() bool { return waiting.Load() == concurrency })
	filler := filepath.Join(disk, "filler")
	filled := fillDisk(t, filler)
	writes0, failed0, cpu0, wall0 := counted.writes.Load(), counted.failed.Load(), cpuTime(), time.Now()
	close(gate)

	// The activities ended; recording their outcomes fails. The worker says so once and
	// keeps trying, with backoff, until each outcome failed six times or so.
	const full = "the disk holding " // + dbPath + " is full"
	eventually(t, time.Minute, "a log line saying the disk is full", func() bool { return logs.count(full+dbPath+" is full") > 0 })
	eventually(t, time.Minute, "writes failing on the full disk", func() bool { return counted.failed.Load()-failed0 >= 6*concurrency })
	writes, failed, cpu, wall := counted.writes.Load()-writes0, counted.failed.Load()-failed0, cpuTime()-cpu0, time.Since(wall0)
	warnings := logs.count("level=WARN") + logs.count("level=ERROR")
	t.Logf("outage of %s (%d bytes of filler): %d writes (%d failed), %s CPU, %d warning/error lines:\n%s",
		wall.Round(time.Millisecond), filled, writes, failed, cpu.Round(time.Millisecond), warnings, strings.Join(logs.lines(), "\n"))
	if n := logs.count(full); n != 1 {
		t.Errorf("%d log lines say the disk is full, want 1 for the outage", n)
	}
	if warnings > 2 {
		t.Errorf("%d warning/error lines during one outage, want at most 2", warnings)
	}
	// Backing off, an outcome is tried again after 100ms, 200ms, ... up to 2s, and a
	// claim after 50ms, ... up to 5s: however slow the machine, the attempts stay under
	// this bound (doubled: a write that fits in the pages left succeeds, and the next
	// step's backoff starts over), where a worker that spun would make thousands and
	// burn a core.
	if limit := 2 * (attemptBound(wall, 100*time.Millisecond, 2*time.Second)*concurrency + attemptBound(wall, 50*time.Millisecond, 5*time.Second)); failed > limit {
		t.Errorf("%d failed writes in %s (limit %d): the worker does not back off", failed, wall, limit)
	}
	if cpu > wall*3/4 {
		t.Errorf("%s of CPU over an outage of %s: the worker spins", cpu, wall)
	}

	// Space returns: everything completes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		res, err := eng.WaitFor(ctx, id)
		if err != nil {
			t.Fatalf("workflow %d (%s): %v\n%s", i, id, err, strings.Join(logs.lines(), "\n"))
		}
		var got []int
		if err := res.Decode(&got); err != nil || len(got) != steps {
			t.Fatalf("workflow %d (%s) returned %v (%v)", i, id, got, err)
		}
	}
	for i, id := range ids {
		completed, _ := stepCounts(ctx, t, eng, id)
		if len(completed) != steps {
			t.Errorf("execution %s: %d steps completed, want %d", id, len(completed), steps)
		}
		for seq, n := range completed {
			if n != 1 {
				t.Errorf("execution %s: step %d recorded %d times", id, seq, n)
			}
		}
		for j := range steps {
			mu.Lock()
			n := runs[i*10+j]
			mu.Unlock()
			if n != 1 {
				t.Errorf("execution %s: activity %d ran %d times", id, j, n)
			}
		}
	}
	stopServe()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	served <- nil
	if err := eng.Close(); err != nil {
		t.Errorf("closing the engine: %v", err)
	}

	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q %v", check, err)
	}
	_ = db.Close()
	if r := stentOn(t, dir, dbPath, "verify"); r.code != 0 {
		t.Errorf("stent verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
