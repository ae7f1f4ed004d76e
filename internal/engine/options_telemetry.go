package engine

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// WithTracerProvider makes the engine emit spans (stent.dispatch, stent.execution,
// stent.workflow_task, stent.activity) through tp. Without it the engine traces
// nothing and tracing costs nothing. See telemetry.IDGenerator.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *engineConfig) { o.tracerProvider = tp }
}

// WithMeterProvider makes the engine record its metrics (see the README's
// Observability section) through mp. Without it no metric is recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *engineConfig) { o.meterProvider = mp }
}
