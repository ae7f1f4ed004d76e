package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// The writer commits with synchronous=NORMAL (1) by default and with FULL (2) when the
// DSN asks for it (stent --sqlite-sync full).
func TestSynchronousMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		query string
		want  int
	}{{"", 1}, {"?_synchronous=FULL", 2}, {"?_synchronous=NORMAL", 1}} {
		path := filepath.Join(t.TempDir(), "s.db")
		b, err := Open(context.Background(), path+tc.query)
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.query, err)
		}
		var got int
		if err := b.wc.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		_ = b.Close()
		if got != tc.want {
			t.Errorf("Open(%q): synchronous = %d, want %d", tc.query, got, tc.want)
		}
	}
}
