// Package ui is Stent's web view: server-rendered pages of executions (list, detail
// with a timeline, pinned source), dead letters, workers and schedules, and the
// actions an operator takes on them (cancel, signal, retry, reset from a step, batch
// retry/cancel/terminate of the listed executions, dead-letter replay and discard;
// schedule pause, resume, trigger and delete), as one http.Handler that
// `stent ui` serves and a host program can mount in its own server. Every action done
// is logged at info with who did it.
//
// Pages are html/template with a little plain JavaScript and CSS embedded in the
// binary; live updates arrive through Server-Sent Events. The package reads and acts
// only through the Engine: it owns no state of its own but a CSRF secret.
//
// It must stay safe to expose: every action is a POST carrying a CSRF token and a
// confirmation, every value a script or activity produced is escaped by html/template,
// and Options.ReadOnly hides and refuses every action.
package ui

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures Handler.
type Options struct {
	// ReadOnly hides every action and refuses every POST.
	ReadOnly bool
	// Username and Password, when Username is set, require HTTP Basic authentication.
	Username, Password string
	// Token, when set, is accepted as "Authorization: Bearer TOKEN" (or as the Basic
	// password with any user name, which is how a browser sends it).
	Token string
	// BasePath is where the handler is mounted ("/stent/"); links are made under it.
	// The host strips it before calling the handler (http.StripPrefix). Default "/".
	BasePath string
	// Poll is how often live views look for changes (default 1s).
	Poll time.Duration
	// PageSize is how many executions a list page shows (default 50).
	PageSize int
	// CountTTL is how long the status counts of a list filter are reused by the pages
	// and live views of every viewer (default 2s; negative: count on every render).
	CountTTL time.Duration
	// CountAtMost is where the status counts of a list stop: a chip that reached it
	// shows "N+" (default backend.DefaultCountAtMost).
	CountAtMost int
	// BatchRate bounds the executions a batch action of the list page acts on per
	// second (default 50; negative: no bound).
	BatchRate float64
	// DeadWorkerGrace is how long a worker may be silent before the workers page shows
	// it stopped (default: the engine's, see stent.Engine.DeadWorkerGrace).
	DeadWorkerGrace time.Duration
	// Logger receives errors the pages could not show (default slog.Default()).
	Logger *slog.Logger
}

// Server is the web view of one engine. It is an http.Handler.
type Server struct {
	eng    *stent.Engine
	b      backend.Backend
	opts   Options
	base   string
	secret []byte
	mux    *http.ServeMux
	pages  map[string]*template.Template
	log    *slog.Logger

	countsMu sync.Mutex
	counts   map[string]countsAt // status counts by filter, see countByStatus
}

// Handler returns the web view of eng.
func Handler(eng *stent.Engine, opts Options) (*Server, error) {
	if eng == nil {
		return nil, errors.New("ui: no engine given")
	}
	base := opts.BasePath
	if base == "" {
		base = "/"
	}
	if !strings.HasPrefix(base, "/") {
		base = "/" + base
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.CountAtMost <= 0 {
		opts.CountAtMost = backend.DefaultCountAtMost
	}
	if opts.CountTTL == 0 {
		opts.CountTTL = 2 * time.Second
	}
	if opts.BatchRate == 0 {
		opts.BatchRate = 50
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{eng: eng, b: eng.Backend(), opts: opts, base: base, log: opts.Logger, secret: make([]byte, 32),
		counts: map[string]countsAt{}}
	if _, err := rand.Read(s.secret); err != nil {
		return nil, fmt.Errorf("ui: making the CSRF secret: %w", err)
	}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: embedded assets: %w", err)
	}
	m := http.NewServeMux()
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", s.listPage)
	m.HandleFunc("GET /executions/{id...}", s.executionRoute)
	m.HandleFunc("GET /dead-letters", s.deadLettersPage)
	m.HandleFunc("GET /workers", s.workersPage)
	m.HandleFunc("GET /schedules", s.schedulesPage)
	m.HandleFunc("GET /live", s.live)
	m.HandleFunc("POST /actions/{action}", s.action)
	s.mux = m
	return s, nil
}

// ServeHTTP authenticates the request, then serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="stent", charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

// executionRoute serves /executions/ID and /executions/ID/source. Child IDs contain
// slashes ("root/3"), so the suffix is told apart here rather than by the mux.
func (s *Server) executionRoute(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if rest, ok := strings.CutSuffix(id, "/source"); ok {
		s.sourcePage(w, r, rest)
		return
	}
	s.executionPage(w, r, id)
}

// page is what every template gets.
type page struct {
	Title    string
	Base     string
	Nav      string
	CSRF     string
	ReadOnly bool
	Live     string // query string of /live for this page; "" for none
	Flash    string
	Data     any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	t, ok := s.pages[name]
	if !ok {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("no template %q", name))
		return
	}
	p.Base = s.base
	p.ReadOnly = s.opts.ReadOnly
	p.CSRF = s.csrfToken(w, r)
	p.Flash = flashText(r.URL.Query().Get("done"))
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("rendering %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// fail shows an error page. Server errors are logged; the page says what happened.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		s.log.Error("ui: "+r.Method+" "+r.URL.Path, "err", err)
	}
	t := s.pages["error"]
	var buf bytes.Buffer
	p := page{Title: http.StatusText(code), Base: s.base, Data: struct {
		Code    int
		Message string
	}{code, err.Error()}}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if t == nil || t.ExecuteTemplate(&buf, "layout", p) != nil {
		http.Error(w, err.Error(), code)
		return
	}
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// flashText turns the "done" code an action redirects with into a message. Only known
// codes are shown, so a link cannot make the page say something else.
func flashText(code string) string {
	switch code {
	case "cancel":
		return "Cancellation requested."
	case "signal":
		return "Signal sent."
	case "replay":
		return "Dead letter replayed: the step runs again."
	case "retry":
		return "Retrying: the failed step runs again."
	case "discard":
		return "Dead letter discarded."
	case "reset":
		return "Reset: this execution runs the old one again from the chosen step; the steps before it reuse their recorded results."
	case "pause-schedule":
		return "Schedule paused: it does not fire until resumed."
	case "resume-schedule":
		return "Schedule resumed from its next tick."
	case "trigger-schedule":
		return "Schedule triggered: one execution started."
	case "delete-schedule":
		return "Schedule deleted."
	}
	return ""
}

func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("ui: parsing layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: listing templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := layout.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFS, n)
		}
		if err != nil {
			return nil, fmt.Errorf("ui: parsing %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}
