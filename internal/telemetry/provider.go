package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/internal/errs"
)

// NewTracerProviderFromEnv builds a TracerProvider from the standard OpenTelemetry
// variables: OTEL_TRACES_EXPORTER (otlp, console or none; unset means otlp when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else none),
// the OTEL_EXPORTER_OTLP_* variables (OTLP over HTTP/protobuf), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER (and _ARG; a value it cannot use is an
// *InputError) and the OTEL_SPAN_*_LIMIT limits. console writes one JSON document per
// span to console (stderr when nil). It returns nil and a no-op shutdown when tracing
// is off. shutdown flushes the spans still buffered. The provider is the SDK's, with
// IDGenerator and a BatchSpanProcessor (configured by the OTEL_BSP_* variables).
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
			return nil, none, &errs.InputError{Err: fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported: use http/protobuf (the default)", p)}
		}
		if exp, err = otlptracehttp.New(ctx); err != nil {
			return nil, none, fmt.Errorf("creating the OTLP trace exporter: %w", err)
		}
		otel.SetErrorHandler(warnOnce(otlpEndpoint()))
	case "console":
		if console == nil {
			console = os.Stderr
		}
		if exp, err = stdouttrace.New(stdouttrace.WithWriter(console)); err != nil {
			return nil, none, fmt.Errorf("creating the console trace exporter: %w", err)
		}
	default:
		return nil, none, &errs.InputError{Err: fmt.Errorf("OTEL_TRACES_EXPORTER=%s is not supported: use otlp, console or none", kind)}
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", serviceName())))
	if err != nil {
		return nil, none, fmt.Errorf("describing the trace resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
		sdktrace.WithIDGenerator(IDGenerator()),
		sdktrace.WithBatcher(exp),
	)
	return sdk, sdk.Shutdown, nil
}

// otlpEndpoint is where the OTLP exporter sends traces, as configured.
func otlpEndpoint() string {
	if e := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		return e
	}
	if e := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
		return e
	}
	return "the default OTLP endpoint"
}

// warnOnce is the OpenTelemetry error handler of a process that exports traces: the
// first error (a collector that cannot be reached, typically) is one warning on
// slog.Default() naming the endpoint, and the later ones are dropped, so a worker
// whose collector is down says so once instead of every few seconds.
func warnOnce(endpoint string) otel.ErrorHandler {
	var once sync.Once
	return otel.ErrorHandlerFunc(func(err error) {
		once.Do(func() {
			slog.Default().Warn("OpenTelemetry export failed; further export errors are not reported",
				"endpoint", endpoint, "error", err.Error())
		})
	})
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

// samplerFromEnv reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG as the SDK does;
// unset means parentbased_always_on. Unlike the SDK, which falls back to the default, a
// value it cannot use is an error that names it.
func samplerFromEnv() (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil || v < 0 || v > 1 {
			return nil, &errs.InputError{Err: fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%s: want a ratio between 0 and 1", arg)}
		}
		return sdktrace.TraceIDRatioBased(v), nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		return ratio()
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(r), nil
	}
	return nil, &errs.InputError{Err: fmt.Errorf("OTEL_TRACES_SAMPLER=%s is not supported: use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)}
}
