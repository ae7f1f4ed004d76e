// Package store opens Stent's storage from what a user types: a DSN naming an SQLite
// file or a PostgreSQL database (backend/sqlite, backend/postgres), and a Redis URL for
// cross-process wake-ups (backend/redis). It decides which backend a DSN means and
// turns a DSN that names none into an *errs.InputError; the backends own the rest.
//
// It imports backend, its implementations and internal/errs.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/postgres"
	stentredis "github.com/stent-go/stent/backend/redis"
	"github.com/stent-go/stent/backend/sqlite"
	"github.com/stent-go/stent/internal/errs"
)

// Option configures Open.
type Option func(*options)

type options struct{ listenDSN string }

// WithListenDSN makes a PostgreSQL backend hold its LISTEN connection on listenDSN
// instead of dsn: a direct connection to the server when dsn names a pooler such as
// PgBouncer in transaction mode, where LISTEN does not work. SQLite has no use for it.
func WithListenDSN(listenDSN string) Option { return func(o *options) { o.listenDSN = listenDSN } }

// Open opens and migrates the backend named by dsn: a file path for SQLite ("stent.db",
// "sqlite://path", ":memory:"), or "postgres://…" (or libpq keywords) for PostgreSQL.
// A DSN that names no database is an *errs.InputError.
func Open(ctx context.Context, dsn string, clock backend.Clock, opts ...Option) (backend.Backend, error) {
	if clock == nil {
		clock = backend.SystemClock{}
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	b, err := open(ctx, dsn, clock, o)
	if err == nil && o.listenDSN != "" {
		if _, ok := b.(*postgres.Backend); !ok {
			_ = b.Close()
			return nil, &errs.InputError{Err: errors.New("a listen DSN (--listen-dsn, STENT_LISTEN_DSN) applies to PostgreSQL only; this database is SQLite")}
		}
	}
	return b, err
}

func open(ctx context.Context, dsn string, clock backend.Clock, o options) (backend.Backend, error) {
	scheme, rest := "", dsn
	if i := strings.Index(dsn, "://"); i > 0 {
		scheme, rest = strings.ToLower(dsn[:i]), dsn[i+3:]
	}
	switch scheme {
	case "postgres", "postgresql":
		return openPostgres(ctx, dsn, clock, o)
	case "sqlite", "sqlite3", "file":
		if scheme == "file" {
			rest = dsn
		}
		return openSQLite(ctx, rest, clock)
	case "":
		if dsn == "" {
			return nil, &errs.InputError{Err: errors.New("no database given: pass --db (or STENT_DB) with a file path for SQLite or postgres://… for PostgreSQL")}
		}
		kind, err := dsnKind(dsn)
		if err != nil {
			return nil, &errs.InputError{Err: err}
		}
		if kind == "postgres" {
			return openPostgres(ctx, dsn, clock, o)
		}
		return openSQLite(ctx, dsn, clock)
	default:
		return nil, &errs.InputError{Err: fmt.Errorf("unknown database scheme %q in %s: use a file path (SQLite, e.g. stent.db) or postgres://user@host/db (PostgreSQL)", scheme, redact(dsn))}
	}
}

func openSQLite(ctx context.Context, path string, clock backend.Clock) (backend.Backend, error) {
	b, err := sqlite.Open(ctx, path, sqlite.WithClock(clock))
	if err != nil {
		if pe := (*sqlite.PathError)(nil); errors.As(err, &pe) {
			return nil, &errs.InputError{Err: err}
		}
		return nil, err
	}
	return b, nil
}

// redact hides a password in a DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func openPostgres(ctx context.Context, dsn string, clock backend.Clock, o options) (backend.Backend, error) {
	b, err := postgres.Open(ctx, dsn, postgres.WithClock(clock), postgres.WithListenDSN(o.listenDSN))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// OpenRedis opens the Redis notifier at url (see backend/redis), which starts even when
// Redis does not answer yet; it logs to logger when not nil. A malformed URL is an
// *errs.InputError.
func OpenRedis(ctx context.Context, url string, logger *slog.Logger) (backend.Notifier, error) {
	opts := []stentredis.Option{stentredis.WithUnreachableStart()}
	if logger != nil {
		opts = append(opts, stentredis.WithLogger(logger))
	}
	n, err := stentredis.Open(ctx, url, opts...)
	if errors.Is(err, stentredis.ErrInvalidURL) {
		return nil, &errs.InputError{Err: err}
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}
