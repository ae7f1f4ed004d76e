package engine

import (
	"github.com/stent-go/stent/internal/errs"
	"github.com/stent-go/stent/internal/store"
	"github.com/stent-go/stent/internal/telemetry"

	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// Engine is a host program's handle on Stent: it dispatches executions, runs workers and
// answers questions about executions. It is safe for concurrent use.
type Engine struct {
	b      backend.Backend
	reg    *activities.Registry
	clock  backend.Clock
	logger *slog.Logger
	cfg    engineConfig
	tel    *telemetry.Telemetry

	cache    *runCache
	programs *programCache
	wake     *broadcast
	finished finishHub
	// announcesAwaited: the notifier carries the ends the backend announces, not every
	// end this engine sees (announceAwaitedEnds).
	announcesAwaited bool
	finals           finalResults // results for WaitFor, from this process's commits
	listening        listener
	ready            chan struct{}
	readyMu          sync.Once

	capsMu    sync.Mutex
	caps      map[string]int
	capsValid bool

	workersMu sync.Mutex
	workers   map[*worker]struct{}
	routing   routingState

	timersMu sync.Mutex
	timers   map[*time.Timer]struct{}
	closed   bool

	startFailed startFailure // a worker of this engine could not start
	pinNotes    sync.Map     // execution IDs whose changed script was noted (see notePinnedVersion)
}

// Open opens (and migrates) the database named by dsn: a file path for SQLite
// ("stent.db", "sqlite://path", ":memory:"), or "postgres://…" for PostgreSQL.
func Open(ctx context.Context, dsn string, opts ...Option) (*Engine, error) {
	cfg := engineConfig{cacheSize: 4096}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = backend.SystemClock{}
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	cfg.logger = withOutageLogging(cfg.logger)
	b := cfg.backend
	if b == nil {
		var err error
		var sopts []store.Option
		if cfg.listenDSN != "" {
			sopts = append(sopts, store.WithListenDSN(cfg.listenDSN))
		}
		b, err = store.Open(ctx, dsn, cfg.clock, sopts...)
		if err != nil {
			return nil, err
		}
	}
	if cfg.redisURL != "" && cfg.notifier == nil {
		n, err := store.OpenRedis(ctx, cfg.redisURL, cfg.logger)
		if err != nil {
			if cfg.backend == nil {
				_ = b.Close()
			}
			return nil, err
		}
		cfg.notifier = n
	}
	e := &Engine{
		b:        b,
		reg:      activities.NewRegistry(),
		clock:    cfg.clock,
		logger:   cfg.logger,
		cfg:      cfg,
		cache:    newRunCache(cfg.cacheSize, b),
		programs: newProgramCache(256),
		wake:     newBroadcast(),
		ready:    make(chan struct{}),
		timers:   map[*time.Timer]struct{}{},
		workers:  map[*worker]struct{}{},
	}
	e.startFailed.init()
	e.tel = telemetry.New(cfg.logger, cfg.tracerProvider, cfg.meterProvider, telemetry.Sources{
		Backend: b,
		Cache:   func() (int64, int) { return e.cache.evicted.Load(), e.cache.Len() },
	})
	if rr, ok := b.(backend.ReadyReporter); ok {
		// A workflow task put back in the queue by its holder's commit (results arrived
		// meanwhile) is announced by nothing else.
		rr.OnTaskReady(e.taskReady)
	}
	e.announceAwaitedEnds()
	return e, nil
}

// Backend returns the engine's store (for tools that inspect executions).
func (e *Engine) Backend() backend.Backend { return e.b }

// Activities returns the engine's activity registry.
func (e *Engine) Activities() *activities.Registry { return e.reg }

// Register makes a Go function available to scripts as an activity named name. fn is
// func(ctx context.Context, args…) (T, error) or func(ctx, args…) error; arguments and
// results cross as JSON.
func (e *Engine) Register(name string, fn any, opts ...activities.Option) error {
	defer e.invalidateCaps()
	return e.reg.Register(name, fn, opts...)
}

func (e *Engine) invalidateCaps() {
	e.capsMu.Lock()
	e.capsValid = false
	e.capsMu.Unlock()
	e.routing.names.Store(nil)
}

// RegisterCommand registers a command activity from a "NAME=COMMAND" spec: the command
// reads the JSON array of arguments on stdin and writes its JSON result on stdout.
func (e *Engine) RegisterCommand(spec string, opts ...activities.Option) error {
	defer e.invalidateCaps()
	return e.reg.RegisterCommand(spec, opts...)
}

// Close stops pending timers, closes parked runs and the backend.
func (e *Engine) Close() error {
	e.timersMu.Lock()
	e.closed = true
	for t := range e.timers {
		t.Stop()
	}
	e.timers = nil
	e.timersMu.Unlock()
	e.stopListening()
	e.cache.closeAll()
	if e.cfg.notifier != nil {
		_ = e.cfg.notifier.Close()
	}
	return e.b.Close()
}

// wakeAt wakes local workers when a task becomes due at t.
func (e *Engine) wakeAt(t time.Time) {
	if e.cfg.virtual != nil {
		return // an idle worker moves virtual time to the next due task itself
	}
	d := t.Sub(e.clock.Now())
	if d <= 0 {
		e.wake.Notify()
		return
	}
	e.timersMu.Lock()
	defer e.timersMu.Unlock()
	if e.closed {
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		e.timersMu.Lock()
		delete(e.timers, tm)
		e.timersMu.Unlock()
		e.wake.Notify()
	})
	e.timers[tm] = struct{}{}
}

// InputError marks an error caused by what the caller passed (a script that does not
// compile, arguments that are not JSON, an unknown database scheme). The CLI exits 2.
type InputError = errs.InputError

// programCache keeps compiled bundles by their content, bounded.
type programCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*interpreter.Program
}

func newProgramCache(max int) *programCache {
	return &programCache{max: max, m: map[string]*interpreter.Program{}}
}

func (c *programCache) get(key string) *interpreter.Program {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func (c *programCache) put(key string, p *interpreter.Program) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key] = p
}
