//go:build linux

package activities

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSupervisedCommandKillsEscapedDescendants: a command that leaves a setsid child
// and a double-forked daemon behind, both about to write a file, ends; the supervisor
// kills them with it, so the file is never written.
func TestSupervisedCommandKillsEscapedDescendants(t *testing.T) {
	dir := t.TempDir()
	late := filepath.Join(dir, "late")
	a := commandActivity(t, "escape="+script(t, "cat >/dev/null\n"+
		"setsid sh -c 'sleep 1; echo setsid >> "+late+"' </dev/null >/dev/null 2>&1 &\n"+
		"( sh -c 'sleep 1; echo daemon >> "+late+"' </dev/null >/dev/null 2>&1 & ) \n"+
		"echo 7"))
	out, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	if err != nil || string(out) != "7" {
		t.Fatalf("Invoke: %s, %v", out, err)
	}
	// Wait past the descendants' own sleep: had they survived, they would have written.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(late); err == nil {
			t.Fatalf("a descendant outlived its command and wrote %q", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSupervisedCommandStartErrors: a command the supervisor cannot start fails as an
// unsupervised one does.
func TestSupervisedCommandStartErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.sh")
	if err := os.WriteFile(bad, []byte("no shebang\x00\x01"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := commandActivity(t, "bad="+bad).Invoke(context.Background(), json.RawMessage(`[]`))
	if err == nil || !strings.Contains(err.Error(), "exec format error") || !IsNonRetryable(err) {
		t.Fatalf("a command that is not executable: %v; want exec format error, non-retryable", err)
	}
}

// BenchmarkCommandTrue is the cost of one command activity start: /bin/true run
// directly (as without SupervisorMain) and under a supervisor (this test binary).
func BenchmarkCommandTrue(b *testing.B) {
	r := NewRegistry()
	if err := r.RegisterCommand("t=/bin/true"); err != nil {
		b.Fatal(err)
	}
	a, _ := r.Lookup("t")
	for _, mode := range []struct {
		name string
		on   bool
	}{{"direct", false}, {"supervised", true}} {
		b.Run(mode.name, func(b *testing.B) {
			was := supervisorOn.Swap(mode.on)
			defer supervisorOn.Store(was)
			for i := 0; i < b.N; i++ {
				if _, err := a.Invoke(context.Background(), json.RawMessage(`[]`)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
