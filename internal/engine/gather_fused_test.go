package engine

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// Outcomes of a gather complete in many goroutines at once; each completer feeds its
// outcome to the parked script when it can (waiting for a completer that has it out),
// and commits it with the step when no outcome it has not seen was recorded meanwhile.
// Whatever the interleaving, every outcome is in the history exactly once, the script
// sees them all, and a replay of the history agrees.
func TestGatherCompletionsInterleave(t *testing.T) {
	t.Parallel()
	for _, tb := range testBackends(t) {
		t.Run(tb.name, func(t *testing.T) {
			t.Parallel()
			f := newFixtureOn(t, tb, 64, func(e *Engine) {
				_ = e.Register("jitter", func(ctx context.Context, i int) (int, error) {
					time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
					return i * i, nil
				})
			})
			script := f.script(t, `
def main(n):
    total = 0
    for r in gather([start("jitter", i) for i in range(n)]):
        total += r
    more = gather([start("jitter", i) for i in range(3)])
    return [total, len(more)]
`)
			ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
			defer cancel()
			const n, runs = 24, 6
			ids := make([]string, runs)
			for i := range ids {
				id, err := f.eng.Dispatch(ctx, script, []any{n})
				if err != nil {
					t.Fatal(err)
				}
				ids[i] = id
			}
			want := 0
			for i := range n {
				want += i * i
			}
			for _, id := range ids {
				res, err := f.eng.WaitFor(ctx, id)
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				var got []int
				if err := json.Unmarshal(res.Value, &got); err != nil || len(got) != 2 || got[0] != want || got[1] != 3 {
					t.Fatalf("%s returned %s, want [%d, 3]", id, res.Value, want)
				}
				h, err := f.eng.History(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				outcomes := map[int]int{}
				for _, ev := range h {
					if ev.Kind == backend.EventActivityCompleted {
						outcomes[ev.Seq]++
					}
				}
				if len(outcomes) != n+3 {
					t.Errorf("%s: %d activities have an outcome, want %d", id, len(outcomes), n+3)
				}
				for seq, c := range outcomes {
					if c != 1 {
						t.Errorf("%s: seq %d has %d outcomes", id, seq, c)
					}
				}
				rep, err := f.eng.Replay(ctx, id, "")
				if err != nil || !rep.Compatible() {
					t.Errorf("%s: replay = %+v, %v; want compatible", id, rep, err)
				}
			}
		})
	}
}
