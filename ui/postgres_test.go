package ui_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/postgres"
	"github.com/stent-go/stent/ui"
)

// openPostgres opens a backend on a fresh schema of STENT_TEST_POSTGRES, dropped with
// the test, and returns it with the DSN and the schema. Unset, the test is skipped,
// except in CI where it fails.
func openPostgres(t testing.TB) (be backend.Backend, dsn, schema string) {
	t.Helper()
	dsn = os.Getenv("STENT_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("STENT_TEST_POSTGRES is required in CI (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)")
		}
		t.Skip("STENT_TEST_POSTGRES is not set; skipping the web view's PostgreSQL test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema = "stent_ui_" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	be, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema), postgres.WithMaxConns(4))
	if err != nil {
		t.Fatalf("STENT_TEST_POSTGRES is set but PostgreSQL does not answer: %v", err)
	}
	return be, dsn, schema
}

// TestPagesPostgres renders every page and cancels an execution over PostgreSQL.
func TestPagesPostgres(t *testing.T) {
	be, _, _ := openPostgres(t)
	f := newFixtureOn(t, ui.Options{}, be)
	done := f.dispatch(t, "flow.star", []any{"Ada"})
	f.waitStatus(t, done, backend.StatusCompleted)
	failed := f.dispatch(t, "flaky.star", []any{"x1"})
	f.waitStatus(t, failed, backend.StatusFailed)
	parent := f.dispatch(t, "parent.star", nil)
	f.waitStatus(t, parent, backend.StatusCompleted)
	sleepy := f.dispatch(t, "sleepy.star", nil)
	f.waitHistory(t, sleepy, backend.EventTimerScheduled, "sleep")

	c := newClient(t)
	for path, want := range map[string]string{
		"/":                                  done,
		"/?status=failed":                    failed,
		"/executions/" + done:                `class="bar k-activity o-ok"`,
		"/executions/" + done + "/source":    `sleep(&#34;20ms&#34;)`,
		"/executions/" + parent:              parent + "/2",
		"/executions/" + failed:              "upstream unavailable for x1",
		"/dead-letters":                      failed,
		"/executions/" + sleepy + "/source":  "sleep(&#34;1h&#34;)",
		"/executions/" + sleepy + "?steps=0": `id="cancel"`,
	} {
		if body := fetch(t, c, f.srv.URL+path, http.StatusOK); !strings.Contains(body, want) {
			t.Errorf("GET %s does not contain %q", path, want)
		}
	}
	if body := fetch(t, c, f.srv.URL+"/?status=failed", http.StatusOK); strings.Contains(body, done) {
		t.Errorf("the failed filter lists the completed execution %s", done)
	}
	page := fetch(t, c, f.srv.URL+"/executions/"+sleepy, http.StatusOK)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the execution page")
	}
	res, err := c.PostForm(f.srv.URL+"/actions/cancel", url.Values{"id": {sleepy}, "csrf": {m[1]}, "confirmed": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d, want 303", res.StatusCode)
	}
	f.waitStatus(t, sleepy, backend.StatusCancelled)
}
