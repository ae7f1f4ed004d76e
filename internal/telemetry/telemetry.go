// Package telemetry owns Stent's traces, metrics and the log lines about executions:
// the spans of dispatches, executions, workflow tasks and activity attempts, the
// instruments behind the stent.* metrics, and the providers the CLI builds from the
// standard OTEL_* variables (the OpenTelemetry SDK's TracerProvider with its
// BatchSpanProcessor and OTLP/HTTP exporter; a Prometheus MeterProvider).
//
// It imports the OpenTelemetry API and SDK, package backend (the records it describes),
// interpreter (a step's outcome) and activities (error types); the engine imports it,
// never the reverse.
package telemetry

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/stent-go/stent/backend"
)

// instrumentationName names Stent's tracer and meter.
const instrumentationName = "github.com/stent-go/stent"

// Telemetry is an engine's instrumentation: its tracer, its instruments and the logger
// lines about executions go through. The zero parts are off and cost a nil check; the
// methods are safe to call on a Telemetry with everything off.
type Telemetry struct {
	logger  *slog.Logger
	tracer  trace.Tracer // nil: tracing off
	metrics *metrics     // nil: metrics off

	warnIDsOnce sync.Once

	parentsMu  sync.Mutex
	parents    map[string]*parentEntry // see parentCtx
	lastParent atomic.Pointer[parentEntry]
}

// Sources are the engine's own counts that the metrics read at collection time.
type Sources struct {
	// Backend is asked for pending task counts when it is a backend.TaskCounter.
	Backend backend.Backend
	// Cache returns the live cache's evictions so far and the runs parked in it now.
	Cache func() (evicted int64, parked int)
}

// New returns the instrumentation of an engine that logs to logger and traces through
// tp and records metrics through mp (each nil or a no-op provider: off).
func New(logger *slog.Logger, tp trace.TracerProvider, mp metric.MeterProvider, src Sources) *Telemetry {
	t := &Telemetry{logger: logger, parents: map[string]*parentEntry{}}
	if tp != nil {
		if _, isNoop := tp.(tracenoop.TracerProvider); !isNoop {
			t.tracer = tp.Tracer(instrumentationName)
		}
	}
	if mp != nil {
		if _, isNoop := mp.(noop.MeterProvider); !isNoop {
			m, err := newMetrics(mp.Meter(instrumentationName), src)
			if err != nil {
				logger.Warn("metrics are off: creating instruments failed", "err", err)
			} else {
				t.metrics = m
			}
		}
	}
	return t
}
