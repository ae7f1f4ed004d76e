package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

var (
	argsFlag     = &cli.StringFlag{Name: "args", Usage: "JSON array of positional arguments for the entry function", Value: "[]"}
	idFlag       = &cli.StringFlag{Name: "id", Usage: "execution ID; dispatching an existing ID resumes it instead of starting another"}
	entryFlag    = &cli.StringFlag{Name: "entry", Usage: "entry function", Value: "main"}
	activityFlag = &cli.StringSliceFlag{Name: "activity", Usage: "register an activity: NAME=COMMAND runs a command, NAME=URL (http:// or https://) POSTs to an HTTP endpoint (repeatable)"}
	queueFlag    = &cli.StringFlag{Name: "queue", Usage: "queue of the execution's tasks", Value: backend.DefaultQueue}
	delayFlag    = &cli.StringFlag{Name: "delay", Usage: "start the execution after this long (e.g. 30m)"}
	maxDurFlag   = &cli.StringFlag{Name: "max-duration", Usage: "end the execution as timed out after this long (e.g. 1h)"}
	modPathFlag  = &cli.StringFlag{Name: "module-path", Usage: "directory tree load() may read from (default: the script's directory)"}
	priorityFlag = &cli.IntFlag{Name: "priority", Usage: "priority of the execution's tasks (higher first)"}
)

func workerFlags() []cli.Flag {
	return []cli.Flag{
		activityFlag,
		activityHeaderFlag,
		&cli.StringSliceFlag{Name: "activity-env", Usage: "pass this environment variable to command activities although it names Stent or libpq configuration (STENT_*, PG*) (repeatable)"},
		&cli.StringSliceFlag{Name: "max-concurrent", Usage: "cap an activity's attempts running at once across all workers: NAME=N (repeatable)"},
		&cli.IntFlag{Name: "concurrency", Usage: "tasks run at once", Value: 16},
		&cli.StringFlag{Name: "lease", Usage: "task lease duration", Value: "5m"},
		&cli.StringFlag{Name: "poll", Usage: "safety-net poll interval", Value: "1s"},
		&cli.StringFlag{Name: "dead-worker-grace", Usage: "reclaim the tasks of a worker silent this long", Value: "10s"},
		&cli.IntFlag{Name: "cache-size", Usage: "live executions kept in memory (0 turns the cache off)", Value: 4096},
		&cli.Uint64Flag{Name: "max-steps", Usage: "Starlark steps allowed between two checkpoints", Value: 5_000_000},
		&cli.Int64Flag{Name: "max-script-memory", Usage: "memory (bytes) one step of a script may take before it fails with \"memory limit exceeded\"", Value: stent.DefaultScriptMemory},
		&cli.IntFlag{Name: "max-payload", Usage: "largest value (bytes of JSON) crossing a checkpoint: arguments, results, signals", Value: stent.DefaultMaxPayload},
		metricsAddrFlag,
	}
}

func parseDurationFlag(c *cli.Context, name string) (time.Duration, error) {
	s := c.String(name)
	if s == "" {
		return 0, nil
	}
	d, err := builtins.ParseDuration(s)
	if err != nil {
		return 0, failf(exitUsage, "--%s: %v", name, err)
	}
	return d, nil
}

func workerOptions(c *cli.Context) (stent.WorkerOptions, []stent.Option, error) {
	var o stent.WorkerOptions
	o.Concurrency = c.Int("concurrency")
	if o.Concurrency <= 0 {
		return o, nil, failf(exitUsage, "--concurrency must be at least 1, got %d", o.Concurrency)
	}
	var err error
	if o.LeaseDuration, err = parseDurationFlag(c, "lease"); err != nil {
		return o, nil, err
	}
	if o.PollInterval, err = parseDurationFlag(c, "poll"); err != nil {
		return o, nil, err
	}
	if o.DeadWorkerGrace, err = parseDurationFlag(c, "dead-worker-grace"); err != nil {
		return o, nil, err
	}
	if c.IsSet("queue") && c.Command.Name == "worker" {
		o.Queues = c.StringSlice("queue")
	}
	// A long-running worker lets a step wait for a worker that runs its activity;
	// exec, alone with its execution, fails it at once.
	o.AwaitActivityWorkers = c.Command.Name == "worker"
	if c.Int64("max-script-memory") < 1<<20 {
		return o, nil, failf(exitUsage, "--max-script-memory must be at least 1 MiB (1048576), got %d", c.Int64("max-script-memory"))
	}
	if c.Int("max-payload") < 1 {
		return o, nil, failf(exitUsage, "--max-payload must be at least 1 byte, got %d", c.Int("max-payload"))
	}
	engOpts := []stent.Option{stent.WithCacheSize(c.Int("cache-size")), stent.WithStepLimit(c.Uint64("max-steps")), stent.WithMaxPayload(c.Int("max-payload")), stent.WithScriptMemory(c.Int64("max-script-memory"))}
	return o, engOpts, nil
}

// openWorker opens the engine for a command that serves in this process: it reads the
// worker flags, lets prepare read the command's own (after the worker flags, before the
// database is opened) and registers the --activity commands. The caller closes it.
func openWorker(c *cli.Context, prepare func(*stent.WorkerOptions) error) (*stent.Engine, stent.WorkerOptions, error) {
	wopts, eopts, err := workerOptions(c)
	if err != nil {
		return nil, wopts, err
	}
	if err := prepare(&wopts); err != nil {
		return nil, wopts, err
	}
	eng, err := openEngine(c, eopts...)
	if err != nil {
		return nil, wopts, err
	}
	if err := registerCommands(c, eng); err != nil {
		eng.Close()
		return nil, wopts, err
	}
	return eng, wopts, nil
}

func registerCommands(c *cli.Context, eng *stent.Engine) error {
	caps := map[string]int{}
	for _, spec := range c.StringSlice("max-concurrent") {
		name, n, ok := strings.Cut(spec, "=")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v < 1 || name == "" {
			return failf(exitUsage, "--max-concurrent %q: want NAME=N with N at least 1", spec)
		}
		caps[name] = v
	}
	pass := c.StringSlice("activity-env")
	for _, name := range pass {
		if err := activities.CheckEnvName(name); err != nil {
			return failf(exitUsage, "--activity-env: %v", err)
		}
	}
	headers, err := activityHeaders(c)
	if err != nil {
		return err
	}
	for _, spec := range c.StringSlice("activity") {
		name, value, _ := strings.Cut(spec, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		opts := []activities.Option{activities.WithPassEnv(pass...)}
		if n, ok := caps[name]; ok {
			opts = append(opts, activities.WithMaxConcurrent(n))
			delete(caps, name)
		}
		if activities.IsHTTPURL(value) {
			if err := eng.Register(name, stent.HTTPActivity(value, headers[name]...), opts...); err != nil {
				return failf(exitUsage, "--activity: %v", err)
			}
			delete(headers, name)
			continue
		}
		if err := eng.RegisterCommand(spec, opts...); err != nil {
			return failf(exitUsage, "--activity: %v", err)
		}
	}
	for name := range caps {
		return failf(exitUsage, "--max-concurrent %s: no --activity %s=COMMAND to apply it to", name, name)
	}
	for name := range headers {
		return failf(exitUsage, "--activity-header %s: no --activity %s=URL (an HTTP activity) to apply it to", name, name)
	}
	return nil
}

func dispatchOptions(c *cli.Context) ([]stent.DispatchOption, error) {
	var opts []stent.DispatchOption
	if id := c.String("id"); id != "" {
		opts = append(opts, stent.ID(id))
	}
	if e := c.String("entry"); e != "" {
		opts = append(opts, stent.Entry(e))
	}
	if q := c.String("queue"); q != "" {
		opts = append(opts, stent.Queue(q))
	}
	if p := c.Int("priority"); p != 0 {
		opts = append(opts, stent.Priority(p))
	}
	if m := c.String("module-path"); m != "" {
		opts = append(opts, stent.ModulePath(m))
	}
	d, err := parseDurationFlag(c, "delay")
	if err != nil {
		return nil, err
	}
	if d > 0 {
		opts = append(opts, stent.Delay(d))
	}
	if d, err = parseDurationFlag(c, "max-duration"); err != nil {
		return nil, err
	}
	if d > 0 {
		opts = append(opts, stent.MaxDuration(d))
	}
	tags, err := tagOptions(c)
	if err != nil {
		return nil, err
	}
	return append(opts, tags...), nil
}

func scriptArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", failf(exitUsage, "%s takes one script path, got %d arguments (usage: stent %s SCRIPT [--args JSON])", c.Command.Name, c.NArg(), c.Command.Name)
	}
	return c.Args().First(), nil
}

func signalContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "dispatch a script and serve it in this process until it ends; print its result as JSON",
		ArgsUsage: "SCRIPT",
		Flags:     append([]cli.Flag{argsFlag, idFlag, entryFlag, queueFlag, priorityFlag, delayFlag, maxDurFlag, modPathFlag, tagFlag()}, workerFlags()...),
		Action: func(c *cli.Context) error {
			script, err := scriptArg(c)
			if err != nil {
				return err
			}
			var dopts []stent.DispatchOption
			eng, wopts, err := openWorker(c, func(*stent.WorkerOptions) (err error) {
				dopts, err = dispatchOptions(c)
				return err
			})
			if err != nil {
				return err
			}
			defer eng.Close()
			ctx, stop := signalContext(c)
			defer stop()
			id, err := eng.DispatchJSON(ctx, script, json.RawMessage(c.String("args")), dopts...)
			if err != nil {
				return err
			}
			return serveUntilEnd(ctx, c, eng, id, wopts,
				fmt.Sprintf("interrupted; execution %s is saved: run `stent exec %s --id %s` (same arguments) to continue it", id, script, id))
		},
	}
}

// serveUntilEnd serves in this process until execution id ends, then prints its
// result; interrupted (ctx cancelled), it says interrupted, exit 130.
func serveUntilEnd(ctx context.Context, c *cli.Context, eng *stent.Engine, id string, wopts stent.WorkerOptions, interrupted string) error {
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- eng.Serve(serveCtx, wopts) }()
	if isTerminal(c.App.ErrWriter) {
		go showProgress(serveCtx, eng, id, c.App.ErrWriter)
	}
	res, werr := eng.WaitFor(ctx, id)
	stopServe()
	// Stopping the worker cancels it; that is not an error of its own (an execution
	// that had already ended returns before the worker is even up).
	if serr := <-served; serr != nil && werr == nil && !errors.Is(serr, context.Canceled) {
		return serr
	}
	if res == nil {
		if errors.Is(werr, context.Canceled) {
			return failf(exitCanceled, "%s", interrupted)
		}
		return werr
	}
	return printResult(c, res)
}

// printResult writes a completed execution's value as one line of JSON, or its failure.
func printResult(c *cli.Context, res *stent.Result) error {
	if err := res.Err(); err != nil {
		var ee *stent.ExecutionError
		msg := err.Error()
		if errors.As(err, &ee) && ee.Info.Stack != "" {
			msg += "\n" + strings.TrimRight(ee.Info.Stack, "\n")
		}
		return failf(exitFailed, "%s", msg)
	}
	out := res.Value
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	fmt.Fprintln(c.App.Writer, string(out))
	return nil
}

func dispatchCommand() *cli.Command {
	return &cli.Command{
		Name:      "dispatch",
		Usage:     "create an execution for a worker to run; print its ID",
		ArgsUsage: "SCRIPT",
		Flags:     []cli.Flag{argsFlag, idFlag, entryFlag, queueFlag, priorityFlag, delayFlag, maxDurFlag, modPathFlag, tagFlag()},
		Action: func(c *cli.Context) error {
			script, err := scriptArg(c)
			if err != nil {
				return err
			}
			dopts, err := dispatchOptions(c)
			if err != nil {
				return err
			}
			return withEngine(c, func(eng *stent.Engine) error {
				id, err := eng.DispatchJSON(c.Context, script, json.RawMessage(c.String("args")), dopts...)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, id)
				return nil
			})
		},
	}
}

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "serve executions until SIGINT/SIGTERM, then drain gracefully",
		Flags: append([]cli.Flag{&cli.StringSliceFlag{Name: "queue", Usage: "queue to serve (repeatable; default all)"}, retentionFlag}, workerFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return failf(exitUsage, "worker takes no arguments, got %q", c.Args().Slice())
			}
			eng, wopts, err := openWorker(c, func(o *stent.WorkerOptions) error { return retentionOptions(c, o) })
			if err != nil {
				return err
			}
			defer eng.Close()
			ctx, stop := signalContext(c)
			defer stop()
			return eng.Serve(ctx, wopts)
		},
	}
}

func idArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", failf(exitUsage, "%s takes one execution ID (usage: stent %s ID)", c.Command.Name, c.Command.Name)
	}
	return c.Args().First(), nil
}

func notFound(id string, err error) error {
	return notFoundAs(err, "execution", id, "stent list")
}

// notFoundAs turns backend.ErrNotFound into a usage error saying that there is no such
// thing (an execution, a schedule) and which command lists them; other errors pass.
func notFoundAs(err error, what, id, listCommand string) error {
	if errors.Is(err, backend.ErrNotFound) {
		return failf(exitUsage, "no %s %q in this database (list them with `%s`)", what, id, listCommand)
	}
	return err
}

// executionCommand is a command whose one argument is an execution ID: fn runs for
// that execution, or the command says there is no such execution.
func executionCommand(name, usage string, flags []cli.Flag, fn func(c *cli.Context, eng *stent.Engine, ex *backend.Execution) error) *cli.Command {
	return &cli.Command{Name: name, Usage: usage, ArgsUsage: "ID", Flags: flags, Action: func(c *cli.Context) error {
		return withExecution(c, func(eng *stent.Engine, ex *backend.Execution) error { return fn(c, eng, ex) })
	}}
}

// jsonFlag is the --json flag of a command, printing what usage says.
func jsonFlag(usage string) []cli.Flag {
	return []cli.Flag{&cli.BoolFlag{Name: "json", Usage: usage}}
}

func waitCommand() *cli.Command {
	return executionCommand("wait", "wait for an execution to end; print its result as JSON", nil,
		func(c *cli.Context, eng *stent.Engine, ex *backend.Execution) error {
			ctx, stop := signalContext(c)
			defer stop()
			res, err := eng.WaitFor(ctx, ex.ID)
			if res == nil {
				return err
			}
			return printResult(c, res)
		})
}

func writeJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSONLines prints one JSON object per item, as toJSON makes it from the item's
// index and the item.
func writeJSONLines[T any](c *cli.Context, items []T, toJSON func(i int, item *T) any) error {
	for i := range items {
		if err := writeJSON(c, toJSON(i, &items[i])); err != nil {
			return err
		}
	}
	return nil
}

// newTable is the aligned table the commands print; the caller flushes it.
func newTable(c *cli.Context) *tabwriter.Writer {
	return tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
}

func historyCommand() *cli.Command {
	return executionCommand("history", "show an execution's event history", jsonFlag("print one JSON object per event"), printHistory)
}

func printHistory(c *cli.Context, eng *stent.Engine, ex *backend.Execution) error {
	events, err := eng.Backend().History(c.Context, ex.ID, 0)
	if err != nil {
		return err
	}
	// Events are numbered per execution, 1..N (the stored IDs are database-wide).
	if c.Bool("json") {
		return writeJSONLines(c, events, func(i int, ev *backend.Event) any { return newEventJSON(i+1, *ev) })
	}
	w := newTable(c)
	fmt.Fprintln(w, "EVENT\tSEQ\tKIND\tNAME\tDETAIL\tAT")
	for i, ev := range events {
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\n", i+1, ev.Seq, ev.Kind, ev.Name, eventDetail(ev), ev.At.UTC().Format("15:04:05.000"))
	}
	return w.Flush()
}

func eventDetail(ev backend.Event) string {
	if ev.Kind == backend.EventActivityAttemptFailed {
		return attemptDetail(ev)
	}
	if ev.Error != nil {
		return "error: " + shorten(ev.Error.Message, 80)
	}
	if ev.CacheHit {
		return shorten(string(ev.Data), 70) + " (cache hit)"
	}
	switch ev.Kind {
	case backend.EventActivityScheduled, backend.EventChildScheduled, backend.EventTimerScheduled, backend.EventSignalWait:
		var d struct {
			Args    json.RawMessage `json:"args"`
			Pos     string          `json:"pos"`
			Options json.RawMessage `json:"options"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		detail := d.Pos
		if len(d.Args) > 0 {
			detail += " args " + shorten(string(d.Args), 60)
		}
		if ev.Kind == backend.EventTimerScheduled {
			var o builtins.TimerOptions
			_ = json.Unmarshal(d.Options, &o)
			detail += " " + (time.Duration(o.DurationMS) * time.Millisecond).String()
		}
		if ev.Kind == backend.EventSignalWait {
			var o builtins.SignalOptions
			_ = json.Unmarshal(d.Options, &o)
			if o.TimeoutMS > 0 {
				detail += " timeout " + (time.Duration(o.TimeoutMS) * time.Millisecond).String()
			}
		}
		if ev.CacheHit {
			detail += " (cache hit)"
		}
		return detail
	}
	return shorten(string(ev.Data), 80)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or upgrade the schema (every other command also does it when needed)",
		Action: func(c *cli.Context) error {
			return withEngine(c, func(eng *stent.Engine) error {
				if err := eng.Backend().Migrate(c.Context); err != nil {
					return fmt.Errorf("migrating: %w", err)
				}
				fmt.Fprintln(c.App.ErrWriter, migrateReport(eng.Backend()))
				return nil
			})
		},
	}
}

// migrateReport says what migrating did: the migrations this process applied (when it
// opened the database, or since), or that there was nothing to do.
func migrateReport(b backend.Backend) string {
	r, ok := b.(backend.MigrationReporter)
	if !ok {
		return "schema is up to date"
	}
	applied := r.MigrationsApplied()
	if len(applied) == 0 {
		return "schema is up to date: no migration to apply"
	}
	return fmt.Sprintf("applied %d migration(s): %s", len(applied), strings.Join(applied, ", "))
}

func logsCommand() *cli.Command {
	return executionCommand("logs", "show what an execution's script printed (print and log), once per line",
		jsonFlag("print one JSON object per line printed"), printLogs)
}

func printLogs(c *cli.Context, eng *stent.Engine, ex *backend.Execution) error {
	lines, err := eng.Backend().Logs(c.Context, ex.ID)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSONLines(c, lines, func(_ int, l *backend.LogLine) any {
			return LogLineJSON{Run: l.Run, At: l.At.UTC(), Message: l.Message}
		})
	}
	for _, l := range lines {
		fmt.Fprintf(c.App.Writer, "%s  %s\n", l.At.Format("15:04:05.000"), l.Message)
	}
	return nil
}
