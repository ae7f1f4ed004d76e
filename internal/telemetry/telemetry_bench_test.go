package telemetry

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// discardExporter drops what it is given.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkTelemetryPerStep measures what tracing and metrics add to one step of a
// sequential workflow on the fused path: the activity task's schedule-to-start, its
// attempt's span and metrics, and the workflow task span of the step it completes,
// with the SDK's TracerProvider exporting synchronously or through its batch processor.
//
//	go test -run '^$' -bench TelemetryPerStep -benchmem ./internal/telemetry
func BenchmarkTelemetryPerStep(b *testing.B) {
	for _, c := range []struct {
		name string
		proc func() sdktrace.SpanProcessor
	}{
		{"sync", func() sdktrace.SpanProcessor { return sdktrace.NewSimpleSpanProcessor(discardExporter{}) }},
		{"batch", func() sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(discardExporter{}) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(c.proc()), sdktrace.WithIDGenerator(IDGenerator()))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			tel := New(quietLogger(), tp, prometheusProvider(b), Sources{})
			ex := &backend.Execution{ID: "0123456789abcdef", Queue: "default", Bundle: backend.Bundle{Main: "main.star"}}
			parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
			TraceNewExecution(trace.ContextWithSpanContext(context.Background(), parent), &ex.Bundle, ex.ID)
			telemetrySteps(b, tel, ex, &backend.ActivityPayload{Name: "work", Trace: tel.TraceOf(ex)})
		})
	}
}

// BenchmarkMetricsPerStep is BenchmarkTelemetryPerStep with metrics only.
func BenchmarkMetricsPerStep(b *testing.B) {
	tel := New(quietLogger(), nil, prometheusProvider(b), Sources{})
	ex := &backend.Execution{ID: "0123456789abcdef", Queue: "default", Bundle: backend.Bundle{Main: "main.star"}}
	telemetrySteps(b, tel, ex, &backend.ActivityPayload{Name: "work"})
}

// prometheusProvider is a Prometheus MeterProvider shut down when b ends.
func prometheusProvider(b *testing.B) metric.MeterProvider {
	mp, _, err := NewPrometheusMeterProvider()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// telemetrySteps runs b.N steps' worth of telemetry calls, as a fused step makes them.
func telemetrySteps(b *testing.B, tel *Telemetry, ex *backend.Execution, p *backend.ActivityPayload) {
	ctx := context.Background()
	step := &interpreter.Step{Scheduled: []interpreter.Scheduled{{Kind: backend.EventActivityScheduled}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		task := backend.Task{ID: int64(i), Kind: backend.TaskActivity, ExecutionID: ex.ID, Seq: i + 1, Attempt: 1, Queue: "default", RunAt: time.Now()}
		tel.TaskStarted(task)
		_, as := tel.StartActivity(ctx, task, p, "worker-1")
		as.Attempted(nil)
		ws := tel.StartWorkflowTask(ctx, task, ex, false, "worker-1")
		ev := []backend.Event{{Seq: i + 1, Kind: backend.EventActivityCompleted}}
		ws.Step(ev, step)
		_ = tel.TraceOf(ex) // the next activity's payload
		ws.End(nil)
		as.End()
	}
}
