package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stent-go/stent"
)

// apiServer serves the API of an engine with a worker, on a scripts directory holding
// hello.star and wait.star, plus a secret file outside it.
func apiServer(t testing.TB, opts Options) *httptest.Server {
	srv, _ := apiEngine(t, opts)
	return srv
}

// apiEngine is apiServer with the engine's options and the engine, on which a test
// registers activities, plus whatever scripts the test names (path → source).
func apiEngine(t testing.TB, opts Options, engOpts ...stent.Option) (*httptest.Server, *stent.Engine) {
	t.Helper()
	dir := t.TempDir()
	scripts := filepath.Join(dir, "scripts")
	must(t, os.MkdirAll(scripts, 0o755))
	must(t, os.WriteFile(filepath.Join(scripts, "hello.star"), []byte("def main(name):\n    return 'hi ' + name\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(scripts, "wait.star"), []byte("def main():\n    print('waiting')\n    return wait_signal('go')\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(scripts, "fails.star"), []byte("def main():\n    return durable('boom')\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(scripts, "remote.star"), []byte("def main():\n    return durable('remote', 1)\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "secret.star"), []byte("def main():\n    return 'secret'\n"), 0o644))
	must(t, os.Symlink(filepath.Join(dir, "secret.star"), filepath.Join(scripts, "escape.star")))
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, stop, err := stent.Bootstrap(context.Background(), filepath.Join(dir, "stent.db"), append([]stent.Option{stent.WithLogger(quiet)}, engOpts...)...)
	must(t, err)
	t.Cleanup(stop)
	opts.ScriptsDir, opts.Logger = scripts, quiet
	if opts.Remote == nil {
		// As stent serve does: activity tasks for pollers.
		opts.Remote = eng.NewRemoteActivities(stent.RemoteOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- opts.Remote.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("remote activities: %v", err)
			}
		})
	}
	if opts.MaxBody == 0 {
		opts.MaxBody = 4096
	}
	api, err := Handler(eng, opts)
	must(t, err)
	srv := httptest.NewServer(HostGuard(api, []string{"stent.internal"}))
	t.Cleanup(srv.Close)
	return srv, eng
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type call struct {
	method, path, body string
	header             map[string]string
	code               int
	want               string // a substring of the response body
}

func (c call) do(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	must(t, err)
	for k, v := range c.header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := srv.Client().Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != c.code || !strings.Contains(string(b), c.want) {
		t.Fatalf("%s %s %s: %d %s; want %d with %q", c.method, c.path, c.body, resp.StatusCode, b, c.code, c.want)
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusMisdirectedRequest && resp.StatusCode != http.StatusForbidden {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s %s: error with Content-Type %q, want application/problem+json", c.method, c.path, ct)
		}
	}
	return string(b)
}

func TestExecutionsOverHTTP(t *testing.T) {
	srv := apiServer(t, Options{})
	for _, c := range []call{
		{"POST", "/api/v1/executions", `{"script": "hello.star", "args": ["Ann"], "id": "h1"}`, nil, 201, `"id":"h1"`},
		{"GET", "/api/v1/executions/h1?wait=30s", "", nil, 200, `"result":"hi Ann"`},
		{"POST", "/api/v1/executions", `{"script": "hello.star", "args": ["Ann"], "id": "h1"}`, nil, 200, `"status":"completed"`},
		{"POST", "/api/v1/executions", `{"script": "hello.star", "args": ["Bob"], "id": "h1"}`, nil, 409, `/api/v1/problems/id-conflict`},
		{"POST", "/api/v1/executions", `{"script": "hello.star", "args": ["Bob"]}`, map[string]string{"Idempotency-Key": "k1"}, 201, `"id":"k1"`},
		{"POST", "/api/v1/executions", `{"script": "hello.star", "args": ["Bob"]}`, map[string]string{"Idempotency-Key": "k1"}, 200, `"id":"k1"`},
		{"POST", "/api/v1/executions", `{"script": "hello.star", "args": [1, 2]}`, nil, 400, `takes 1 argument`},
		{"POST", "/api/v1/executions", `{"script": `, nil, 400, `/api/v1/problems/invalid-json`},
		{"POST", "/api/v1/executions", `{"script": "../secret.star"}`, nil, 400, `no absolute path, no ..`},
		{"POST", "/api/v1/executions", `{"script": "/etc/passwd"}`, nil, 400, `invalid-script`},
		{"POST", "/api/v1/executions", `{"script": "escape.star"}`, nil, 400, `leads out of the scripts directory`},
		{"POST", "/api/v1/executions", `{"script": "missing.star"}`, nil, 400, `no such file`},
		{"POST", "/api/v1/executions", `{"script": "hello.star", "args": ["` + strings.Repeat("x", 5000) + `"]}`, nil, 413, `payload-too-large`},
		{"POST", "/api/v1/executions?wait=30s", `{"script": "hello.star", "args": ["Cy"], "id": "h2"}`, nil, 201, `"result":"hi Cy"`},
		{"POST", "/api/v1/executions?wait=30s", `{"script": "hello.star", "args": ["Cy"], "id": "h2"}`, nil, 200, `"status":"completed"`},
		{"POST", "/api/v1/executions?wait=soon", `{"script": "hello.star", "args": ["Cy"], "id": "h3"}`, nil, 400, `positive duration`},
		{"GET", "/api/v1/executions/h3", "", nil, 404, `no-such-execution`},
		{"GET", "/api/v1/executions/nope", "", nil, 404, `no-such-execution`},
		{"GET", "/api/v1/executions?limit=1", "", nil, 200, `"next_cursor"`},
		{"GET", "/api/v1/executions/h1/history", "", nil, 200, `"kind":"completed"`},
		{"POST", "/api/v1/executions", `{"script": "wait.star", "id": "w1"}`, nil, 201, `"status":"running"`},
		{"GET", "/api/v1/executions/w1?wait=1s", "", nil, 200, `"waiting_for"`},
		{"POST", "/api/v1/executions?wait=1s", `{"script": "wait.star", "id": "w1"}`, nil, 200, `"status":"running"`},
		{"POST", "/api/v1/executions/w1/signals/go", `{"ok": true}`, nil, 202, ``},
		{"GET", "/api/v1/executions/w1?wait=30s", "", nil, 200, `"result":{"ok":true}`},
		{"GET", "/api/v1/executions/w1/logs", "", nil, 200, `"message":"waiting"`},
		{"POST", "/api/v1/executions/w1/signals/go", `1`, nil, 409, `execution-ended`},
		{"POST", "/api/v1/executions/w1/cancel", ``, nil, 409, `execution-ended`},
		{"POST", "/api/v1/executions/h1/retry", ``, nil, 409, `not-failed`},
		{"POST", "/api/v1/executions", `{"script": "wait.star", "id": "w2"}`, nil, 201, ``},
		{"POST", "/api/v1/executions/w2/terminate", ``, nil, 202, ``},
		{"GET", "/api/v1/executions/w2?wait=30s", "", nil, 200, `"status":"cancelled"`},
		{"GET", "/api/v1/nothing", "", nil, 404, `not-found`},
	} {
		c.do(t, srv)
	}
}

func TestTokens(t *testing.T) {
	srv := apiServer(t, Options{Tokens: []string{"full"}, ReadOnlyTokens: []string{"reader"}})
	body := `{"script": "hello.star", "args": ["Ann"]}`
	for _, c := range []call{
		{"GET", "/api/v1/executions", "", nil, 401, `unauthorized`},
		{"GET", "/api/v1/executions", "", map[string]string{"Authorization": "Bearer wrong"}, 401, `unauthorized`},
		{"GET", "/api/v1/executions", "", map[string]string{"Authorization": "Bearer reader"}, 200, `"executions"`},
		{"POST", "/api/v1/executions", body, map[string]string{"Authorization": "Bearer reader"}, 403, `read-only-token`},
		{"POST", "/api/v1/executions", body, map[string]string{"Authorization": "Bearer full"}, 201, `"status"`},
	} {
		c.do(t, srv)
	}
}

// A page on a foreign name that resolves to this machine (DNS rebinding) gets nothing,
// and a cross-site POST is refused.
func TestHostGuard(t *testing.T) {
	srv := apiServer(t, Options{})
	body := `{"script": "hello.star", "args": ["Ann"]}`
	for _, c := range []call{
		{"GET", "/api/v1/executions", "", map[string]string{"Host": "attacker.example"}, 421, `unknown Host`},
		{"POST", "/api/v1/executions", body, map[string]string{"Host": "attacker.example:80", "Origin": "http://attacker.example"}, 421, `unknown Host`},
		{"POST", "/api/v1/executions", body, map[string]string{"Origin": "http://attacker.example"}, 403, `cross-site`},
		{"POST", "/api/v1/executions", body, map[string]string{"Referer": "http://attacker.example/page"}, 403, `cross-site`},
		{"GET", "/api/v1/executions", "", map[string]string{"Host": "localhost:8233"}, 200, `"executions"`},
		{"GET", "/api/v1/executions", "", map[string]string{"Host": "stent.internal"}, 200, `"executions"`},
		{"POST", "/api/v1/executions", body, map[string]string{"Origin": "http://localhost:8233"}, 201, `"status"`},
	} {
		c.do(t, srv)
	}
	var list struct {
		Executions []json.RawMessage `json:"executions"`
	}
	must(t, json.Unmarshal([]byte(call{"GET", "/api/v1/executions", "", nil, 200, ""}.do(t, srv)), &list))
	if len(list.Executions) != 1 {
		t.Fatalf("%d executions after the refused requests, want the 1 allowed", len(list.Executions))
	}
}

func TestCheckAddr(t *testing.T) {
	if err := CheckAddr("0.0.0.0:8233", Options{}); err == nil {
		t.Fatal("serving on every interface without a token was allowed")
	}
	for _, ok := range []struct {
		addr string
		o    Options
	}{{"127.0.0.1:8233", Options{}}, {"localhost:1", Options{}}, {"0.0.0.0:8233", Options{Tokens: []string{"t"}}}} {
		if err := CheckAddr(ok.addr, ok.o); err != nil {
			t.Fatalf("CheckAddr(%s): %v", ok.addr, err)
		}
	}
}
