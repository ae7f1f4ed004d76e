package tests

// Stent behind PgBouncer in transaction mode (issue 28, item 4): --db names PgBouncer,
// with default_query_exec_mode=exec (no prepared statements, which PgBouncer before
// 1.21 cannot pool), and --listen-dsn a direct connection for LISTEN.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	stentapi "github.com/stent-go/stent"
)

// pgbouncerPath finds Debian's pgbouncer: skipped without it, failed in CI.
func pgbouncerPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"pgbouncer", "/usr/sbin/pgbouncer"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("pgbouncer is required in CI (apt-get install pgbouncer)")
	}
	t.Skip("pgbouncer not installed; skipping the PgBouncer test")
	return ""
}

// startPgBouncer runs PgBouncer in transaction mode on a free port, in front of the
// server of STENT_TEST_POSTGRES (every database, trusted), and returns its address.
func startPgBouncer(t *testing.T, bin, pgHost string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	host, pgPort, err := net.SplitHostPort(pgHost)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "stent-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// PgBouncer refuses to run as root; started as root it drops to -u's user, which
	// must read the configuration.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	userlist := filepath.Join(dir, "userlist.txt")
	writeFile(t, userlist, "\"root\" \"\"\n\"postgres\" \"\"\n", 0o644)
	ini := filepath.Join(dir, "pgbouncer.ini")
	writeFile(t, ini, fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
`, host, pgPort, port, userlist), 0o644)
	args := []string{ini}
	if os.Geteuid() == 0 {
		args = []string{"-u", "nobody", ini}
	}
	cmd := exec.Command(bin, args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer does not accept connections on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPostgresBehindPgBouncer(t *testing.T) {
	t.Parallel()
	bin := pgbouncerPath(t)
	db := newPostgresDB(t)
	bouncer := startPgBouncer(t, bin, hostOf(t, db.dsn))
	pooled := withParams(t, viaHost(t, db.dsn, bouncer), "default_query_exec_mode", "exec")

	const workflows = 50
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), pgFiveSteps, 0o644)
	writeFile(t, filepath.Join(dir, "step.sh"), faultStepSh, 0o755)
	logFile := filepath.Join(dir, "effects.log")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng, err := stentapi.Open(ctx, withParams(t, pooled, "pool_max_conns", "4"),
		stentapi.WithListenDSN(db.dsn), stentapi.WithLogger(pgQuietLogger()))
	if err != nil {
		t.Fatalf("opening an engine through PgBouncer: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	ids := dispatchMany(ctx, t, eng, filepath.Join(dir, "flow.star"), indexArgs(workflows))

	ws := startPgWorkers(t, dir, withParams(t, pooled, "pool_max_conns", "8"), logFile, 1,
		"--listen-dsn", db.dsn, "--activity", "step=./step.sh", "--concurrency", "16")
	// The worker's LISTEN connection goes straight to the server.
	db.waitForListeners(t, 1, 2*time.Minute, func() string { return killAll(ws) })
	for i, id := range ids {
		res, err := eng.WaitFor(ctx, id)
		if err != nil {
			t.Fatalf("workflow %d (%s): %v\n%s\n%s", i, id, err, pgStuck(t, db.dsn), killAll(ws))
		}
		var got []int
		if err := res.Decode(&got); err != nil {
			t.Fatalf("workflow %d (%s): %v", i, id, err)
		}
		for j, v := range got {
			if want := (i*10 + j) * 2; v != want || len(got) != 5 {
				t.Fatalf("workflow %d (%s) returned %v", i, id, got)
			}
		}
	}
	checkEffects(ctx, t, eng, ids, logFile, 5)
	stopWorker(t, ws[0].name, ws[0].cmd, ws[0].stderr, 2*time.Minute)
	if r := stentOn(t, t.TempDir(), pooled, "verify"); r.code != 0 {
		t.Fatalf("stent verify through PgBouncer: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// hostOf returns the host:port of a postgres:// URL.
func hostOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
