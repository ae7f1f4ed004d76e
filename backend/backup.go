package backend

import "context"

// Backuper is an optional extension of Backend for a store that copies itself online:
// the SQLite store implements it (`stent backup`); PostgreSQL is backed up with its own
// tools (pg_dump, base backups and WAL archiving).
type Backuper interface {
	// Backup writes a consistent copy of the whole database to the new file dest (which
	// must not exist), while other connections and processes go on reading and
	// writing; the copy is synced to disk before Backup returns.
	Backup(ctx context.Context, dest string) error
}
