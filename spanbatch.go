package stent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// NewBatchSpanProcessor returns a span processor that hands ended spans to exp in
// batches, as sdktrace.NewBatchSpanProcessor does and with the same settings (the
// OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT, OTEL_BSP_MAX_QUEUE_SIZE and
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE variables and their defaults: export every 5 s or
// every 512 spans, at most 2048 waiting, spans beyond that dropped), but cheaper for
// the engine: ending a span appends it to a buffer, where the SDK's processor hands each
// span to its export goroutine and so wakes that goroutine (a thread wake-up, several
// microseconds) for nearly every span. Here the export goroutine wakes once per batch.
// NewTracerProviderFromEnv uses it; a host program can too:
//
//	sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(stent.NewBatchSpanProcessor(exporter)), sdktrace.WithIDGenerator(stent.IDGenerator()))
func NewBatchSpanProcessor(exp sdktrace.SpanExporter) sdktrace.SpanProcessor {
	return newBatchProcessor(exp)
}

func newBatchProcessor(exp sdktrace.SpanExporter) *batchProcessor {
	p := &batchProcessor{
		exp:      exp,
		delay:    time.Duration(envInt("OTEL_BSP_SCHEDULE_DELAY", sdktrace.DefaultScheduleDelay)) * time.Millisecond,
		timeout:  time.Duration(envInt("OTEL_BSP_EXPORT_TIMEOUT", sdktrace.DefaultExportTimeout)) * time.Millisecond,
		maxQueue: envInt("OTEL_BSP_MAX_QUEUE_SIZE", sdktrace.DefaultMaxQueueSize),
		maxBatch: envInt("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", sdktrace.DefaultMaxExportBatchSize),
		full:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if p.maxQueue <= 0 {
		p.maxQueue = sdktrace.DefaultMaxQueueSize
	}
	if p.maxBatch <= 0 || p.maxBatch > p.maxQueue {
		p.maxBatch = min(sdktrace.DefaultMaxExportBatchSize, p.maxQueue)
	}
	if p.delay <= 0 {
		p.delay = sdktrace.DefaultScheduleDelay * time.Millisecond
	}
	go p.loop()
	return p
}

// envInt reads a non-negative integer variable; unset or malformed means def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

type batchProcessor struct {
	exp                sdktrace.SpanExporter
	delay, timeout     time.Duration
	maxQueue, maxBatch int

	mu      sync.Mutex
	queue   []sdktrace.ReadOnlySpan // ended spans not yet taken for export
	dropped int64                   // spans dropped since the last report: the queue was full
	stopped bool

	exportMu sync.Mutex              // one export at a time
	spare    []sdktrace.ReadOnlySpan // the last exported buffer, emptied, for reuse

	full     chan struct{} // a batch is waiting (capacity 1)
	stop     chan struct{}
	done     chan struct{} // loop returned
	stopOnce sync.Once
}

func (*batchProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (p *batchProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanContext().IsSampled() {
		p.add(s)
	}
}

// add queues an ended span for export, or reports that it dropped it (the processor
// has stopped, or the queue is full).
func (p *batchProcessor) add(s sdktrace.ReadOnlySpan) bool {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return false
	}
	if len(p.queue) >= p.maxQueue {
		p.dropped++
		p.mu.Unlock()
		return false
	}
	p.queue = append(p.queue, s)
	n := len(p.queue)
	p.mu.Unlock()
	switch {
	case n == p.maxBatch:
		select {
		case p.full <- struct{}{}:
		default:
		}
	case n > p.maxQueue-p.maxQueue/4:
		// The export goroutine, woken a batch ago, has not run yet: on a busy machine
		// it may wait for this goroutine's time slice to end. Yield it the processor
		// before the queue fills and spans are dropped.
		runtime.Gosched()
	}
	return true
}

// loop exports when a batch is full and at least every delay.
func (p *batchProcessor) loop() {
	defer close(p.done)
	timer := time.NewTimer(p.delay)
	defer timer.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.full:
		case <-timer.C:
		}
		if err := p.export(context.Background()); err != nil {
			otel.Handle(err)
		}
		timer.Reset(p.delay)
	}
}

// export hands every queued span to the exporter, in batches of at most maxBatch, and
// reports spans dropped meanwhile to the OpenTelemetry error handler.
func (p *batchProcessor) export(ctx context.Context) error {
	p.exportMu.Lock()
	defer p.exportMu.Unlock()
	p.mu.Lock()
	spans, dropped := p.queue, p.dropped
	p.queue, p.spare, p.dropped = p.spare, nil, 0
	p.mu.Unlock()
	if dropped > 0 {
		otel.Handle(fmt.Errorf("%d spans dropped: more than %d ended spans waited for export (OTEL_BSP_MAX_QUEUE_SIZE)", dropped, p.maxQueue))
	}
	var errs []error
	for rest := spans; len(rest) > 0; {
		batch := rest[:min(len(rest), p.maxBatch)]
		rest = rest[len(batch):]
		if err := p.exportBatch(ctx, batch); err != nil {
			errs = append(errs, err)
		}
	}
	clear(spans) // let the spans be collected
	p.mu.Lock()
	if p.spare == nil {
		p.spare = spans[:0]
	}
	p.mu.Unlock()
	return errors.Join(errs...)
}

func (p *batchProcessor) exportBatch(ctx context.Context, batch []sdktrace.ReadOnlySpan) error {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.timeout, errors.New("span export timeout"))
		defer cancel()
	}
	err := p.exp.ExportSpans(ctx, batch)
	for _, s := range batch {
		if r, ok := s.(interface{ recycle() }); ok {
			r.recycle() // Stent's own spans: see liteProvider
		}
	}
	return err
}

// ForceFlush exports the spans ended so far.
func (p *batchProcessor) ForceFlush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.wait(ctx, func() error { return p.export(ctx) })
}

// Shutdown exports the spans ended so far and shuts the exporter down; spans ended
// afterwards are dropped.
func (p *batchProcessor) Shutdown(ctx context.Context) error {
	var err error
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		close(p.stop)
		err = p.wait(ctx, func() error {
			<-p.done
			return errors.Join(p.export(ctx), p.exp.Shutdown(ctx))
		})
	})
	return err
}

// wait runs fn, giving up (fn still running) when ctx ends first.
func (p *batchProcessor) wait(ctx context.Context, fn func() error) error {
	res := make(chan error, 1)
	go func() { res <- fn() }()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
