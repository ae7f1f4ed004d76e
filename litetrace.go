package stent

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// The TracerProvider of NewTracerProviderFromEnv (the CLI's tracing) is this one rather
// than the SDK's: the same spans, sampler (OTEL_TRACES_SAMPLER), limits
// (OTEL_SPAN_*_LIMIT) and exporters, at a fraction of the memory. The SDK allocates about
// 1.4 KB per span (the span, its attribute list, a snapshot at End); on a sequential
// step, with its two spans, that fresh memory cost more than the spans' own work, in
// cache misses and collections, and slowed the step's database work measurably. Here a
// span's record holds its first attributes inline and, when the exporter is Stent's OTLP
// encoder (which keeps nothing of a span once it has encoded it), goes back to a pool
// after export. What a caller holds is a small handle naming the record and its
// generation, so a handle kept past End (a goroutine an activity left running) finds a
// recycled record no longer its own and does nothing, as on an ended SDK span.

// liteProvider is a trace.TracerProvider recording spans as liteSpans.
type liteProvider struct {
	embedded.TracerProvider

	res     *resource.Resource
	sampler sdktrace.Sampler
	limits  sdktrace.SpanLimits
	proc    *batchProcessor
	recycle bool // the exporter keeps nothing: records go back to the pool after export

	mu      sync.Mutex
	tracers map[instrumentation.Scope]*liteTracer
	stopped atomic.Bool
}

// newLiteProvider returns a provider exporting to exp through a batchProcessor, with
// the span limits the OTEL_SPAN_* variables give (as sdktrace.NewTracerProvider reads
// them).
func newLiteProvider(res *resource.Resource, sampler sdktrace.Sampler, exp sdktrace.SpanExporter) *liteProvider {
	_, recycle := exp.(*otlpExporter)
	return &liteProvider{
		res: res, sampler: sampler, limits: sdktrace.NewSpanLimits(), proc: newBatchProcessor(exp), recycle: recycle,
		tracers: map[instrumentation.Scope]*liteTracer{},
	}
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
			return nil, &InputError{Err: fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%s: want a ratio between 0 and 1", arg)}
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
	return nil, &InputError{Err: fmt.Errorf("OTEL_TRACES_SAMPLER=%s is not supported: use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)}
}

func (p *liteProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	c := trace.NewTracerConfig(opts...)
	scope := instrumentation.Scope{Name: name, Version: c.InstrumentationVersion(), SchemaURL: c.SchemaURL(),
		Attributes: c.InstrumentationAttributes()}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tracers[scope]
	if !ok {
		t = &liteTracer{p: p, scope: scope}
		p.tracers[scope] = t
	}
	return t
}

// ForceFlush exports the spans ended so far.
func (p *liteProvider) ForceFlush(ctx context.Context) error { return p.proc.ForceFlush(ctx) }

// Shutdown exports the spans ended so far and stops the exporter; spans started
// afterwards do not record.
func (p *liteProvider) Shutdown(ctx context.Context) error {
	p.stopped.Store(true)
	return p.proc.Shutdown(ctx)
}

type liteTracer struct {
	embedded.Tracer
	p     *liteProvider
	scope instrumentation.Scope
}

// liteSpans holds recycled records.
var liteSpans = sync.Pool{New: func() any { return new(liteSpan) }}

func (t *liteTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	c := trace.NewSpanStartConfig(opts...)
	if ctx == nil {
		ctx = context.Background()
	}
	parentSpan := trace.SpanFromContext(ctx)
	parent := parentSpan.SpanContext()
	if c.NewRoot() {
		parent = trace.SpanContext{}
	}
	var tid trace.TraceID
	var sid trace.SpanID
	if parent.IsValid() {
		tid, sid = parent.TraceID(), idGenerator{}.NewSpanID(ctx, parent.TraceID())
	} else {
		tid, sid = idGenerator{}.NewIDs(ctx)
	}
	psc := parent
	sctx := ctx
	if c.NewRoot() {
		sctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	res := t.p.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: sctx, TraceID: tid, Name: name, Kind: c.SpanKind(), Attributes: c.Attributes(), Links: c.Links(),
	})
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceState: res.Tracestate}
	if res.Decision == sdktrace.RecordAndSample {
		cfg.TraceFlags = psc.TraceFlags() | trace.FlagsSampled
	} else {
		cfg.TraceFlags = psc.TraceFlags() &^ trace.FlagsSampled
	}
	sc := trace.NewSpanContext(cfg)
	if res.Decision == sdktrace.Drop || t.p.stopped.Load() {
		h := &liteHandle{sc: sc, tp: t.p}
		return trace.ContextWithSpan(ctx, h), h
	}
	s := liteSpans.Get().(*liteSpan)
	s.mu.Lock()
	gen := s.gen
	s.tracer, s.name, s.sc, s.parent, s.kind = t, name, sc, psc, c.SpanKind()
	if s.kind == trace.SpanKindUnspecified {
		s.kind = trace.SpanKindInternal
	}
	s.start = c.Timestamp()
	if s.start.IsZero() {
		s.start = time.Now()
	}
	s.attrs = s.attrBuf[:0]
	s.addAttrs(res.Attributes)
	s.addAttrs(c.Attributes())
	for _, l := range c.Links() {
		s.addLink(l)
	}
	s.mu.Unlock()
	if ph, ok := parentSpan.(*liteHandle); ok && !c.NewRoot() {
		ph.childStarted()
	}
	h := &liteHandle{s: s, gen: gen, sc: sc, tp: t.p}
	return trace.ContextWithSpan(ctx, h), h
}

// liteSpan is a span's record, reused once exported (see liteProvider). Once ended it is
// not written until recycled, so exporters read it without its lock.
type liteSpan struct {
	sdktrace.ReadOnlySpan // never set: its unexported method lets liteSpan be one

	mu       sync.Mutex
	gen      uint64 // counts recyclings; a handle of another generation is stale
	ended    bool
	tracer   *liteTracer
	name     string
	sc       trace.SpanContext
	parent   trace.SpanContext
	kind     trace.SpanKind
	start    time.Time
	end      time.Time
	attrs    []attribute.KeyValue
	attrBuf  [10]attribute.KeyValue
	events   []sdktrace.Event
	links    []sdktrace.Link
	status   sdktrace.Status
	children int

	droppedAttrs, droppedEvents, droppedLinks int
}

// addAttrs sets attributes as the SDK does: a key set again takes its new value, a
// new key beyond the count limit is dropped, strings are cut to the length limit.
func (s *liteSpan) addAttrs(kvs []attribute.KeyValue) {
	limit := s.tracer.p.limits.AttributeCountLimit
next:
	for _, kv := range kvs {
		if !kv.Valid() {
			s.droppedAttrs++
			continue
		}
		kv = truncateAttr(kv, s.tracer.p.limits.AttributeValueLengthLimit)
		for i := range s.attrs {
			if s.attrs[i].Key == kv.Key {
				s.attrs[i] = kv
				continue next
			}
		}
		if limit >= 0 && len(s.attrs) >= limit {
			s.droppedAttrs++
			continue
		}
		s.attrs = append(s.attrs, kv)
	}
}

// truncateAttr cuts string values to limit bytes, at a rune boundary (limit < 0: none).
func truncateAttr(kv attribute.KeyValue, limit int) attribute.KeyValue {
	if limit < 0 {
		return kv
	}
	cut := func(s string) string {
		if len(s) <= limit {
			return s
		}
		n := limit
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:n]
	}
	switch kv.Value.Type() {
	case attribute.STRING:
		if v := kv.Value.AsString(); len(v) > limit {
			return kv.Key.String(cut(v))
		}
	case attribute.STRINGSLICE:
		vs := kv.Value.AsStringSlice()
		for i := range vs {
			vs[i] = cut(vs[i])
		}
		return kv.Key.StringSlice(vs)
	}
	return kv
}

func (s *liteSpan) addLink(l trace.Link) {
	if !l.SpanContext.IsValid() && len(l.Attributes) == 0 {
		return
	}
	if limit := s.tracer.p.limits.LinkCountLimit; limit >= 0 && len(s.links) >= limit {
		s.droppedLinks++
		return
	}
	attrs, dropped := limitAttrs(l.Attributes, s.tracer.p.limits.AttributePerLinkCountLimit)
	s.links = append(s.links, sdktrace.Link{SpanContext: l.SpanContext, Attributes: attrs, DroppedAttributeCount: dropped})
}

func (s *liteSpan) addEvent(name string, opts ...trace.EventOption) {
	c := trace.NewEventConfig(opts...)
	if limit := s.tracer.p.limits.EventCountLimit; limit >= 0 && len(s.events) >= limit {
		s.droppedEvents++
		return
	}
	attrs, dropped := limitAttrs(c.Attributes(), s.tracer.p.limits.AttributePerEventCountLimit)
	at := c.Timestamp()
	if at.IsZero() {
		at = time.Now()
	}
	s.events = append(s.events, sdktrace.Event{Name: name, Attributes: attrs, DroppedAttributeCount: dropped, Time: at})
}

// limitAttrs keeps the first limit attributes (limit < 0: all).
func limitAttrs(kvs []attribute.KeyValue, limit int) ([]attribute.KeyValue, int) {
	if limit >= 0 && len(kvs) > limit {
		return kvs[:limit], len(kvs) - limit
	}
	return kvs, 0
}

// recycle puts an exported record back in the pool, when the exporter keeps nothing.
func (s *liteSpan) recycle() {
	if !s.tracer.p.recycle {
		return
	}
	s.mu.Lock()
	s.gen++
	s.ended = false
	s.tracer, s.name = nil, ""
	s.sc, s.parent = trace.SpanContext{}, trace.SpanContext{}
	clear(s.attrs)
	s.attrs = nil
	clear(s.events)
	s.events = s.events[:0]
	clear(s.links)
	s.links = s.links[:0]
	s.status = sdktrace.Status{}
	s.children, s.droppedAttrs, s.droppedEvents, s.droppedLinks = 0, 0, 0, 0
	s.mu.Unlock()
	liteSpans.Put(s)
}

// The ReadOnlySpan view, read by exporters once the span has ended.

func (s *liteSpan) Name() string                                { return s.name }
func (s *liteSpan) SpanContext() trace.SpanContext              { return s.sc }
func (s *liteSpan) Parent() trace.SpanContext                   { return s.parent }
func (s *liteSpan) SpanKind() trace.SpanKind                    { return s.kind }
func (s *liteSpan) StartTime() time.Time                        { return s.start }
func (s *liteSpan) EndTime() time.Time                          { return s.end }
func (s *liteSpan) Attributes() []attribute.KeyValue            { return s.attrs }
func (s *liteSpan) Links() []sdktrace.Link                      { return s.links }
func (s *liteSpan) Events() []sdktrace.Event                    { return s.events }
func (s *liteSpan) Status() sdktrace.Status                     { return s.status }
func (s *liteSpan) InstrumentationScope() instrumentation.Scope { return s.tracer.scope }

//nolint:staticcheck // part of sdktrace.ReadOnlySpan
func (s *liteSpan) InstrumentationLibrary() instrumentation.Library { return s.tracer.scope }
func (s *liteSpan) Resource() *resource.Resource                    { return s.tracer.p.res }
func (s *liteSpan) DroppedAttributes() int                          { return s.droppedAttrs }
func (s *liteSpan) DroppedLinks() int                               { return s.droppedLinks }
func (s *liteSpan) DroppedEvents() int                              { return s.droppedEvents }
func (s *liteSpan) ChildSpanCount() int                             { return s.children }

// liteHandle is the trace.Span a caller holds: a record and its generation (s nil: a
// span that does not record, such as one the sampler dropped).
type liteHandle struct {
	embedded.Span
	s   *liteSpan
	gen uint64
	sc  trace.SpanContext
	tp  *liteProvider
}

// lock locks the record and reports whether it is still this handle's and recording;
// when it returns false nothing is locked.
func (h *liteHandle) lock() bool {
	if h.s == nil {
		return false
	}
	h.s.mu.Lock()
	if h.s.gen != h.gen || h.s.ended {
		h.s.mu.Unlock()
		return false
	}
	return true
}

func (h *liteHandle) SpanContext() trace.SpanContext       { return h.sc }
func (h *liteHandle) TracerProvider() trace.TracerProvider { return h.tp }

func (h *liteHandle) IsRecording() bool {
	if !h.lock() {
		return false
	}
	h.s.mu.Unlock()
	return true
}

func (h *liteHandle) End(opts ...trace.SpanEndOption) {
	if h.s == nil {
		return
	}
	now := time.Now()
	if !h.lock() {
		return
	}
	s := h.s
	c := trace.NewSpanEndConfig(opts...)
	if r := recover(); r != nil {
		// Ended by a deferred call while panicking: record it, as the SDK does, and go on panicking.
		defer panic(r)
		attrs := []attribute.KeyValue{attribute.String("exception.type", typeString(r)), attribute.String("exception.message", fmt.Sprint(r))}
		if c.StackTrace() {
			attrs = append(attrs, attribute.String("exception.stacktrace", stackTrace()))
		}
		s.addEvent("exception", trace.WithAttributes(attrs...))
	}
	s.end = c.Timestamp()
	if s.end.IsZero() {
		s.end = now
	}
	s.ended = true
	s.mu.Unlock()
	if !s.sc.IsSampled() || !s.tracer.p.proc.add(s) {
		s.recycle()
	}
}

func (h *liteHandle) AddEvent(name string, opts ...trace.EventOption) {
	if !h.lock() {
		return
	}
	h.s.addEvent(name, opts...)
	h.s.mu.Unlock()
}

func (h *liteHandle) AddLink(l trace.Link) {
	if !h.lock() {
		return
	}
	h.s.addLink(l)
	h.s.mu.Unlock()
}

func (h *liteHandle) RecordError(err error, opts ...trace.EventOption) {
	if err == nil || !h.lock() {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("exception.type", typeString(err)), attribute.String("exception.message", err.Error())}
	if c := trace.NewEventConfig(opts...); c.StackTrace() {
		attrs = append(attrs, attribute.String("exception.stacktrace", stackTrace()))
	}
	h.s.addEvent("exception", append(opts[:len(opts):len(opts)], trace.WithAttributes(attrs...))...)
	h.s.mu.Unlock()
}

func (h *liteHandle) SetStatus(code codes.Code, description string) {
	if !h.lock() {
		return
	}
	s := h.s
	// As the SDK: Ok is final; Unset changes nothing; only Error keeps a description.
	if s.status.Code != codes.Ok && code != codes.Unset {
		s.status = sdktrace.Status{Code: code}
		if code == codes.Error {
			s.status.Description = description
		}
	}
	s.mu.Unlock()
}

func (h *liteHandle) SetName(name string) {
	if !h.lock() {
		return
	}
	h.s.name = name
	h.s.mu.Unlock()
}

func (h *liteHandle) SetAttributes(kvs ...attribute.KeyValue) {
	if !h.lock() {
		return
	}
	h.s.addAttrs(kvs)
	h.s.mu.Unlock()
}

// childStarted counts a child span started under this one.
func (h *liteHandle) childStarted() {
	if !h.lock() {
		return
	}
	h.s.children++
	h.s.mu.Unlock()
}

// typeString names a value's type as the SDK's exception.type does.
func typeString(v any) string {
	t := reflect.TypeOf(v)
	if t == nil {
		return "<nil>"
	}
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String() // pointers, slices and the like
	}
	return t.PkgPath() + "." + t.Name()
}

// stackTrace is the calling goroutine's stack.
func stackTrace() string {
	buf := make([]byte, 2048)
	for {
		n := runtime.Stack(buf, false)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
