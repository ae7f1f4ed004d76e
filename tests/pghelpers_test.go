package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testPostgresURL returns STENT_TEST_POSTGRES. Unset: the test is skipped, or fails in
// CI where the variable is required. Set but unreachable: the test fails.
func testPostgresURL(t *testing.T) string {
	t.Helper()
	u := requiredEnv(t, "STENT_TEST_POSTGRES", "postgres://root@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL tests")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("STENT_TEST_POSTGRES is set but PostgreSQL does not answer: %v", err)
	}
	defer conn.Close(context.Background())
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("STENT_TEST_POSTGRES is set but PostgreSQL does not answer: %v", err)
	}
	return u
}

// pgDB is a fresh database created for one test and dropped (with every connection
// still open to it) when the test ends.
type pgDB struct {
	name  string
	admin string // DSN of STENT_TEST_POSTGRES, used to create, drop and inspect
	dsn   string // DSN of the fresh database
}

// newPostgresDB creates database stent_e2e_<random>. Register it before starting the
// processes that use it: cleanups run in reverse, so they are killed before the drop.
func newPostgresDB(t *testing.T) *pgDB {
	t.Helper()
	admin := testPostgresURL(t)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	db := &pgDB{name: "stent_e2e_" + hex.EncodeToString(rnd[:]), admin: admin}
	dsn, err := withDatabase(admin, db.name)
	if err != nil {
		t.Fatalf("STENT_TEST_POSTGRES: %v", err)
	}
	db.dsn = dsn
	pgExecAdmin(t, admin, "CREATE DATABASE "+pgx.Identifier{db.name}.Sanitize())
	// Generous: on a loaded machine a database a test filled takes a while to drop.
	t.Cleanup(func() { db.drop(t, 5*time.Minute) })
	return db
}

// drop drops the database (if it is still there), giving the drop timeout: it waits
// for a checkpoint, which takes a while after a big fill on a busy server.
func (db *pgDB) drop(t *testing.T, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.admin)
	if err != nil {
		t.Errorf("dropping database %s: %v", db.name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db.name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("dropping database %s: %v", db.name, err)
	}
}

// withDatabase returns dsn (a postgres:// URL or key=value string) naming another database.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil // the last setting of a key wins
}

// withParams adds query parameters to a postgres:// URL.
func withParams(t *testing.T, dsn string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// requiredEnv returns the environment variable name. Unset: the test is skipped (what
// says what is skipped), or fails in CI where the variable is required; example is a
// value it may take.
func requiredEnv(t *testing.T, name, example, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (e.g. %s)", name, example)
		}
		t.Skipf("%s not set (e.g. %s); skipping %s", name, example, what)
	}
	return v
}

// pgConnect connects to dsn for a statement or two, within 30 seconds; done closes it.
func pgConnect(t *testing.T, dsn string) (ctx context.Context, conn *pgx.Conn, done func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return ctx, conn, func() {
		conn.Close(context.Background())
		cancel()
	}
}

func pgExecAdmin(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx, conn, done := pgConnect(t, dsn)
	defer done()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pgQueryInt runs a query returning one integer.
func pgQueryInt(t *testing.T, dsn, sql string, args ...any) int64 {
	t.Helper()
	ctx, conn, done := pgConnect(t, dsn)
	defer done()
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitForListeners waits until n LISTEN connections of Stent are open on the database
// (their application_name is stent-listener): those workers are ready to be woken.
func (db *pgDB) waitForListeners(t *testing.T, n int, timeout time.Duration, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := pgQueryInt(t, db.admin, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND application_name LIKE 'stent-listener%'`, db.name)
		if got >= int64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d listener connections open on %s after %s\n%s", got, n, db.name, timeout, describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for a started process to end and returns its exit code; -1 if it
// does not end within timeout (it is then killed).
func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Errorf("waiting for %v: %v", cmd.Args, err)
			return -1
		}
		return 0
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return -1
	}
}

// stopWorker ends a worker process gracefully (SIGTERM) and fails the test unless it
// exits 0 within timeout without a panic or a data race on its stderr.
func stopWorker(t *testing.T, name string, cmd *exec.Cmd, stderr fmt.Stringer, timeout time.Duration) {
	t.Helper()
	// stderr is written by the process until it ends: read it only after waitExit.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		code := waitExit(t, cmd, timeout)
		t.Errorf("worker %s was no longer running at the end of the test (%v, exit %d); stderr:\n%s", name, err, code, tail(stderr.String(), 4000))
		return
	}
	if code := waitExit(t, cmd, timeout); code != 0 {
		t.Errorf("worker %s exited %d after SIGTERM (-1: did not stop within %s); stderr:\n%s", name, code, timeout, tail(stderr.String(), 4000))
	}
	if s := stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") {
		t.Errorf("worker %s reported a panic or a data race:\n%s", name, tail(s, 8000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func pgQuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pgStuck describes the executions of the database still running and their tasks, for
// a test that timed out waiting for them.
func pgStuck(t *testing.T, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Sprintf("(cannot inspect the database: %v)", err)
	}
	defer conn.Close(context.Background())
	var sb strings.Builder
	nowMS := time.Now().UnixMilli()
	rows, err := conn.Query(ctx, `SELECT e.id, e.status, e.version, t.id, t.kind, t.seq, t.status, coalesce(t.lease_owner, ''),
			coalesce(t.lease_expires_at, 0), t.run_at, t.attempt
		FROM executions e LEFT JOIN tasks t ON t.execution_id = e.id
		WHERE e.status NOT IN ('completed', 'failed', 'cancelled', 'timed_out')
		ORDER BY e.id, t.id LIMIT 50`)
	if err != nil {
		return fmt.Sprintf("(cannot inspect the database: %v)", err)
	}
	defer rows.Close()
	fmt.Fprintln(&sb, "executions not ended, and their tasks:")
	for rows.Next() {
		var (
			id, status, tkind, tstatus, owner string
			version                           int64
			tid, expires, runAt               *int64
			seq, attempt                      *int
		)
		var tk, ts *string
		if err := rows.Scan(&id, &status, &version, &tid, &tk, &seq, &ts, &owner, &expires, &runAt, &attempt); err != nil {
			return fmt.Sprintf("(cannot inspect the database: %v)", err)
		}
		if tid == nil {
			fmt.Fprintf(&sb, "  %s %s v%d: no task\n", id, status, version)
			continue
		}
		tkind, tstatus = *tk, *ts
		fmt.Fprintf(&sb, "  %s %s v%d: task %d %s seq=%d attempt=%d %s owner=%q lease_left=%dms run_at%+dms\n",
			id, status, version, *tid, tkind, *seq, *attempt, tstatus, owner, *expires-nowMS, *runAt-nowMS)
	}
	if err := rows.Err(); err != nil {
		fmt.Fprintf(&sb, "(%v)\n", err)
	}
	wrows, err := conn.Query(ctx, `SELECT id, heartbeat_at FROM workers ORDER BY id`)
	if err == nil {
		for wrows.Next() {
			var id string
			var hb int64
			if wrows.Scan(&id, &hb) == nil {
				fmt.Fprintf(&sb, "worker %s: last heartbeat %dms ago\n", id, nowMS-hb)
			}
		}
		wrows.Close()
	}
	// Sessions in a transaction or waiting for a lock: what may hold rows a claim skips.
	srows, err := conn.Query(ctx, `SELECT pid, application_name, state, coalesce(wait_event_type, ''),
			coalesce(extract(epoch FROM now() - xact_start)::int, -1), left(query, 120)
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND (state LIKE 'idle in transaction%' OR wait_event_type = 'Lock' OR now() - xact_start > interval '5 seconds')`)
	if err == nil {
		for srows.Next() {
			var (
				pid, age                  int
				app, state, wait, queryed string
			)
			if srows.Scan(&pid, &app, &state, &wait, &age, &queryed) == nil {
				fmt.Fprintf(&sb, "session %d %s: %s %s, in its transaction for %ds: %s\n", pid, app, state, wait, age, queryed)
			}
		}
		srows.Close()
	}
	return sb.String()
}
