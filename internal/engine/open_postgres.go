package engine

import (
	"context"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/postgres"
)

func openPostgres(ctx context.Context, dsn string, clock backend.Clock) (backend.Backend, error) {
	b, err := postgres.Open(ctx, dsn, postgres.WithClock(clock))
	if err != nil {
		return nil, err
	}
	return b, nil
}
