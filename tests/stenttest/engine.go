package stenttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
)

// DefaultStart is where the virtual clock of a test engine starts.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// engineConfig is what New and the golden runner need to build an engine.
type engineConfig struct {
	start       time.Time
	cacheSize   int
	concurrency int
	builtins    starlark.StringDict
	activities  []activityReg
	engineOpts  []stent.Option
	logger      *slog.Logger
	timeout     time.Duration
	// warn, when set and logger is not, receives what the engine logs at warning level
	// and above: a test should not make the engine complain.
	warn func(string)
}

type activityReg struct {
	name string
	fn   any
	opts []activities.Option
}

func defaultConfig() engineConfig {
	return engineConfig{start: DefaultStart, cacheSize: 4096, concurrency: 1, timeout: 10 * time.Second}
}

// testEngine is an engine with a running worker; stop ends both.
type testEngine struct {
	eng  *stent.Engine
	stop func()
}

// startEngine opens an engine on a private in-memory SQLite database in virtual time,
// registers the activities and starts one worker.
//
// The worker runs cfg.concurrency tasks at once (1 by default): tasks are then claimed
// one by one in (run_at, id) order, which makes histories identical across runs. Its
// heartbeat is slowed down to an hour because virtual time may jump by days between two
// heartbeats, which would make the worker look dead to itself.
func startEngine(ctx context.Context, cfg engineConfig) (*testEngine, error) {
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if cfg.warn != nil {
			logger = slog.New(&warningHandler{report: cfg.warn})
		}
	}
	opts := []stent.Option{
		stent.WithVirtualTime(cfg.start),
		stent.WithCacheSize(cfg.cacheSize),
		stent.WithLogger(logger),
	}
	if len(cfg.builtins) > 0 {
		opts = append(opts, stent.WithBuiltins(cfg.builtins))
	}
	opts = append(opts, cfg.engineOpts...)
	eng, err := stent.Open(ctx, ":memory:", opts...)
	if err != nil {
		return nil, fmt.Errorf("opening the test engine: %w", err)
	}
	for _, a := range cfg.activities {
		if err := eng.Register(a.name, a.fn, a.opts...); err != nil {
			_ = eng.Close()
			return nil, fmt.Errorf("registering activity %q: %w", a.name, err)
		}
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() {
		served <- eng.Serve(sctx, stent.WorkerOptions{
			ID:                "stenttest",
			Concurrency:       max(cfg.concurrency, 1),
			PollInterval:      100 * time.Millisecond,
			HeartbeatInterval: time.Hour,
			ShutdownTimeout:   5 * time.Second,
		})
	}()
	if err := eng.WaitUntilReady(ctx); err != nil {
		cancel()
		<-served
		_ = eng.Close()
		return nil, err
	}
	stop := func() {
		cancel()
		<-served
		_ = eng.Close()
	}
	return &testEngine{eng: eng, stop: stop}, nil
}

// moduleRoot returns the nearest directory at or above dir that holds a go.mod, or "".
func moduleRoot(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// resolveScript finds a script named relative to dir, else relative to the module
// root above dir (so "workflows/greeting.star" works from any package of the module).
func resolveScript(dir, name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	tried := []string{filepath.Join(dir, name)}
	if root := moduleRoot(dir); root != "" {
		tried = append(tried, filepath.Join(root, name))
	}
	for _, p := range tried {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("script %s not found (looked at %s)", name, joinQuoted(tried))
}

func joinQuoted(list []string) string {
	s := ""
	for i, p := range list {
		if i > 0 {
			s += " and "
		}
		s += p
	}
	return s
}

// errStuck is waitProgressing's answer for a run that stood still.
var errStuck = errors.New("the execution made no progress")

// warningHandler passes log records of warning level and above to report, as one line.
type warningHandler struct {
	report func(string)
	attrs  []slog.Attr
}

func (h *warningHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *warningHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "the engine logged %s %q", r.Level, r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.report(b.String())
	return nil
}

func (h *warningHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &warningHandler{report: h.report, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *warningHandler) WithGroup(string) slog.Handler { return h }
