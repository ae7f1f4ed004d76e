package stent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// discardExporter drops what it is given.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTelemetryPerStep measures what tracing and metrics add to one step of a
// sequential workflow on the fused path: the activity task's schedule-to-start, its
// attempt's span and metrics, and the workflow task span of the step it completes.
//
//	go test -run '^$' -bench TelemetryPerStep -benchmem .
func BenchmarkTelemetryPerStep(b *testing.B) {
	for _, c := range []struct {
		name string
		proc func() sdktrace.SpanProcessor
	}{
		{"sync", func() sdktrace.SpanProcessor { return sdktrace.NewSimpleSpanProcessor(discardExporter{}) }},
		{"sdkbatch", func() sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(discardExporter{}) }},
		{"batch", func() sdktrace.SpanProcessor { return NewBatchSpanProcessor(discardExporter{}) }},
		{"lite", nil}, // NewTracerProviderFromEnv's, exporting with NewOTLPTraceExporter
	} {
		b.Run(c.name, func(b *testing.B) {
			var tp interface {
				trace.TracerProvider
				Shutdown(context.Context) error
			}
			if c.proc == nil {
				tp = newLiteProvider(resource.Default(), sdktrace.ParentBased(sdktrace.AlwaysSample()), &otlpExporter{client: discardClient{}})
			} else {
				tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c.proc()), sdktrace.WithIDGenerator(IDGenerator()))
			}
			defer func() { _ = tp.Shutdown(context.Background()) }()
			mp, _, err := NewPrometheusMeterProvider()
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = mp.Shutdown(context.Background()) }()
			e := &Engine{cache: newRunCache(10)}
			tel := newTelemetry(e, engineConfig{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), tracerProvider: tp, meterProvider: mp})
			ex := &backend.Execution{ID: "0123456789abcdef", Queue: "default", Bundle: backend.Bundle{Main: "main.star"}}
			parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
			traceNewExecution(trace.ContextWithSpanContext(context.Background(), parent), &ex.Bundle, ex.ID)
			p := &backend.ActivityPayload{Name: "work", Trace: tel.traceOf(ex)}
			telemetrySteps(b, tel, ex, p)
		})
	}
}

// telemetrySteps runs b.N steps' worth of telemetry calls, as a fused step makes them.
func telemetrySteps(b *testing.B, tel *telemetry, ex *backend.Execution, p *backend.ActivityPayload) {
	ctx := context.Background()
	step := &interpreter.Step{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		task := backend.Task{ID: int64(i), Kind: backend.TaskActivity, ExecutionID: ex.ID, Seq: i + 1, Attempt: 1, Queue: "default", RunAt: time.Now()}
		tel.taskStarted(task)
		_, as := tel.startActivity(ctx, task, p, "worker-1")
		as.attempted(nil)
		ws := tel.startWorkflowTask(ctx, task, ex, false, "worker-1")
		ev := []backend.Event{{Seq: i + 1, Kind: backend.EventActivityCompleted}}
		ws.step(ev, step)
		_ = tel.traceOf(ex) // the next activity's payload
		ws.end(nil)
		as.end()
	}
}

// BenchmarkMetricsPerStep is BenchmarkTelemetryPerStep with metrics only.
func BenchmarkMetricsPerStep(b *testing.B) {
	mp, _, err := NewPrometheusMeterProvider()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mp.Shutdown(context.Background()) }()
	e := &Engine{cache: newRunCache(10)}
	tel := newTelemetry(e, engineConfig{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), meterProvider: mp})
	ex := &backend.Execution{ID: "0123456789abcdef", Queue: "default", Bundle: backend.Bundle{Main: "main.star"}}
	telemetrySteps(b, tel, ex, &backend.ActivityPayload{Name: "work"})
}

// BenchmarkSequentialStepsTelemetry is BenchmarkSequentialSteps (SQLite) without
// telemetry, and with spans exported over OTLP/HTTP (NewOTLPTraceExporter, by
// NewBatchSpanProcessor) to a local sink and metrics recorded for Prometheus: "sdk" with
// the OpenTelemetry SDK's TracerProvider, "lite" with NewTracerProviderFromEnv's (the CLI's).
//
//	go test -run '^$' -bench SequentialStepsTelemetry -benchmem -benchtime 2000x .
func BenchmarkSequentialStepsTelemetry(b *testing.B) {
	for _, name := range []string{"off", "sdk", "lite"} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			opts := []Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
			if name != "off" {
				sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
				}))
				b.Cleanup(sink.Close)
				exp, err := NewOTLPTraceExporter(context.Background(), otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(sink.URL)))
				if err != nil {
					b.Fatal(err)
				}
				var tp interface {
					trace.TracerProvider
					Shutdown(context.Context) error
				}
				if name == "sdk" {
					tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(NewBatchSpanProcessor(exp)), sdktrace.WithIDGenerator(IDGenerator()))
				} else {
					tp = newLiteProvider(resource.Default(), sdktrace.ParentBased(sdktrace.AlwaysSample()), exp)
				}
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				mp, _, err := NewPrometheusMeterProvider()
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
				opts = append(opts, WithTracerProvider(tp), WithMeterProvider(mp))
			}
			eng, ctx, script := startSequentialEngine(b, dir, opts...)
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := eng.Run(ctx, script, []any{b.N}); err != nil {
				b.Fatalf("Run: %v", err)
			}
		})
	}
}

// discardClient is an OTLP client that sends nothing.
type discardClient struct{}

func (discardClient) Start(context.Context) error { return nil }
func (discardClient) Stop(context.Context) error  { return nil }
func (discardClient) UploadTraces(context.Context, []*tracepb.ResourceSpans) error {
	return nil
}
