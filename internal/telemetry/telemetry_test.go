package telemetry

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/errs"
	"github.com/stent-go/stent/interpreter"
)

// A workflow task that only replays the script and finds nothing new to do emits no
// span; one that schedules a step, ends the execution or fails does.
func TestWorkflowTaskSpanOnlyWhenTheTaskDoesSomething(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithIDGenerator(IDGenerator()))
	tel := New(quietLogger(), tp, nil, Sources{})
	ex := &backend.Execution{ID: "ex-1", Bundle: backend.Bundle{Main: "main.star"}}
	task := backend.Task{Kind: backend.TaskWorkflow, ExecutionID: ex.ID}
	for _, tc := range []struct {
		name  string
		step  *interpreter.Step
		err   error
		spans int
	}{
		{"replay only", &interpreter.Step{}, nil, 0},
		{"schedules a step", &interpreter.Step{Scheduled: []interpreter.Scheduled{{Kind: backend.EventActivityScheduled, Seq: 1}}}, nil, 1},
		{"ends the execution", &interpreter.Step{Done: true}, nil, 1},
		{"fails to commit", &interpreter.Step{}, errors.New("lease lost"), 1},
	} {
		before := len(rec.Ended())
		s := tel.StartWorkflowTask(context.Background(), task, ex, false, "w1")
		s.Step(nil, tc.step)
		s.End(tc.err)
		if got := len(rec.Ended()) - before; got != tc.spans {
			t.Errorf("%s: %d spans, want %d", tc.name, got, tc.spans)
		}
	}
	for _, s := range rec.Ended() {
		if s.Name() != spanWorkflowTask {
			t.Fatalf("span %q, want %s", s.Name(), spanWorkflowTask)
		}
	}
}

// NewTracerProviderFromEnv builds the SDK's provider from OTEL_* and refuses values it
// cannot use as an InputError naming the variable.
func TestTracerProviderFromEnv(t *testing.T) {
	t.Run("console", func(t *testing.T) {
		t.Setenv("OTEL_TRACES_EXPORTER", "console")
		var out bytes.Buffer
		tp, shutdown, err := NewTracerProviderFromEnv(context.Background(), &out)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tp.(*sdktrace.TracerProvider); !ok {
			t.Fatalf("provider is %T, want the SDK's", tp)
		}
		_, span := tp.Tracer("test").Start(context.Background(), "hello")
		span.End()
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), `"hello"`) {
			t.Fatalf("console output has no span named hello:\n%s", out.String())
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Setenv("OTEL_TRACES_EXPORTER", "none")
		tp, _, err := NewTracerProviderFromEnv(context.Background(), nil)
		if err != nil || tp != nil {
			t.Fatalf("got %v, %v; want no provider", tp, err)
		}
	})
	for _, tc := range []struct{ name, key, value string }{
		{"sampler", "OTEL_TRACES_SAMPLER", "sometimes"},
		{"sampler arg", "OTEL_TRACES_SAMPLER_ARG", "2"},
		{"exporter", "OTEL_TRACES_EXPORTER", "zipkin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", "console")
			if tc.key == "OTEL_TRACES_SAMPLER_ARG" {
				t.Setenv("OTEL_TRACES_SAMPLER", "traceidratio")
			}
			t.Setenv(tc.key, tc.value)
			_, _, err := NewTracerProviderFromEnv(context.Background(), nil)
			var ie *errs.InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.key+"="+tc.value) {
				t.Fatalf("err = %v; want an InputError naming %s=%s", err, tc.key, tc.value)
			}
		})
	}
}
