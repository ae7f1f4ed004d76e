package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// sqliteSyncFlag chooses when a SQLite commit reaches the disk.
var sqliteSyncFlag = envFlag("sqlite-sync", "normal",
	"SQLite durability: normal (WAL, survives a process crash; a power loss may lose the last commits) or full (every commit synced to disk, slower)")

// withSQLiteSync returns dsn with the --sqlite-sync choice applied: "full" adds
// _synchronous=FULL to a SQLite DSN. PostgreSQL DSNs are returned as they are.
func withSQLiteSync(c *cli.Context, dsn string) (string, error) {
	mode := strings.ToLower(strings.TrimSpace(flagValue(c, "sqlite-sync")))
	switch mode {
	case "", "normal":
		return dsn, nil
	case "full":
	default:
		return "", failf(exitUsage, "--sqlite-sync: unknown mode %q; use normal or full", mode)
	}
	if backendName(dsn) != "sqlite" || dsn == ":memory:" {
		return dsn, nil
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%s_synchronous=FULL", dsn, sep), nil
}
