package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stent-go/stent/backend/sqlite"
)

// TestConcurrentCreate: processes opening the same brand-new file at once all succeed
// (before, one of two often failed with "database is locked" while the other switched
// the file to WAL or migrated it).
func TestConcurrentCreate(t *testing.T) {
	if path := os.Getenv("STENT_SQLITE_OPEN_DB"); path != "" {
		b, err := sqlite.Open(context.Background(), path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			os.Exit(3)
		}
		if err := b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close:", err)
			os.Exit(3)
		}
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const trials, procs = 12, 3
	for trial := range trials {
		path := filepath.Join(t.TempDir(), "new.db")
		var wg sync.WaitGroup
		errs := make([]string, procs)
		for i := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentCreate$", "-test.count=1")
				cmd.Env = append(os.Environ(), "STENT_SQLITE_OPEN_DB="+path)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					errs[i] = fmt.Sprintf("%v: %s", err, out.String())
				}
			}()
		}
		wg.Wait()
		for i, e := range errs {
			if e != "" {
				t.Errorf("trial %d, process %d: %s", trial, i, e)
			}
		}
	}
}

// TestConcurrentCreateGoroutines is TestConcurrentCreate with backends of one process,
// each on its own connections.
func TestConcurrentCreateGoroutines(t *testing.T) {
	const trials, opens = 16, 4
	for trial := range trials {
		path := filepath.Join(t.TempDir(), "new.db")
		var wg sync.WaitGroup
		errs := make(chan error, opens)
		for range opens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := sqlite.Open(context.Background(), path)
				if err != nil {
					errs <- err
					return
				}
				errs <- b.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("trial %d: %v", trial, err)
			}
		}
	}
}
