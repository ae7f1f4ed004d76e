package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stent-go/stent/backend"
)

// SQLSTATEs raised by the schema's functions (see the migrations).
const (
	codeLeaseLost = "SL001"
	codeStale     = "SL002"
	codeWrongTask = "SL003"
	codeNotFound  = "SL004"
	// codeStaleParent: the parent of a step carried by a child's end changed
	// (stent_begin_parent_step, migration 018).
	codeStaleParent = "SL007"
)

// dbError translates a driver error into the backend's sentinels and wraps it with
// what was being done. It is the one place where driver errors are interpreted.
func (b *Backend) dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = backend.ErrNotFound
	case errors.As(err, &pe) && pe.Code == codeLeaseLost:
		err = fmt.Errorf("%s: %w", pe.Message, backend.ErrLeaseLost)
	case errors.As(err, &pe) && pe.Code == codeStale:
		err = fmt.Errorf("%s: %w", pe.Message, backend.ErrStaleExecution)
	case errors.As(err, &pe) && pe.Code == codeStaleParent:
		err = fmt.Errorf("%s: %w", pe.Message, backend.ErrStaleParent)
	case errors.As(err, &pe) && pe.Code == codeNotFound:
		err = fmt.Errorf("%s: %w", pe.Message, backend.ErrNotFound)
	case errors.As(err, &pe) && pe.Code == codeWrongTask:
		err = errors.New(pe.Message)
	case errors.Is(err, backend.ErrNotFound), errors.Is(err, backend.ErrLeaseLost),
		errors.Is(err, backend.ErrStaleExecution), errors.Is(err, backend.ErrStaleParent):
	case errors.As(err, &pe) && pe.Code == codeReadOnly:
		// A server that refuses writes (a standby, or the old primary back as one):
		// the pool's connections to it are closed, so that the next ones go to
		// whichever host of a multi-host DSN accepts writes.
		if b.pool != nil {
			b.pool.Reset()
		}
		err = b.scrub(fmt.Errorf("%w: the server %s refuses writes (%w); retrying: give a multi-host DSN target_session_attrs=read-write to reach the primary",
			backend.ErrUnavailable, b.dsn, err))
	case isConnectError(err):
		err = b.scrub(fmt.Errorf("connecting to %s: %w (%w)", b.dsn, err, backend.ErrUnavailable))
	case isConnError(err):
		err = b.scrub(fmt.Errorf("%w: %w", backend.ErrUnavailable, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// connectError wraps an error of connecting to the database, marked ErrUnavailable
// when the server could not be reached.
func (b *Backend) connectError(err error) error {
	if isConnError(err) {
		return b.scrub(fmt.Errorf("connecting to %s: %w (%w)", b.dsn, err, backend.ErrUnavailable))
	}
	if strings.Contains(err.Error(), "unsupported startup parameter") {
		// PgBouncer refuses the parameters it does not know (plan_cache_mode).
		return b.scrub(fmt.Errorf("connecting to %s: %w (behind PgBouncer in transaction mode, add default_query_exec_mode=exec to the DSN, and give LISTEN a direct connection with --listen-dsn)", b.dsn, err))
	}
	return b.scrub(fmt.Errorf("connecting to %s: %w", b.dsn, err))
}

// codeReadOnly is read_only_sql_transaction: a write on a server in recovery, or in a
// transaction that default_transaction_read_only made read-only.
const codeReadOnly = "25006"

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// droppedWhileConnecting reports whether a connection was accepted, then cut before
// the session started (reset, EOF): something answers at the address, and a flaky
// network or a restarting server may let the next attempt through.
func droppedWhileConnecting(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// isConnError reports whether err means the connection failed rather than the
// statement: connecting failed, the socket broke, or the server ended the session
// (class 08 connection exception, 57P01-57P03 shutdown or terminate_backend, 53300 too
// many connections). A cancelled context is not one: the caller gave up.
func isConnError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	var ne net.Error
	return isConnectError(err) || pgconn.SafeToRetry(err) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// retryable reports whether a state change can be run again at once, as a whole: it
// failed only because of concurrency (serialization failure, deadlock), or on a
// connection error before anything was sent (pgconn.SafeToRetry), so on another
// connection it runs as if for the first time. A connection error after the request
// was sent is not: the commit may have happened; it is returned as ErrUnavailable for
// the caller to back off and retry at its level.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return pgconn.SafeToRetry(err)
}

// scrub removes the DSN's password from an error's text, whatever the driver put in
// it, keeping the chain for errors.Is / errors.As.
func (b *Backend) scrub(err error) error {
	for _, secret := range []string{b.secret, b.listenSecret} {
		if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
			err = &scrubbedError{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
		}
	}
	return err
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
