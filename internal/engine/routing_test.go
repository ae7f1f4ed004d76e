package engine

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A step whose activity no live worker runs waits (AwaitActivityWorkers); with
// schedule_to_start_timeout= it fails with a timeout once that passes, and the script
// sees the failure; an activity this worker runs is unaffected by the option.
func TestScheduleToStartTimeout(t *testing.T) {
	for _, tb := range testBackends(t) {
		t.Run(tb.name, func(t *testing.T) {
			t.Parallel()
			opts := []Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
			if tb.open != nil {
				opts = append(opts, WithBackend(tb.open(t)))
			}
			dir := t.TempDir()
			eng, err := Open(context.Background(), dir+"/stent.db", opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			registerBasics(eng)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() {
				served <- eng.Serve(ctx, WorkerOptions{PollInterval: 50 * time.Millisecond,
					HeartbeatInterval: 100 * time.Millisecond, AwaitActivityWorkers: true})
			}()
			defer func() { cancel(); <-served }()
			f := &fixture{eng: eng, dir: dir}
			res := f.run(t, `def main():
    r = attempt("charge", 1, schedule_to_start_timeout = "300ms")
    u = durable("upper", "ok", schedule_to_start_timeout = "1s")
    return [r.ok, r.error.type, r.error.message, u]
`)
			if err := res.Err(); err != nil {
				t.Fatalf("execution failed: %v", err)
			}
			var got []any
			if err := res.Decode(&got); err != nil {
				t.Fatal(err)
			}
			msg, _ := got[2].(string)
			if got[0] != false || got[1] != "timeout" || got[3] != "OK" ||
				!strings.Contains(msg, `activity "charge" was not started within 300ms (schedule_to_start_timeout): no live worker runs "charge"`) {
				t.Fatalf("result %v, want [false timeout <not started within 300ms…> OK]", got)
			}
		})
	}
}
