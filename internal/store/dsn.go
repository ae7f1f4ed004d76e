package store

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/stent-go/stent/internal/errs"
)

// libpqKeywords are the parameter keywords of a PostgreSQL keyword/value connection
// string ("host=db user=stent dbname=stent"), as libpq documents them.
var libpqKeywords = []string{
	"application_name", "channel_binding", "client_encoding", "connect_timeout", "dbname",
	"fallback_application_name", "gssencmode", "gsslib", "host", "hostaddr", "keepalives",
	"keepalives_count", "keepalives_idle", "keepalives_interval", "krbsrvname",
	"load_balance_hosts", "options", "passfile", "password", "pool_max_conns", "port",
	"replication", "requirepeer", "requiressl", "service", "ssl_max_protocol_version",
	"ssl_min_protocol_version", "sslcert", "sslcompression", "sslcrl", "sslcrldir", "sslkey",
	"sslmode", "sslnegotiation", "sslpassword", "sslrootcert", "sslsni", "target_session_attrs",
	"tcp_user_timeout", "user",
}

// keywordValue matches the "key=" (or "key =") that starts each pair of a keyword/value
// connection string.
var keywordValue = regexp.MustCompile(`(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)\s*=`)

// keywordAndValue matches one pair of a keyword/value string, its value quoted or not.
var keywordAndValue = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// maskValues hides every value of a string that may be a mistyped connection string:
// any of them may be a password under a misspelt keyword.
func maskValues(dsn string) string {
	return keywordAndValue.ReplaceAllString(dsn, "${1}…")
}

// dsnKind says which backend a DSN without a scheme names: "postgres" for a libpq
// keyword/value string, "sqlite" for a file path, or an error for a value that is
// neither (a file is never created under such a name: it may hold a password).
func dsnKind(dsn string) (string, error) {
	if i := strings.IndexFunc(dsn, unicode.IsControl); i >= 0 {
		return "", fmt.Errorf("database %q is neither a file path nor a PostgreSQL connection string: it holds the control character %q", maskValues(dsn), dsn[i])
	}
	matches := keywordValue.FindAllStringSubmatch(dsn, -1)
	if len(matches) == 0 {
		return "sqlite", nil
	}
	trimmed := strings.TrimSpace(dsn)
	startsWithPair := keywordValue.FindStringIndex(trimmed) != nil && keywordValue.FindStringIndex(trimmed)[0] == 0
	var unknown []string
	for _, m := range matches {
		if !slices.Contains(libpqKeywords, strings.ToLower(m[1])) {
			unknown = append(unknown, m[1])
		}
	}
	known := len(matches) - len(unknown)
	switch {
	case startsWithPair && len(unknown) == 0:
		return "postgres", nil
	case known == 0 && len(matches) == 1 && !strings.ContainsAny(trimmed, " \t"):
		return "sqlite", nil // a file name with an '=' in it ("run=3.db")
	}
	hint := "use a file path for SQLite (e.g. stent.db), postgres://user@host/db, or PostgreSQL keywords such as host=… user=… dbname=…"
	if len(unknown) > 0 {
		return "", fmt.Errorf("database %q is neither a file path nor a PostgreSQL connection string: %q is not a PostgreSQL connection keyword (%s)", maskValues(dsn), unknown[0], hint)
	}
	return "", fmt.Errorf("database %q is neither a file path nor a PostgreSQL connection string (%s)", maskValues(dsn), hint)
}

// Kind says which backend dsn names, as Open would choose it: "postgres" or "sqlite".
// A DSN that names no database is an *errs.InputError.
func Kind(dsn string) (string, error) {
	if i := strings.Index(dsn, "://"); i > 0 {
		switch strings.ToLower(dsn[:i]) {
		case "postgres", "postgresql":
			return "postgres", nil
		case "sqlite", "sqlite3", "file":
			return "sqlite", nil
		}
		return "", &errs.InputError{Err: fmt.Errorf("unknown database scheme %q in %s: use a file path (SQLite, e.g. stent.db) or postgres://user@host/db (PostgreSQL)", strings.ToLower(dsn[:i]), redact(dsn))}
	}
	if dsn == "" {
		return "sqlite", nil
	}
	kind, err := dsnKind(dsn)
	if err != nil {
		return "", &errs.InputError{Err: err}
	}
	return kind, nil
}
