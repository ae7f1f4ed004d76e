package stenttest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/tests/stenttest"
)

func TestEnvScriptAndGolden(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	env.Register("tag", func(ctx context.Context, s string) (string, error) { return "#" + s, nil })
	script := env.Script(`
def label(x):
    return durable("tag", x)

def main(xs):
    id = uuid()
    log("batch", id)
    return {"id": id, "labels": [durable(label, x) for x in xs]}
`)
	res := env.Run(script, []string{"a"})
	if res.Value == nil || !strings.Contains(string(res.Value), `"labels":["#a"]`) {
		t.Fatalf("result %s", res.Value)
	}
	got := res.Golden()
	want := `-- result --
{
  "id": "<uuid1>",
  "labels": [
    "#a"
  ]
}
-- log --
batch <uuid1>
-- history --
1 started [["a"]]
2 side_effect #1 uuid "<uuid1>"
3 child_scheduled #2 label ["a"]
4 child_completed #2 label "#a"
5 completed {"id":"<uuid1>","labels":["#a"]}
-- history/2 --
1 started ["a"]
2 activity_scheduled #1 tag ["a"]
3 activity_completed #1 tag "#a"
4 completed "#a"
`
	if d := stenttest.Diff("want", want, "got", got); d != "" {
		t.Error(d)
	}
	if logs := res.Logs(); len(logs) != 1 || !strings.HasPrefix(logs[0], "batch ") {
		t.Errorf("logs = %q", logs)
	}
}

// TestEnvSignalAtVirtualTime sends a signal at a scripted virtual time with the clock's
// At hook: the workflow sees it five (virtual) hours in.
func TestEnvSignalAtVirtualTime(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	ctx := context.Background()
	id, err := env.Dispatch(ctx, "../../workflows/approval/approval.star", []any{"expense-7", 120}, stent.ID("expense-7"))
	if err != nil {
		t.Fatal(err)
	}
	vc := env.VirtualClock()
	vc.At(stenttest.DefaultStart.Add(5*time.Hour), func() {
		if err := env.Signal(ctx, id, "decision", map[string]any{"approved": true, "by": "ann"}); err != nil {
			t.Errorf("Signal: %v", err)
		}
	})
	res := env.Wait(id)
	res.AssertValue(map[string]any{"request": "expense-7", "approved": true, "by": "ann"})
	res.AssertHistory(`
		1 started ["expense-7",120]
		2 signal_wait #1 decision timeout=3d
		3 signal_received #1 decision {"approved":true,"by":"ann"} @+5h
		4 completed {"request":"expense-7","approved":true,"by":"ann"}
	`)
}

// TestEnvReplayModeReportsNondeterminism: with the cache off every workflow task
// replays, and the engine names both calls when a replay diverges.
func TestEnvReplayModeReportsNondeterminism(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t, stenttest.CacheSize(0), stenttest.Builtins(unrecordedCounter))
	env.Register("left", func(ctx context.Context) (string, error) { return "L", nil })
	env.Register("right", func(ctx context.Context) (string, error) { return "R", nil })
	res := env.Run(env.Script(`
def main():
    if unrecorded_counter() == 1:
        durable("left")
    else:
        durable("right")
    return "done"
`))
	res.AssertFailure(`step 1 was recorded as durable("left"`)
	res.AssertFailure(`but the script now calls durable("right"`)
	if res.Failure.Type != "nondeterminism" {
		t.Errorf("failure type %q, want nondeterminism", res.Failure.Type)
	}
}

func TestEnvHistoryShowsScriptNamesWithoutTheirDirectory(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	res := env.Run(env.Script("def main():\n    return 1 // 0\n"))
	res.AssertFailure("floored division by zero")
	res.AssertHistory(`
		1 started []
		2 failed script: "workflow1.star:2:14: floored division by zero"
	`)
}
