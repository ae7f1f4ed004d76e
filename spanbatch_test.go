package stent

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// countingExporter records the batches it is given.
type countingExporter struct {
	mu       sync.Mutex
	batches  []int
	shutdown bool
}

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batches = append(e.batches, len(spans))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown = true
	return nil
}

func (e *countingExporter) total() (n int, batches []int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.batches {
		n += b
	}
	return n, append([]int(nil), e.batches...)
}

func TestBatchSpanProcessor(t *testing.T) {
	t.Setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10")
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "25")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")
	exp := &countingExporter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(NewBatchSpanProcessor(exp)))
	tr := tp.Tracer("test")
	ctx := context.Background()
	end := func(n int) {
		for range n {
			_, s := tr.Start(ctx, "s")
			s.End()
		}
	}

	// A full batch is exported without waiting for the schedule delay.
	end(10)
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := exp.total(); n < 10; n, _ = exp.total() {
		if time.Now().After(deadline) {
			t.Fatalf("a full batch was not exported")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// ForceFlush exports what waits, in batches of at most the batch size.
	end(7)
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, batches := exp.total(); n != 17 {
		t.Fatalf("after ForceFlush %d spans exported (%v), want 17", n, batches)
	}

	// Shutdown exports the rest and shuts the exporter down; later spans are dropped.
	end(3)
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	end(5)
	n, batches := exp.total()
	if n != 20 || !exp.shutdown {
		t.Fatalf("after Shutdown %d spans exported (%v), exporter shut down: %v; want 20, true", n, batches, exp.shutdown)
	}
	for _, b := range batches {
		if b > 10 {
			t.Fatalf("a batch of %d spans, more than OTEL_BSP_MAX_EXPORT_BATCH_SIZE: %v", b, batches)
		}
	}
}

func TestBatchSpanProcessorDropsBeyondTheQueueSize(t *testing.T) {
	t.Setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100") // beyond the queue: the queue size
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "20")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")
	exp := &countingExporter{}
	p := newBatchProcessor(exp)
	if p.maxBatch != 20 {
		t.Fatalf("batch size %d, want the queue size 20", p.maxBatch)
	}
	block := make(chan struct{})
	p.exportMu.Lock() // the exporter is busy: nothing leaves the queue
	go func() { <-block; p.exportMu.Unlock() }()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := tp.Tracer("test")
	for range 30 {
		_, s := tr.Start(context.Background(), "s")
		s.End()
	}
	close(block)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, batches := exp.total(); n != 20 {
		t.Fatalf("%d spans exported (%v), want the 20 that fit the queue", n, batches)
	}
	_ = tp.Shutdown(context.Background())
}
