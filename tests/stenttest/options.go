package stenttest

import (
	"log/slog"
	"time"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
)

// Option configures New and the golden runner.
type Option func(*options)

type options struct {
	engine   engineConfig
	builtins func() starlark.StringDict
	update   bool
}

func buildOptions(opts []Option) options {
	o := options{engine: defaultConfig()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Activity registers a Go function as an activity of the test engine (see
// stent.Engine.Register). Golden tests register these beside their Starlark mocks.
func Activity(name string, fn any, opts ...activities.Option) Option {
	return func(o *options) {
		o.engine.activities = append(o.engine.activities, activityReg{name: name, fn: fn, opts: opts})
	}
}

// Builtins adds predeclared names to every script the engine compiles. fn is called
// once per engine, so a builtin that keeps state (a test hook) starts afresh in each run
// of a golden test.
func Builtins(fn func() starlark.StringDict) Option {
	return func(o *options) { o.builtins = fn }
}

// CacheSize sets the live-execution cache of New's engine (0 replays every workflow task
// from history). Golden tests always run with the cache and without it.
func CacheSize(n int) Option { return func(o *options) { o.engine.cacheSize = n } }

// Concurrency sets how many tasks the worker runs at once (default 1, which makes the
// order of events deterministic).
func Concurrency(n int) Option { return func(o *options) { o.engine.concurrency = n } }

// Start sets where virtual time starts (default DefaultStart).
func Start(t time.Time) Option { return func(o *options) { o.engine.start = t } }

// Timeout bounds, in real time, how long a run may go without a new event in its
// history before the test reports it as stuck (default 10s). A slow run that keeps
// progressing is never cut short.
func Timeout(d time.Duration) Option { return func(o *options) { o.engine.timeout = d } }

// Logger sets where the engine logs. By default New passes the engine's warnings and
// errors to the test log, and a golden test fails when the engine logs one.
func Logger(l *slog.Logger) Option { return func(o *options) { o.engine.logger = l } }

// EngineOptions passes further options to stent.Open.
func EngineOptions(opts ...stent.Option) Option {
	return func(o *options) { o.engine.engineOpts = append(o.engine.engineOpts, opts...) }
}

// Update makes the golden runner rewrite the expectations of a file that does not
// match, instead of failing.
func Update(update bool) Option { return func(o *options) { o.update = update } }
