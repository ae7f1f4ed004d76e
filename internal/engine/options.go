package engine

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
)

// engineConfig is what the options set; Open reads it.
type engineConfig struct {
	clock        backend.Clock
	cacheSize    int
	logger       *slog.Logger
	stepLimit    uint64
	backend      backend.Backend
	redisURL     string
	listenDSN    string
	notifier     backend.Notifier
	worker       WorkerOptions
	virtual      *VirtualClock
	maxHistory   int
	noHandOff    bool
	builtins     starlark.StringDict
	maxPayload   int
	scriptMemory uint64
	crashLimit   int

	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
}

// Option configures Open.
type Option func(*engineConfig)

// WithClock sets the clock of the engine and of the backend it opens (tests use a fake one).
func WithClock(c backend.Clock) Option { return func(o *engineConfig) { o.clock = c } }

// WithCacheSize bounds how many live (parked) executions a worker keeps in memory.
// 0 or less turns the cache off: every workflow task replays its script from history.
// The default is 4096.
func WithCacheSize(n int) Option { return func(o *engineConfig) { o.cacheSize = n } }

// WithLogger sets where the engine logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *engineConfig) { o.logger = l } }

// WithStepLimit bounds the Starlark steps a script may take between two checkpoints
// (default 5,000,000).
func WithStepLimit(n uint64) Option { return func(o *engineConfig) { o.stepLimit = n } }

// WithBuiltins adds predeclared names to every script this engine compiles. Meant for
// test hooks; a name that is not deterministic breaks replay.
func WithBuiltins(extra starlark.StringDict) Option {
	return func(o *engineConfig) { o.builtins = extra }
}

// WithMaxHistory bounds the steps one run of an execution may issue (default 100,000);
// past it the execution fails with a hint to use continue_as_new.
func WithMaxHistory(n int) Option { return func(o *engineConfig) { o.maxHistory = n } }

// WithoutHandOff makes workers claim every task through the claim loop, even where the
// backend could hand the next step of an execution to the worker that finished the
// previous one. For comparisons and debugging.
func WithoutHandOff() Option { return func(o *engineConfig) { o.noHandOff = true } }

// WithBackend uses an already opened backend instead of opening one from the DSN.
func WithBackend(b backend.Backend) Option { return func(o *engineConfig) { o.backend = b } }

// WithWorkerOptions sets the worker that Bootstrap starts.
func WithWorkerOptions(w WorkerOptions) Option { return func(o *engineConfig) { o.worker = w } }

// WithRedis adds Redis pub/sub wake-ups (see backend/redis) at url, e.g.
// "redis://127.0.0.1:6379/0": workers and WaitFor callers of every process sharing the
// database wake each other through it instead of waiting for their next poll. Redis
// is optional: when it does not answer, Open logs one warning and starts anyway, and
// the notifier connects in the background; Redis going away only costs latency.
// WithNotifier takes precedence when both are given.
func WithRedis(url string) Option { return func(o *engineConfig) { o.redisURL = url } }

// WithListenDSN gives a PostgreSQL database's LISTEN connection a DSN of its own (see
// store.WithListenDSN).
func WithListenDSN(dsn string) Option { return func(o *engineConfig) { o.listenDSN = dsn } }

// WithTracerProvider makes the engine emit spans (stent.dispatch, stent.execution,
// stent.workflow_task, stent.activity) through tp. Without it the engine traces
// nothing and tracing costs nothing. See telemetry.IDGenerator.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *engineConfig) { o.tracerProvider = tp }
}

// WithMeterProvider makes the engine record its metrics (see the README's
// Observability section) through mp. Without it no metric is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *engineConfig) { o.meterProvider = mp }
}

// positiveOr is v when it is positive, else def: an option set to 0 or less keeps its
// default.
func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
