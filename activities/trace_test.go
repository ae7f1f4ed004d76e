package activities

import (
	"context"
	"encoding/json"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestCommandGetsTraceparent(t *testing.T) {
	// The worker's own TRACEPARENT (it may run under a traced parent) must not leak
	// into an attempt: the attempt gets its own span's, or none.
	t.Setenv(EnvTraceparent, "00-11111111111111111111111111111111-2222222222222222-01")
	t.Setenv(EnvTracestate, "vendor=x")
	path := script(t, `cat >/dev/null; printf '"%s|%s"\n' "$TRACEPARENT" "$TRACESTATE"`)
	a := commandActivity(t, "traced="+path)

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a, 0xf7}, SpanID: trace.SpanID{0xb7, 0xad}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	out, err := a.Invoke(ctx, json.RawMessage(`[]`))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if want := `"00-0af70000000000000000000000000000-b7ad000000000000-01|"`; string(out) != want {
		t.Fatalf("TRACEPARENT|TRACESTATE seen by the command = %s, want %s", out, want)
	}

	out, err = a.Invoke(context.Background(), json.RawMessage(`[]`))
	if err != nil {
		t.Fatalf("Invoke without a span: %v", err)
	}
	if want := `"|"`; string(out) != want {
		t.Fatalf("without a span the command saw %s, want %s (nothing inherited)", out, want)
	}
}
