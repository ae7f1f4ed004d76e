package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stent-go/stent/backend"
)

// Connection errors become backend.ErrUnavailable (backend.Retryable: the caller backs
// off and tries again); errors of the statement itself, and a caller that gave up, do not.
func TestErrorClassification(t *testing.T) {
	b := &Backend{dsn: "postgres://u:xxxxx@h/db", secret: "hunter2"}
	netErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	cases := []struct {
		name      string
		err       error
		retryable bool // backend.Retryable(dbError(err))
		rerun     bool // retryable(err): the state change may run again at once
	}{
		{"terminated by the server", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true, false},
		{"server shutting down", &pgconn.PgError{Code: "57P02"}, true, false},
		{"server starting up", &pgconn.PgError{Code: "57P03"}, true, false},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true, false},
		{"connection exception", &pgconn.PgError{Code: "08006"}, true, false},
		{"connection reset", fmt.Errorf("failed to receive message: %w", netErr), true, false},
		{"unexpected EOF", fmt.Errorf("receiving: %w", io.ErrUnexpectedEOF), true, false},
		{"closed connection", fmt.Errorf("acquiring: %w", pgconn.ErrConnClosed), true, false},
		{"connect refused", &pgconn.ConnectError{}, true, false},
		{"read-only server", &pgconn.PgError{Code: "25006", Message: "cannot execute INSERT in a read-only transaction"}, true, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false, false},
		{"lease lost", &pgconn.PgError{Code: codeLeaseLost, Message: "lease lost"}, false, false},
		{"no rows", pgx.ErrNoRows, false, false},
		{"cancelled", context.Canceled, false, false},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), false, false},
	}
	for _, c := range cases {
		err := b.dbError("doing something", c.err)
		if got := backend.Retryable(err); got != c.retryable {
			t.Errorf("%s: backend.Retryable(%v) = %v, want %v", c.name, err, got, c.retryable)
		}
		if got := retryable(c.err); got != c.rerun {
			t.Errorf("%s: retryable = %v, want %v", c.name, got, c.rerun)
		}
		var pe *pgconn.PgError
		translated := errors.Is(c.err, pgx.ErrNoRows) || (errors.As(c.err, &pe) && pe.Code == codeLeaseLost)
		if !translated && !errors.Is(err, c.err) {
			t.Errorf("%s: dbError lost the driver error: %v", c.name, err)
		}
	}
}

// Opening a database nobody listens on fails with ErrUnavailable, naming the DSN
// without its password.
func TestOpenUnreachableIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = Open(ctx, "postgres://u:hunter2@"+addr+"/db?sslmode=disable&connect_timeout=5")
	if err == nil {
		t.Fatal("Open succeeded on a closed port")
	}
	if !backend.Retryable(err) {
		t.Errorf("Open on a closed port: %v; want an ErrUnavailable", err)
	}
}

// Open tries again when a connection is accepted and then cut before the session
// starts (a proxy cutting connections, a server restarting), up to openRetries times.
func TestOpenRetriesAConnectionCutWhileConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close() // RST
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = Open(ctx, "postgres://stent@"+ln.Addr().String()+"/db?sslmode=disable&connect_timeout=5")
	if err == nil || !backend.Retryable(err) {
		t.Fatalf("Open through a listener that resets every connection: %v, want ErrUnavailable", err)
	}
	if n := len(accepted); n < openRetries {
		t.Errorf("Open connected %d times, want %d (it gave up on the first reset)", n, openRetries)
	}
}
