// Package postgres is the PostgreSQL implementation of backend.Backend, built on pgx v5
// (pgxpool). It owns the Postgres schema (embedded migrations applied under an advisory
// lock), the SQL of every state change, and LISTEN/NOTIFY wake-ups (backend.Listener).
// It must not interpret scripts or run activities. It imports package backend, pgx and
// the standard library, and no other Stent package; what it decides like the SQLite
// store belongs in package backend.
//
//	b, err := postgres.Open(ctx, "postgres://user:pass@host:5432/db?sslmode=disable",
//		postgres.WithSchema("stent"), postgres.WithMaxConns(20))
//
// Concurrency: every state change is one transaction, most of them a single statement
// or one pipelined round trip. Transactions that touch an execution's events or tasks
// lock its executions row first (a finishing child locks its parent after itself), so
// appends to one history are serialized in commit order and the per-task row locks
// taken afterwards cannot deadlock. Operations that touch many task rows across
// executions (claiming, reclaiming, extending leases) skip rows that are locked
// instead of waiting for them.
//
// Wake-ups: after a transaction that made a task runnable commits, the queue name is
// sent on channel stent_tasks (and the ID of an ended execution someone awaits,
// AwaitExecution, on stent_finished; with
// WithSchema both names get the suffix ".schema"). Notifications are coalesced and
// sent by one goroutine per Backend (see notifier), never inside the state change.
//
// Tests run against the database named by STENT_TEST_POSTGRES, each in a schema of its
// own; without it they skip, except in CI (CI=true), where they fail.
package postgres

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stent-go/stent/backend"
)

// Base names of the notification channels. With WithSchema they are suffixed with
// "." and the schema name, so that several Stent schemas in one database do not wake
// each other's workers.
const (
	channelTasks    = "stent_tasks"
	channelFinished = "stent_finished"
)

const (
	defaultLease       = 5 * time.Minute
	defaultListLimit   = 100
	defaultMaxConns    = 10
	defaultAppName     = "stent"
	listenerAppName    = "stent-listener"
	maxIdentifierBytes = 63 // NAMEDATALEN-1
)

// Backend is a backend.Backend (and backend.Listener) stored in PostgreSQL.
type Backend struct {
	backend.MigrationLog
	pool   *pgxpool.Pool
	dsn    string // redacted, for error messages
	secret string // password of the DSN, scrubbed from every error we return

	listenCfg    *pgx.ConnConfig // Listen's connection: the pool's, or WithListenDSN's
	listenDSN    string          // redacted DSN of listenCfg
	listenSecret string
	clock        backend.Clock
	schema       string // "" : the server's default search_path

	tasksChannel    string
	finishedChannel string

	notes *notifier
	// steps is the group commit of sequential steps (groupcommit.go).
	steps stepGroup
	// onAnnounced are backend.AnnouncedEnds' hooks, replaced whole under announcedMu.
	onAnnounced atomic.Pointer[[]func(id string)]
	announcedMu sync.Mutex
	inc         incarnations // which server the pool's connections reach

	hbMu   sync.Mutex
	hbSent map[string]int64 // worker -> last heartbeat written by a claim (unix ms)

	closeOnce sync.Once
	closed    chan struct{}
	listenMu  sync.Mutex // orders listeners.Add against Close
	listeners sync.WaitGroup
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Listener = (*Backend)(nil)
	_ backend.HandOff  = (*Backend)(nil)
)

type config struct {
	clock     backend.Clock
	schema    string
	maxConns  int
	listenDSN string
	// poolHook, when set (by tests), adjusts the pool's configuration before the pool
	// is created.
	poolHook func(*pgxpool.Config)
}

// Option configures Open.
type Option func(*config)

// WithClock makes the backend read "now" from c instead of the wall clock.
func WithClock(c backend.Clock) Option {
	return func(cfg *config) { cfg.clock = c }
}

// WithSchema keeps every table in the named schema, created if missing. Each
// connection's search_path is set to it. Useful to isolate tests or tenants.
func WithSchema(name string) Option {
	return func(cfg *config) { cfg.schema = name }
}

// WithListenDSN makes Listen connect to listenDSN instead of the pool's DSN: a direct
// connection to the server when the pool's DSN names PgBouncer in transaction mode,
// where a LISTEN lasts only as long as the transaction it ran in. "" keeps the default.
func WithListenDSN(listenDSN string) Option {
	return func(cfg *config) { cfg.listenDSN = listenDSN }
}

// WithMaxConns bounds the connection pool (default 10, or pool_max_conns in the DSN;
// the listener uses one more connection of its own).
func WithMaxConns(n int) Option {
	return func(cfg *config) { cfg.maxConns = n }
}

// Open connects to the database named by dsn (a postgres:// URL or a key=value
// connection string), and creates or upgrades the schema.
func Open(ctx context.Context, dsn string, opts ...Option) (*Backend, error) {
	cfg := config{clock: backend.SystemClock{}}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = backend.SystemClock{}
	}
	b := &Backend{
		dsn:    RedactDSN(dsn),
		secret: dsnPassword(dsn),
		clock:  cfg.clock,
		schema: cfg.schema,
		closed: make(chan struct{}),
	}
	if cfg.schema != "" && len(cfg.schema) > maxIdentifierBytes {
		return nil, fmt.Errorf("postgres: schema name %q is longer than %d bytes", cfg.schema, maxIdentifierBytes)
	}
	b.tasksChannel = channelName(channelTasks, cfg.schema)
	b.finishedChannel = channelName(channelFinished, cfg.schema)

	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, b.scrub(fmt.Errorf("parsing postgres DSN %s: %w", b.dsn, err))
	}
	switch {
	case cfg.maxConns > 0:
		pcfg.MaxConns = int32(min(cfg.maxConns, 1<<30))
	case !strings.Contains(dsn, "pool_max_conns"):
		// pgxpool's default (max(4, CPUs)) starves a worker running dozens of tasks:
		// commits wait for WAL flushes, and more concurrent commits share each flush.
		pcfg.MaxConns = max(pcfg.MaxConns, defaultMaxConns)
	}
	params := pcfg.ConnConfig.RuntimeParams
	if params["application_name"] == "" {
		params["application_name"] = defaultAppName
	}
	if cfg.schema != "" {
		params["search_path"] = quoteIdent(cfg.schema)
	}
	// Every statement is prepared once per connection and its plan does not depend on
	// the values bound (the partial indexes match by predicate, not by value); planning
	// each execution anew (custom plans) cost more server time than running it. Not
	// when the DSN asks for statements that are not prepared (default_query_exec_mode
	// exec or simple_protocol, as behind PgBouncer in transaction mode, which also
	// refuses startup parameters it does not know).
	if params["plan_cache_mode"] == "" && preparesStatements(pcfg.ConnConfig.DefaultQueryExecMode) {
		params["plan_cache_mode"] = "force_generic_plan"
	}
	if err := b.setListenConfig(pcfg.ConnConfig, cfg.listenDSN); err != nil {
		return nil, err
	}
	if cfg.poolHook != nil {
		cfg.poolHook(pcfg)
	}
	b.inc.hook(pcfg)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, b.connectError(err)
	}
	b.pool = pool
	if err := b.start(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	b.notes = newNotifier(b)
	return b, nil
}

// openRetries bounds how often Open tries again when a connection drops while it
// checks the server and migrates (a connection refused at once is not retried).
const openRetries = 5

// start checks that the server answers and migrates the schema. A connection that
// drops meanwhile (a server restarting, a flaky network) is retried with backoff.
func (b *Backend) start(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := b.pool.Ping(ctx)
		if err != nil {
			err = b.connectError(err)
			if isConnectError(err) && !droppedWhileConnecting(err) {
				return err // nobody there, or a refusal: say so now
			}
		} else {
			err = b.Migrate(ctx)
		}
		if err == nil || !backend.Retryable(err) || attempt == openRetries || ctx.Err() != nil {
			return err
		}
		backend.Sleep(ctx, backoff)
		backoff *= 2
	}
}

// preparesStatements reports whether mode makes pgx prepare named statements on the
// server (its default, cache_statement, and cache_describe).
func preparesStatements(mode pgx.QueryExecMode) bool {
	return mode == pgx.QueryExecModeCacheStatement || mode == pgx.QueryExecModeCacheDescribe
}

// setListenConfig sets the configuration of Listen's connection: the pool's, or that
// of listenDSN (with the pool's search_path).
func (b *Backend) setListenConfig(pool *pgx.ConnConfig, listenDSN string) error {
	b.listenCfg, b.listenDSN, b.listenSecret = pool, b.dsn, b.secret
	if listenDSN == "" {
		return nil
	}
	b.listenDSN, b.listenSecret = RedactDSN(listenDSN), dsnPassword(listenDSN)
	cfg, err := pgx.ParseConfig(listenDSN)
	if err != nil {
		return b.scrub(fmt.Errorf("parsing the listen DSN %s: %w", b.listenDSN, err))
	}
	if sp := pool.RuntimeParams["search_path"]; sp != "" {
		cfg.RuntimeParams["search_path"] = sp
	}
	b.listenCfg = cfg
	return nil
}

// Close stops listeners, sends notifications still queued and closes the pool.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.listenMu.Lock()
		close(b.closed)
		b.listenMu.Unlock()
		if b.notes != nil {
			b.notes.stop()
		}
		b.listeners.Wait()
		b.pool.Close()
	})
	return nil
}

func (b *Backend) now() time.Time { return b.clock.Now() }

// channelName gives the notification channel for a schema: the base name, or
// base.schema when a schema is set; too long names are shortened with a hash.
func channelName(base, schema string) string {
	if schema == "" {
		return base
	}
	name := base + "." + schema
	if len(name) <= maxIdentifierBytes {
		return name
	}
	return fmt.Sprintf("%s.%016x", base, fnv64(schema))
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

// listenerApplicationName is the application_name of Listen's connection, so an
// operator (or a test) can find it in pg_stat_activity.
func (b *Backend) listenerApplicationName() string {
	name := listenerAppName
	if b.schema != "" {
		name += ":" + b.schema
	}
	if len(name) > maxIdentifierBytes {
		name = name[:maxIdentifierBytes]
	}
	return name
}

// ---- DSN redaction ----

var (
	kvPassword  = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)
	urlUserinfo = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*:)([^@]*)(@)`)
)

// RedactDSN returns dsn with its password replaced by "xxxxx", for error messages and
// logs. It handles URLs (postgres://user:pass@host/db?password=...) and key=value
// connection strings (host=h password=secret).
func RedactDSN(dsn string) string {
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
			q := u.Query()
			if q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
		// Unparseable URL: mask what looks like userinfo and any password= parameter.
		dsn = urlUserinfo.ReplaceAllString(dsn, "${1}xxxxx${3}")
		return regexp.MustCompile(`(?i)([?&]password=)[^&]*`).ReplaceAllString(dsn, "${1}xxxxx")
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// dsnPassword extracts the password of a DSN, to scrub it from driver errors.
func dsnPassword(dsn string) string {
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			if p, ok := u.User.Password(); ok {
				return p
			}
			return u.Query().Get("password")
		}
		if m := urlUserinfo.FindStringSubmatch(dsn); m != nil {
			return m[2]
		}
		return ""
	}
	if m := kvPassword.FindStringSubmatch(dsn); m != nil {
		p := m[2]
		if len(p) >= 2 && p[0] == '\'' && p[len(p)-1] == '\'' {
			p = strings.ReplaceAll(p[1:len(p)-1], `\'`, `'`)
		}
		return p
	}
	return ""
}

// ---- transactions ----

// querier is what the statements of a state change run on: the pool (one statement,
// its own implicit transaction) or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// txState is one attempt of a state change: where its statements run, and what it
// wants to announce once it has committed.
type txState struct {
	q        querier
	queues   map[string]struct{}
	finished []string
}

// taskReady records that a task became runnable on queue.
func (s *txState) taskReady(queue string) {
	if s.queues == nil {
		s.queues = make(map[string]struct{})
	}
	s.queues[queue] = struct{}{}
}

func (s *txState) executionFinished(id string) { s.finished = append(s.finished, id) }

// maxAttempts bounds how often a state change is run again after a deadlock or a
// serialization failure.
const maxAttempts = 5

// single runs a state change made of one statement (one implicit transaction) on the
// pool, again on a deadlock or serialization failure, and sends its notifications.
func (b *Backend) single(ctx context.Context, op string, fn func(s *txState) error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		s := &txState{q: b.pool}
		if err = fn(s); err == nil {
			b.notes.send(s)
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return b.dbError(op, err)
}

// inTx runs fn in a transaction and commits it; on a deadlock or serialization
// failure the whole transaction is run again. Notifications collected by fn are sent
// after the commit.
func (b *Backend) inTx(ctx context.Context, op string, fn func(s *txState) error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var s *txState
		s, err = b.runTx(ctx, fn)
		if err == nil {
			b.notes.send(s)
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return b.dbError(op, err)
}

func (b *Backend) runTx(ctx context.Context, fn func(s *txState) error) (*txState, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.checkLossMark(ctx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	s := &txState{q: tx}
	if err := fn(s); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// pipelined runs a transaction in one round trip: the statements queued by build are
// sent together and run in one implicit transaction (a pipeline ending in a single
// Sync; see pgx's SendBatch), committed when the last one succeeds. read consumes the
// statements' results in order. Every check that must undo the transaction has to
// fail in SQL: an error raised by a statement makes the server skip the rest and roll
// back; read only interprets results.
func (b *Backend) pipelined(ctx context.Context, op string, build func(bt *pgx.Batch) error,
	read func(br pgx.BatchResults, s *txState) error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var bt pgx.Batch
		if err = build(&bt); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		s := &txState{}
		err = b.sendBatch(ctx, &bt, read, s)
		if err == nil {
			b.notes.send(s)
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return b.dbError(op, err)
}

// sendBatch sends bt on a connection of the pool and has read consume its results,
// unless ctx's commit relies on state read before the pool last reached another
// server (checkLossMark): then nothing is sent.
func (b *Backend) sendBatch(ctx context.Context, bt *pgx.Batch, read func(br pgx.BatchResults, s *txState) error, s *txState) error {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := b.checkLossMark(ctx); err != nil {
		return err
	}
	br := conn.SendBatch(ctx, bt)
	err = read(br, s)
	// Close reads what read left; it reports the first error of the pipeline.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---- time ----

func toMS(t time.Time) int64 { return t.UnixMilli() }

func fromMS(ms int64) time.Time { return time.UnixMilli(ms) }

// msOr returns t in unix ms, or now when t is zero.
func msOr(t time.Time, now int64) int64 {
	if t.IsZero() {
		return now
	}
	return toMS(t)
}
