package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/store"
)

// pgBackupHint is what `stent backup` says about a PostgreSQL database.
const pgBackupHint = `stent backup copies SQLite files only; back up PostgreSQL with its own tools:
  pg_dump --format=custom --file=stent.dump "%s"
(a consistent snapshot, safe while workers run; restore with pg_restore --dbname=…), or a base
backup with WAL archiving (pg_basebackup, point-in-time recovery) for continuous protection`

func backupCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "copy a SQLite database to DEST online, consistent while workers run (PostgreSQL: use pg_dump or PITR)",
		ArgsUsage: "DEST",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "replace DEST (and its -wal and -shm files) when it exists"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return failf(exitUsage, "backup takes the file to write (usage: stent backup DEST)")
			}
			dest := c.Args().First()
			dsn := dbDSN(c)
			kind, err := store.Kind(dsn)
			if err != nil {
				return err
			}
			if kind == "postgres" {
				return failf(exitUsage, pgBackupHint, redactDSN(dsn))
			}
			if dsn == ":memory:" {
				return failf(exitUsage, "backup: an in-memory database has no file to copy")
			}
			if err := checkBackupDest(dest, sqlitePath(dsn), c.Bool("force")); err != nil {
				return err
			}
			return withEngine(c, func(eng *stent.Engine) error {
				b, ok := eng.Backend().(backend.Backuper)
				if !ok {
					return failf(exitUsage, "backup: this database cannot be copied online")
				}
				return writeBackup(c, b, dest)
			})
		},
	}
}

// writeBackup copies the database to a temporary file beside dest and renames it into
// place, so that dest is either the old file or the whole new copy.
func writeBackup(c *cli.Context, b backend.Backuper, dest string) error {
	tmp := fmt.Sprintf("%s.tmp-%d", dest, os.Getpid())
	_ = os.Remove(tmp)
	if err := b.Backup(c.Context, tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	// A stale -wal beside dest would be replayed into the new copy when it is opened.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dest + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(tmp)
			return fmt.Errorf("backup: removing the old %s: %w", dest+suffix, err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("backup: moving the copy into place: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dest)); err == nil { // the rename reaches the disk
		_ = d.Sync()
		_ = d.Close()
	}
	info, err := os.Stat(dest)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "backed up to %s (%d bytes)\n", dest, info.Size())
	return nil
}

// checkBackupDest refuses a destination that exists (unless force), that is the
// database itself, or whose directory does not exist.
func checkBackupDest(dest, source string, force bool) error {
	dir := filepath.Dir(dest)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return failf(exitUsage, "backup: directory %s does not exist: create it first or choose another DEST", dir)
	}
	info, err := os.Stat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if info.IsDir() {
		return failf(exitUsage, "backup: %s is a directory: name a file (e.g. %s)", dest, filepath.Join(dest, "stent-backup.db"))
	}
	if src, err := os.Stat(source); err == nil && os.SameFile(src, info) {
		return failf(exitUsage, "backup: %s is the database itself: choose another DEST", dest)
	}
	if !force {
		return failf(exitUsage, "backup: %s exists: choose another DEST, or --force to replace it", dest)
	}
	return nil
}

// dbDSN is the database named by --db (or STENT_DB), or the default.
func dbDSN(c *cli.Context) string {
	if dsn := flagValue(c, "db"); dsn != "" {
		return dsn
	}
	return dbFlag.Value
}

// sqlitePath is the file path of a SQLite DSN (its scheme and parameters removed).
func sqlitePath(dsn string) string {
	for _, p := range []string{"sqlite://", "sqlite3://", "sqlite:", "file://", "file:"} {
		if strings.HasPrefix(dsn, p) {
			dsn = strings.TrimPrefix(dsn, p)
			break
		}
	}
	path, _, _ := strings.Cut(dsn, "?")
	return path
}
