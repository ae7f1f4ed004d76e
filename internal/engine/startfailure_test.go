package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/sqlite"
)

// refusingHeartbeats is a backend whose worker heartbeats fail.
type refusingHeartbeats struct{ backend.Backend }

func (refusingHeartbeats) Heartbeat(context.Context, string) error {
	return errors.New("heartbeats refused")
}

// A worker that cannot start ends a WaitFor of the same engine with its error, instead
// of leaving it waiting for a worker that never runs (stent exec's silent hang).
func TestWaitForSeesWorkerStartFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	b, err := sqlite.Open(ctx, filepath.Join(dir, "stent.db"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := Open(ctx, "", WithBackend(refusingHeartbeats{b}))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	f := &fixture{eng: eng, dir: dir}
	id, err := eng.Dispatch(ctx, f.script(t, "def main():\n    return 1\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx, WorkerOptions{}) }()
	res, err := eng.WaitFor(ctx, id)
	want := "waiting for execution " + id + ": starting worker: heartbeats refused"
	if res != nil || err == nil || err.Error() != want {
		t.Fatalf("WaitFor = %v, %v; want the error %q", res, err, want)
	}
	if serr := <-served; serr == nil || !strings.Contains(serr.Error(), "heartbeats refused") {
		t.Fatalf("Serve = %v; want the heartbeat error", serr)
	}
}
