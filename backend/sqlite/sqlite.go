// Package sqlite is Stent's embedded default backend: backend.Backend on a SQLite file
// (or a private in-memory database) through the pure-Go driver modernc.org/sqlite.
//
// All state changes of one *Backend go through a single writer connection, each in
// one BEGIN IMMEDIATE transaction; reads use a separate pool. File databases run in
// WAL mode with a busy timeout, so several processes (for example a `stent worker`
// and a `stent exec`) can share one file. ":memory:" gives a database private to the
// Backend, reads and writes sharing its one connection. The schema lives in embedded
// migration files (migrations/NNN_name.up.sql) applied by Migrate, which Open calls.
// Times are stored as unix milliseconds read from the configured backend.Clock, never
// from SQLite's own clock.
//
// Package sqlite imports package backend, the modernc.org/sqlite driver and the
// standard library, and no other Stent package; what it decides like the PostgreSQL
// store belongs in package backend.
//
// Once a write transaction has begun it runs to its end even if the caller's context
// is cancelled (the context only bounds the wait for the writer connection), so a
// cancelled caller never leaves a half-applied state change behind.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/stent-go/stent/backend"
)

//go:embed migrations/*.up.sql
var migrationFS embed.FS

// DefaultLease is the lease used when a ClaimRequest or ExtendLeases names none.
const DefaultLease = 5 * time.Minute

// busyTimeoutMS is how long a connection waits for another process's lock.
const busyTimeoutMS = 10000

// workerRetention is how long a silent worker's row is kept before ReclaimTasks
// deletes it.
const workerRetention = backend.WorkerRetention

type config struct {
	clock backend.Clock
}

// Option configures Open.
type Option func(*config)

// WithClock makes the backend read the current time from c (default
// backend.SystemClock{}); tests pass a fake clock to drive leases and timers.
func WithClock(c backend.Clock) Option {
	return func(cfg *config) {
		if c != nil {
			cfg.clock = c
		}
	}
}

// Backend is a backend.Backend on SQLite. Create it with Open.
type Backend struct {
	backend.MigrationLog
	clock  backend.Clock
	name   string  // the DSN as given, for error messages
	path   string  // the database file ("" in memory), for errors about its disk
	w      *sql.DB // pool of the single writer connection
	r      *sql.DB // readers; nil for in-memory databases, which read through the writer
	keep   *sql.DB // in-memory only: holds the database open for the Backend's lifetime
	memory bool

	// sem (capacity 1) guards the writer connection and everything below it.
	sem    chan struct{}
	wc     *sql.Conn // the writer connection, held for the Backend's lifetime
	wst    *stmts    // prepared on wc (writer and reader statements)
	closed bool

	rst       *stmts // reader statements prepared on r
	closeOnce sync.Once
	closeErr  error

	commits  atomic.Int64  // write transactions committed, for CommitCounter
	ckpt     *checkpointer // background WAL checkpoints (files only)
	ckptDone atomic.Int64  // commits checkpointed so far

	onReady atomic.Pointer[func(queue string)] // backend.ReadyReporter
}

var _ backend.Backend = (*Backend)(nil)

// Open opens (creating if needed) the SQLite database named by dsn and migrates it.
//
// dsn is a file path ("stent.db", "/var/lib/stent/stent.db"), optionally prefixed with
// "sqlite://" or "file:", or ":memory:" for a private in-memory database that lives
// until Close. Query parameters after '?' are passed to the driver (for example
// "_pragma=cache_size(-64000)").
func Open(ctx context.Context, dsn string, opts ...Option) (*Backend, error) {
	cfg := config{clock: backend.SystemClock{}}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	path, query, memory, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite %s: %w", dsn, err)
	}
	if !memory {
		if err := checkPath(path); err != nil {
			return nil, err
		}
	}
	// Two processes creating the same new file race for the switch to WAL and for the
	// first migration; SQLite answers the loser with SQLITE_BUSY at once, without its
	// busy handler, so the whole open is retried for as long as the busy timeout.
	var b *Backend
	err = retryBusy(ctx, func() error {
		b = &Backend{clock: cfg.clock, name: dsn, path: path, memory: memory, sem: make(chan struct{}, 1)}
		if err := b.open(ctx, path, query); err != nil {
			b.closeDBs()
			return fmt.Errorf("opening sqlite %s: %w", dsn, err)
		}
		if err := b.Migrate(ctx); err != nil {
			b.closeDBs()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// parseDSN splits a user DSN into a file path (or in-memory marker) and extra driver
// query parameters.
func parseDSN(dsn string) (path, query string, memory bool, err error) {
	s := strings.TrimSpace(dsn)
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		s = strings.TrimPrefix(s, "sqlite://")
	case strings.HasPrefix(s, "sqlite:"):
		s = strings.TrimPrefix(s, "sqlite:")
	case strings.HasPrefix(s, "file:"):
		s = strings.TrimPrefix(s, "file:")
		if strings.HasPrefix(s, "///") { // file:///abs/path
			s = strings.TrimPrefix(s, "//")
		} else if strings.HasPrefix(s, "//localhost/") {
			s = strings.TrimPrefix(s, "//localhost")
		}
	}
	var q url.Values
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s, query = s[:i], s[i+1:]
		var perr error
		if q, perr = url.ParseQuery(query); perr != nil {
			return "", "", false, fmt.Errorf("bad query parameters %q: %w", query, perr)
		}
	}
	if s == ":memory:" || q.Get("mode") == "memory" {
		// Only the driver's own (underscore) parameters make sense for the private
		// in-memory database.
		keep := url.Values{}
		for k, v := range q {
			if strings.HasPrefix(k, "_") {
				keep[k] = v
			}
		}
		return "", keep.Encode(), true, nil
	}
	if s == "" {
		return "", "", false, errors.New("empty database path (use a file path or :memory:)")
	}
	return s, query, false, nil
}

func (b *Backend) open(ctx context.Context, path, query string) error {
	common := "_busy_timeout=" + strconv.Itoa(busyTimeoutMS) + "&_pragma=temp_store(MEMORY)"
	extra := ""
	if query != "" {
		extra = "&" + query
	}
	var (
		wdsn, rdsn, cdsn string
		background       bool
	)
	if b.memory {
		// A named shared-cache in-memory database lives as long as one connection
		// to it is open; the random name keeps it private to this Backend. Reads and
		// writes all go through the one writer connection (so shared-cache table
		// locks never conflict); the idle keep connection only holds the database
		// open should the writer connection ever be replaced.
		name := "stent-mem-" + randomHex(12)
		base := "file:" + name + "?mode=memory&cache=shared&" + common
		wdsn = base + extra
		keep, err := sql.Open("sqlite", base)
		if err != nil {
			return err
		}
		b.keep = keep
		keep.SetMaxOpenConns(1)
		keep.SetMaxIdleConns(1)
		keep.SetConnMaxLifetime(0)
		keep.SetConnMaxIdleTime(0)
		if err := keep.PingContext(ctx); err != nil {
			return err
		}
	} else {
		// synchronous=NORMAL in WAL mode survives a process crash; a power loss may
		// lose the last commits. "?_synchronous=FULL" (stent --sqlite-sync full) syncs
		// every commit instead.
		sync := "&_synchronous=NORMAL"
		if q, err := url.ParseQuery(query); err == nil && (q.Has("_synchronous") || q.Has("_sync")) {
			sync = ""
		}
		// WAL checkpoints run in the background (checkpoint.go) unless the DSN sets
		// wal_autocheckpoint itself.
		auto := "&_pragma=wal_autocheckpoint(0)"
		if strings.Contains(query, "wal_autocheckpoint") {
			auto = ""
		}
		wdsn = path + "?" + common + "&_journal_mode=WAL" + sync + "&_pragma=journal_size_limit(67108864)" + auto + extra
		rdsn = path + "?" + common + "&_query_only=1" + extra
		cdsn = path + "?" + common + extra
		background = auto != ""
	}

	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return err
	}
	b.w = w
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		return err
	}
	if b.memory {
		return nil
	}
	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		return err
	}
	b.r = r
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(5 * time.Minute)
	if err := r.PingContext(ctx); err != nil {
		return err
	}
	if background {
		return b.startCheckpointer(ctx, cdsn)
	}
	return nil
}

func randomHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to the time.
		return strconv.FormatInt(time.Now().UnixNano(), 16)
	}
	return hex.EncodeToString(buf)
}

// Close closes the backend's connections. An in-memory database is gone afterwards.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.sem <- struct{}{}
		b.closed = true
		b.closeErr = b.closeDBs()
		<-b.sem
	})
	return b.closeErr
}

// closeDBs closes everything; the caller holds sem (or is Open, before sharing b).
func (b *Backend) closeDBs() error {
	var errs []error
	if b.ckpt != nil {
		errs = append(errs, b.ckpt.close())
		b.ckpt = nil
	}
	b.dropWriter(false)
	if b.rst != nil {
		// Left in place: readers racing with Close get "statement is closed".
		b.rst.close()
	}
	if b.r != nil {
		errs = append(errs, b.r.Close())
	}
	if b.w != nil {
		errs = append(errs, b.w.Close())
	}
	if b.keep != nil {
		errs = append(errs, b.keep.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing sqlite %s: %w", b.name, err)
	}
	return nil
}

// lock takes the writer connection, waiting at most until ctx ends.
func (b *Backend) lock(ctx context.Context) error {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if b.closed {
		<-b.sem
		return errors.New("backend is closed")
	}
	return nil
}

func (b *Backend) unlock() { <-b.sem }

// ensureWriter opens the writer connection if needed; with prepare it also prepares
// the statements (which needs the schema). The caller holds sem.
func (b *Backend) ensureWriter(ctx context.Context, prepareStmts bool) error {
	if b.wc == nil {
		wc, err := b.w.Conn(ctx)
		if err != nil {
			return err
		}
		b.wc = wc
	}
	if prepareStmts && b.wst == nil {
		st, err := prepare(ctx, b.wc, true)
		if err != nil {
			return fmt.Errorf("preparing statements: %w", err)
		}
		b.wst = st
	}
	return nil
}

// dropWriter lets go of the writer connection; with discard the pool closes it
// instead of reusing it (its transaction state is unknown). The caller holds sem.
func (b *Backend) dropWriter(discard bool) {
	if b.wst != nil {
		b.wst.close()
		b.wst = nil
	}
	if b.wc != nil {
		if discard {
			_ = b.wc.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = b.wc.Close()
		b.wc = nil
	}
}

// loadMigrations lists the embedded migration files (NNN_name.up.sql) in version order.
func loadMigrations() ([]backend.Migration, error) {
	return backend.LoadMigrations(migrationFS, "migrations")
}

// Migrate creates or upgrades the schema. The check and the changes run in one
// immediate transaction, so concurrent migrations from several processes apply each
// change once.
func (b *Backend) Migrate(ctx context.Context) error {
	if err := b.lock(ctx); err != nil {
		return fmt.Errorf("migrating sqlite %s: %w", b.name, err)
	}
	defer b.unlock()
	wctx := context.WithoutCancel(ctx)
	if err := b.ensureWriter(wctx, false); err != nil {
		return fmt.Errorf("migrating sqlite %s: %w", b.name, err)
	}
	if err := b.migrate(wctx); err != nil {
		b.rollback(wctx)
		return fmt.Errorf("migrating sqlite %s: %w", b.name, err)
	}
	if err := b.ensureWriter(wctx, true); err != nil {
		return fmt.Errorf("opening sqlite %s: %w", b.name, err)
	}
	if b.r != nil && b.rst == nil {
		st, err := prepare(ctx, b.r, false)
		if err != nil {
			return fmt.Errorf("opening sqlite %s: preparing statements: %w", b.name, err)
		}
		b.rst = st
	}
	return nil
}

// migrate applies the missing migrations on the writer connection; the caller holds
// sem and rolls back on error.
func (b *Backend) migrate(ctx context.Context) error {
	migs, err := loadMigrations()
	if err != nil {
		return err
	}
	c := b.wc
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return err
	}
	rows, err := c.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	applied, err := backend.ScanVersions(rows)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	var done []string
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		done = append(done, m.File)
		if _, err := c.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("applying %s: %w", m.File, err)
		}
		if _, err := c.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.File, b.clock.Now().UnixMilli()); err != nil {
			return fmt.Errorf("recording %s: %w", m.File, err)
		}
	}
	if _, err = c.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	b.Applied(done...)
	return nil
}

// rollback ends a failed transaction on the writer connection. If that fails for
// any reason but "no transaction", the connection is dropped. The caller holds sem.
func (b *Backend) rollback(ctx context.Context) {
	if b.wc == nil {
		return
	}
	_, err := b.wc.ExecContext(ctx, "ROLLBACK")
	if err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		b.dropWriter(true)
	}
}
