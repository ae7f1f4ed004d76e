package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/sqlite"
)

// A database that cannot grow (max_page_count stands in for a full disk: SQLite
// answers both with SQLITE_FULL) fails writes with ErrUnavailable, naming the file's
// disk and what to do; the failed write left nothing behind and reads go on.
func TestDiskFullIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stent.db")
	ctx := context.Background()
	b, err := sqlite.Open(ctx, path+"?_pragma=max_page_count(400)")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	big, _ := json.Marshal([]string{strings.Repeat("x", 64<<10)})
	var werr error
	created := 0
	for i := 0; i < 100 && werr == nil; i++ {
		ne := backend.NewExecution{ID: fmt.Sprintf("e%d", i), Bundle: backend.Bundle{Main: "m.star", Files: map[string]string{"m.star": "h"}},
			Sources: map[string][]byte{"h": []byte("def main(x):\n    return x\n")}, Entry: "main", Args: big}
		if _, werr = b.CreateExecution(ctx, ne); werr == nil {
			created++
		}
	}
	if werr == nil {
		t.Fatal("100 executions of 64 KiB fit in 400 pages")
	}
	if !errors.Is(werr, backend.ErrUnavailable) || !backend.Retryable(werr) {
		t.Errorf("error %v is not ErrUnavailable", werr)
	}
	if want := "the disk holding " + path + " is full"; !strings.Contains(werr.Error(), want) {
		t.Errorf("error %q does not say %q", werr, want)
	}
	if _, err := b.GetExecution(ctx, fmt.Sprintf("e%d", created)); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the execution whose creation failed: %v, want ErrNotFound", err)
	}
	if _, err := b.GetExecution(ctx, "e0"); err != nil {
		t.Errorf("reading after the failure: %v", err)
	}
}
