package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"go.opentelemetry.io/otel/propagation"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/internal/telemetry"
)

var (
	logFormatFlag   = envFlag("log-format", "text", "engine log format on stderr: text or json")
	metricsAddrFlag = envFlag("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464)")
)

// newLogHandler is the handler behind --log-format and --log-level.
func newLogHandler(w io.Writer, format, level string) (slog.Handler, error) {
	lv := slog.LevelWarn
	if level == "" {
		level = logLevelFlag.Value
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.NewTextHandler(w, opts), nil
	case "json":
		return slog.NewJSONHandler(w, opts), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// checkLogFlags reports a bad --log-format or --log-level as a usage error.
func checkLogFlags(c *cli.Context) error {
	if _, err := newLogHandler(io.Discard, flagValue(c, "log-format"), flagValue(c, "log-level")); err != nil {
		return failf(exitUsage, "%v", err)
	}
	return nil
}

// telemetryShutdowns flush exporters and stop servers when the command ends.
var telemetryShutdowns struct {
	sync.Mutex
	fns []func(context.Context) error
}

func atExit(fn func(context.Context) error) {
	telemetryShutdowns.Lock()
	telemetryShutdowns.fns = append(telemetryShutdowns.fns, fn)
	telemetryShutdowns.Unlock()
}

// flushTelemetry runs what atExit registered, newest first, within a few seconds.
func flushTelemetry() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	telemetryShutdowns.Lock()
	fns := telemetryShutdowns.fns
	telemetryShutdowns.fns = nil
	telemetryShutdowns.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		_ = fns[i](ctx)
	}
}

// callerTraceContext returns ctx under the span named by TRACEPARENT (W3C Trace Context,
// as a traced parent process passes it), so `stent dispatch` and `stent exec` join the
// caller's trace.
func callerTraceContext(ctx context.Context) context.Context {
	tp := os.Getenv("TRACEPARENT")
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp, "tracestate": os.Getenv("TRACESTATE")})
}

// telemetryOptions gives the engine a TracerProvider from the OTEL_* variables and,
// when --metrics-addr is given or the command serves /metrics itself (stent serve), a
// Prometheus MeterProvider: served at --metrics-addr, and its handler kept for
// metricsHandler.
func telemetryOptions(c *cli.Context) ([]stent.Option, error) {
	var opts []stent.Option
	tp, shutdown, err := telemetry.NewTracerProviderFromEnv(c.Context, c.App.ErrWriter)
	if err != nil {
		return nil, err
	}
	if tp != nil {
		atExit(shutdown)
		opts = append(opts, stent.WithTracerProvider(tp))
	}
	addr := c.String("metrics-addr")
	if addr == "" && c.Command.Name != "serve" {
		return opts, nil
	}
	mp, handler, err := telemetry.NewPrometheusMeterProvider()
	if err != nil {
		return nil, err
	}
	atExit(mp.Shutdown)
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, failf(exitUsage, "--metrics-addr %s: %v", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", handler)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger(c).Error("serving metrics", "addr", addr, "err", err)
			}
		}()
		logger(c).Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
		atExit(srv.Shutdown)
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[metricsKey] = handler
	return append(opts, stent.WithMeterProvider(mp)), nil
}

const metricsKey = "stent.metrics"

// metricsHandler is the Prometheus handler of the engine telemetryOptions configured,
// or nil.
func metricsHandler(c *cli.Context) http.Handler {
	h, _ := c.App.Metadata[metricsKey].(http.Handler)
	return h
}

// benchTelemetry is what `stent bench --telemetry` measures: spans exported over
// OTLP/HTTP by the tracer provider NewTracerProviderFromEnv builds for the CLI, to a
// local collector stand-in that reads and discards them, and metrics recorded for
// Prometheus.
func benchTelemetry(ctx context.Context) ([]stent.Option, func(context.Context) error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("starting the span sink: %w", err)
	}
	sink := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = sink.Serve(ln) }()
	// The tracer provider of `stent worker` and `stent exec` (NewTracerProviderFromEnv),
	// pointed at the sink.
	for k, v := range map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://" + ln.Addr().String() + "/v1/traces"} {
		if err := os.Setenv(k, v); err != nil {
			_ = sink.Close()
			return nil, nil, fmt.Errorf("pointing traces at the span sink: %w", err)
		}
	}
	tp, tpShutdown, err := telemetry.NewTracerProviderFromEnv(ctx, nil)
	if err != nil {
		_ = sink.Close()
		return nil, nil, err
	}
	mp, _, err := telemetry.NewPrometheusMeterProvider()
	if err != nil {
		_ = sink.Close()
		return nil, nil, err
	}
	shutdown := func(ctx context.Context) error {
		return errors.Join(tpShutdown(ctx), mp.Shutdown(ctx), sink.Shutdown(ctx))
	}
	return []stent.Option{stent.WithTracerProvider(tp), stent.WithMeterProvider(mp)}, shutdown, nil
}
