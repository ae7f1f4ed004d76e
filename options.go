package stent

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/engine"
	"github.com/stent-go/stent/internal/telemetry"
)

// Option configures Open and Bootstrap.
type Option = engine.Option

// WithBackend uses an already opened backend instead of opening one from the DSN.
func WithBackend(b backend.Backend) Option { return engine.WithBackend(b) }

// WithBuiltins adds predeclared names to every script this engine compiles. Meant for
// test hooks; a name that is not deterministic breaks replay.
func WithBuiltins(extra starlark.StringDict) Option { return engine.WithBuiltins(extra) }

// WithCacheSize bounds how many live (parked) executions a worker keeps in memory.
// 0 or less turns the cache off: every workflow task replays its script from history.
// The default is 4096.
func WithCacheSize(n int) Option { return engine.WithCacheSize(n) }

// WithClock sets the clock of the engine and of the backend it opens (tests use a fake one).
func WithClock(c backend.Clock) Option { return engine.WithClock(c) }

// WithCrashLimit sets how many times one step of a script may take its worker down
// (the worker died or lost its lease while running it) before the execution fails
// instead of killing the next worker; default DefaultCrashLimit. For activities the
// deaths count as attempts against the retry policy, and an activity is not run again
// after more deaths than this limit and its policy's attempts allow.
func WithCrashLimit(n int) Option { return engine.WithCrashLimit(n) }

// WithLogger sets where the engine logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return engine.WithLogger(l) }

// WithMaxHistory bounds the steps one run of an execution may issue (default 100,000);
// past it the execution fails with a hint to use continue_as_new.
func WithMaxHistory(n int) Option { return engine.WithMaxHistory(n) }

// WithMaxPayload sets the largest value, in bytes of JSON, that may cross a checkpoint:
// the arguments of a dispatch or of a step, an activity's result, a signal's payload and
// an execution's result (default DefaultMaxPayload; 0 or less keeps the default). A
// larger one fails the call or the step with its size and the limit.
func WithMaxPayload(n int) Option { return engine.WithMaxPayload(n) }

// WithMeterProvider makes the engine record its metrics (see the README's
// Observability section) through mp. Without it no metric is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option { return engine.WithMeterProvider(mp) }

// WithNotifier adds a cross-process wake-up channel (see backend/redis). Workers and
// WaitFor callers of every process sharing the database are woken through it; polling
// and the backend's own notifications stay as the other paths.
func WithNotifier(n backend.Notifier) Option { return engine.WithNotifier(n) }

// WithRedis adds Redis pub/sub wake-ups (see backend/redis) at url, e.g.
// "redis://127.0.0.1:6379/0": workers and WaitFor callers of every process sharing the
// database wake each other through it instead of waiting for their next poll. Redis
// is optional: when it does not answer, Open logs one warning and starts anyway, and
// the notifier connects in the background; Redis going away only costs latency.
// WithNotifier takes precedence when both are given.
func WithRedis(url string) Option { return engine.WithRedis(url) }

// WithListenDSN makes a PostgreSQL database's LISTEN/NOTIFY wake-ups use a connection
// to listenDSN instead of the DSN given to Open: behind PgBouncer in transaction mode
// (where LISTEN does not work), a direct connection to the server. Ignored without a
// DSN; an error with SQLite.
func WithListenDSN(listenDSN string) Option { return engine.WithListenDSN(listenDSN) }

// WithScriptMemory bounds the memory one step of a script (the code between two
// checkpoints) may take, in bytes (default DefaultScriptMemory; 0 or less keeps it).
// Past it the step is stopped and the execution fails with "memory limit exceeded" at
// the script line it reached; the worker carries on. The measure is approximate: Go
// offers no per-goroutine allocation count, so a watchdog samples the process's heap
// growth while the step runs (steps running at once count towards each other).
func WithScriptMemory(bytes int64) Option { return engine.WithScriptMemory(bytes) }

// WithStepLimit bounds the Starlark steps a script may take between two checkpoints
// (default 5,000,000).
func WithStepLimit(n uint64) Option { return engine.WithStepLimit(n) }

// WithTracerProvider makes the engine emit spans (stent.dispatch, stent.execution,
// stent.workflow_task, stent.activity) through tp. Without it the engine traces
// nothing and tracing costs nothing.
//
// The stent.execution span outlives the process that dispatched it: its span ID is
// chosen at dispatch and stored with the execution, and whichever worker ends the
// execution emits it. For the emitted span to carry that ID, an SDK provider must use
// IDGenerator; with another generator the execution spans get IDs of their own and
// the other spans hang under a missing parent.
func WithTracerProvider(tp trace.TracerProvider) Option { return engine.WithTracerProvider(tp) }

// IDGenerator returns the span ID generator a TracerProvider given to
// WithTracerProvider should use (sdktrace.WithIDGenerator(stent.IDGenerator())): random
// IDs, except for stent.execution spans, which get the ID chosen for them at dispatch.
func IDGenerator() sdktrace.IDGenerator { return telemetry.IDGenerator() }

// WithVirtualTime runs the engine (and the backend it opens) on a VirtualClock starting
// at start. Meant for tests: see package tests/stenttest.
func WithVirtualTime(start time.Time) Option { return engine.WithVirtualTime(start) }

// WithWorkerOptions sets the worker that Bootstrap starts.
func WithWorkerOptions(w WorkerOptions) Option { return engine.WithWorkerOptions(w) }

// WithoutHandOff makes workers claim every task through the claim loop, even where the
// backend could hand the next step of an execution to the worker that finished the
// previous one. For comparisons and debugging.
func WithoutHandOff() Option { return engine.WithoutHandOff() }

// DispatchOption configures Dispatch, DispatchJSON and Run.
type DispatchOption = engine.DispatchOption

// ID sets the execution's ID. Dispatching again with the same ID does not start a second
// execution: it returns the existing one (idempotent dispatch, resumable `stent exec --id`).
func ID(id string) DispatchOption { return engine.ID(id) }

// Entry names the function to run (default "main"; "path:fn" for a loaded file's).
func Entry(name string) DispatchOption { return engine.Entry(name) }

// Delay starts the execution after d.
func Delay(d time.Duration) DispatchOption { return engine.Delay(d) }

// MaxDuration bounds how long the execution may run, from its start.
func MaxDuration(d time.Duration) DispatchOption { return engine.MaxDuration(d) }

// Queue puts the execution's tasks on a named queue (default "default").
func Queue(q string) DispatchOption { return engine.Queue(q) }

// Priority orders the execution's workflow tasks against others due at the same time
// (higher first; default 0).
func Priority(p int) DispatchOption { return engine.Priority(p) }

// WithTags tags the execution: `stent list --where tag:KEY=VALUE` and
// ListFilter.Tags find it. At most 16 tags, keys and values at most 128 bytes
// (backend.MaxTags, backend.MaxTagBytes); more is an *InputError. The script may add
// tags with set_tags({"key": "value"}).
func WithTags(tags map[string]string) DispatchOption { return engine.WithTags(tags) }

// ModulePath widens the directory tree that the script's load() statements may read
// from: dir instead of the script's own directory. The script must lie inside dir.
// Absolute paths, ".." that leaves the tree and symlinks pointing out of it are refused
// either way.
func ModulePath(dir string) DispatchOption { return engine.ModulePath(dir) }

// CancelOption configures Cancel.
type CancelOption = engine.CancelOption

// CancelGrace sets how long the script may still run after the request (default
// DefaultCancelGrace); past it the execution is terminated.
func CancelGrace(d time.Duration) CancelOption { return engine.CancelGrace(d) }
