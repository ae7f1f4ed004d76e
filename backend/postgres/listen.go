package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

const (
	listenMinBackoff = 50 * time.Millisecond
	// A listener finds a database back (a restarted server, a promoted standby)
	// within about a second; its reconnection wakes the claim loops.
	listenMaxBackoff = time.Second
)

// Listen implements backend.Listener with LISTEN/NOTIFY on a dedicated connection
// (application_name "stent-listener[:schema]"). It calls fn for every notification,
// from a single goroutine, until ctx ends or the backend is closed, and then returns nil.
// When the connection drops it reconnects with backoff, then calls fn with a
// Notification{Kind: "task"} with no queue, since notifications may have been missed
// meanwhile.
func (b *Backend) Listen(ctx context.Context, fn func(backend.Notification)) error {
	b.listenMu.Lock()
	select {
	case <-b.closed:
		b.listenMu.Unlock()
		return errors.New("listening: backend is closed")
	default:
	}
	b.listeners.Add(1)
	b.listenMu.Unlock()
	defer b.listeners.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-b.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	backoff := listenMinBackoff
	for connected := false; ; {
		conn, err := b.listenConn(ctx)
		if err == nil {
			backoff = listenMinBackoff
			if connected {
				fn(backend.Notification{Kind: "task"})
			}
			connected = true
			b.receive(ctx, conn, fn)
			closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = conn.Close(closeCtx)
			cancelClose()
		}
		if ctx.Err() != nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listenConn opens a connection of its own (not from the pool: it is held for as long
// as the listener runs) and subscribes to both channels.
func (b *Backend) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cfg := b.listenCfg.Copy()
	cfg.RuntimeParams["application_name"] = b.listenerApplicationName()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, b.scrub(fmt.Errorf("listening: connecting to %s: %w", b.listenDSN, err))
	}
	_, err = conn.Exec(cctx, "LISTEN "+quoteIdent(b.tasksChannel)+"; LISTEN "+quoteIdent(b.finishedChannel))
	if err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, b.dbError("listening", err)
	}
	return conn, nil
}

// receive delivers notifications until the connection fails or ctx ends.
func (b *Backend) receive(ctx context.Context, conn *pgx.Conn, fn func(backend.Notification)) {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return
		}
		switch n.Channel {
		case b.tasksChannel:
			fn(backend.Notification{Kind: "task", Queue: n.Payload})
		case b.finishedChannel:
			fn(backend.Notification{Kind: "finished", ExecutionID: n.Payload})
		}
	}
}
