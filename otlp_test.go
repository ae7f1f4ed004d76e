package stent

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// captureServer records the bodies of the OTLP/HTTP requests it receives.
type captureServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func newCaptureServer(t testing.TB) *captureServer {
	c := &captureServer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *captureServer) take(t *testing.T) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bodies) != 1 {
		t.Fatalf("%d requests, want 1", len(c.bodies))
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(c.bodies[0], &req); err != nil {
		t.Fatalf("decoding the request: %v", err)
	}
	c.bodies = nil
	// otlptrace orders resources and scopes as a map iteration does: sort both.
	sort.Slice(req.ResourceSpans, func(i, j int) bool {
		return proto.Size(req.ResourceSpans[i].Resource) < proto.Size(req.ResourceSpans[j].Resource)
	})
	for _, rs := range req.ResourceSpans {
		sort.Slice(rs.ScopeSpans, func(i, j int) bool { return rs.ScopeSpans[i].Scope.GetName() < rs.ScopeSpans[j].Scope.GetName() })
	}
	return &req
}

// testSpans ends spans of every shape OTLP has: two resources, scopes with and without
// version, attributes and schema, every attribute type, events, links, statuses, kinds,
// remote and local parents, trace state, dropped attributes, events and links.
func testSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	limits := sdktrace.NewSpanLimits()
	limits.AttributeCountLimit, limits.EventCountLimit, limits.LinkCountLimit = 20, 2, 1
	res1 := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "stent"), attribute.Int("n", 3))
	res2 := resource.NewSchemaless(attribute.String("service.name", "other"))
	tp1 := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res1), sdktrace.WithRawSpanLimits(limits))
	tp2 := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res2))
	a := tp1.Tracer("a")
	b := tp1.Tracer("b", trace.WithInstrumentationVersion("1.2.3"), trace.WithSchemaURL("https://x/schema"),
		trace.WithInstrumentationAttributes(attribute.String("scope.k", "v")))
	c := tp2.Tracer("c")

	ts, err := trace.ParseTraceState("k1=v1,k2=v2")
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2}, SpanID: trace.SpanID{3, 4}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
	start := time.Unix(1700000000, 123456789)
	ctx, root := a.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "root",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.Bool("bool.t", true), attribute.Bool("bool.f", false), attribute.Int64("int", -42), attribute.Int("zero", 0),
			attribute.Float64("float", 3.25), attribute.String("string", "héllo"), attribute.String("empty", ""),
			attribute.BoolSlice("bools", []bool{true, false}), attribute.Int64Slice("ints", []int64{1, -2, 300}),
			attribute.Float64Slice("floats", []float64{0.5, -1}), attribute.StringSlice("strings", []string{"a", ""}),
		),
		trace.WithLinks(trace.Link{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.String("link.k", "v")}},
			trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}})}))
	root.AddEvent("first", trace.WithTimestamp(start.Add(time.Millisecond)), trace.WithAttributes(attribute.Int("seq", 1)))
	root.AddEvent("second")
	root.AddEvent("third (dropped)")
	root.RecordError(errors.New("boom"))
	root.SetStatus(codes.Error, "it failed")
	for i := range 25 {
		root.SetAttributes(attribute.Int("many", i), attribute.Int("k"+string(rune('a'+i)), i))
	}
	_, child := b.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient))
	child.SetStatus(codes.Ok, "")
	child.End()
	for _, k := range []trace.SpanKind{trace.SpanKindProducer, trace.SpanKindConsumer, trace.SpanKindInternal, trace.SpanKindUnspecified} {
		_, s := b.Start(ctx, "kind", trace.WithSpanKind(k))
		s.End()
	}
	root.End(trace.WithTimestamp(start.Add(time.Second)))
	_, other := c.Start(context.Background(), "other", trace.WithAttributes(attribute.String("x", "y")))
	other.End()
	return rec.Ended()
}

// TestOTLPTraceExporterMatchesOTLPTrace: NewOTLPTraceExporter sends what otlptrace sends.
func TestOTLPTraceExporterMatchesOTLPTrace(t *testing.T) {
	spans := testSpans(t)
	ctx := context.Background()

	want := newCaptureServer(t)
	sdkExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(want.URL))
	if err != nil {
		t.Fatal(err)
	}
	if err := sdkExp.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}

	got := newCaptureServer(t)
	exp, err := NewOTLPTraceExporter(ctx, otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(got.URL)))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time with the buffers of the first
		if err := exp.ExportSpans(ctx, spans); err != nil {
			t.Fatal(err)
		}
		if w, g := want.take(t), got.take(t); !proto.Equal(w, g) {
			t.Fatalf("requests differ:\notlptrace: %v\nours:      %v", w, g)
		}
		want.bodies = nil
		if err := sdkExp.ExportSpans(ctx, spans); err != nil {
			t.Fatal(err)
		}
	}
	if err := exp.ExportSpans(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOTLPTraceExporterWithJSONFromEnv: with the variables asking for OTLP/HTTP JSON,
// which the client encodes from the message, the spans still get there.
func TestOTLPTraceExporterWithJSONFromEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
	srv := newCaptureServer(t)
	ctx := context.Background()
	exp, err := NewOTLPTraceExporter(ctx, otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(ctx, testSpans(t)); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.bodies) != 1 || !strings.Contains(string(srv.bodies[0]), `"name":"root"`) {
		t.Fatalf("want one JSON request with the spans, got %q", srv.bodies)
	}
}

// BenchmarkOTLPExport compares the cost per span of otlptrace and NewOTLPTraceExporter,
// on spans like the engine's, to a local sink.
//
//	go test -run '^$' -bench OTLPExport -benchmem .
func BenchmarkOTLPExport(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer sink.Close()
	rec := tracetest.NewSpanRecorder()
	tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer(instrumentationName)
	for i := range 512 {
		_, s := tr.Start(context.Background(), spanActivity)
		s.SetAttributes(attrExecutionID.String("20261127T143159-d7182a874838177e"), attrSeq.Int(i), attrActivity.String("work"), attrAttempt.Int(1),
			attrQueue.String("default"), attrWorkerID.String("host-1234-abcd"), attrOutcome.String("completed"))
		s.End()
	}
	spans := rec.Ended()
	ctx := context.Background()
	sdkExp, _ := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(sink.URL))
	ours, _ := NewOTLPTraceExporter(ctx, otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(sink.URL)))
	for _, c := range []struct {
		name string
		exp  sdktrace.SpanExporter
	}{{"otlptrace", sdkExp}, {"stent", ours}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if err := c.exp.ExportSpans(ctx, spans); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(spans)), "ns/span")
		})
	}
}
