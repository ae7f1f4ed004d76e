// Package golden holds Stent's script-level golden tests: one txtar file per scenario
// (a workflow, its arguments, mocked activities, scripted signals, and the expected
// result and history). `go test` runs them all, each with the live-execution cache and
// replaying after every event; `go test -update` (or `stent test --update`) rewrites
// the expectations of those that changed. The format is documented in package
// tests/stenttest.
package golden

import (
	"flag"
	"testing"

	"github.com/stent-go/stent/tests/stenttest"
)

var update = flag.Bool("update", false, "rewrite the expectations of golden files that do not match")

func TestGolden(t *testing.T) {
	stenttest.RunGoldenDir(t, ".", stenttest.Update(*update))
}
