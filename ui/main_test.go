package ui_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/internal/testlog"
)

// TestMain logs at warn unless -v. With STENT_UI_TEST_WORKER=DB the test binary is a
// worker process instead (see TestBrowserWorkerKilled): it serves DB as worker
// $STENT_UI_TEST_WORKER_ID until it is killed.
func TestMain(m *testing.M) {
	if db := os.Getenv("STENT_UI_TEST_WORKER"); db != "" {
		if err := serveWorker(db, os.Getenv("STENT_UI_TEST_WORKER_ID")); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testlog.Main(m)
}

func serveWorker(db, id string) error {
	ctx := context.Background()
	eng, err := stent.Open(ctx, db)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := eng.Register("charge", func(context.Context, int) (int, error) { return 0, nil }); err != nil {
		return err
	}
	return eng.Serve(ctx, stent.WorkerOptions{ID: id, Queues: []string{"payments"}})
}
