package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stent-go/stent"
)

// BenchmarkStartAndWait is one POST /api/v1/executions?wait= of a workflow that
// returns at once; BenchmarkDispatchAndWait the same in process. The difference is
// what the API adds per start-and-wait (go test -bench . -cpuprofile to see where).
func BenchmarkStartAndWait(b *testing.B) {
	srv, _ := apiEngine(b, Options{})
	client := srv.Client()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Post(srv.URL+"/api/v1/executions?wait=30s", "application/json", strings.NewReader(`{"script": "hello.star", "args": ["Ann"]}`))
		if err != nil {
			b.Fatal(err)
		}
		var got struct{ Status, Result string }
		err = json.NewDecoder(resp.Body).Decode(&got)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated || got.Result != "hi Ann" {
			b.Fatalf("%s: %+v %v", resp.Status, got, err)
		}
	}
}

func BenchmarkDispatchAndWait(b *testing.B) {
	_, eng := apiEngine(b, Options{})
	ctx := context.Background()
	script := filepath.Join(b.TempDir(), "hello.star")
	must(b, os.WriteFile(script, []byte("def main(name):\n    return 'hi ' + name\n"), 0o644))
	b.ResetTimer()
	for b.Loop() {
		id, err := eng.DispatchJSON(ctx, script, json.RawMessage(`["Ann"]`), stent.ModulePath(filepath.Dir(script)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := eng.WaitFor(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
