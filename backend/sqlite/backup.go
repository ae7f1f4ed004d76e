package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/stent-go/stent/backend"
)

var _ backend.Backuper = (*Backend)(nil)

// Backup writes a consistent copy of the database to dest with VACUUM INTO on the
// writer connection. VACUUM INTO reads the database in one read transaction: in WAL
// mode the copy is the snapshot of its start, and writers (of this process after it,
// of other processes meanwhile) are not blocked. The copy is compacted, in rollback
// journal mode (Open switches it to WAL), and synced before Backup returns. dest must
// not exist.
func (b *Backend) Backup(ctx context.Context, dest string) error {
	if b.memory {
		return errors.New("backing up sqlite: an in-memory database has no file to copy")
	}
	if err := b.lock(ctx); err != nil {
		return fmt.Errorf("backing up sqlite %s: %w", b.name, err)
	}
	err := func() error {
		defer b.unlock()
		wctx := context.WithoutCancel(ctx)
		if err := b.ensureWriter(wctx, true); err != nil {
			return err
		}
		_, err := b.wc.ExecContext(wctx, "VACUUM INTO ?", dest)
		return err
	}()
	if err != nil {
		return fmt.Errorf("backing up sqlite %s to %s: %w", b.name, dest, err)
	}
	if err := syncFile(dest); err != nil {
		return fmt.Errorf("backing up sqlite %s: syncing %s: %w", b.name, dest, err)
	}
	return nil
}

// syncFile flushes a written file to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
