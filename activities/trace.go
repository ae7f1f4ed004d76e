package activities

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// Trace context a command activity receives (W3C Trace Context, as OpenTelemetry SDKs
// read it from the environment): the attempt's stent.activity span, when tracing is on.
const (
	EnvTraceparent = "TRACEPARENT"
	EnvTracestate  = "TRACESTATE" // never set by Stent; an inherited value is dropped
)

// traceparent is the W3C traceparent of the span in ctx, or "" without one.
func traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	flags := "00"
	if sc.IsSampled() {
		flags = "01"
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + flags
}
