package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// pgCommits reads pg_stat_database.xact_commit on a session of its own, ended before it
// returns (its one transaction is then counted).
func pgCommits(ctx context.Context, dsn string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	err = conn.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n, err
}

// readCommits reads the backend's commit count, if it keeps one.
func readCommits(ctx context.Context, eng *stent.Engine) (int64, bool) {
	cc, ok := eng.Backend().(backend.CommitCounter)
	if !ok {
		return 0, false
	}
	n, err := cc.Commits(ctx)
	return n, err == nil
}

// commitsPerStep is the median over runs of the transactions committed per step (an
// activity), 0 when they were not counted.
func commitsPerStep(stats []runStats, steps int) float64 {
	var per []float64
	for _, s := range stats {
		if s.commits >= 0 && steps > 0 {
			per = append(per, float64(s.commits)/float64(steps))
		}
	}
	if len(per) == 0 {
		return 0
	}
	slices.Sort(per)
	m := per[len(per)/2]
	if len(per)%2 == 0 {
		m = (per[len(per)/2-1] + m) / 2
	}
	return math.Round(m*100) / 100
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// dropSchema removes a run's PostgreSQL schema and everything in it.
func dropSchema(dsn, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}
