// Package httpapi is Stent's HTTP API: the JSON endpoints under /api/v1 that start,
// inspect, signal, cancel, terminate and retry executions for callers in any language,
// with the CLI's --json contract (package wire) and RFC 9457 problem documents for
// errors. It also guards the listening address: bearer tokens (full or read-only),
// the Host and Origin checks that stop DNS rebinding, body size caps.
//
// It imports the root package stent (the Engine a host program uses), package wire,
// package backend and package api (the OpenAPI document it serves); cmd/stent mounts it
// (`stent serve`).
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/api"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/wire"
)

// Options configures Handler.
type Options struct {
	// ScriptsDir is the directory scripts are named relative to; a request never sends
	// script text and cannot name a file outside it.
	ScriptsDir string
	// Tokens are the bearer tokens that may do anything; ReadOnlyTokens may only read.
	// With none, every request is let in (serve on loopback only; see CheckAddr).
	Tokens, ReadOnlyTokens []string
	// MaxBody bounds a request body in bytes (default stent.DefaultMaxPayload).
	MaxBody int64
	// MaxWait bounds the ?wait= of a long poll (default 60s).
	MaxWait time.Duration
	// Metrics, when set, is served at GET /metrics (the Prometheus text format) under
	// the same token rules as the API.
	Metrics http.Handler
	Logger  *slog.Logger
	// Remote hands activity attempts to pollers (/api/v1/activity-tasks); nil: none.
	Remote *stent.RemoteActivities
}

// API serves /api/v1.
type API struct {
	eng  *stent.Engine
	opts Options
	mux  *routeMux
}

// routeMux is the API's ServeMux, remembering the patterns registered on it so that a
// test can check that the OpenAPI document describes each one.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Handler returns the API of eng.
func Handler(eng *stent.Engine, opts Options) (*API, error) {
	if opts.ScriptsDir == "" {
		return nil, errors.New("the HTTP API needs a scripts directory (--scripts DIR)")
	}
	dir, err := filepath.Abs(opts.ScriptsDir)
	if err != nil {
		return nil, fmt.Errorf("scripts directory %s: %w", opts.ScriptsDir, err)
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, fmt.Errorf("scripts directory %s: %w", opts.ScriptsDir, err)
	}
	opts.ScriptsDir = dir
	if opts.MaxBody <= 0 {
		opts.MaxBody = stent.DefaultMaxPayload
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &API{eng: eng, opts: opts, mux: &routeMux{ServeMux: http.NewServeMux()}}
	a.routes()
	return a, nil
}

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("POST /api/v1/executions", a.create)
	m.HandleFunc("GET /api/v1/executions", a.list)
	m.HandleFunc("GET /api/v1/executions/{id}", a.get)
	m.HandleFunc("GET /api/v1/executions/{id}/history", a.history)
	m.HandleFunc("GET /api/v1/executions/{id}/logs", a.logs)
	m.HandleFunc("POST /api/v1/executions/{id}/signals/{name}", a.signal)
	m.HandleFunc("POST /api/v1/executions/{id}/cancel", a.control(func(ctx context.Context, id string) error { return a.eng.Cancel(ctx, id) }))
	m.HandleFunc("POST /api/v1/executions/{id}/terminate", a.control(a.eng.Terminate))
	m.HandleFunc("POST /api/v1/executions/{id}/retry", a.retry)
	m.HandleFunc("POST /api/v1/executions/{id}/reset", a.reset)
	m.HandleFunc("GET /api/v1/workers", a.workers)
	m.HandleFunc("GET /api/v1/openapi.json", a.openapi)
	a.deadLetterRoutes()
	a.scheduleRoutes()
	if a.opts.Metrics != nil {
		m.Handle("GET /metrics", a.opts.Metrics)
	}
	a.activityTaskRoutes(m)
	m.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		a.problem(w, http.StatusNotFound, "not-found", "no such endpoint", fmt.Sprintf("%s %s is not part of the API", r.Method, r.URL.Path))
	})
}

// ServeHTTP authorizes the request, caps its body and routes it.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch a.access(r) {
	case accessNone:
		w.Header().Set("WWW-Authenticate", `Bearer realm="stent"`)
		a.problem(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token", "send Authorization: Bearer TOKEN with a token given to stent serve (--token or STENT_API_TOKEN)")
		return
	case accessRead:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			a.problem(w, http.StatusForbidden, "read-only-token", "this token may only read", "use a token given with --token to change executions")
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.opts.MaxBody)
	a.mux.ServeHTTP(w, r)
}

type access int

const (
	accessNone access = iota
	accessRead
	accessAll
)

// access is what the request's bearer token allows, compared in constant time.
func (a *API) access(r *http.Request) access {
	if len(a.opts.Tokens) == 0 && len(a.opts.ReadOnlyTokens) == 0 {
		return accessAll
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return accessNone
	}
	granted := accessNone
	for _, t := range a.opts.Tokens {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(t)) == 1 {
			granted = accessAll
		}
	}
	for _, t := range a.opts.ReadOnlyTokens {
		if granted == accessNone && subtle.ConstantTimeCompare([]byte(tok), []byte(t)) == 1 {
			granted = accessRead
		}
	}
	return granted
}

// createRequest is the body of POST /api/v1/executions.
type createRequest struct {
	Script      string            `json:"script"`
	Args        json.RawMessage   `json:"args"`
	ID          string            `json:"id"`
	Entry       string            `json:"entry"`
	Queue       string            `json:"queue"`
	Priority    int               `json:"priority"`
	Delay       string            `json:"delay"`
	MaxDuration string            `json:"max_duration"`
	Tags        map[string]string `json:"tags"`
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !a.decode(w, r, &req) {
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if req.ID != "" && req.ID != key {
			a.problem(w, http.StatusBadRequest, "invalid-request", "two IDs", "the body's id and the Idempotency-Key header differ: send one of them")
			return
		}
		req.ID = key
	}
	if _, err := waitParam(r); err != nil {
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad wait", err.Error())
		return
	}
	script, err := a.localScript(req.Script)
	if err != nil {
		a.problem(w, http.StatusBadRequest, "invalid-script", "script not allowed", err.Error())
		return
	}
	opts := []stent.DispatchOption{stent.ModulePath(a.opts.ScriptsDir)}
	for _, o := range []struct {
		set bool
		opt func() (stent.DispatchOption, error)
	}{
		{req.ID != "", func() (stent.DispatchOption, error) { return stent.ID(req.ID), nil }},
		{req.Entry != "", func() (stent.DispatchOption, error) { return stent.Entry(req.Entry), nil }},
		{req.Queue != "", func() (stent.DispatchOption, error) { return stent.Queue(req.Queue), nil }},
		{req.Priority != 0, func() (stent.DispatchOption, error) { return stent.Priority(req.Priority), nil }},
		{len(req.Tags) > 0, func() (stent.DispatchOption, error) { return stent.WithTags(req.Tags), nil }},
		{req.Delay != "", func() (stent.DispatchOption, error) {
			d, err := duration("delay", req.Delay)
			return stent.Delay(d), err
		}},
		{req.MaxDuration != "", func() (stent.DispatchOption, error) {
			d, err := duration("max_duration", req.MaxDuration)
			return stent.MaxDuration(d), err
		}},
	} {
		if !o.set {
			continue
		}
		opt, err := o.opt()
		if err != nil {
			a.problem(w, http.StatusBadRequest, "invalid-request", "bad option", err.Error())
			return
		}
		opts = append(opts, opt)
	}
	existed := false
	if req.ID != "" {
		_, err := a.eng.Get(r.Context(), req.ID)
		existed = err == nil
	}
	id, err := a.eng.DispatchJSON(r.Context(), script, req.Args, opts...)
	if err != nil {
		var ie *stent.InputError
		if _, perr := a.scriptPath(req.Script); errors.As(err, &ie) && perr != nil {
			// Missing, or a symlink out of the scripts directory: say so in its words.
			a.problem(w, http.StatusBadRequest, "invalid-script", "script not allowed", perr.Error())
			return
		}
		a.fail(w, err)
		return
	}
	code := http.StatusCreated
	if existed {
		code = http.StatusOK
	}
	w.Header().Set("Location", "/api/v1/executions/"+url.PathEscape(id))
	// Start and wait in one request: the execution once it ended (or the wait passed).
	// Like the answer without a wait, it is the execution alone: what a running one
	// waits for, its custom status and tags are GET's, each one more read.
	if !a.waitEnd(w, r, id) {
		return
	}
	ex, err := a.eng.Get(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.json(w, code, wire.NewExecution(ex, time.Now()))
}

// scriptPath resolves a script named relative to the scripts directory, refusing
// absolute paths, ".." and symlinks that lead out of it.
func (a *API) scriptPath(name string) (string, error) {
	p, err := a.localScript(name)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("script %q: no such file in the scripts directory", name)
	}
	if rel, err := filepath.Rel(a.opts.ScriptsDir, real); err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("script %q leads out of the scripts directory", name)
	}
	return p, nil
}

// localScript is scriptPath without the symlink check: the path of a script named
// relative to the scripts directory, refusing absolute paths and "..". A dispatch
// with ModulePath(ScriptsDir) refuses a symlink that leads out itself, so starting an
// execution checks symlinks only to explain a failed dispatch.
func (a *API) localScript(name string) (string, error) {
	if name == "" {
		return "", errors.New(`"script" is required: a path relative to the server's scripts directory, e.g. "checkout/checkout.star"`)
	}
	if filepath.IsAbs(name) || !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", fmt.Errorf("script %q must be a path inside the scripts directory (no absolute path, no ..)", name)
	}
	return filepath.Join(a.opts.ScriptsDir, filepath.FromSlash(name)), nil
}

func duration(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive duration such as 30s or 2h", field, s)
	}
	return d, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !a.waitEnd(w, r, id) {
		return
	}
	ex, ok := a.execution(w, r)
	if !ok {
		return
	}
	a.status(w, r, http.StatusOK, ex)
}

// waitParam reads ?wait=D: zero when the request does not ask to wait.
func waitParam(r *http.Request) (time.Duration, error) {
	wait := r.URL.Query().Get("wait")
	if wait == "" {
		return 0, nil
	}
	return duration("wait", wait)
}

// waitEnd long-polls, when the request asks with ?wait=D, until execution id ends or
// D (at most MaxWait) passes. It answers the request itself, and returns false, when
// the wait is malformed, the execution is missing or the wait failed.
func (a *API) waitEnd(w http.ResponseWriter, r *http.Request, id string) bool {
	d, err := waitParam(r)
	if err != nil {
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad wait", err.Error())
		return false
	}
	if d == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), min(d, a.opts.MaxWait))
	_, err = a.eng.WaitFor(ctx, id)
	cancel()
	var ee *stent.ExecutionError
	switch {
	case err == nil, errors.As(err, &ee), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.Is(err, backend.ErrNotFound):
		a.notFound(w, id)
		return false
	default:
		if r.Context().Err() == nil {
			a.fail(w, err)
		}
		return false
	}
}

// status answers with ex as `stent status --json` prints it: the execution, what it
// waits for, its custom status and, while it runs, the activities no live worker runs.
func (a *API) status(w http.ResponseWriter, r *http.Request, code int, ex *backend.Execution) {
	d, err := a.eng.Describe(r.Context(), ex)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.json(w, code, wire.NewStatus(ex, d, time.Now()))
}

// execution reads the execution the path names, answering 404 when there is none.
func (a *API) execution(w http.ResponseWriter, r *http.Request) (*backend.Execution, bool) {
	id := r.PathValue("id")
	ex, err := a.eng.Get(r.Context(), id)
	if errors.Is(err, backend.ErrNotFound) {
		a.notFound(w, id)
		return nil, false
	}
	if err != nil {
		a.fail(w, err)
		return nil, false
	}
	return ex, true
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := backend.ListFilter{Status: backend.Status(q.Get("status")), Script: q.Get("script"), IDPrefix: q.Get("id_prefix"),
		ParentID: q.Get("parent"), Queue: q.Get("queue"), After: q.Get("after"), Limit: 50, RootOnly: q.Get("all") != "true" && q.Get("parent") == ""}
	if s := q.Get("limit"); s != "" {
		if _, err := fmt.Sscan(s, &f.Limit); err != nil || f.Limit < 1 || f.Limit > 1000 {
			a.problem(w, http.StatusBadRequest, "invalid-request", "bad limit", fmt.Sprintf("limit %q: want a number from 1 to 1000", s))
			return
		}
	}
	if !a.applyWhere(w, q, &f) {
		return
	}
	list, err := a.eng.List(r.Context(), f)
	if errors.Is(err, backend.ErrBadCursor) {
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad cursor", fmt.Sprintf("after %q is not a next_cursor this API returned", f.After))
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	f.CountAtMost = backend.DefaultCountAtMost
	counts, err := a.eng.Backend().CountExecutions(r.Context(), f)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := wire.NewList(f, counts)
	now := time.Now()
	for i := range list {
		out.Executions = append(out.Executions, wire.NewExecution(&list[i], now))
	}
	if len(list) == f.Limit {
		out.NextCursor = backend.ListCursor(&list[len(list)-1])
	}
	a.json(w, http.StatusOK, out)
}

func (a *API) history(w http.ResponseWriter, r *http.Request) {
	ex, ok := a.execution(w, r)
	if !ok {
		return
	}
	events, err := a.eng.History(r.Context(), ex.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]wire.Event, len(events))
	for i, ev := range events {
		out[i] = wire.NewEvent(i+1, ev)
	}
	a.json(w, http.StatusOK, map[string]any{"events": out})
}

func (a *API) logs(w http.ResponseWriter, r *http.Request) {
	ex, ok := a.execution(w, r)
	if !ok {
		return
	}
	lines, err := a.eng.Backend().Logs(r.Context(), ex.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]wire.LogLine, len(lines))
	for i, l := range lines {
		out[i] = wire.LogLine{Run: l.Run, At: l.At.UTC(), Message: l.Message}
	}
	a.json(w, http.StatusOK, map[string]any{"logs": out})
}

func (a *API) signal(w http.ResponseWriter, r *http.Request) {
	var payload json.RawMessage
	if !a.decode(w, r, &payload) {
		return
	}
	ex, ok := a.running(w, r)
	if !ok {
		return
	}
	if err := a.eng.SignalJSON(r.Context(), ex.ID, r.PathValue("name"), payload); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// running reads the execution the path names and answers 409 when it already ended.
func (a *API) workers(w http.ResponseWriter, r *http.Request) {
	list, err := a.eng.Workers(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]wire.Worker, len(list))
	for i := range list {
		out[i] = wire.NewWorker(&list[i])
	}
	a.json(w, http.StatusOK, map[string]any{"workers": out})
}

// openapi serves the OpenAPI 3.1 document of this API (api/openapi.yaml, as JSON).
func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(api.JSON)
}

// decode reads a JSON body into v, answering 400 or 413 when it cannot.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(r.Body).Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		a.problem(w, http.StatusRequestEntityTooLarge, "payload-too-large", "request body too large", fmt.Sprintf("the body is over %d bytes (stent serve --max-payload)", tooBig.Limit))
	default:
		a.problem(w, http.StatusBadRequest, "invalid-json", "the body is not the JSON this endpoint takes", err.Error())
	}
	return false
}

// fail answers an engine error: the caller's mistakes are 400 (409 for an ID held by
// another request), anything else 500 with its text logged, not sent.
func (a *API) fail(w http.ResponseWriter, err error) {
	var ie *stent.InputError
	switch {
	case errors.Is(err, stent.ErrIDConflict):
		a.problem(w, http.StatusConflict, "id-conflict", "the ID names another execution", err.Error())
	case errors.As(err, &ie):
		a.problem(w, http.StatusBadRequest, "invalid-request", "the request cannot run", err.Error())
	case errors.Is(err, backend.ErrNotFound):
		a.problem(w, http.StatusNotFound, "not-found", "not found", err.Error())
	default:
		a.opts.Logger.Error("HTTP API request failed", "err", err)
		a.problem(w, http.StatusInternalServerError, "internal", "internal error", "the server logged the cause")
	}
}

func (a *API) notFound(w http.ResponseWriter, id string) {
	a.problem(w, http.StatusNotFound, "no-such-execution", "no such execution", fmt.Sprintf("no execution %q", id))
}

// Problem is an RFC 9457 problem document; Type is stable per kind of error.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (a *API) problem(w http.ResponseWriter, code int, kind, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(Problem{Type: "/api/v1/problems/" + kind, Title: title, Status: code, Detail: detail})
}

func (a *API) json(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// CheckAddr refuses to serve the API on an address other hosts can reach without a
// token.
func CheckAddr(addr string, opts Options) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: want host:port, e.g. 127.0.0.1:8233: %w", addr, err)
	}
	if isLoopback(host) || len(opts.Tokens)+len(opts.ReadOnlyTokens) > 0 {
		return nil
	}
	return fmt.Errorf("refusing to serve the API on %s without a token: other hosts could reach it. "+
		"Pass --token (or set STENT_API_TOKEN), or listen on 127.0.0.1", addr)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
