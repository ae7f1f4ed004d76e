package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/sqlite"
)

// TestMultiProcess runs worker processes (this test binary, re-executed) on one
// database file and checks that every task is claimed exactly once.
func TestMultiProcess(t *testing.T) {
	if path := os.Getenv("STENT_SQLITE_CHILD_DB"); path != "" {
		childWorker(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stent.db")
	const n, procs = 150, 3
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STENT_SQLITE_CHILD_DB="+path)
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting worker process: %v", err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	// The parent dispatches while the children migrate and poll.
	b := openFile(t, path, nil)
	for i := 0; i < n; i++ {
		if _, err := b.CreateExecution(ctx, backend.NewExecution{ID: fmt.Sprint("x", i), Entry: "main"}); err != nil {
			t.Fatalf("CreateExecution: %v", err)
		}
	}
	if _, err := b.CreateExecution(ctx, backend.NewExecution{ID: "stop", Entry: "main", Queue: "control",
		StartAt: time.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	claimedBy := map[int64]int{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("worker process %d: %v\n%s", i, err, outs[i])
		}
		sc := bufio.NewScanner(outs[i])
		for sc.Scan() {
			id, err := strconv.ParseInt(sc.Text(), 10, 64)
			if err != nil {
				continue // test framework output
			}
			if prev, dup := claimedBy[id]; dup {
				t.Errorf("task %d claimed by process %d and process %d", id, prev, i)
			}
			claimedBy[id] = i
		}
	}
	if len(claimedBy) != n {
		t.Fatalf("%d tasks claimed across %d processes, want %d", len(claimedBy), procs, n)
	}
	done, err := b.ListExecutions(ctx, backend.ListFilter{Status: backend.StatusCompleted, Limit: 1000})
	if err != nil || len(done) != n {
		t.Fatalf("completed executions: %d (%v), want %d", len(done), err, n)
	}
}

// childWorker claims and completes default-queue workflow tasks until the "stop"
// execution's task becomes due, printing each claimed task ID on its own line.
func childWorker(path string) {
	ctx := context.Background()
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	defer b.Close()
	me := fmt.Sprint("proc-", os.Getpid())
	for {
		tasks, err := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: me, Queues: []string{backend.DefaultQueue}, Limit: 4})
		if err != nil {
			fmt.Fprintln(os.Stderr, "claim:", err)
			os.Exit(2)
		}
		for _, tk := range tasks {
			fmt.Println(tk.ID)
			_, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID,
				Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
			if err != nil && !errors.Is(err, backend.ErrLeaseLost) {
				fmt.Fprintln(os.Stderr, "complete:", err)
				os.Exit(2)
			}
		}
		if len(tasks) == 0 {
			x, err := b.GetExecution(ctx, "stop")
			if err == nil && !time.Now().Before(x.StartAt) {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}
