package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent/internal/httpapi"
)

// tlsFlags are the flags of a command that serves HTTP: HTTPS with this certificate.
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS with this PEM certificate (chain) file; needs --tls-key"},
		&cli.StringFlag{Name: "tls-key", Usage: "the PEM private key of --tls-cert"},
	}
}

// tlsConfig reads --tls-cert and --tls-key, both or neither, before anything opens: a
// missing one or a pair that does not load is a usage error. It is nil without them.
func tlsConfig(c *cli.Context) (*tls.Config, error) {
	cert, key := c.String("tls-cert"), c.String("tls-key")
	switch {
	case cert == "" && key == "":
		return nil, nil
	case cert == "" || key == "":
		return nil, failf(exitUsage, "--tls-cert and --tls-key go together: give both (HTTPS) or neither (HTTP)")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, failf(exitUsage, "--tls-cert %s, --tls-key %s: %v", cert, key, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// scheme is how a URL of the server starts.
func scheme(tc *tls.Config) string {
	if tc != nil {
		return "https"
	}
	return "http"
}

// serveHTTP serves h on ln (HTTPS when tc is set) until ctx ends, then shuts down,
// letting requests in flight finish for up to 5s. Only requests for this machine's
// names, IP addresses and the allowed hosts are answered (httpapi.HostGuard). There is
// no read or write timeout past the headers: a long poll or a live page holds its
// request open on purpose (the API bounds its waits itself).
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, allowed []string, tc *tls.Config, what string) error {
	srv := &http.Server{
		Handler:           httpapi.HostGuard(h, allowed),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		TLSConfig:         tc,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	serve := srv.Serve
	if tc != nil {
		serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	}
	if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", what, err)
	}
	return nil
}
