package backend

import "context"

// CommitCounter is an optional extension of Backend: a count of committed
// transactions, so a benchmark can divide its growth by the steps it ran and a change
// that adds a commit to the hot path shows as a number. What is counted is the store's
// own notion: SQLite counts the write transactions this backend value committed (reads
// are not transactions worth counting there); PostgreSQL reports the database's
// pg_stat_database.xact_commit, which counts every session's transactions, reads
// included, as the statistics system last reported them (a session's counts appear
// when it goes idle, within about a second, or when it closes).
type CommitCounter interface {
	// Commits returns the count of committed transactions so far.
	Commits(ctx context.Context) (int64, error)
}
