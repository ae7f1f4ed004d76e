package postgres

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://root:secret@127.0.0.1:5432/test?sslmode=disable",
			"postgres://root:xxxxx@127.0.0.1:5432/test?sslmode=disable"},
		{"postgres://root@127.0.0.1:5432/test", "postgres://root@127.0.0.1:5432/test"},
		{"postgresql://u:p%40ss@h/db?password=other&sslmode=disable",
			"postgresql://u:xxxxx@h/db?password=xxxxx&sslmode=disable"},
		{"host=h user=u password=secret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='se cret' dbname=d", "host=h password=xxxxx dbname=d"},
		{"host=h PASSWORD = secret", "host=h PASSWORD = xxxxx"},
		{"postgres://u:sec ret@h:badport/db", "postgres://u:xxxxx@h:badport/db"},
	}
	for _, tc := range tests {
		if got := RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDSNPassword(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://root:secret@h/db", "secret"},
		{"postgres://root@h/db?password=q", "q"},
		{"host=h password='it\\'s' dbname=d", "it's"},
		{"host=h dbname=d", ""},
	}
	for _, tc := range tests {
		if got := dsnPassword(tc.in); got != tc.want {
			t.Errorf("dsnPassword(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// An unreachable database is reported with the DSN, but never its password.
func TestOpenErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://root:hunter2pw@127.0.0.1:1/test?sslmode=disable&connect_timeout=5",
		"host=127.0.0.1 port=1 user=root password=hunter2pw dbname=test sslmode=disable connect_timeout=5",
		"postgres://root:hunter2pw@127.0.0.1:notaport/test",
	} {
		b, err := Open(ctx, dsn)
		if err == nil {
			b.Close()
			t.Fatalf("Open(%s) succeeded, want an error", RedactDSN(dsn))
		}
		msg := err.Error()
		if strings.Contains(msg, "hunter2pw") {
			t.Errorf("error leaks the password: %s", msg)
		}
		if !strings.Contains(msg, "xxxxx") {
			t.Errorf("error does not name the (redacted) DSN: %s", msg)
		}
	}
}
