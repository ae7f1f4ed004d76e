package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stent-go/stent/backend"
)

// counter is an activity that counts its calls by argument.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) register(e *Engine) {
	registerBasics(e)
	_ = e.Register("count", func(ctx context.Context, s string) (string, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.n[s]++
		return s + "!", nil
	})
}

func (c *counter) get(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[s]
}

func (c *counter) want(t *testing.T, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if got := c.get(k); got != v {
			t.Errorf("count(%q) ran %d times, want %d", k, got, v)
		}
	}
}

func TestReset(t *testing.T) {
	for _, tb := range testBackends(t) {
		t.Run(tb.name, func(t *testing.T) {
			t.Parallel()
			c := &counter{n: map[string]int{}}
			f := newFixtureOn(t, tb, 4096, c.register)
			ctx := context.Background()
			wait := func(t *testing.T, id string) *Result {
				t.Helper()
				wctx, cancel := context.WithTimeout(ctx, runDeadline)
				defer cancel()
				res, err := f.eng.WaitFor(wctx, id)
				if res == nil {
					t.Fatalf("waiting for %s: %v", id, err)
				}
				return res
			}
			const three = "def main():\n    a = durable('count', 'a')\n    b = durable('count', 'b')\n    c = durable('count', 'c')\n    return a + b + c\n"

			t.Run("steps before N are not run again", func(t *testing.T) {
				res := f.run(t, three)
				mustValue(t, res, `"a!b!c!"`)
				rep, err := f.eng.Reset(ctx, res.ID, 3, ResetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if rep.ID != res.ID+"-r1" || rep.Reused != 2 {
					t.Fatalf("report = %+v, want ID %s-r1 reusing 2 steps", rep, res.ID)
				}
				mustValue(t, wait(t, rep.ID), `"a!b!c!"`)
				c.want(t, map[string]int{"a": 1, "b": 1, "c": 2})

				from, into, err := f.eng.ResetLinks(ctx, rep.ID)
				if err != nil || from == nil || from.ID != res.ID || from.Step != 3 || len(into) != 0 {
					t.Fatalf("links of the new execution: from %+v into %+v (%v)", from, into, err)
				}
				from, into, err = f.eng.ResetLinks(ctx, res.ID)
				if err != nil || from != nil || len(into) != 1 || into[0].ID != rep.ID || into[0].Step != 3 {
					t.Fatalf("links of the reset execution: from %+v into %+v (%v)", from, into, err)
				}

				rep2, err := f.eng.Reset(ctx, res.ID, 1, ResetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if rep2.ID != res.ID+"-r2" {
					t.Fatalf("second reset = %s, want %s-r2", rep2.ID, res.ID)
				}
				mustValue(t, wait(t, rep2.ID), `"a!b!c!"`)
				c.want(t, map[string]int{"a": 2, "b": 2, "c": 3})
			})

			t.Run("a script changed before N is refused", func(t *testing.T) {
				res := f.run(t, three)
				changed := f.script(t, strings.Replace(three, "'b')", "'B')", 1))
				_, err := f.eng.Reset(ctx, res.ID, 3, ResetOptions{Script: changed})
				var mm *ResetMismatchError
				if !errors.As(err, &mm) || mm.Divergence.Seq != 2 || !strings.Contains(err.Error(), "step 2") {
					t.Fatalf("want a mismatch at step 2, got %v", err)
				}
				if _, err := f.eng.Get(ctx, res.ID+"-r1"); !errors.Is(err, backend.ErrNotFound) {
					t.Fatalf("a refused reset created %s-r1 (%v)", res.ID, err)
				}
				if _, into, _ := f.eng.ResetLinks(ctx, res.ID); len(into) != 0 {
					t.Fatalf("a refused reset linked %s: %+v", res.ID, into)
				}
			})

			t.Run("a script changed from N on runs its new code", func(t *testing.T) {
				p := f.script(t, "def main():\n    a = durable('count', 'fa')\n    b = durable('boom', 'bad')\n    return a + b\n")
				res, _ := f.eng.Run(ctx, p, nil)
				if res == nil || res.Status != backend.StatusFailed {
					t.Fatalf("want a failed execution, got %+v", res)
				}
				fixed := f.script(t, "def main():\n    a = durable('count', 'fa')\n    b = durable('count', 'fixed')\n    return a + b\n")
				rep, err := f.eng.Reset(ctx, res.ID, 2, ResetOptions{Script: fixed})
				if err != nil {
					t.Fatal(err)
				}
				mustValue(t, wait(t, rep.ID), `"fa!fixed!"`)
				c.want(t, map[string]int{"fa": 1, "fixed": 1})
			})

			t.Run("children before N are reused", func(t *testing.T) {
				res := f.run(t, "def kid(n):\n    return durable('count', 'kid' + str(n))\n\ndef main():\n    k = durable(kid, 1)\n    return k + durable('count', 'after')\n")
				mustValue(t, res, `"kid1!after!"`)
				rep, err := f.eng.Reset(ctx, res.ID, 2, ResetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				mustValue(t, wait(t, rep.ID), `"kid1!after!"`)
				c.want(t, map[string]int{"kid1": 1, "after": 2})
				kids, err := f.eng.List(ctx, backend.ListFilter{ParentID: rep.ID})
				if err != nil || len(kids) != 0 {
					t.Fatalf("the reset ran %d children (%v), want none", len(kids), err)
				}
			})

			t.Run("signals before N are reused", func(t *testing.T) {
				p := f.script(t, "def main():\n    v = wait_signal('go')\n    return durable('count', 'sig-' + v)\n")
				id, err := f.eng.Dispatch(ctx, p, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.eng.Signal(ctx, id, "go", "yes"); err != nil {
					t.Fatal(err)
				}
				mustValue(t, wait(t, id), `"sig-yes!"`)
				rep, err := f.eng.Reset(ctx, id, 2, ResetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				mustValue(t, wait(t, rep.ID), `"sig-yes!"`) // no signal sent to the new one
				c.want(t, map[string]int{"sig-yes": 2})
			})

			t.Run("refusals", func(t *testing.T) {
				res := f.run(t, three)
				var ie *InputError
				for _, step := range []int{0, 5} {
					if _, err := f.eng.Reset(ctx, res.ID, step, ResetOptions{}); !errors.As(err, &ie) {
						t.Errorf("step %d: want an input error, got %v", step, err)
					}
				}
				p := f.script(t, "def main():\n    return wait_signal('never')\n")
				id, err := f.eng.Dispatch(ctx, p, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.eng.Reset(ctx, id, 1, ResetOptions{}); !errors.As(err, &ie) || !strings.Contains(err.Error(), "terminate") {
					t.Errorf("resetting a running execution: want an input error saying to terminate it, got %v", err)
				}
				if err := f.eng.Terminate(ctx, id); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestResetPrefix(t *testing.T) {
	ev := func(seq int, kind backend.EventKind) backend.Event {
		return backend.Event{Seq: seq, Kind: kind, Name: "a"}
	}
	history := []backend.Event{
		ev(0, backend.EventStarted),
		ev(1, backend.EventActivityScheduled), ev(1, backend.EventActivityFailed),
		ev(0, backend.EventFailed), ev(1, backend.EventRetried), ev(1, backend.EventActivityCompleted),
		ev(2, backend.EventSideEffect),
		ev(3, backend.EventActivityScheduled), ev(3, backend.EventActivityAttemptFailed),
		ev(4, backend.EventTimerScheduled),
	}
	prefix, err := resetPrefix("x", history, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range prefix {
		got = append(got, string(e.Kind))
	}
	if want := "activity_scheduled activity_completed side_effect"; strings.Join(got, " ") != want {
		t.Fatalf("prefix to step 3 = %v, want %s (the failure the retry cleared dropped)", got, want)
	}
	if _, err := resetPrefix("x", history, 4); err == nil || !strings.Contains(err.Error(), `step 3 of x (durable("a")) has no recorded result`) {
		t.Fatalf("a prefix over a step without a result: %v", err)
	}
	if _, err := resetPrefix("x", history, 6); err == nil || !strings.Contains(err.Error(), "has 4 steps") {
		t.Fatalf("a step past the end: %v", err)
	}
	if p, err := resetPrefix("x", history, 1); err != nil || len(p) != 0 {
		t.Fatalf("prefix to step 1 = %v, %v; want empty", p, err)
	}
}
