package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The writer does not checkpoint inside its commits; the background checkpointer keeps
// the WAL from growing without end: the file starts over once a checkpoint is complete.
func TestBackgroundCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var auto int
	if err := b.wc.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 || b.ckpt == nil {
		t.Fatalf("wal_autocheckpoint = %d, background checkpointer %v; want 0 and one", auto, b.ckpt != nil)
	}
	// The background checkpointer usually keeps the WAL to a few MiB, but it shares the
	// CPU: on a loaded machine it may not run for a while. What holds whatever the load
	// is the writer's own checkpoint once it is ckptInline commits behind, so the test
	// writes several times that many and asserts the bound that gives.
	const commits = 4 * ckptInline
	var largest int64
	for i := range commits {
		err := b.write(ctx, "test", func(t *wtx) error {
			_, err := t.conn.ExecContext(t.ctx, `INSERT INTO workers (id, host, pid, started_at, heartbeat_at) VALUES (?, 'h', 1, 0, 0)`, i)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path + "-wal"); err == nil {
			largest = max(largest, st.Size())
		}
	}
	// Each commit appends at least two 4 KiB frames (table and index leaf): without a
	// restart the WAL would pass 128 MiB; restarted every ckptInline commits at the
	// latest, it stays near 40 MiB.
	if largest > 64<<20 {
		t.Errorf("the WAL grew to %d bytes over %d commits; checkpoints do not let it start over", largest, commits)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.ckptDone.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if b.ckptDone.Load() == 0 {
		t.Error("no background checkpoint ran")
	}
}

// A DSN that sets wal_autocheckpoint keeps SQLite's own checkpoints.
func TestAutocheckpointFromDSN(t *testing.T) {
	t.Parallel()
	b, err := Open(context.Background(), filepath.Join(t.TempDir(), "c.db")+"?_pragma=wal_autocheckpoint(500)")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var auto int
	if err := b.wc.QueryRowContext(context.Background(), "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 500 || b.ckpt != nil {
		t.Errorf("wal_autocheckpoint = %d, background checkpointer %v; want 500 and none", auto, b.ckpt != nil)
	}
}
