package postgres

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// A multi-host DSN whose first host refuses connections (a primary that is gone)
// reaches the second, with target_session_attrs=read-write, for the pool and for the
// LISTEN connection, whether that has a DSN of its own or not: nothing Stent does to
// the DSN (application_name, search_path, plan_cache_mode, redaction) breaks it.
func TestMultiHostDSN(t *testing.T) {
	dsn := testDSN(t)
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("STENT_TEST_POSTGRES %q is not a postgres:// URL: CI must run the multi-host test", dsn)
		}
		t.Skip("STENT_TEST_POSTGRES is not a postgres:// URL")
	}
	u.Host = "127.0.0.1:1," + u.Host
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()
	multi := u.String()
	for _, tc := range []struct {
		name   string
		listen string
	}{{"pool", ""}, {"listen-dsn", multi}} {
		t.Run(tc.name, func(t *testing.T) {
			schema := newSchemaName(t, dsn)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			b, err := Open(ctx, multi, WithSchema(schema), WithMaxConns(4), WithListenDSN(tc.listen))
			if err != nil {
				t.Fatalf("Open(%s): %v", RedactDSN(multi), err)
			}
			t.Cleanup(func() { _ = b.Close() })
			notes := startListener(t, b)
			if _, err := b.pool.Exec(ctx, "SELECT pg_notify($1, 'q1')", b.tasksChannel); err != nil {
				t.Fatal(err)
			}
			expectNote(t, notes, backend.Notification{Kind: "task", Queue: "q1"}, patience)
		})
	}
}

func TestRedactMultiHostDSN(t *testing.T) {
	in := "postgres://u:secret@10.0.0.1:5432,10.0.0.2:5433/db?target_session_attrs=read-write"
	want := "postgres://u:xxxxx@10.0.0.1:5432,10.0.0.2:5433/db?target_session_attrs=read-write"
	if got := RedactDSN(in); got != want {
		t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
	}
	if got := dsnPassword(in); got != "secret" {
		t.Errorf("dsnPassword(%q) = %q, want secret", in, got)
	}
}
