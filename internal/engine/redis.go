package engine

import (
	"context"
	"errors"
	"log/slog"

	"github.com/stent-go/stent/backend"
	stentredis "github.com/stent-go/stent/backend/redis"
)

// WithRedis adds Redis pub/sub wake-ups (see backend/redis) at url, e.g.
// "redis://127.0.0.1:6379/0": workers and WaitFor callers of every process sharing the
// database wake each other through it instead of waiting for their next poll. Redis
// is optional: when it does not answer, Open logs one warning and starts anyway, and
// the notifier connects in the background; Redis going away only costs latency.
// WithNotifier takes precedence when both are given.
func WithRedis(url string) Option { return func(o *engineConfig) { o.redisURL = url } }

// openRedis opens the notifier behind WithRedis; it logs to the engine's logger when
// one is given.
func openRedis(ctx context.Context, url string, logger ...*slog.Logger) (backend.Notifier, error) {
	opts := []stentredis.Option{stentredis.WithUnreachableStart()}
	if len(logger) > 0 && logger[0] != nil {
		opts = append(opts, stentredis.WithLogger(logger[0]))
	}
	n, err := stentredis.Open(ctx, url, opts...)
	if errors.Is(err, stentredis.ErrInvalidURL) {
		return nil, &InputError{Err: err}
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}
