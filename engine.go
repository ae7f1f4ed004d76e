package stent

import (
	"context"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/engine"
)

// Engine runs durable executions of Starlark scripts on one database. A host program
// opens one, registers its activities, serves a worker (Serve, or Bootstrap for both)
// and dispatches executions. An Engine is safe for concurrent use.
type Engine struct {
	e *engine.Engine
}

// Open opens (and migrates) the database named by dsn: a file path for SQLite
// ("stent.db", "sqlite://path", ":memory:"), or "postgres://…" for PostgreSQL. It starts
// no worker; call Serve for one, or use Bootstrap.
func Open(ctx context.Context, dsn string, opts ...Option) (*Engine, error) {
	e, err := engine.Open(ctx, dsn, opts...)
	if err != nil {
		return nil, err
	}
	return &Engine{e: e}, nil
}

// Bootstrap opens an engine on dsn and starts its worker (configured WithWorkerOptions)
// in the background, returning once the worker serves. stop stops the worker, letting
// running work finish, and closes the engine.
func Bootstrap(ctx context.Context, dsn string, opts ...Option) (eng *Engine, stop func(), err error) {
	e, stop, err := engine.Bootstrap(ctx, dsn, opts...)
	if err != nil {
		return nil, nil, err
	}
	return &Engine{e: e}, stop, nil
}

// Close stops pending timers, closes parked runs and the backend.
func (e *Engine) Close() error {
	return e.e.Close()
}

// Register makes a Go function available to scripts as an activity named name.
// fn is func(ctx context.Context, args…) (T, error) or func(ctx, args…) error;
// arguments and results cross as JSON.
func (e *Engine) Register(name string, fn any, opts ...activities.Option) error {
	return e.e.Register(name, fn, opts...)
}

// RegisterCommand registers a command activity from a "NAME=COMMAND" spec:
// the command reads the JSON array of arguments on stdin and writes its JSON
// result on stdout.
func (e *Engine) RegisterCommand(spec string, opts ...activities.Option) error {
	return e.e.RegisterCommand(spec, opts...)
}

// HTTPActivity is an activity that POSTs its JSON array of arguments to url (http or
// https) on each attempt, with an Idempotency-Key header stable across attempts, and
// takes the JSON response body as its result; 408, 429, 5xx and network errors are
// retried (per the retry policy, no sooner than Retry-After), other 4xx are not. Register
// it like a function:
//
//	eng.Register("charge", stent.HTTPActivity("https://billing.internal/charge",
//		activities.HTTPHeader("Authorization", "Bearer "+token),
//		activities.HTTPTimeout(10*time.Second)))
//
// See the activities package for the protocol.
func HTTPActivity(url string, opts ...activities.HTTPOption) *activities.HTTPEndpoint {
	return activities.HTTPActivity(url, opts...)
}

// Serve runs a worker until ctx is cancelled, then stops claiming,
// lets running work finish (up to ShutdownTimeout), hands back what did not,
// and returns nil.
func (e *Engine) Serve(ctx context.Context, opts WorkerOptions) error {
	return e.e.Serve(ctx, opts)
}

// WaitUntilReady blocks until a worker of this engine has started serving.
func (e *Engine) WaitUntilReady(ctx context.Context) error {
	return e.e.WaitUntilReady(ctx)
}

// Activities returns the engine's activity registry.
func (e *Engine) Activities() *activities.Registry {
	return e.e.Activities()
}

// Backend returns the engine's store (for tools that inspect executions).
func (e *Engine) Backend() backend.Backend {
	return e.e.Backend()
}

// VirtualClock returns the engine's virtual clock, or nil when it runs on real
// time.
func (e *Engine) VirtualClock() *VirtualClock {
	return e.e.VirtualClock()
}

// DeadWorkerGrace is how long a worker may stay silent before it counts as
// stopped and its tasks are reclaimed: the largest grace of this engine's
// workers, at least the default 10s.
func (e *Engine) DeadWorkerGrace() time.Duration {
	return e.e.DeadWorkerGrace()
}

// Workers lists the live workers (a heartbeat within the dead-worker grace)
// of every process using this database, by ID. A backend without the routing
// registry lists none.
func (e *Engine) Workers(ctx context.Context) ([]WorkerInfo, error) {
	return e.e.Workers(ctx)
}
