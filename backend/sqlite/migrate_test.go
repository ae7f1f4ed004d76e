package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stent-go/stent/backend"
)

// TestUpgradeFromInitialSchema opens a database created by the first migration only,
// with data in it, and checks the later migrations upgrade it in place.
func TestUpgradeFromInitialSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	initial, err := os.ReadFile(filepath.Join("migrations", "001_init.up.sql"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		string(initial),
		`INSERT INTO schema_migrations VALUES (1, '001_init', 0)`,
		`INSERT INTO executions (id, bundle, entry, args, queue, status, created_at, updated_at, start_at)
			VALUES ('old', '{"main":"m.star","files":{}}', 'main', '[]', 'default', 'running', 1, 1, 1)`,
		`INSERT INTO events (execution_id, kind, data, at) VALUES ('old', 'started', '[]', 1)`,
		`INSERT INTO logs (execution_id, at, message) VALUES ('old', 1, 'hello')`,
		`INSERT INTO tasks (kind, execution_id, queue, run_at) VALUES ('workflow', 'old', 'default', 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("building the old schema: %v in %s", err, q)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	b := openFile(t, path, nil)
	x, err := b.GetExecution(ctx, "old")
	if err != nil {
		t.Fatalf("GetExecution after the upgrade: %v", err)
	}
	if x.Run != 1 {
		t.Fatalf("Run of an execution from before the upgrade = %d, want 1", x.Run)
	}
	h, err := b.History(ctx, "old", 0)
	if err != nil || len(h) != 1 || h[0].CacheHit {
		t.Fatalf("History after the upgrade = (%+v, %v), want the started event, no cache hit", h, err)
	}
	logs, err := b.Logs(ctx, "old")
	if err != nil || len(logs) != 1 || logs[0].Run != 1 {
		t.Fatalf("Logs after the upgrade = (%+v, %v), want the line with Run 1", logs, err)
	}
	// The new features work on the upgraded file.
	if err := b.SignalExecution(ctx, "old", "s", json.RawMessage(`1`)); err != nil {
		t.Fatalf("SignalExecution after the upgrade: %v", err)
	}
	if s, err := b.PendingSignals(ctx, "old"); err != nil || len(s) != 1 {
		t.Fatalf("PendingSignals after the upgrade = (%+v, %v), want one", s, err)
	}
	tasks, err := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w", Limit: 5})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("ClaimTasks after the upgrade = (%+v, %v), want the old workflow task", tasks, err)
	}
	if _, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{Task: tasks[0].Ref(), ExecutionID: "old",
		Logs: []string{"again"}, ContinueAsNew: json.RawMessage(`[1]`)}); err != nil {
		t.Fatalf("CompleteWorkflowTask with ContinueAsNew after the upgrade: %v", err)
	}
	if x, _ := b.GetExecution(ctx, "old"); x == nil || x.Run != 2 {
		t.Fatalf("Run after continue-as-new = %+v, want 2", x)
	}
	if n, err := b.ClearCache(ctx, ""); err != nil || n != 0 {
		t.Fatalf("ClearCache after the upgrade = (%d, %v), want (0, nil)", n, err)
	}
	if d, err := b.ListDeadLetters(ctx, "", 0); err != nil || len(d) != 0 {
		t.Fatalf("ListDeadLetters after the upgrade = (%+v, %v), want none", d, err)
	}
	// Migrating again changes nothing.
	if err := b.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
}
