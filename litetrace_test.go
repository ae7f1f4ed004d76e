package stent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// captureClient is an OTLP client that keeps what it is asked to send, decoded.
type captureClient struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (*captureClient) Start(context.Context) error { return nil }
func (*captureClient) Stop(context.Context) error  { return nil }
func (c *captureClient) UploadTraces(_ context.Context, rss []*tracepb.ResourceSpans) error {
	for _, rs := range rss {
		b, err := proto.Marshal(rs)
		if err != nil {
			return err
		}
		var got tracepb.ResourceSpans
		if err := proto.Unmarshal(b, &got); err != nil {
			return err
		}
		c.mu.Lock()
		for _, ss := range got.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
		c.mu.Unlock()
	}
	return nil
}

func pbAttr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			if _, ok := kv.Value.Value.(*commonpb.AnyValue_IntValue); ok {
				return fmt.Sprint(kv.Value.GetIntValue())
			}
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// Spans exported by Stent's OTLP encoder go back to the pool and are started again:
// every exported span still says what was set on it, and a handle kept past End (its
// record recycled and perhaps another span's by now) changes nothing.
func TestLiteSpansRecycledAfterExport(t *testing.T) {
	client := &captureClient{}
	tp := newLiteProvider(resource.Default(), sdktrace.ParentBased(sdktrace.AlwaysSample()), &otlpExporter{client: client})
	if !tp.recycle {
		t.Fatal("the provider does not recycle spans exported by otlpExporter")
	}
	tr := tp.Tracer("test")
	ctx := context.Background()
	var stale []trace.Span
	const rounds, perRound = 5, 300
	for r := range rounds {
		var wg sync.WaitGroup
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perRound / 3 {
					n := r*perRound + g*(perRound/3) + i
					_, s := tr.Start(ctx, fmt.Sprintf("span-%d", n), trace.WithAttributes(attribute.Int("n", n)))
					s.SetAttributes(attribute.String("name", fmt.Sprintf("span-%d", n)))
					s.AddEvent("step", trace.WithAttributes(attribute.Int("n", n)))
					s.End()
				}
			}()
		}
		wg.Wait()
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		// Handles of the last round, their records recycled: all of this must do nothing.
		for _, s := range stale {
			s.SetAttributes(attribute.String("name", "stale"))
			s.AddEvent("stale")
			s.SetStatus(codes.Error, "stale")
			s.End()
			if s.IsRecording() {
				t.Fatal("a recycled span's handle says it is recording")
			}
		}
		stale = stale[:0]
		for range 10 {
			_, s := tr.Start(ctx, "kept")
			s.End()
			stale = append(stale, s)
		}
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range client.spans {
		if s.Name == "kept" {
			if len(s.Attributes) != 0 || len(s.Events) != 0 || s.Status.GetCode() != tracepb.Status_STATUS_CODE_UNSET {
				t.Fatalf("a kept span got what a stale handle set: %v", s)
			}
			continue
		}
		if got := pbAttr(s, "name"); got != s.Name || pbAttr(s, "n") != strings.TrimPrefix(s.Name, "span-") {
			t.Fatalf("span %q has attributes name=%q n=%q", s.Name, got, pbAttr(s, "n"))
		}
		if len(s.Events) != 1 || s.Events[0].Name != "step" || len(s.Events[0].Attributes) != 1 ||
			fmt.Sprint(s.Events[0].Attributes[0].Value.GetIntValue()) != pbAttr(s, "n") {
			t.Fatalf("span %q has events %v", s.Name, s.Events)
		}
		if seen[s.Name] {
			t.Fatalf("span %q exported twice", s.Name)
		}
		seen[s.Name] = true
	}
	if len(seen) != rounds*perRound {
		t.Fatalf("%d spans exported, want %d", len(seen), rounds*perRound)
	}
}

// newLiteForTest is a lite provider exporting to a recorder that keeps spans.
func newLiteForTest(t *testing.T) (trace.Tracer, *liteRecorder) {
	t.Helper()
	tp, rec := newLiteTracer()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("test"), rec
}

// The lite provider's spans behave as the SDK's do.
func TestLiteSpanSemantics(t *testing.T) {
	t.Setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3")
	tr, rec := newLiteForTest(t)
	ctx, parent := tr.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer))
	_, child := tr.Start(ctx, "child", trace.WithAttributes(attribute.Int("a", 1)))
	child.SetAttributes(attribute.Int("a", 2), attribute.Int("b", 1), attribute.Int("c", 1), attribute.Int("d", 1))
	child.RecordError(errors.New("boom"))
	child.SetStatus(codes.Error, "failed")
	child.SetStatus(codes.Unset, "ignored")
	child.SetName("renamed")
	child.End()
	if child.IsRecording() {
		t.Fatal("an ended span is recording")
	}
	child.SetAttributes(attribute.Int("late", 1)) // ignored: ended
	_, root := tr.Start(ctx, "root", trace.WithNewRoot())
	root.SetStatus(codes.Ok, "")
	root.SetStatus(codes.Error, "ignored: Ok is final")
	root.End()
	func() {
		defer func() { _ = recover() }()
		_, p := tr.Start(ctx, "panics")
		defer p.End()
		panic("oops")
	}()
	parent.End()

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	c, p, r, pn := spans["renamed"], spans["parent"], spans["root"], spans["panics"]
	if c == nil || p == nil || r == nil || pn == nil {
		t.Fatalf("spans recorded: %v", spans)
	}
	if c.Parent().SpanID() != p.SpanContext().SpanID() || c.SpanContext().TraceID() != p.SpanContext().TraceID() {
		t.Fatal("child is not under its parent")
	}
	if r.Parent().IsValid() || r.SpanContext().TraceID() == p.SpanContext().TraceID() {
		t.Fatal("WithNewRoot span has a parent or the parent's trace")
	}
	if got := attrs2(c.Attributes()); got != "a=2 b=1 c=1 " || c.DroppedAttributes() != 1 {
		t.Fatalf("child attributes %q, %d dropped; want a=2 b=1 c=1, 1 dropped", got, c.DroppedAttributes())
	}
	if ev := c.Events(); len(ev) != 1 || ev[0].Name != "exception" || ev[0].Time.IsZero() {
		t.Fatalf("child events %v, want one exception", ev)
	}
	if st := c.Status(); st.Code != codes.Error || st.Description != "failed" {
		t.Fatalf("child status %v", st)
	}
	if st := r.Status(); st.Code != codes.Ok || st.Description != "" {
		t.Fatalf("root status %v, want Ok", st)
	}
	if p.SpanKind() != trace.SpanKindServer || c.SpanKind() != trace.SpanKindInternal {
		t.Fatalf("kinds %v %v", p.SpanKind(), c.SpanKind())
	}
	if p.ChildSpanCount() != 2 { // child and panics; root is a new root
		t.Fatalf("parent has %d children, want 2", p.ChildSpanCount())
	}
	if ev := pn.Events(); len(ev) != 1 || ev[0].Name != "exception" || !strings.Contains(attrs2(ev[0].Attributes), "oops") {
		t.Fatalf("panicking span's events %v, want the panic", ev)
	}
	if !c.EndTime().After(c.StartTime()) && !c.EndTime().Equal(c.StartTime()) {
		t.Fatal("end before start")
	}
}

func attrs2(kvs []attribute.KeyValue) string {
	var b bytes.Buffer
	for _, kv := range kvs {
		fmt.Fprintf(&b, "%s=%s ", kv.Key, kv.Value.Emit())
	}
	return b.String()
}

// OTEL_TRACES_SAMPLER decides which spans record; a value it cannot use is an error.
func TestLiteSampler(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	for _, c := range []struct {
		sampler, arg string
		want         int // spans written of a root and its child
		bad          bool
	}{
		{"", "", 2, false},
		{"always_off", "", 0, false},
		{"parentbased_always_off", "", 0, false},
		{"traceidratio", "0", 0, false},
		{"parentbased_traceidratio", "1", 2, false},
		{"sometimes", "", 0, true},
		{"traceidratio", "2", 0, true},
	} {
		t.Run(c.sampler+c.arg, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_SAMPLER", c.sampler)
			t.Setenv("OTEL_TRACES_SAMPLER_ARG", c.arg)
			var out bytes.Buffer
			tp, shutdown, err := NewTracerProviderFromEnv(context.Background(), &out)
			if c.bad {
				var ie *InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER") {
					t.Fatalf("err = %v, want an InputError naming the variable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tr := tp.Tracer("test")
			ctx, root := tr.Start(context.Background(), "root")
			_, child := tr.Start(ctx, "child")
			child.End()
			root.End()
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out.String(), `"SpanContext"`); n != c.want {
				t.Fatalf("%d spans written, want %d:\n%s", n, c.want, out.String())
			}
		})
	}
}
