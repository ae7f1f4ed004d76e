package sqlite

import (
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stent-go/stent/backend"
)

// isDiskFull reports SQLITE_FULL: a write needed space the disk (or the quota) does
// not have.
func isDiskFull(err error) bool { return isCode(err, sqlite3.SQLITE_FULL) }

// isIOError reports SQLITE_IOERR and its extended codes: the operating system refused
// a read, write, sync or lock of the database files.
func isIOError(err error) bool { return isCode(err, sqlite3.SQLITE_IOERR) }

// diskError marks a failure of the disk under the database as backend.ErrUnavailable,
// saying what happened, where, and what to do: a full disk goes away when space is
// freed, and an I/O error often does too (a full or remounted disk, a removed volume
// coming back). SQLite rolls the failed transaction back, so nothing half written
// stays; the caller backs off and runs the operation again, and once writes succeed
// work goes on where it stopped. Other errors pass through unchanged.
func (b *Backend) diskError(err error) error {
	switch {
	case err == nil:
		return nil
	case isDiskFull(err) && b.memory:
		return fmt.Errorf("the in-memory database %s is full (out of memory or max_page_count reached): %w (%w)", b.name, err, backend.ErrUnavailable)
	case isDiskFull(err):
		return fmt.Errorf("the disk holding %s is full: free space on it (delete files, grow the volume) or move the database to a larger disk; "+
			"Stent retries with backoff and goes on where it stopped once writes succeed (%w): %w", b.path, backend.ErrUnavailable, err)
	case isIOError(err):
		return fmt.Errorf("reading or writing %s failed in the operating system (disk full, read-only, removed or failing?): check the disk and the kernel log; "+
			"Stent retries with backoff (%w): %w", b.path, backend.ErrUnavailable, err)
	}
	return err
}

// opError wraps an error of the operation what with the database's name; a disk
// failure (diskError) leads with what happened to the disk instead.
func (b *Backend) opError(what string, err error) error {
	if d := b.diskError(err); d != err {
		return fmt.Errorf("%s: %w", what, d)
	}
	return fmt.Errorf("sqlite %s: %s: %w", b.name, what, err)
}
