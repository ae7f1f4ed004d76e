package stent_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
)

// An HTTP activity registered through the host API is retried after a 503 and returns
// the second response's JSON.
func TestHTTPActivity(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		args, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"args": json.RawMessage(args), "attempt": r.Header.Get("Stent-Attempt")})
	}))
	defer srv.Close()

	dir := t.TempDir()
	script := filepath.Join(dir, "charge.star")
	src := "def main():\n    return durable('charge', 'order-42', 1999, retry=retry_policy(max_attempts=3, initial_delay='10ms'))\n"
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, stop, err := stent.Bootstrap(ctx, filepath.Join(dir, "stent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := eng.Register("charge", stent.HTTPActivity(srv.URL+"/charge",
		activities.HTTPHeader("Authorization", "Bearer t0ken"))); err != nil {
		t.Fatalf("Register: %v", err)
	}
	res, err := eng.Run(ctx, script, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := `{"args":["order-42",1999],"attempt":"2"}`; string(res.Value) != want {
		t.Fatalf("result = %s, want %s", res.Value, want)
	}
}
