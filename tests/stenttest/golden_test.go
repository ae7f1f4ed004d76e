package stenttest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/tests/stenttest"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// failureReport is the report of a golden test that must fail: it fails t, saying
// passed, if res passed, and for each of wants the report does not show.
func failureReport(t *testing.T, res *stenttest.GoldenResult, passed string, wants ...string) string {
	t.Helper()
	if res.Passed() {
		t.Fatal(passed)
	}
	report := strings.Join(res.Failures, "\n")
	for _, want := range wants {
		if !strings.Contains(report, want) {
			t.Errorf("the report does not show %q; it is:\n%s", want, report)
		}
	}
	return report
}

func runGolden(t *testing.T, path string, opts ...stenttest.Option) *stenttest.GoldenResult {
	t.Helper()
	res, err := stenttest.RunGoldenFile(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("RunGoldenFile: %v", err)
	}
	return res
}

// unrecordedCounter is a builtin that breaks the determinism rule on purpose: it returns
// a different value on each call and records nothing, so a replay sees another value
// than the run that wrote the history.
func unrecordedCounter() starlark.StringDict {
	var n atomic.Int64
	return starlark.StringDict{
		"unrecorded_counter": starlark.NewBuiltin("unrecorded_counter", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return starlark.MakeInt64(n.Add(1)), nil
		}),
	}
}

const branchOnCounter = `A workflow that branches on a value it does not record.
-- workflow.star --
def main():
    if unrecorded_counter() == 1:
        durable("left")
    else:
        durable("right")
    return durable("done")
-- mocks.star --
def left():
    return "L"

def right():
    return "R"

def done():
    return "ok"
`

func TestReplayCheckCatchesUnrecordedValues(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "branch.txtar", branchOnCounter)
	// Accept whatever the uninterrupted run does: the replay check must still fail.
	res := runGolden(t, path, stenttest.Builtins(unrecordedCounter), stenttest.Update(true))
	if !res.Updated {
		t.Errorf("the file was not updated")
	}
	report := failureReport(t, res, "a workflow that branches on an unrecorded value passed the replay check",
		"replay check",
		// The first divergence: the uninterrupted run scheduled "done" after "left";
		// the replayed one failed there, naming both calls.
		"history, event 4:",
		`uninterrupted: 4 activity_scheduled #2 done []`,
		`replayed:      4 failed nondeterminism:`,
		`step 1 was recorded as durable(\"left\"`,
		`but the script now calls durable(\"right\"`)
	t.Logf("report:\n%s", report)
}

func TestReplayCheckPassesDeterministicWorkflows(t *testing.T) {
	t.Parallel()
	// The same workflow branching on a recorded value passes.
	src := strings.Replace(branchOnCounter, "unrecorded_counter() == 1", "durable(\"pick\") == 1", 1) +
		"\ndef pick():\n    return 1\n"
	path := writeFile(t, t.TempDir(), "branch.txtar", src)
	res := runGolden(t, path, stenttest.Update(true))
	if !res.Passed() {
		t.Fatalf("failures:\n%s", strings.Join(res.Failures, "\n"))
	}
	res = runGolden(t, path)
	if !res.Passed() || res.Updated {
		t.Fatalf("second run: updated=%v, failures:\n%s", res.Updated, strings.Join(res.Failures, "\n"))
	}
}

// repoFile reads a file of the repository.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBrokenWorkflowFailsWithDiff breaks a copy of an example workflow (its two
// fetches swap places) and checks that the example's golden test fails with a diff that
// shows the swap, and that Update rewrites the expectations so that it passes again.
func TestBrokenWorkflowFailsWithDiff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "go.mod", "module example.com/broken\n")
	script := repoFile(t, "workflows/notification/notification.star")
	broken := strings.Replace(script, "for uid in user_ids:", "for uid in reversed(user_ids):", 1)
	if broken == script {
		t.Fatal("workflows/notification/notification.star changed: the loop over user_ids is gone; update this test")
	}
	writeFile(t, dir, "workflows/notification/notification.star", broken)
	original := repoFile(t, "tests/golden/notification.txtar")
	golden := writeFile(t, dir, "tests/notification.txtar", original)

	res := runGolden(t, golden)
	report := failureReport(t, res, "the golden test passed against a broken workflow",
		"the outcome differs from the expectations (run with --update to accept it)",
		"--- notification.txtar (expected)\n+++ actual\n",
		`-2 activity_scheduled #1 fetch_user_data ["u1"]`,
		`+2 activity_scheduled #1 fetch_user_data ["u2"]`,
		"   \"users\": [\n-    \"u1\",\n-    \"u2\"\n+    \"u2\",\n+    \"u1\"\n")
	if strings.Contains(report, "replay check") {
		t.Errorf("the broken workflow is still deterministic, yet the replay check failed:\n%s", report)
	}
	t.Logf("report:\n%s", report)

	res = runGolden(t, golden, stenttest.Update(true))
	if !res.Passed() || !res.Updated {
		t.Fatalf("update: updated=%v, failures:\n%s", res.Updated, strings.Join(res.Failures, "\n"))
	}
	updated, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	// The inputs are kept as they were; only the expectations changed.
	inputs := original[:strings.Index(original, "-- result --")]
	if !strings.HasPrefix(string(updated), inputs) {
		t.Errorf("update changed the inputs; the file is now:\n%s", updated)
	}
	if !strings.Contains(string(updated), `2 activity_scheduled #1 fetch_user_data ["u2"]`) {
		t.Errorf("update did not record the new history; the file is now:\n%s", updated)
	}
	if res := runGolden(t, golden); !res.Passed() || res.Updated {
		t.Fatalf("after the update: updated=%v, failures:\n%s", res.Updated, strings.Join(res.Failures, "\n"))
	}
}

func TestMockAssertionsFailTheTest(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "assert.txtar", `-- workflow.star --
def main():
    return durable("send", "bob@example.com", "Hi")
-- mocks.star --
def send(to, body):
    assert_eq(to, "alice@example.com")
    assert.eq(body, "Hello")
    return "sent"
`)
	res := runGolden(t, path, stenttest.Update(true))
	report := strings.Join(res.Failures, "\n")
	for _, want := range []string{
		`mock send (execution golden, step #1, attempt 1): mocks.star:2:14: assert_eq: got "bob@example.com", want "alice@example.com"`,
		`"Hi" != "Hello"`,
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report does not say %q; it is:\n%s", want, report)
		}
	}
}

func TestMockErrorsFailTheTest(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "broken_mock.txtar", `-- workflow.star --
def main():
    return durable("lookup", "k")
-- mocks.star --
TABLE = {}

def lookup(key):
    return TABLE[key]
`)
	res := runGolden(t, path, stenttest.Update(true))
	report := strings.Join(res.Failures, "\n")
	if want := `mock lookup: mocks.star:4:17: key "k" not in dict`; !strings.Contains(report, want) {
		t.Errorf("the report does not say %q; it is:\n%s", want, report)
	}
	b, _ := os.ReadFile(path)
	if want := `activity_failed #1 lookup MockError: "mock lookup: mocks.star:4:17: key \"k\" not in dict"`; !strings.Contains(string(b), want) {
		t.Errorf("the history does not show the mock's failure %q:\n%s", want, b)
	}
}

func TestMalformedGoldenFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, tc := range map[string]struct{ content, want string }{
		"no_workflow":   {"-- args.json --\n[]\n", "no workflow"},
		"both":          {"workflow: workflows/x.star\n-- workflow.star --\ndef main():\n    pass\n", "both a workflow: header and a workflow.star section"},
		"bad_args":      {"-- workflow.star --\ndef main():\n    pass\n-- args.json --\n{\"a\": 1}\n", "args.json must be a JSON array"},
		"unknown":       {"-- workflow.star --\ndef main():\n    pass\n-- expected --\n", `unknown section "expected"`},
		"bad_signal":    {"-- workflow.star --\ndef main():\n    pass\n-- signals --\nsend x at 1h\n", "signals: line 1"},
		"bad_mocks":     {"-- workflow.star --\ndef main():\n    pass\n-- mocks.star --\ndef f(:\n", "mocks.star"},
		"missing_named": {"workflow: workflows/nowhere.star\n", "workflows/nowhere.star not found"},
	} {
		path := writeFile(t, dir, name+".txtar", tc.content)
		_, err := stenttest.RunGoldenFile(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// TestVirtualTimeIsFast: a month of durable sleep and minutes of retry delays take no
// real time.
func TestVirtualTimeIsFast(t *testing.T) {
	t.Parallel()
	limit := time.Second
	if raceEnabled {
		limit = 10 * time.Second
	}
	for _, name := range []string{"sleep_30d", "retry_backoff"} {
		began := time.Now()
		res := runGolden(t, filepath.Join("..", "golden", name+".txtar"))
		if !res.Passed() {
			t.Errorf("%s failed:\n%s", name, strings.Join(res.Failures, "\n"))
		}
		if d := time.Since(began); d > limit {
			t.Errorf("%s took %s, want under %s", name, d, limit)
		}
	}
}

// TestStuckWorkflow: a workflow that waits for a signal nobody sends is reported with
// the history it has so far, after the file's timeout.
func TestStuckWorkflow(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "stuck.txtar", `timeout: 2s
-- workflow.star --
def main():
    durable("step")
    return wait_signal("never")
-- mocks.star --
def step():
    return 1
`)
	res := runGolden(t, path, stenttest.Update(true))
	if !res.Passed() {
		t.Fatalf("failures:\n%s", strings.Join(res.Failures, "\n"))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-- error --\n(running) stuck: the workflow made no progress for 2s of real time",
		"3 activity_completed #1 step 1\n4 signal_wait #2 never\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the file does not hold %q:\n%s", want, b)
		}
	}
}

// A scripted signal that comes after the execution ended is no problem in either run:
// the replay run, slower, used to report "the execution already ended" on its own.
func TestSignalAfterTheEndIsNoProblem(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "late.txtar", `A signal scripted after the end.
-- workflow.star --
def main():
    sleep("1h")
    return "done"
-- signals --
at 2h send go {}
-- result --
"done"
-- history --
1 started []
2 timer_scheduled #1 sleep 1h
3 timer_fired #1 sleep @+1h
4 completed "done"
`)
	if res := runGolden(t, path); !res.Passed() {
		t.Fatalf("failed:\n%s", strings.Join(res.Failures, "\n"))
	}
}

// updated runs the golden test in path with Update(true) and returns the file it
// rewrote.
func updated(t *testing.T, path string) []byte {
	t.Helper()
	res := runGolden(t, path, stenttest.Update(true))
	if !res.Updated {
		t.Fatalf("not updated: %v", res.Failures)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// An expected error names a workflow outside the test's directory and the module by
// its path relative to the test file, so the file passes wherever the tree is.
func TestWorkflowPathsAreRelativeToTheTest(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flows/broken.star", "def main():\n    return 1 // 0\n")
	path := writeFile(t, dir, "tests/broken.txtar", "workflow: ../flows/broken.star\n")
	data := updated(t, path)
	if strings.Contains(string(data), dir) || !strings.Contains(string(data), "../flows/broken.star:2") {
		t.Errorf("the expectations name the workflow by an absolute path, or not at all:\n%s", data)
	}
	if res := runGolden(t, path); !res.Passed() {
		t.Errorf("the updated file fails:\n%s", strings.Join(res.Failures, "\n"))
	}
}

// An activity a golden test does not mock is an error that says to mock it.
func TestUnknownActivitySaysAddItToTheMocks(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "unknown.txtar", "-- workflow.star --\ndef main():\n    return durable(\"fetch\", 1)\n")
	data := updated(t, path)
	if strings.Contains(string(data), "Engine.Register") || !strings.Contains(string(data), "add it to the mocks: def fetch(...) in mocks.star") {
		t.Errorf("the error does not say to mock the activity:\n%s", data)
	}
}
