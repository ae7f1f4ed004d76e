package store

import (
	"strings"
	"testing"
)

func TestDSNKind(t *testing.T) {
	for _, tc := range []struct{ in, want, wantErr string }{
		{in: "stent.db", want: "sqlite"},
		{in: "/var/lib/stent/stent.db", want: "sqlite"},
		{in: "run=3.db", want: "sqlite"},
		{in: "my file.db", want: "sqlite"},
		{in: "host=db user=stent password=s3cret dbname=stent", want: "postgres"},
		{in: "  HOST = db  dbname = stent", want: "postgres"},
		{in: "dbname=stent", want: "postgres"},
		{in: "hots=db usr=me", wantErr: `"hots" is not a PostgreSQL connection keyword`},
		{in: "host=db passwd=s3cret", wantErr: `"passwd" is not a PostgreSQL connection keyword`},
		{in: "x.db password=s3cret", wantErr: `database "x.db password=…" is neither a file path nor a PostgreSQL connection string (use`},
		{in: "a\nb.db", wantErr: "control character"},
	} {
		got, err := dsnKind(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("dsnKind(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("dsnKind(%q): error leaks the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("dsnKind(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
