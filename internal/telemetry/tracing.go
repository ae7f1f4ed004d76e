package telemetry

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// Span and attribute names. One scheme: stent.<thing>[.<field>].
const (
	spanDispatch     = "stent.dispatch"
	spanExecution    = "stent.execution"
	spanWorkflowTask = "stent.workflow_task"
	spanActivity     = "stent.activity"

	attrExecutionID      = attribute.Key("stent.execution.id")
	attrParentID         = attribute.Key("stent.execution.parent_id")
	attrScript           = attribute.Key("stent.script")
	attrEntry            = attribute.Key("stent.entry")
	attrSeq              = attribute.Key("stent.seq")
	attrActivity         = attribute.Key("stent.activity.name")
	attrAttempt          = attribute.Key("stent.attempt")
	attrQueue            = attribute.Key("stent.queue")
	attrWorkerID         = attribute.Key("stent.worker.id")
	attrOutcome          = attribute.Key("stent.outcome")
	attrExecutionOutcome = attribute.Key("stent.execution.outcome")
	attrErrorType        = attribute.Key("stent.error.type")
	attrReplay           = attribute.Key("stent.replay")
	attrSignal           = attribute.Key("stent.signal.name")
	attrTimerMS          = attribute.Key("stent.timer.duration_ms")
)

// How the execution span crosses processes: at dispatch its span context is fixed (the
// dispatch span's trace ID and a span ID derived from trace ID and execution ID) and
// stored in the execution's bundle (backend.Bundle.Trace). Workflow-task and activity
// spans, in any process, name it as their remote parent. Whoever ends the execution
// (the worker committing its last step, Cancel, the deadline task) emits the
// stent.execution span with the execution's creation time as its start and that stored
// span context as its identity, which the SDK takes from IDGenerator. A child
// execution's span is derived the same way under its parent's.

// IDGenerator returns the span ID generator a TracerProvider given to
// WithTracerProvider should use (sdktrace.WithIDGenerator(stent.IDGenerator())): random
// IDs, except for stent.execution spans, which get the ID chosen for them at dispatch.
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type forcedSpanKey struct{}

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if sc, ok := ctx.Value(forcedSpanKey{}).(trace.SpanContext); ok {
		return sc.TraceID(), sc.SpanID()
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, tid trace.TraceID) trace.SpanID {
	if sc, ok := ctx.Value(forcedSpanKey{}).(trace.SpanContext); ok && sc.TraceID() == tid {
		return sc.SpanID()
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// executionSpanID derives the span ID of an execution's span in a trace.
func executionSpanID(tid trace.TraceID, executionID string) trace.SpanID {
	sum := sha256.Sum256(append(tid[:], executionID...))
	var sid trace.SpanID
	copy(sid[:], sum[:8])
	if !sid.IsValid() {
		sid[7] = 1
	}
	return sid
}

// formatTraceparent writes a span context as a W3C traceparent header value.
func formatTraceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + hex.EncodeToString([]byte{byte(sc.TraceFlags())})
}

// parseTraceparent reads a W3C traceparent header value (version 00).
func parseTraceparent(s string) (trace.SpanContext, bool) {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}, false
	}
	tid, err1 := trace.TraceIDFromHex(s[3:35])
	sid, err2 := trace.SpanIDFromHex(s[36:52])
	var flags [1]byte
	_, err3 := hex.Decode(flags[:], []byte(s[53:]))
	if err1 != nil || err2 != nil || err3 != nil {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]), Remote: true})
	return sc, sc.IsValid()
}

// underExecution returns ctx with the execution's span (stored as traceparent) as the
// remote parent of the spans started from it.
func underExecution(ctx context.Context, traceparent string) context.Context {
	if sc, ok := parseTraceparent(traceparent); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// maxParents bounds telemetry.parents.
const maxParents = 1024

// parentEntry is a traceparent and the context naming it as the remote parent.
type parentEntry struct {
	traceparent string
	ctx         context.Context
}

// parentCtx is underExecution(context.Background(), traceparent), kept per traceparent:
// each step of an execution starts its spans under the same parent. The last one used
// is checked first, without a lock.
func (t *Telemetry) parentCtx(traceparent string) context.Context {
	if e := t.lastParent.Load(); e != nil && e.traceparent == traceparent {
		return e.ctx
	}
	t.parentsMu.Lock()
	e, ok := t.parents[traceparent]
	if !ok {
		if len(t.parents) >= maxParents {
			clear(t.parents)
		}
		e = &parentEntry{traceparent: traceparent, ctx: underExecution(context.Background(), traceparent)}
		t.parents[traceparent] = e
	}
	t.parentsMu.Unlock()
	t.lastParent.Store(e)
	return e.ctx
}

// ---- dispatch ----

// StartDispatch starts the stent.dispatch span (nil when tracing is off).
func (t *Telemetry) StartDispatch(ctx context.Context, script string) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, spanDispatch, trace.WithAttributes(attrScript.String(script)))
}

// EndDispatch ends the dispatch span and counts the started execution.
func (t *Telemetry) EndDispatch(span trace.Span, script, id string, created bool, err error) {
	if created && t.metrics != nil {
		t.metrics.executionsStarted.Add(context.Background(), 1, scriptAttr(script))
	}
	if span == nil {
		return
	}
	span.SetAttributes(attrExecutionID.String(id))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceNewExecution stores in b the trace context of an execution dispatched under ctx:
// its span, under ctx's span (the dispatch span, or a caller's span such as TRACEPARENT's).
func TraceNewExecution(ctx context.Context, b *backend.Bundle, id string) {
	parent := trace.SpanContextFromContext(ctx)
	if !parent.IsValid() {
		return
	}
	exec := trace.NewSpanContext(trace.SpanContextConfig{TraceID: parent.TraceID(), SpanID: executionSpanID(parent.TraceID(), id), TraceFlags: parent.TraceFlags()})
	b.Trace, b.TraceParent = formatTraceparent(exec), parent.SpanID().String()
}

// TraceOf returns the traceparent of ex's span: the one stored at dispatch or, when the
// execution was dispatched untraced and this engine traces, one derived from its ID
// alone (a root span in a trace of its own), so that the spans of every tracing worker
// still meet in one trace.
func (t *Telemetry) TraceOf(ex *backend.Execution) string {
	if ex.Bundle.Trace != "" || t.tracer == nil {
		return ex.Bundle.Trace
	}
	sum := sha256.Sum256([]byte("stent trace\x00" + ex.ID))
	var tid trace.TraceID
	copy(tid[:], sum[:16])
	return formatTraceparent(trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: executionSpanID(tid, ex.ID), TraceFlags: trace.FlagsSampled}))
}

// ChildBundle is the bundle of a child execution of parent: the parent's, with the
// child's span under the parent's.
func (t *Telemetry) ChildBundle(parent *backend.Execution, childID string) backend.Bundle {
	sc, ok := parseTraceparent(t.TraceOf(parent))
	if !ok {
		return parent.Bundle
	}
	child := parent.Bundle
	exec := trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: executionSpanID(sc.TraceID(), childID), TraceFlags: sc.TraceFlags()})
	child.Trace, child.TraceParent = formatTraceparent(exec), sc.SpanID().String()
	return child
}

// ---- executions ----

// ExecutionEnded emits the execution's span and counts its end (and its dead letter).
func (t *Telemetry) ExecutionEnded(ex *backend.Execution, f *backend.Finish, dl *backend.DeadLetter) {
	if f == nil {
		return
	}
	now := time.Now()
	if t.metrics != nil {
		t.metrics.executionEnded(ex.Bundle.Main, f.Status, dl)
	}
	if t.logger.Enabled(context.Background(), slog.LevelInfo) {
		args := []any{"execution_id", ex.ID, "status", f.Status}
		if f.Error != nil {
			args = append(args, "error", f.Error.Message)
		}
		t.logger.Info("execution ended", args...)
	}
	if t.tracer == nil {
		return
	}
	sc, ok := parseTraceparent(t.TraceOf(ex))
	if !ok {
		return
	}
	ctx := context.Background()
	if parentID, err := trace.SpanIDFromHex(ex.Bundle.TraceParent); err == nil {
		parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: parentID, TraceFlags: sc.TraceFlags(), Remote: true})
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	} // else a root span: the execution was dispatched untraced
	ctx = context.WithValue(ctx, forcedSpanKey{}, sc)
	attrs := []attribute.KeyValue{attrExecutionID.String(ex.ID), attrScript.String(ex.Bundle.Main), attrEntry.String(ex.Entry),
		attrQueue.String(ex.Queue), attrOutcome.String(string(f.Status))}
	if ex.ParentID != "" {
		attrs = append(attrs, attrParentID.String(ex.ParentID))
	}
	start := ex.CreatedAt
	if start.IsZero() || start.After(now) {
		start = now
	}
	_, span := t.tracer.Start(ctx, spanExecution, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if f.Status == backend.StatusCancelled {
		span.AddEvent("cancel_requested", trace.WithTimestamp(now))
	}
	if f.Error != nil {
		span.SetAttributes(attrErrorType.String(f.Error.Type))
		span.SetStatus(codes.Error, f.Error.Message)
	}
	if got := span.SpanContext().SpanID(); got != sc.SpanID() && span.IsRecording() {
		t.warnIDsOnce.Do(func() {
			t.logger.Warn("stent.execution spans do not get their stored IDs: give the TracerProvider sdktrace.WithIDGenerator(stent.IDGenerator())")
		})
	}
	span.End(trace.WithTimestamp(now))
}

// ExecutionTreeEnded reports the end of an execution that Cancel or its deadline ended,
// together with the descendants that ended with it.
func (t *Telemetry) ExecutionTreeEnded(ctx context.Context, b backend.Backend, id string, status backend.Status) {
	if t.tracer == nil && t.metrics == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	ex, err := b.GetExecution(ctx, id)
	if err != nil {
		return
	}
	t.ExecutionEnded(ex, &backend.Finish{Status: ex.Status, Error: ex.Error}, nil)
	children, err := b.ListExecutions(ctx, backend.ListFilter{ParentID: id, Limit: 100000})
	if err != nil {
		return
	}
	for _, c := range children {
		if c.Status == status {
			t.ExecutionTreeEnded(ctx, b, c.ID, status)
		}
	}
}

// ---- workflow tasks ----

// WorkflowTaskSpan is one workflow task's span and timing; nil when nothing records.
// The span is started only once the task turns out to do something (see Step): a task
// that replays the script and finds nothing new to do emits none.
type WorkflowTaskSpan struct {
	t         *Telemetry
	span      trace.Span
	parent    string // the execution's traceparent ("" when tracing is off)
	start     time.Time
	exID      string
	taskID    int64
	worker    string
	replay    bool
	exOutcome string // how the execution ended, when this task ended it
}

// StartWorkflowTask times a task advancing ex. Its stent.workflow_task span starts (at
// the task's start) when Step sees the script do something, or when End gets an error;
// its attributes are set when it ends, in one call (see End).
func (t *Telemetry) StartWorkflowTask(ctx context.Context, task backend.Task, ex *backend.Execution, replay bool, worker string) *WorkflowTaskSpan {
	if t.tracer == nil && t.metrics == nil && !t.logger.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	s := &WorkflowTaskSpan{t: t, start: time.Now(), exID: ex.ID, taskID: task.ID, worker: worker, replay: replay}
	if t.tracer != nil {
		s.parent = t.TraceOf(ex)
	}
	return s
}

// startSpan starts the span, dated from the task's start, once.
func (s *WorkflowTaskSpan) startSpan() {
	if s.span == nil && s.t.tracer != nil {
		_, s.span = s.t.tracer.Start(s.t.parentCtx(s.parent), spanWorkflowTask, trace.WithTimestamp(s.start))
	}
}

// Step notes on the span what the script saw (timers fired, signals received) and what
// it asked for (timers, signal waits).
func (s *WorkflowTaskSpan) Step(events []backend.Event, step *interpreter.Step) {
	if s == nil || s.t.tracer == nil {
		return
	}
	if len(step.Scheduled) == 0 && !step.Done && !notable(events) {
		return // only replayed: no span
	}
	s.startSpan()
	for _, ev := range events {
		switch ev.Kind {
		case backend.EventTimerFired, backend.EventSignalTimedOut:
			s.span.AddEvent(string(ev.Kind), trace.WithAttributes(attrSeq.Int(ev.Seq)))
		case backend.EventSignalReceived:
			s.span.AddEvent(string(ev.Kind), trace.WithAttributes(attrSeq.Int(ev.Seq), attrSignal.String(ev.Name)))
		}
	}
	for _, sc := range step.Scheduled {
		switch sc.Kind {
		case backend.EventTimerScheduled:
			s.span.AddEvent(string(sc.Kind), trace.WithAttributes(attrSeq.Int(sc.Seq)))
		case backend.EventSignalWait:
			s.span.AddEvent(string(sc.Kind), trace.WithAttributes(attrSeq.Int(sc.Seq), attrSignal.String(sc.Name)))
		}
	}
	if step.Done {
		s.exOutcome = "completed"
		switch {
		case step.ContinueAsNew != nil:
			s.exOutcome = "continued_as_new"
		case step.Err != nil:
			s.exOutcome = "failed"
		}
	}
}

// End ends the span and records the task's duration.
func (s *WorkflowTaskSpan) End(err error) {
	if s == nil {
		return
	}
	d := time.Since(s.start)
	outcome := outcomeOf(err)
	if s.t.metrics != nil {
		s.t.metrics.workflowTaskDone(d, outcome)
	}
	if err != nil {
		s.startSpan()
	}
	if s.span != nil {
		// Set in one call: each call grows the span's attribute list.
		n := 2
		if s.replay {
			n++
		}
		if s.exOutcome != "" {
			n++
		}
		attrs, pooled := attrList(s.span, n)
		attrs = append(attrs, attrExecutionID.String(s.exID), attrOutcome.String(outcome))
		if s.replay {
			attrs = append(attrs, attrReplay.Bool(true))
		}
		if s.exOutcome != "" {
			attrs = append(attrs, attrExecutionOutcome.String(s.exOutcome))
		}
		s.span.SetAttributes(attrs...)
		releaseAttrList(pooled)
		if err != nil {
			s.span.SetStatus(codes.Error, err.Error())
		}
		s.span.End()
	}
	if s.t.logger.Enabled(context.Background(), slog.LevelDebug) {
		s.t.logger.Debug("workflow task done", "execution_id", s.exID, "task_id", s.taskID, "worker_id", s.worker, "outcome", outcome, "duration", d, "err", err)
	}
}

// notable reports events a workflow task span records: a timer fired, a signal arrived.
func notable(events []backend.Event) bool {
	for _, ev := range events {
		if ev.Kind == backend.EventTimerFired || ev.Kind == backend.EventSignalTimedOut || ev.Kind == backend.EventSignalReceived {
			return true
		}
	}
	return false
}

func outcomeOf(err error) string {
	if err == nil {
		return "ok"
	}
	return "error"
}

// ---- activity attempts ----

// ActivitySpan is one activity attempt's span and timing; nil when nothing records.
type ActivitySpan struct {
	t       *Telemetry
	span    trace.Span
	start   time.Time
	exID    string
	seq     int
	attempt int
	taskID  int64
	name    string
	worker  string
	outcome string
	errType string
}

// StartActivity starts the stent.activity span of an attempt; the returned context
// carries it (Go activities see it, command activities get TRACEPARENT).
func (t *Telemetry) StartActivity(ctx context.Context, task backend.Task, p *backend.ActivityPayload, worker string) (context.Context, *ActivitySpan) {
	if t.tracer == nil && t.metrics == nil && !t.logger.Enabled(ctx, slog.LevelDebug) {
		return ctx, nil
	}
	s := &ActivitySpan{t: t, start: time.Now(), exID: task.ExecutionID, seq: task.Seq, attempt: task.Attempt, taskID: task.ID, name: p.Name, worker: worker}
	if t.tracer != nil && p.Trace != "" {
		// Started under the execution's cached parent context, then put in ctx: the
		// same span as starting it from ctx, without parsing the parent each time. Its
		// attributes are set when it ends, all at once (see End).
		_, s.span = t.tracer.Start(t.parentCtx(p.Trace), spanActivity)
		ctx = trace.ContextWithSpan(ctx, s.span)
	}
	return ctx, s
}

// Attempted records how the activity function returned.
func (s *ActivitySpan) Attempted(err error) {
	if s == nil {
		return
	}
	s.outcome = "completed"
	if err != nil {
		s.outcome, s.errType = "failed", activities.ErrorType(err)
		if s.span != nil {
			s.span.RecordError(err)
			s.span.SetStatus(codes.Error, err.Error())
		}
	}
	if s.t.metrics != nil {
		s.t.metrics.activityAttempted(s.name, s.outcome, time.Since(s.start))
	}
}

// End ends the attempt's span. An attempt that never called the function (a cached
// result, an unknown activity) has outcome "not_run".
func (s *ActivitySpan) End() {
	if s == nil {
		return
	}
	if s.outcome == "" {
		s.outcome = "not_run"
	}
	if s.span != nil {
		// Set in one call: each call grows the span's attribute list.
		n := 6
		if s.errType != "" {
			n++
		}
		attrs, pooled := attrList(s.span, n)
		attrs = append(attrs, attrExecutionID.String(s.exID), attrSeq.Int(s.seq), attrActivity.String(s.name), attrAttempt.Int(s.attempt),
			attrWorkerID.String(s.worker), attrOutcome.String(s.outcome))
		if s.errType != "" {
			attrs = append(attrs, attrErrorType.String(s.errType))
		}
		s.span.SetAttributes(attrs...)
		releaseAttrList(pooled)
		s.span.End()
	}
	if s.t.logger.Enabled(context.Background(), slog.LevelDebug) {
		s.t.logger.Debug("activity attempt done", "execution_id", s.exID, "seq", s.seq, "task_id", s.taskID,
			"worker_id", s.worker, "activity", s.name, "attempt", s.attempt, "outcome", s.outcome, "duration", time.Since(s.start))
	}
}

// attrBufs holds attribute lists for the SDK's SetAttributes, which copies what it is
// given: the per-step spans set theirs without allocating a list each time.
var attrBufs = sync.Pool{New: func() any { return new([8]attribute.KeyValue) }}

// attrList returns an empty list with room for n attributes to set on span: from the
// pool for the SDK's spans (the only implementations of sdktrace.ReadWriteSpan), which
// copy it, with the array to give back to releaseAttrList; a fresh one for any other
// span, which might keep it.
func attrList(span trace.Span, n int) ([]attribute.KeyValue, *[8]attribute.KeyValue) {
	if _, sdk := span.(sdktrace.ReadWriteSpan); sdk && n <= 8 {
		a := attrBufs.Get().(*[8]attribute.KeyValue)
		return a[:0], a
	}
	return make([]attribute.KeyValue, 0, n), nil
}

// releaseAttrList gives a pooled array back, holding no strings.
func releaseAttrList(a *[8]attribute.KeyValue) {
	if a != nil {
		clear(a[:])
		attrBufs.Put(a)
	}
}
