package engine

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stent-go/stent/internal/telemetry"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkSequentialStepsTelemetry is BenchmarkSequentialSteps (SQLite) without
// telemetry ("off"), and with spans exported over OTLP/HTTP by the SDK's TracerProvider
// and batch processor to a local sink and metrics recorded for Prometheus ("sdk").
//
//	go test -run '^$' -bench SequentialStepsTelemetry -benchmem -benchtime 2000x .
func BenchmarkSequentialStepsTelemetry(b *testing.B) {
	for _, name := range []string{"off", "sdk"} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			opts := []Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
			if name != "off" {
				sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
				}))
				b.Cleanup(sink.Close)
				exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(sink.URL))
				if err != nil {
					b.Fatal(err)
				}
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithIDGenerator(telemetry.IDGenerator()))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				mp, _, err := telemetry.NewPrometheusMeterProvider()
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
