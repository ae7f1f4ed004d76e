package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/telemetry"
	"github.com/stent-go/stent/interpreter"
)

type dispatchConfig struct {
	id          string
	entry       string
	delay       time.Duration
	maxDuration time.Duration
	queue       string
	priority    int
	modulePath  string
	tags        map[string]string
}

// DispatchOption configures Dispatch.
type DispatchOption func(*dispatchConfig)

// ID sets the execution's ID. Dispatching again with the same ID does not start a second
// execution: it returns the existing one (idempotent dispatch, resumable `stent exec --id`).
func ID(id string) DispatchOption { return func(c *dispatchConfig) { c.id = id } }

// Entry names the function to run (default "main"; "path:fn" for a loaded file's).
func Entry(name string) DispatchOption { return func(c *dispatchConfig) { c.entry = name } }

// Delay starts the execution after d.
func Delay(d time.Duration) DispatchOption { return func(c *dispatchConfig) { c.delay = d } }

// MaxDuration bounds how long the execution may run, from its start.
func MaxDuration(d time.Duration) DispatchOption {
	return func(c *dispatchConfig) { c.maxDuration = d }
}

// Queue puts the execution's tasks on a named queue (default "default").
func Queue(q string) DispatchOption { return func(c *dispatchConfig) { c.queue = q } }

// Priority orders the execution's workflow tasks against others due at the same time
// (higher first; default 0).
func Priority(p int) DispatchOption { return func(c *dispatchConfig) { c.priority = p } }

// WithTags tags the execution (at most backend.MaxTags tags, keys and values at most
// backend.MaxTagBytes bytes; more is an *InputError). Tags are listed by
// (ListFilter.Tags); the script may add more with set_tags. Repeated, the maps merge.
func WithTags(tags map[string]string) DispatchOption {
	return func(c *dispatchConfig) {
		if c.tags == nil {
			c.tags = make(map[string]string, len(tags))
		}
		for k, v := range tags {
			c.tags[k] = v
		}
	}
}

// Dispatch pins the script (and every file it loads), checks that it compiles and has the
// entry function, and creates an execution that a worker will run. It returns the
// execution ID. Problems with the script or the arguments are *InputError and create
// nothing.
func (e *Engine) Dispatch(ctx context.Context, script string, args []any, opts ...DispatchOption) (string, error) {
	if args == nil {
		args = []any{}
	}
	raw, err := activities.MarshalJSON(args)
	if err != nil {
		return "", &InputError{Err: fmt.Errorf("arguments are not JSON-encodable: %w", err)}
	}
	return e.dispatchJSON(ctx, script, raw, opts...)
}

// DispatchJSON is Dispatch with the arguments given as a JSON array.
func (e *Engine) DispatchJSON(ctx context.Context, script string, args json.RawMessage, opts ...DispatchOption) (string, error) {
	trimmed := bytes.TrimSpace(args)
	if len(trimmed) == 0 {
		trimmed = []byte("[]")
	}
	if err := checkArgsArray(trimmed); err != nil {
		return "", &InputError{Err: err}
	}
	return e.dispatchJSON(ctx, script, trimmed, opts...)
}

func (e *Engine) dispatchJSON(ctx context.Context, script string, args json.RawMessage, opts ...DispatchOption) (_ string, err error) {
	ctx, span := e.tel.StartDispatch(ctx, script)
	cfg := dispatchConfig{entry: "main", queue: backend.DefaultQueue}
	created := false
	defer func() { e.tel.EndDispatch(span, script, cfg.id, created, err) }()
	for _, o := range opts {
		o(&cfg)
	}
	if err := e.checkPayload("arguments", args); err != nil {
		return "", &InputError{Err: err}
	}
	if err := backend.CheckTags(cfg.tags); err != nil {
		return "", &InputError{Err: fmt.Errorf("tags: %w", err)}
	}
	explicitID := cfg.id != ""
	if !explicitID {
		cfg.id = newID()
	} else if err := validateID(cfg.id); err != nil {
		return "", &InputError{Err: err}
	}
	if explicitID {
		// An existing execution with this ID is resumed when the request is the same
		// (its pinned script runs, whatever the file says now); another request is a
		// conflict.
		if ex, err := e.b.GetExecution(ctx, cfg.id); err == nil {
			if err := sameRequest(ex, script, cfg.entry, args); err != nil {
				return "", err
			}
			e.notePinnedVersion(ex, cfg.modulePath)
			e.wake.Notify()
			return ex.ID, nil
		} else if !errors.Is(err, backend.ErrNotFound) {
			return "", fmt.Errorf("looking up execution %s: %w", cfg.id, err)
		}
	}
	bundle, sources, err := interpreter.CollectBundleIn(script, cfg.modulePath)
	if err != nil {
		return "", &InputError{Err: err}
	}
	key := bundleKey(bundle)
	prog := e.programs.get(key)
	if prog == nil {
		if prog, err = interpreter.CompileWith(bundle, sources, e.cfg.builtins); err != nil {
			return "", &InputError{Err: err}
		}
		e.programs.put(key, prog)
	}
	fn, err := prog.Entry(cfg.entry)
	if err != nil {
		return "", &InputError{Err: err}
	}
	var positional []json.RawMessage
	if err := json.Unmarshal(args, &positional); err == nil {
		if err := interpreter.CheckArity(fn, len(positional)); err != nil {
			return "", &InputError{Err: err}
		}
	}
	now := e.clock.Now()
	ne := backend.NewExecution{
		ID: cfg.id, Bundle: bundle, Sources: sources, Entry: cfg.entry, Args: args,
		Queue: cfg.queue, Priority: cfg.priority, StartAt: now.Add(cfg.delay), Tags: cfg.tags,
	}
	if cfg.maxDuration > 0 {
		dl := ne.StartAt.Add(cfg.maxDuration)
		ne.Deadline = &dl
	}
	telemetry.TraceNewExecution(ctx, &ne.Bundle, ne.ID)
	if handled, isNew, err := e.dispatchHere(ctx, ne); err != nil {
		return "", fmt.Errorf("creating execution: %w", err)
	} else if handled {
		created = isNew
		if !created {
			return cfg.id, e.sameAsExisting(ctx, cfg.id, script, cfg.entry, args)
		}
		return cfg.id, nil
	}
	if created, err = e.b.CreateExecution(ctx, ne); err != nil {
		return "", fmt.Errorf("creating execution: %w", err)
	}
	if !created {
		// Another dispatch with this ID got there first.
		return cfg.id, e.sameAsExisting(ctx, cfg.id, script, cfg.entry, args)
	}
	if ne.StartAt.After(now) {
		e.wakeAt(ne.StartAt)
	} else {
		e.taskReady(ne.Queue)
	}
	return cfg.id, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func bundleKey(b backend.Bundle) string {
	keys := make([]string, 0, len(b.Files))
	for k := range b.Files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString(b.Main)
	for _, k := range keys {
		sb.WriteString("\x00" + k + "=" + b.Files[k])
	}
	return sb.String()
}

// Result is how an execution ended.
type Result struct {
	ID     string
	Status backend.Status
	// Value is the entry function's return value as JSON (completed executions).
	Value json.RawMessage
	// Failure describes why it did not complete.
	Failure *backend.ErrorInfo
}

// Err returns nil for a completed execution, else an *ExecutionError.
func (r *Result) Err() error {
	if r.Status == backend.StatusCompleted {
		return nil
	}
	info := r.Failure
	if info == nil {
		info = &backend.ErrorInfo{Message: string(r.Status)}
	}
	return &ExecutionError{ID: r.ID, Status: r.Status, Info: *info}
}

// Decode unmarshals the result value into v, or returns Err().
func (r *Result) Decode(v any) error {
	if err := r.Err(); err != nil {
		return err
	}
	return json.Unmarshal(r.Value, v)
}

// Unwrap returns the result value decoded into Go values (numbers as float64 or
// json.Number-free ints where exact), or Err().
func (r *Result) Unwrap() (any, error) {
	var v any
	if err := r.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// ExecutionError is an execution that failed, was cancelled or timed out.
type ExecutionError struct {
	ID     string
	Status backend.Status
	Info   backend.ErrorInfo
}

func (e *ExecutionError) Error() string {
	verb := "failed"
	switch e.Status {
	case backend.StatusCancelled:
		verb = "was cancelled"
	case backend.StatusTimedOut:
		verb = "timed out"
	}
	return fmt.Sprintf("execution %s %s: %s", e.ID, verb, e.Info.Message)
}

// WaitFor blocks until the execution ends and returns its result. When it did not
// complete, the error is the result's *ExecutionError (the result is returned too).
func (e *Engine) WaitFor(ctx context.Context, id string) (*Result, error) {
	const poll = 200 * time.Millisecond
	if err := validateID(id); err != nil {
		return nil, &InputError{Err: err}
	}
	e.listen()
	awaiter, announces := e.b.(backend.Awaiter)
	for first := true; ; first = false {
		done, cancel := e.finished.subscribe(id)
		if first && e.cache.holds(id) {
			// An execution whose live run this process holds has not finished here: a
			// finish here lets the run go before it delivers the result to this waiter.
			// So the first look neither reads the execution back nor asks the backend
			// to announce its end (a run held here nearly always finishes here); should
			// it end elsewhere after all, the next look, a poll later, finds it.
		} else {
			res, err := e.lookAt(ctx, id)
			if err == nil && res == nil && announces {
				// Running: ask for its end to be announced, then look again, for an end
				// between the first look and the asking went unannounced.
				announces = false
				if err = awaiter.AwaitExecution(ctx, id); err == nil {
					res, err = e.lookAt(ctx, id)
				}
			}
			if err != nil || res != nil {
				cancel()
				if err != nil {
					return nil, fmt.Errorf("waiting for execution %s: %w", id, err)
				}
				return res, res.Err()
			}
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			cancel()
			return nil, ctx.Err()
		case <-done:
			if res := e.takeResult(id); res != nil {
				t.Stop()
				cancel()
				return res, res.Err()
			}
		case <-t.C:
		case <-e.startFailed.done:
			t.Stop()
			cancel()
			return nil, fmt.Errorf("waiting for execution %s: %w", id, e.startFailed.err)
		}
		t.Stop()
		cancel()
	}
}

// lookAt reads the execution: its result when it has ended, nil while it runs.
func (e *Engine) lookAt(ctx context.Context, id string) (*Result, error) {
	ex, err := e.b.GetExecution(ctx, id)
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return nil, errors.New("no such execution")
		}
		return nil, err
	}
	if !ex.Status.Terminal() {
		return nil, nil
	}
	return &Result{ID: ex.ID, Status: ex.Status, Value: ex.Result, Failure: ex.Error}, nil
}

// Run dispatches the script and waits for its result.
func (e *Engine) Run(ctx context.Context, script string, args []any, opts ...DispatchOption) (*Result, error) {
	id, err := e.Dispatch(ctx, script, args, opts...)
	if err != nil {
		return nil, err
	}
	return e.WaitFor(ctx, id)
}

// Get returns an execution.
func (e *Engine) Get(ctx context.Context, id string) (*backend.Execution, error) {
	if err := validateID(id); err != nil {
		return nil, &InputError{Err: err}
	}
	return e.b.GetExecution(ctx, id)
}

// History returns an execution's events.
func (e *Engine) History(ctx context.Context, id string) ([]backend.Event, error) {
	if _, err := e.Get(ctx, id); err != nil {
		return nil, err
	}
	return e.b.History(ctx, id, 0)
}

// List lists executions, newest first.
func (e *Engine) List(ctx context.Context, f backend.ListFilter) ([]backend.Execution, error) {
	return e.b.ListExecutions(ctx, f)
}

// Bootstrap opens the database, starts a worker and waits until it is ready. stop ends
// the worker gracefully and closes the engine.
// Worker options come from WithWorkerOptions.
func Bootstrap(ctx context.Context, dsn string, opts ...Option) (*Engine, func(), error) {
	e, err := Open(ctx, dsn, opts...)
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- e.Serve(sctx, e.cfg.worker) }()
	if err := e.WaitUntilReady(ctx); err != nil {
		cancel()
		<-served
		_ = e.Close()
		return nil, nil, err
	}
	stop := func() {
		cancel()
		<-served
		_ = e.Close()
	}
	return e, stop, nil
}

// checkArgsArray explains, in the caller's terms, why args is not a JSON array.
func checkArgsArray(args json.RawMessage) error {
	const want = `arguments must be a JSON array with one element per parameter of the entry function, like '["Alice", 3]'`
	var v any
	if err := json.Unmarshal(args, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%s; %s is not valid JSON (at byte %d: %v)", want, shorten(string(args), 40), se.Offset, err)
		}
		return fmt.Errorf("%s; %s is not valid JSON: %v", want, shorten(string(args), 40), err)
	}
	var kind string
	switch v.(type) {
	case []any:
		return nil
	case map[string]any:
		kind = "an object (wrap it in [ ] to pass it as the one argument)"
	case string:
		kind = "a string (wrap it in [ ] to pass it as the one argument)"
	case nil:
		kind = "null"
	case bool:
		kind = "a boolean"
	default:
		kind = "a number"
	}
	return fmt.Errorf("%s; got %s", want, kind)
}

// shorten cuts s to n runes with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
