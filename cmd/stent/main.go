// Command stent runs and inspects durable Starlark workflows: `stent exec flow.star`
// runs one to its end (resuming it after a crash with --id), `stent worker` serves many,
// and dispatch, wait, status, history and list inspect and control executions.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	stentredis "github.com/stent-go/stent/backend/redis"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1 // the workflow failed (or the command could not do its job)
	exitUsage    = 2 // usage or input error
	exitCanceled = 130
)

func main() {
	// First: a command activity's supervisor is this executable started again.
	activities.SupervisorMain()
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run is main without os.Exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	defer flushTelemetry()
	err := app.RunContext(callerTraceContext(context.Background()), interspersed(app, args))
	return exitCode(err, stderr)
}

// exitError carries an exit code and a message already meant for the user.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func failf(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "stent: "+ee.msg)
		}
		return ee.code
	}
	var ie *stent.InputError
	if errors.As(err, &ie) {
		fmt.Fprintln(stderr, "stent: "+ie.Error())
		return exitUsage
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "stent: interrupted")
		return exitCanceled
	}
	fmt.Fprintln(stderr, "stent: "+err.Error())
	if isUsageError(err) {
		return exitUsage
	}
	return exitFailed
}

// isUsageError recognises urfave/cli's own complaints about flags and arguments.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"flag provided but not defined", "flag needs an argument", "invalid value", "Required flag", "No help topic", "invalid boolean", "not a valid"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// envFlag is a flag that the environment variable STENT_NAME (upper case, - as _) sets
// too.
func envFlag(name, value, usage string) *cli.StringFlag {
	env := "STENT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	return &cli.StringFlag{Name: name, Usage: usage, EnvVars: []string{env}, Value: value}
}

var (
	dbFlag       = envFlag("db", "stent.db", "database: a file path for SQLite, or postgres://user@host/db")
	redisFlag    = envFlag("redis", "", "Redis URL (redis://host:port/db) for wake-ups between processes")
	listenFlag   = envFlag("listen-dsn", "", "PostgreSQL: a direct connection for LISTEN/NOTIFY wake-ups when --db names a pooler (PgBouncer in transaction mode)")
	logLevelFlag = envFlag("log-level", "warn", "engine log level on stderr: debug, info, warn, error")
)

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "stent",
		Usage:                "durable workflows written in Starlark",
		Writer:               stdout,
		ErrWriter:            stderr,
		Flags:                []cli.Flag{dbFlag, redisFlag, listenFlag, logLevelFlag, logFormatFlag, sqliteSyncFlag},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return failf(exitUsage, "%v (see 'stent %s --help')", err, c.Command.Name)
		},
		Commands: []*cli.Command{
			execCommand(),
			dispatchCommand(),
			workerCommand(),
			waitCommand(),
			statusCommand(),
			historyCommand(),
			listCommand(),
			logsCommand(),
			migrateCommand(),
			cancelCommand(),
			signalCommand(),
			dlqCommand(),
			cacheCommand(),
			testCommand(),
			benchCommand(),
			workersCommand(),
			scheduleCommand(),
			pruneCommand(),
			replayCommand(),
			upgradeCommand(),
			retryCommand(),
			resetCommand(),
			terminateCommand(),
			uiCommand(),
			serveCommand(),
			backupCommand(),
			verifyCommand(),
		},
	}
	checkArgsFirst(app.Commands)
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
		// The database and log flags are accepted after the command name too.
		db := commandLineOnly(dbFlag)
		if c.Name == "bench" { // bench measures a fresh temporary database unless told otherwise
			db.Value, db.Usage = "", "database to measure (default: a fresh temporary SQLite file per run)"
		}
		c.Flags = append(c.Flags, db, commandLineOnly(redisFlag), commandLineOnly(listenFlag), commandLineOnly(logLevelFlag), commandLineOnly(logFormatFlag), commandLineOnly(sqliteSyncFlag))
	}
	return app
}

func logger(c *cli.Context) *slog.Logger {
	h, err := newLogHandler(c.App.ErrWriter, flagValue(c, "log-format"), flagValue(c, "log-level"))
	if err != nil { // reported by checkLogFlags
		h = slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn})
	}
	return slog.New(h)
}

// withEngine opens the database named by --db, runs fn and closes it.
func withEngine(c *cli.Context, fn func(eng *stent.Engine) error) error {
	eng, err := openEngine(c)
	if err != nil {
		return err
	}
	defer eng.Close()
	return fn(eng)
}

// withExecution runs fn for the execution named by the command's one argument, or says
// that there is no such execution.
func withExecution(c *cli.Context, fn func(eng *stent.Engine, ex *backend.Execution) error) error {
	id, err := idArg(c)
	if err != nil {
		return err
	}
	return withEngine(c, func(eng *stent.Engine) error {
		ex, err := eng.Get(c.Context, id)
		if err != nil {
			return notFound(id, err)
		}
		return fn(eng, ex)
	})
}

// openEngine opens the database named by --db.
func openEngine(c *cli.Context, opts ...stent.Option) (*stent.Engine, error) {
	if err := checkLogFlags(c); err != nil {
		return nil, err
	}
	tel, err := telemetryOptions(c)
	if err != nil {
		return nil, err
	}
	opts = append(append([]stent.Option{stent.WithLogger(logger(c))}, tel...), opts...)
	if v := flagValue(c, "redis"); v != "" {
		stentredis.SetDriverLogger(logger(c))
		opts = append(opts, stent.WithRedis(v))
	}
	if v := flagValue(c, "listen-dsn"); v != "" {
		opts = append(opts, stent.WithListenDSN(v))
	}
	dsn := flagValue(c, "db")
	if dsn == "" { // STENT_DB set but empty counts as unset
		dsn = dbFlag.Value
	}
	dsn, err = withSQLiteSync(c, dsn)
	if err != nil {
		return nil, err
	}
	eng, err := stent.Open(c.Context, dsn, opts...)
	if err != nil {
		var ie *stent.InputError
		if errors.As(err, &ie) || errors.Is(err, stentredis.ErrUnreachable) {
			return nil, err
		}
		return nil, fmt.Errorf("opening database: %w", err)
	}
	return eng, nil
}

// commandLineOnly copies a global flag for use after a command name. The copy reads no
// environment variable, so flagValue can tell "given here" from "inherited".
func commandLineOnly(f *cli.StringFlag) *cli.StringFlag {
	return &cli.StringFlag{Name: f.Name, Usage: f.Usage, Value: f.Value}
}

// flagValue returns a flag accepted both before and after the command name: the one
// given on the command line, wherever it was, else its environment value or default.
// (LocalFlagNames lists only flags parsed from the command line; urfave/cli's IsSet
// would also count a value taken from the environment.)
func flagValue(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		for _, local := range ctx.LocalFlagNames() {
			if local == name {
				return ctx.String(name)
			}
		}
	}
	// The app's context holds the environment value or the default. It is the outermost
	// context that belongs to the app: urfave/cli puts an empty one above it.
	lineage := c.Lineage()
	for i := len(lineage) - 1; i >= 0; i-- {
		if lineage[i].App != nil && lineage[i].NumFlags() > 0 {
			return lineage[i].String(name)
		}
	}
	return ""
}
