package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"
)

// scriptCondition answers the scripts' custom conditions:
//
//	[postgres]  STENT_TEST_POSTGRES is set. Unset under CI=true is an error, not a
//	            skip: CI provides PostgreSQL, so its scripts must run there.
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "postgres":
		if os.Getenv("STENT_TEST_POSTGRES") != "" {
			return true, nil
		}
		if os.Getenv("CI") == "true" {
			return false, fmt.Errorf("STENT_TEST_POSTGRES is required in CI (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)")
		}
		return false, nil
	case "python3":
		if _, err := exec.LookPath("python3"); err == nil {
			return true, nil
		}
		if os.Getenv("CI") == "true" {
			return false, fmt.Errorf("python3 is required in CI (Debian package python3; .ci/run installs it)")
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// scriptCommands are the custom commands of the scripts.
var scriptCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"pgdb":       cmdPostgresDB,
	"linkrepo":   cmdLinkRepo,
	"httpserver": cmdHTTPServer,
	"exits":      cmdExits,
}

// cmdExits (`exits CODE PROGRAM [ARGS...]`) runs the program as exec does and fails
// unless it exits with CODE; stdout and stderr are then checked as after exec. A
// usage error is exit 2 and a failed command exit 1: `! exec` cannot tell them apart.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil || want == 0 {
		ts.Fatalf("exits: CODE must be a non-zero exit code, got %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		ts.Fatalf("%s exited 0, want exit %d", args[1], want)
	case !errors.As(err, &exitErr):
		ts.Fatalf("running %s: %v", args[1], err)
	case exitErr.ExitCode() != want:
		ts.Fatalf("%s exited %d, want exit %d", args[1], exitErr.ExitCode(), want)
	}
}

// cmdHTTPServer (`httpserver VARIABLE`) starts an HTTP server for HTTP activities, sets
// $VARIABLE to its URL and stops it when the script ends. It wants the header
// `Authorization: Bearer hunter2` (401 without it) and serves:
//
//	/flaky     503 with Retry-After: 1 on its first request, then the JSON object of
//	           what it got: args, attempt (Stent-Attempt), key (Idempotency-Key)
//	/declined  422 with the body `card declined`
func cmdHTTPServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: httpserver VARIABLE")
	}
	var flaky atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer hunter2" {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/flaky":
			if flaky.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "busy, try again", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"args": json.RawMessage(body), "attempt": r.Header.Get("Stent-Attempt"), "key": r.Header.Get("Idempotency-Key"),
			})
		case "/declined":
			http.Error(w, "card declined", http.StatusUnprocessableEntity)
		default:
			http.NotFound(w, r)
		}
	}))
	ts.Defer(srv.Close)
	ts.Setenv(args[0], srv.URL)
}

// cmdPostgresDB (`pgdb NAME`) creates a fresh PostgreSQL database on the server of
// STENT_TEST_POSTGRES, sets $NAME to its DSN and drops it when the script ends.
func cmdPostgresDB(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: pgdb VARIABLE")
	}
	admin := os.Getenv("STENT_TEST_POSTGRES")
	if admin == "" {
		ts.Fatalf("pgdb needs STENT_TEST_POSTGRES (guard the script with [!postgres] skip)")
	}
	dsn, drop, err := freshPostgresDB(admin)
	ts.Check(err)
	ts.Defer(drop)
	ts.Setenv(args[0], dsn)
}

// freshPostgresDB creates a database with a random name on the server of admin (a
// DSN) and returns its DSN and a func that drops it.
func freshPostgresDB(admin string) (dsn string, drop func(), err error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "stent_cli_" + hex.EncodeToString(rnd[:])
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("STENT_TEST_POSTGRES: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to create a database: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err = conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(context.Background())
		}
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// cmdLinkRepo (`linkrepo`) makes $WORK the module root, so that a README line such as
// `go run ./cmd/stent exec …` runs as typed in a clone, with stent.db created in $WORK:
// go.mod, go.sum, the root package's files and the package directories of $REPO are
// symlinked into $WORK (workflows/ is already a copy), and the go command gets its
// caches from the environment the tests run in.
func cmdLinkRepo(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: linkrepo")
	}
	root, work := ts.Getenv("REPO"), ts.Getenv("WORK")
	entries, err := os.ReadDir(root)
	ts.Check(err)
	for _, e := range entries {
		name := e.Name()
		link := name == "go.mod" || name == "go.sum" ||
			(!e.IsDir() && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) ||
			(e.IsDir() && name != "workflows" && !strings.HasPrefix(name, "."))
		if link {
			ts.Check(os.Symlink(filepath.Join(root, name), filepath.Join(work, name)))
		}
	}
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		ts.Check(err)
		ts.Setenv(v, strings.TrimSpace(string(out)))
	}
	ts.Setenv("GOFLAGS", "-mod=readonly")
	ts.Setenv("GOTOOLCHAIN", "local")
}
