package stent

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// NewOTLPTraceExporter returns a span exporter that sends spans through client (such as
// otlptracehttp.NewClient()) as otlptrace.New does, but cheaper: it writes the spans
// straight in the protobuf wire format, where otlptrace builds a message of them and
// then marshals it, a few allocations per attribute. The client does everything else
// (endpoint, headers, compression, TLS, retries); the request is the same (the client's
// experimental self-observability metrics, which count the spans of the message, count
// none). NewTracerProviderFromEnv uses it for OTEL_TRACES_EXPORTER=otlp.
//
// The client must send protobuf (otlptracehttp's default, or otlptracegrpc): a client
// that sends JSON writes the message itself and would find it empty. When
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (or OTEL_EXPORTER_OTLP_PROTOCOL) asks for http/json,
// NewOTLPTraceExporter returns otlptrace.New(ctx, client); give a client built with
// otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON) to otlptrace.New yourself.
func NewOTLPTraceExporter(ctx context.Context, client otlptrace.Client) (sdktrace.SpanExporter, error) {
	if otlpJSONFromEnv() {
		return otlptrace.New(ctx, client)
	}
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	return &otlpExporter{client: client}, nil
}

// otlpJSONFromEnv reports whether the OTEL_* variables ask OTLP/HTTP clients to send
// traces as JSON.
func otlpJSONFromEnv() bool {
	p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	return strings.TrimSpace(p) == "http/json"
}

// maxKeptBuffer bounds the encoding buffer an exporter keeps between exports.
const maxKeptBuffer = 4 << 20

type otlpExporter struct {
	client otlptrace.Client

	// mu keeps one export at a time (the SDK's processors export one batch at a time
	// anyway) so that buf can be reused.
	mu       sync.Mutex
	buf      []byte
	groups   []spanGroup
	stopOnce sync.Once
}

// spanGroup is the spans of a batch that share a resource and instrumentation scope;
// OTLP nests them as ResourceSpans > ScopeSpans > Span.
type spanGroup struct {
	res   *resource.Resource
	scope instrumentation.Scope
	spans []sdktrace.ReadOnlySpan
	done  bool // encoded, with an earlier group of its resource
}

func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	groups := e.group(spans)
	if len(groups) == 0 {
		return nil
	}
	// One ResourceSpans per resource, its encoded fields held as unknown fields: the
	// client's marshaling copies them to the request as they are.
	buf := e.buf[:0]
	var rss []*tracepb.ResourceSpans
	var ends []int
	for i := range groups {
		if groups[i].done {
			continue
		}
		buf = appendResourceSpans(buf, groups, i)
		rss = append(rss, &tracepb.ResourceSpans{})
		ends = append(ends, len(buf))
	}
	start := 0
	for i, rs := range rss {
		rs.ProtoReflect().SetUnknown(buf[start:ends[i]:ends[i]])
		start = ends[i]
	}
	err := e.client.UploadTraces(ctx, rss)
	if cap(buf) <= maxKeptBuffer {
		e.buf = buf
	} else {
		e.buf = nil
	}
	for i := range groups {
		clear(groups[i].spans)
	}
	if err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	return nil
}

// group sorts spans by resource and scope, keeping their order within each.
func (e *otlpExporter) group(spans []sdktrace.ReadOnlySpan) []spanGroup {
	groups := e.groups[:0]
	last := -1
	for _, s := range spans {
		if s == nil {
			continue
		}
		res, scope := s.Resource(), s.InstrumentationScope()
		if last < 0 || groups[last].res != res || groups[last].scope != scope {
			last = -1
			for i := range groups {
				if groups[i].res == res && groups[i].scope == scope {
					last = i
					break
				}
			}
			if last < 0 {
				if len(groups) < cap(groups) {
					groups = groups[:len(groups)+1]
					groups[len(groups)-1].res, groups[len(groups)-1].scope = res, scope
					groups[len(groups)-1].spans = groups[len(groups)-1].spans[:0]
				} else {
					groups = append(groups, spanGroup{res: res, scope: scope})
				}
				last = len(groups) - 1
			}
		}
		groups[last].spans = append(groups[last].spans, s)
	}
	for i := range groups {
		groups[i].done = false
	}
	e.groups = groups
	return groups
}

func (e *otlpExporter) Shutdown(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() { err = e.client.Stop(ctx) })
	return err
}

// ---- the OTLP protobuf wire format (opentelemetry/proto/trace/v1/trace.proto) ----

const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

func appendTag(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wire))
}

func appendString(b []byte, field int, s string) []byte {
	b = appendTag(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, field int, p []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendVarint(b []byte, field int, v uint64) []byte {
	return binary.AppendUvarint(appendTag(b, field, wireVarint), v)
}

func appendFixed64(b []byte, field int, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(appendTag(b, field, wireFixed64), v)
}

func appendFixed32(b []byte, field int, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(appendTag(b, field, wireFixed32), v)
}

// maxLenSize is the room left for a nested message's length before its body is known.
const maxLenSize = 5

// openMessage starts a nested message field; closeMessage writes its length once the
// body is appended, moving the body back over the room it did not need.
func openMessage(b []byte, field int) ([]byte, int) {
	b = appendTag(b, field, wireBytes)
	return append(b, make([]byte, maxLenSize)...), len(b)
}

func closeMessage(b []byte, at int) []byte {
	n := len(b) - at - maxLenSize
	var l [binary.MaxVarintLen64]byte
	ln := binary.PutUvarint(l[:], uint64(n))
	copy(b[at:], l[:ln])
	copy(b[at+ln:], b[at+maxLenSize:])
	return b[:at+ln+n]
}

// appendResourceSpans writes the fields of the ResourceSpans of groups[i]'s resource:
// its scope spans are those of every group of that resource from i on.
func appendResourceSpans(b []byte, groups []spanGroup, i int) []byte {
	res := groups[i].res
	if res != nil {
		var at int
		b, at = openMessage(b, 1) // resource
		iter := res.Iter()
		for iter.Next() {
			b = appendKeyValue(b, 1, iter.Attribute())
		}
		b = closeMessage(b, at)
	}
	for j := i; j < len(groups); j++ {
		if groups[j].res == res {
			b = appendScopeSpans(b, &groups[j])
			groups[j].done = true
		}
	}
	if res != nil && res.SchemaURL() != "" {
		b = appendString(b, 3, res.SchemaURL())
	}
	return b
}

func appendScopeSpans(b []byte, g *spanGroup) []byte {
	b, at := openMessage(b, 2) // scope_spans
	if g.scope != (instrumentation.Scope{}) {
		var sat int
		b, sat = openMessage(b, 1) // scope
		if g.scope.Name != "" {
			b = appendString(b, 1, g.scope.Name)
		}
		if g.scope.Version != "" {
			b = appendString(b, 2, g.scope.Version)
		}
		iter := g.scope.Attributes.Iter()
		for iter.Next() {
			b = appendKeyValue(b, 3, iter.Attribute())
		}
		b = closeMessage(b, sat)
	}
	for _, s := range g.spans {
		b = appendSpan(b, 2, s)
	}
	if g.scope.SchemaURL != "" {
		b = appendString(b, 3, g.scope.SchemaURL)
	}
	return closeMessage(b, at)
}

func appendSpan(b []byte, field int, s sdktrace.ReadOnlySpan) []byte {
	b, at := openMessage(b, field)
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, 1, tid[:])
	b = appendBytes(b, 2, sid[:])
	if ts := sc.TraceState().String(); ts != "" {
		b = appendString(b, 3, ts)
	}
	parent := s.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, 4, psid[:])
	}
	b = appendString(b, 5, s.Name())
	if k := spanKindOf(s.SpanKind()); k != 0 {
		b = appendVarint(b, 6, k)
	}
	if t := s.StartTime().UnixNano(); t > 0 {
		b = appendFixed64(b, 7, uint64(t))
	}
	if t := s.EndTime().UnixNano(); t > 0 {
		b = appendFixed64(b, 8, uint64(t))
	}
	for _, kv := range s.Attributes() {
		b = appendKeyValue(b, 9, kv)
	}
	if n := s.DroppedAttributes(); n > 0 {
		b = appendVarint(b, 10, uint64(clampCount(n)))
	}
	for _, ev := range s.Events() {
		var eat int
		b, eat = openMessage(b, 11)
		if t := ev.Time.UnixNano(); t > 0 {
			b = appendFixed64(b, 1, uint64(t))
		}
		if ev.Name != "" {
			b = appendString(b, 2, ev.Name)
		}
		for _, kv := range ev.Attributes {
			b = appendKeyValue(b, 3, kv)
		}
		if ev.DroppedAttributeCount > 0 {
			b = appendVarint(b, 4, uint64(clampCount(ev.DroppedAttributeCount)))
		}
		b = closeMessage(b, eat)
	}
	if n := s.DroppedEvents(); n > 0 {
		b = appendVarint(b, 12, uint64(clampCount(n)))
	}
	for _, l := range s.Links() {
		var lat int
		b, lat = openMessage(b, 13)
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		b = appendBytes(b, 1, ltid[:])
		b = appendBytes(b, 2, lsid[:])
		if ts := l.SpanContext.TraceState().String(); ts != "" {
			b = appendString(b, 3, ts)
		}
		for _, kv := range l.Attributes {
			b = appendKeyValue(b, 4, kv)
		}
		if l.DroppedAttributeCount > 0 {
			b = appendVarint(b, 5, uint64(clampCount(l.DroppedAttributeCount)))
		}
		b = appendFixed32(b, 6, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		b = closeMessage(b, lat)
	}
	if n := s.DroppedLinks(); n > 0 {
		b = appendVarint(b, 14, uint64(clampCount(n)))
	}
	// The status is always present, as otlptrace writes it.
	var sat int
	b, sat = openMessage(b, 15)
	st := s.Status()
	if st.Description != "" {
		b = appendString(b, 2, st.Description)
	}
	if c := statusCodeOf(st.Code); c != 0 {
		b = appendVarint(b, 3, c)
	}
	b = closeMessage(b, sat)
	b = appendFixed32(b, 16, spanFlags(sc.TraceFlags(), parent))
	return closeMessage(b, at)
}

// spanFlags: the W3C trace flags, and whether the parent is known to be remote.
func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	const hasIsRemote, isRemote = 0x100, 0x200
	f := uint32(tf) | hasIsRemote
	if parent.IsRemote() {
		f |= isRemote
	}
	return f
}

func spanKindOf(k trace.SpanKind) uint64 {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0
}

func statusCodeOf(c codes.Code) uint64 {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

func clampCount(n int) uint32 {
	if n < 0 {
		return 0
	}
	if n > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendKeyValue(b []byte, field int, kv attribute.KeyValue) []byte {
	// The common scalar values, their lengths known up front.
	var valueLen int // of the AnyValue's body
	switch kv.Value.Type() {
	case attribute.STRING:
		n := len(kv.Value.AsString())
		valueLen = 1 + uvarintLen(uint64(n)) + n
	case attribute.INT64:
		valueLen = 1 + uvarintLen(uint64(kv.Value.AsInt64()))
	case attribute.BOOL:
		valueLen = 2
	case attribute.FLOAT64:
		valueLen = 9
	}
	if valueLen > 0 {
		n := 1 + uvarintLen(uint64(valueLen)) + valueLen
		if kv.Key != "" {
			n += 1 + uvarintLen(uint64(len(kv.Key))) + len(kv.Key)
		}
		b = appendTag(b, field, wireBytes)
		b = binary.AppendUvarint(b, uint64(n))
		if kv.Key != "" {
			b = appendString(b, 1, string(kv.Key))
		}
		b = appendTag(b, 2, wireBytes)
		b = binary.AppendUvarint(b, uint64(valueLen))
		switch kv.Value.Type() {
		case attribute.STRING:
			return appendString(b, 1, kv.Value.AsString())
		case attribute.INT64:
			return appendVarint(b, 3, uint64(kv.Value.AsInt64()))
		case attribute.BOOL:
			if kv.Value.AsBool() {
				return appendVarint(b, 2, 1)
			}
			return appendVarint(b, 2, 0)
		default:
			return appendFixed64(b, 4, math.Float64bits(kv.Value.AsFloat64()))
		}
	}
	b, at := openMessage(b, field)
	if kv.Key != "" {
		b = appendString(b, 1, string(kv.Key))
	}
	b = appendAnyValue(b, 2, kv.Value)
	return closeMessage(b, at)
}

// appendAnyValue writes v as an AnyValue, as otlptrace does.
func appendAnyValue(b []byte, field int, v attribute.Value) []byte {
	b, at := openMessage(b, field)
	switch v.Type() {
	case attribute.EMPTY:
	case attribute.BOOL:
		var x uint64
		if v.AsBool() {
			x = 1
		}
		b = appendVarint(b, 2, x)
	case attribute.INT64:
		b = appendVarint(b, 3, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = appendFixed64(b, 4, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = appendString(b, 1, v.AsString())
	case attribute.BYTESLICE:
		b = appendBytes(b, 7, v.AsByteSlice())
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.SLICE:
		var aat int
		b, aat = openMessage(b, 5) // array_value
		switch v.Type() {
		case attribute.BOOLSLICE:
			b = appendValues(b, v.AsBoolSlice(), attribute.BoolValue)
		case attribute.INT64SLICE:
			b = appendValues(b, v.AsInt64Slice(), attribute.Int64Value)
		case attribute.FLOAT64SLICE:
			b = appendValues(b, v.AsFloat64Slice(), attribute.Float64Value)
		case attribute.STRINGSLICE:
			b = appendValues(b, v.AsStringSlice(), attribute.StringValue)
		case attribute.SLICE:
			b = appendValues(b, v.AsSlice(), func(x attribute.Value) attribute.Value { return x })
		}
		b = closeMessage(b, aat)
	case attribute.MAP:
		var mat int
		b, mat = openMessage(b, 6) // kvlist_value
		for _, kv := range v.AsMap() {
			b = appendKeyValue(b, 1, kv)
		}
		b = closeMessage(b, mat)
	default:
		b = appendString(b, 1, "INVALID")
	}
	return closeMessage(b, at)
}

// appendValues appends xs as the values (field 1) of an ArrayValue.
func appendValues[T any](b []byte, xs []T, value func(T) attribute.Value) []byte {
	for _, x := range xs {
		b = appendAnyValue(b, 1, value(x))
	}
	return b
}
