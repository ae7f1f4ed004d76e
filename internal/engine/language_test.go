package engine

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stent-go/stent/backend"
)

// TestLanguageOnEveryBackend runs wait_any, bounded gather, workflow() children and
// set_status on each backend, with the live-execution cache and replaying every step.
func TestLanguageOnEveryBackend(t *testing.T) {
	for _, tb := range testBackends(t) {
		for _, mode := range cacheModes {
			t.Run(tb.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				var running, most atomic.Int32
				f := newFixtureOn(t, tb, mode.size, func(e *Engine) {
					registerBasics(e)
					_ = e.Register("track", func(ctx context.Context, i int) (int, error) {
						n := running.Add(1)
						for {
							m := most.Load()
							if n <= m || most.CompareAndSwap(m, n) {
								break
							}
						}
						defer running.Add(-1)
						return i * 2, nil
					})
				})
				ctx := context.Background()
				t.Run("wait_any", func(t *testing.T) {
					res := f.run(t, "def late():\n    sleep('300ms')\n    return 'late'\n\ndef main():\n    fs = [start(late), start('upper', 'x')]\n    i, v = wait_any(fs)\n    return [i, v, wait_any([start(late)], timeout='10ms'), fs[0].result()]\n")
					mustValue(t, res, `[1,"X",null,"late"]`)
				})
				t.Run("bounded gather", func(t *testing.T) {
					res := f.run(t, "def main():\n    return gather([start('track', i) for i in range(10)], max_concurrency=3)\n")
					mustValue(t, res, `[0,2,4,6,8,10,12,14,16,18]`)
					if most.Load() > 3 {
						t.Fatalf("%d activities ran at once, want at most 3", most.Load())
					}
				})
				t.Run("workflow child and set_status", func(t *testing.T) {
					if err := os.WriteFile(f.dir+"/billing.star", []byte("def main(x):\n    set_status('billing')\n    return durable('upper', x)\n"), 0o644); err != nil {
						t.Fatal(err)
					}
					res := f.run(t, "def main():\n    set_status({'phase': 'start'})\n    v = durable(workflow('billing.star', 'ann'))\n    set_status({'phase': 'done'})\n    return v\n")
					mustValue(t, res, `"ANN"`)
					if s, err := f.eng.CustomStatus(ctx, res.ID); err != nil || string(s) != `{"phase":"done"}` {
						t.Fatalf("custom status %s %v", s, err)
					}
					if s, err := f.eng.CustomStatus(ctx, res.ID+"/2"); err != nil || string(s) != `"billing"` {
						t.Fatalf("child custom status %s %v", s, err)
					}
				})
				t.Run("upgrade and retry", func(t *testing.T) {
					broken := f.script(t, "def main():\n    a = durable('upper', 'a')\n    b = durable('boom', 'down')\n    return a + b + {}['x']\n")
					res := f.run(t, string(must(os.ReadFile(broken))))
					if res.Status != backend.StatusFailed {
						t.Fatalf("status %s, want failed", res.Status)
					}
					// The failed activity step runs again; it fails again the same way.
					if err := f.eng.Retry(ctx, res.ID); err != nil {
						t.Fatal(err)
					}
					again, _ := f.eng.WaitFor(ctx, res.ID)
					if again.Status != backend.StatusFailed || again.Err() == nil || !strings.Contains(again.Err().Error(), "down") {
						t.Fatalf("after retry: %s %v, want failed on boom again", again.Status, again.Err())
					}
					fixed := f.script(t, "def main():\n    a = durable('upper', 'a')\n    b = attempt('boom', 'down')\n    return a + b.error.type\n")
					rep, err := f.eng.Upgrade(ctx, res.ID, fixed, false)
					if err != nil || !rep.Compatible() {
						t.Fatalf("upgrade: %+v %v", rep, err)
					}
					if err := f.eng.Retry(ctx, res.ID); err != nil {
						t.Fatal(err)
					}
					done, _ := f.eng.WaitFor(ctx, res.ID)
					mustValue(t, done, `"AActivityError"`)
					events, _ := f.eng.History(ctx, res.ID)
					got := make([]string, len(events))
					for i, ev := range events {
						got[i] = string(ev.Kind)
					}
					want := "started activity_scheduled activity_completed activity_scheduled activity_failed failed retried activity_failed failed upgraded retried activity_failed completed"
					if strings.Join(got, " ") != want {
						t.Fatalf("history %v\nwant      %s", got, want)
					}
				})
			})
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
