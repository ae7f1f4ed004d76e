package stent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names Stent's tracer and meter.
const instrumentationName = "github.com/stent-go/stent"

// WithTracerProvider makes the engine emit spans (stent.dispatch, stent.execution,
// stent.workflow_task, stent.activity) through tp. Without it the engine traces
// nothing and tracing costs nothing.
//
// The stent.execution span outlives the process that dispatched it: its span ID is
// chosen at dispatch and stored with the execution, and whichever worker ends the
// execution emits it. For the emitted span to carry that ID, an SDK provider must use
// IDGenerator (NewTracerProviderFromEnv does); with another generator the execution
// spans get IDs of their own and the other spans hang under a missing parent.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *engineConfig) { o.tracerProvider = tp }
}

// WithMeterProvider makes the engine record its metrics (see metrics.go and the README's
// Observability section) through mp. Without it no metric is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *engineConfig) { o.meterProvider = mp }
}

// telemetry is an engine's instrumentation: its tracer, its instruments and the logger
// lines about executions go through. The zero parts are off and cost a nil check.
type telemetry struct {
	logger  *slog.Logger
	tracer  trace.Tracer // nil: tracing off
	metrics *metrics     // nil: metrics off

	warnIDsOnce sync.Once

	parentsMu  sync.Mutex
	parents    map[string]*parentEntry // see parentCtx
	lastParent atomic.Pointer[parentEntry]
}

func newTelemetry(e *Engine, cfg engineConfig) *telemetry {
	t := &telemetry{logger: cfg.logger, parents: map[string]*parentEntry{}}
	if tp := cfg.tracerProvider; tp != nil {
		if _, isNoop := tp.(tracenoop.TracerProvider); !isNoop {
			t.tracer = tp.Tracer(instrumentationName)
		}
	}
	if mp := cfg.meterProvider; mp != nil {
		if _, isNoop := mp.(noop.MeterProvider); !isNoop {
			m, err := newMetrics(mp.Meter(instrumentationName), e)
			if err != nil {
				cfg.logger.Warn("metrics are off: creating instruments failed", "err", err)
			} else {
				t.metrics = m
			}
		}
	}
	return t
}

// NewTracerProviderFromEnv builds a TracerProvider from the standard OpenTelemetry
// variables: OTEL_TRACES_EXPORTER (otlp, console or none; unset means otlp when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else none),
// the OTEL_EXPORTER_OTLP_* variables (OTLP over HTTP/protobuf), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER (and _ARG; a value it cannot use is an
// *InputError) and the OTEL_SPAN_*_LIMIT limits. console writes one JSON document per
// span to console (stderr when nil). It returns nil and a no-op shutdown when tracing
// is off. shutdown flushes the spans still buffered. The provider is Stent's own, not
// the SDK's: the same spans for a fraction of the memory (see liteProvider).
func NewTracerProviderFromEnv(ctx context.Context, console io.Writer) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	kind := strings.TrimSpace(strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER")))
	if kind == "" && (os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		kind = "otlp"
	}
	if kind == "" || kind == "none" {
		return nil, none, nil
	}
	sampler, err := samplerFromEnv()
	if err != nil {
		return nil, none, err
	}
	var exp sdktrace.SpanExporter
	switch kind {
	case "otlp":
		if p := os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
			return nil, none, &InputError{Err: fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported: use http/protobuf (the default)", p)}
		}
		if exp, err = NewOTLPTraceExporter(ctx, otlptracehttp.NewClient()); err != nil {
			return nil, none, fmt.Errorf("creating the OTLP trace exporter: %w", err)
		}
	case "console":
		if console == nil {
			console = os.Stderr
		}
		if exp, err = stdouttrace.New(stdouttrace.WithWriter(console)); err != nil {
			return nil, none, fmt.Errorf("creating the console trace exporter: %w", err)
		}
	default:
		return nil, none, &InputError{Err: fmt.Errorf("OTEL_TRACES_EXPORTER=%s is not supported: use otlp, console or none", kind)}
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", serviceName())))
	if err != nil {
		return nil, none, fmt.Errorf("describing the trace resource: %w", err)
	}
	lite := newLiteProvider(res, sampler, exp)
	return lite, lite.Shutdown, nil
}

// serviceName is OTEL_SERVICE_NAME, or "stent".
func serviceName() string {
	if s := os.Getenv("OTEL_SERVICE_NAME"); s != "" {
		return s
	}
	for _, kv := range strings.Split(os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.TrimSpace(k) == "service.name" {
			return strings.TrimSpace(v)
		}
	}
	return "stent"
}
