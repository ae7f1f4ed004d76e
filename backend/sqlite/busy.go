package sqlite

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// isCode reports whether err is a SQLite error of the primary result code code (any of
// its extended codes).
func isCode(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == code
}

// isBusy reports SQLITE_BUSY (and its extended codes): another connection holds a lock.
func isBusy(err error) bool { return isCode(err, sqlite3.SQLITE_BUSY) }

// openBusyFor bounds how long an open retries while another connection holds the
// file's lock. It is far longer than one busy timeout: the holder may be migrating a new
// file, which on a loaded machine takes longer than the busy timeout, and an open that
// waits for it is no failure.
const openBusyFor = 2 * time.Minute

// retryBusy runs fn until it returns something other than SQLITE_BUSY, for at most
// openBusyFor, with short randomised pauses so that competing processes interleave.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(openBusyFor)
	pause := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(pause/2 + rand.N(pause))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}
