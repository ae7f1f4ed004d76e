package tests

// Throwaway PostgreSQL 15 clusters for the failover test: a primary and a streaming
// standby on free ports in a temporary directory, run as the postgres OS user (initdb
// and pg_ctl refuse root).

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgBinDir holds initdb, pg_ctl, pg_basebackup and pg_waldump of PostgreSQL 15.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// pgCluster is one server: its data directory, log and port.
type pgCluster struct {
	name string
	data string
	log  string
	port int
}

// admin is a DSN of the cluster's stent database, for the test's own statements.
func (c *pgCluster) admin() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/stent?sslmode=disable&application_name=stent-test&connect_timeout=5", c.port)
}

// pgRoot is a temporary directory owned by the postgres OS user, removed (with every
// cluster in it stopped) when the test ends.
type pgRoot struct {
	dir      string
	clusters []*pgCluster
}

func newPgRoot(t *testing.T) *pgRoot {
	t.Helper()
	for _, tool := range []string{"initdb", "pg_ctl", "pg_basebackup", "pg_waldump"} {
		if _, err := os.Stat(filepath.Join(pgBinDir, tool)); err != nil {
			t.Fatalf("the failover test needs PostgreSQL 15's %s: %v", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "stent-failover-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, the clusters need the postgres OS user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	r := &pgRoot{dir: dir}
	t.Cleanup(func() {
		for _, c := range r.clusters {
			_, _ = r.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
		}
		_ = os.RemoveAll(dir)
	})
	return r
}

// run runs a PostgreSQL tool, as the postgres OS user when the test runs as root.
func (r *pgRoot) run(tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(pgBinDir, tool)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (r *pgRoot) mustRun(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := r.run(tool, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// freeTCPPort returns a TCP port of 127.0.0.1 nothing listens on now.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// appendConf appends settings to a configuration file of a cluster (the file is the
// postgres user's; the test, root or that user, may write it).
func appendConf(t *testing.T, file string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

// newPrimary initdbs and starts a primary, replicating asynchronously until
// makeSynchronous, and creates the database stent.
func (r *pgRoot) newPrimary(t *testing.T) *pgCluster {
	t.Helper()
	c := &pgCluster{name: "primary", data: filepath.Join(r.dir, "primary"), log: filepath.Join(r.dir, "primary.log"), port: freeTCPPort(t)}
	r.mustRun(t, "initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	appendConf(t, filepath.Join(c.data, "postgresql.conf"),
		fmt.Sprintf("port = %d", c.port),
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("unix_socket_directories = '%s'", r.dir),
		"max_connections = 200",
		"wal_level = replica",
		"max_wal_senders = 4",
		"hot_standby = on",
		"synchronous_commit = on",
		// A process kill loses no page cache (the machine does not fail): the WAL that
		// matters is what the standby received, not what reached this disk.
		"fsync = off",
	)
	r.start(t, c)
	pgExecAdmin(t, strings.Replace(c.admin(), "/stent?", "/postgres?", 1), "CREATE DATABASE stent")
	return c
}

// newStandby clones primary with pg_basebackup -R and starts it as a streaming
// standby named standby1 (its walreceiver's application_name is the cluster_name). With
// via (host:port, a proxy to the primary), the standby streams through it.
func (r *pgRoot) newStandby(t *testing.T, primary *pgCluster, via string) *pgCluster {
	t.Helper()
	c := &pgCluster{name: "standby1", data: filepath.Join(r.dir, "standby"), log: filepath.Join(r.dir, "standby.log"), port: freeTCPPort(t)}
	r.mustRun(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", c.data, "-R", "-X", "stream", "--no-sync")
	appendConf(t, filepath.Join(c.data, "postgresql.auto.conf"),
		fmt.Sprintf("port = %d", c.port), "cluster_name = 'standby1'")
	if via != "" {
		host, port, err := net.SplitHostPort(via)
		if err != nil {
			t.Fatal(err)
		}
		appendConf(t, filepath.Join(c.data, "postgresql.auto.conf"),
			fmt.Sprintf("primary_conninfo = 'host=%s port=%s user=postgres application_name=standby1'", host, port))
	}
	r.start(t, c)
	deadline := time.Now().Add(time.Minute)
	for pgQueryInt(t, primary.admin(), `SELECT count(*) FROM pg_stat_replication
			WHERE application_name = 'standby1' AND state = 'streaming'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the standby does not stream after a minute; its log:\n%s", readTail(c.log))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// makeSynchronous makes every commit of primary wait for the flush of standby1 and
// waits until the standby is synchronous.
func makeSynchronous(t *testing.T, primary *pgCluster) {
	t.Helper()
	pgExecAdmin(t, primary.admin(), `ALTER SYSTEM SET synchronous_standby_names = 'standby1'`)
	pgExecAdmin(t, primary.admin(), `SELECT pg_reload_conf()`)
	deadline := time.Now().Add(time.Minute)
	for pgQueryInt(t, primary.admin(), `SELECT count(*) FROM pg_stat_replication
			WHERE application_name = 'standby1' AND sync_state = 'sync'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the standby is not synchronous a minute after synchronous_standby_names named it")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *pgRoot) start(t *testing.T, c *pgCluster) {
	t.Helper()
	r.clusters = append(r.clusters, c)
	if _, err := r.run("pg_ctl", "-D", c.data, "-l", c.log, "-w", "-t", "60", "start"); err != nil {
		t.Fatalf("%v\nserver log:\n%s", err, readTail(c.log))
	}
}

// kill ends the cluster's postmaster with SIGKILL, then its children (a postmaster's
// backends outlive it until they notice), as if its machine had gone; it returns once
// the port refuses connections.
func (r *pgRoot) kill(t *testing.T, c *pgCluster) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	children := childrenOf(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	for _, p := range children {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.port), time.Second)
		if err != nil {
			return
		}
		_ = conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("port %d still answers 30s after kill -9 of %d", c.port, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(s[end+1:]) // state, ppid, ...
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			if child, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				out = append(out, child)
			}
		}
	}
	return out
}

// promote makes the standby a primary and waits until it accepts writes.
func (r *pgRoot) promote(t *testing.T, c *pgCluster) {
	t.Helper()
	if _, err := r.run("pg_ctl", "-D", c.data, "-w", "-t", "60", "promote"); err != nil {
		t.Fatalf("%v\nserver log:\n%s", err, readTail(c.log))
	}
}

// commitsAfter counts the commit records of the WAL in the data directory of a
// stopped cluster from lsn on: what it acknowledged and no standby received.
func (r *pgRoot) commitsAfter(t *testing.T, c *pgCluster, lsn string) int {
	t.Helper()
	out, _ := r.run("pg_waldump", "-p", filepath.Join(c.data, "pg_wal"), "-s", lsn, "-r", "Transaction")
	// pg_waldump exits 1 at the end of the WAL ("invalid record length"): expected.
	return strings.Count(out, "desc: COMMIT")
}

// readTail is the end of a server log, for a failure message.
func readTail(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return tail(string(b), 4000)
}

// maxEventID polls conn for the newest event's id (0 when there are none).
func maxEventID(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var id int64
	err := conn.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&id)
	return id, err
}
