package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/stent-go/stent/internal/httpapi"
)

// serveHTTP serves h on ln until ctx ends, then shuts down, letting requests in flight
// finish for up to 5s. Only requests for this machine's names, IP addresses and the
// allowed hosts are answered (httpapi.HostGuard). There is no read timeout past the
// headers: a long poll or a live page holds its request open on purpose.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, allowed []string, what string) error {
	srv := &http.Server{
		Handler:           httpapi.HostGuard(h, allowed),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", what, err)
	}
	return nil
}
