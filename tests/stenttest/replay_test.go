package stenttest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stent-go/stent/tests/stenttest"
)

// recordingT captures what ReplayCompatible reports.
type recordingT struct {
	testing.TB
	errors []string
}

func (r *recordingT) Helper() {}
func (r *recordingT) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestReplayCompatible(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	env.Register("step", func(ctx context.Context, n int) (int, error) { return n, nil })
	v1 := env.Script("def main(n):\n    a = durable(\"step\", n)\n    b = durable(\"step\", n + 1)\n    return a + b\n")
	res := env.Run(v1, 1)
	history, err := env.History(context.Background(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Round trip through the file `stent history --json` writes.
	dir := t.TempDir()
	var lines []string
	for _, ev := range history {
		b, _ := json.Marshal(ev)
		lines = append(lines, string(b))
	}
	file := filepath.Join(dir, "h.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	read, err := stenttest.ReadHistory(file)
	if err != nil {
		t.Fatal(err)
	}

	compatible := filepath.Join(dir, "v2.star")
	os.WriteFile(compatible, []byte("def main(n):\n    a = durable(\"step\", n)\n    b = durable(\"step\", n + 1)\n    c = durable(\"step\", 9)\n    return a + b + c\n"), 0o644)
	stenttest.ReplayCompatible(t, compatible, read)

	changed := filepath.Join(dir, "v3.star")
	os.WriteFile(changed, []byte("def main(n):\n    a = durable(\"step\", n)\n    b = durable(\"step\", n + 2)\n    return a + b\n"), 0o644)
	rt := &recordingT{TB: t}
	stenttest.ReplayCompatible(rt, changed, read)
	if len(rt.errors) != 1 || !strings.Contains(rt.errors[0], `step 2: history has durable("step", 2)`) ||
		!strings.Contains(rt.errors[0], `the script now does durable("step", 3) at `+changed+":3:16") {
		t.Fatalf("ReplayCompatible of an incompatible script reported %q", rt.errors)
	}
}
