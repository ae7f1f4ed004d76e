package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// seen is one request an httpServer received.
type seen struct {
	header http.Header
	body   string
}

// reply is what an httpServer answers with.
type reply struct {
	status int
	header map[string]string
	body   string
	hang   bool // wait until the client gives up
}

// httpServer answers with replies in order (the last one repeats) and records the
// requests.
type httpServer struct {
	*httptest.Server
	mu      sync.Mutex
	replies []reply
	got     []seen
}

func newHTTPServer(t *testing.T, replies ...reply) *httpServer {
	t.Helper()
	s := &httpServer{replies: replies}
	release := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, seen{header: r.Header.Clone(), body: string(body)})
		rep := s.replies[0]
		if len(s.replies) > 1 {
			s.replies = s.replies[1:]
		}
		s.mu.Unlock()
		if rep.hang {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(func() {
		close(release)
		s.Close()
	})
	return s
}

func (s *httpServer) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.got...)
}

func httpActivity(t *testing.T, url string, hopts []HTTPOption, opts ...Option) *Activity {
	t.Helper()
	r := NewRegistry()
	if err := r.Register("charge", HTTPActivity(url, hopts...), opts...); err != nil {
		t.Fatalf("Register: %v", err)
	}
	a, err := r.Get("charge")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if a.Kind() != "http" {
		t.Fatalf("Kind() = %q, want http", a.Kind())
	}
	return a
}

func attemptCtx(attempt int) context.Context {
	return WithInfo(context.Background(), Info{ExecutionID: "order-42", Seq: 3, Attempt: attempt, Name: "charge"})
}

func TestHTTPActivityPostsArgumentsAndReturnsTheResult(t *testing.T) {
	s := newHTTPServer(t,
		reply{status: 200, body: "{\"charged\": 1999,\n \"id\": \"ch_1\"}\n"},
		reply{status: 204},
	)
	a := httpActivity(t, s.URL+"/charge", nil)
	out, err := a.Invoke(attemptCtx(1), json.RawMessage(` ["order-42", 1999] `))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if want := `{"charged":1999,"id":"ch_1"}`; string(out) != want {
		t.Fatalf("result = %s, want %s", out, want)
	}
	out, err = a.Invoke(attemptCtx(1), nil)
	if err != nil || string(out) != "null" {
		t.Fatalf("empty body: got %s, %v; want null", out, err)
	}
	got := s.requests()
	if got[0].body != `["order-42", 1999]` || got[1].body != `[]` {
		t.Fatalf("request bodies = %q, %q; want the JSON array of arguments, [] without any", got[0].body, got[1].body)
	}
	if ct := got[0].header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
}

func TestHTTPActivityRetryableStatusesCarryRetryAfter(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffFactor: 2}
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		rep        reply
		retryAfter time.Duration // exact; -1: about an hour
		nextDelay  time.Duration // policy.DelayAfter(2, err); -1: about an hour
	}{
		{"503 with Retry-After seconds", reply{status: 503, header: map[string]string{"Retry-After": "7"}, body: "down for maintenance"}, 7 * time.Second, 7 * time.Second},
		{"503 with Retry-After shorter than the policy's delay", reply{status: 503, header: map[string]string{"Retry-After": "0"}}, 0, time.Second},
		{"503 with Retry-After as an HTTP date", reply{status: 503, header: map[string]string{"Retry-After": date}}, -1, -1},
		{"429", reply{status: 429, header: map[string]string{"Retry-After": "30"}, body: "slow down"}, 30 * time.Second, 30 * time.Second},
		{"408", reply{status: 408}, 0, time.Second},
		{"500 without Retry-After", reply{status: 500, body: "oops"}, 0, time.Second},
	}
	for _, tc := range tests {
		s := newHTTPServer(t, tc.rep)
		a := httpActivity(t, s.URL, nil)
		_, err := a.Invoke(attemptCtx(1), json.RawMessage(`[]`))
		if err == nil {
			t.Fatalf("%s: Invoke succeeded, want an error", tc.name)
		}
		if typ := ErrorType(err); typ != TypeHTTP {
			t.Errorf("%s: error type %q, want %q", tc.name, typ, TypeHTTP)
		}
		if !policy.ShouldRetry(1, err) {
			t.Errorf("%s: not retryable: %v", tc.name, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(tc.rep.status)) || !strings.Contains(err.Error(), s.URL) {
			t.Errorf("%s: error %q names neither the status nor the URL", tc.name, err)
		}
		hint, next := RetryAfter(err), policy.DelayAfter(2, err)
		if tc.retryAfter < 0 {
			if hint < 55*time.Minute || hint > time.Hour || next != hint {
				t.Errorf("%s: RetryAfter %s, next delay %s; want about an hour for both", tc.name, hint, next)
			}
			continue
		}
		if hint != tc.retryAfter || next != tc.nextDelay {
			t.Errorf("%s: RetryAfter %s, next delay %s; want %s and %s", tc.name, hint, next, tc.retryAfter, tc.nextDelay)
		}
	}
}

func TestHTTPActivityClientErrorsAreNotRetried(t *testing.T) {
	body := `{"error":"card declined","code":"insufficient_funds"}`
	for _, status := range []int{400, 401, 404, 422} {
		s := newHTTPServer(t, reply{status: status, body: body})
		a := httpActivity(t, s.URL, nil)
		_, err := a.Invoke(attemptCtx(1), json.RawMessage(`[1]`))
		if err == nil {
			t.Fatalf("%d: Invoke succeeded, want an error", status)
		}
		if !IsNonRetryable(err) || (RetryPolicy{MaxAttempts: 5}).ShouldRetry(1, err) {
			t.Errorf("%d: retryable, want non-retryable: %v", status, err)
		}
		if !strings.HasPrefix(err.Error(), body+" (HTTP "+fmt.Sprint(status)) {
			t.Errorf("%d: error %q does not start with the body and the status", status, err)
		}
	}
	long := strings.Repeat("x", 5000)
	s := newHTTPServer(t, reply{status: 422, body: long})
	_, err := httpActivity(t, s.URL, nil).Invoke(attemptCtx(1), nil)
	if err == nil || len(err.Error()) > 2*httpErrorQuote || !strings.Contains(err.Error(), "xxx...") {
		t.Fatalf("a long body should be cut in the message, got %d bytes: %.80q", len(err.Error()), err)
	}
}

func TestHTTPActivityDoesNotFollowRedirects(t *testing.T) {
	s := newHTTPServer(t, reply{status: 302, header: map[string]string{"Location": "https://user:pw@elsewhere.example/x"}})
	_, err := httpActivity(t, s.URL, nil).Invoke(attemptCtx(1), nil)
	if err == nil || !IsNonRetryable(err) || !strings.Contains(err.Error(), "redirected to https://user:xxxxx@elsewhere.example/x") {
		t.Fatalf("want a non-retryable error naming the redirect (password masked), got %v", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestHTTPActivityNonJSONResultIsNotRetried(t *testing.T) {
	s := newHTTPServer(t, reply{status: 200, body: "<html>hello</html>"})
	_, err := httpActivity(t, s.URL, nil).Invoke(attemptCtx(1), nil)
	if err == nil || !IsNonRetryable(err) || ErrorType(err) != TypeOutput {
		t.Fatalf("want a non-retryable %s, got %v", TypeOutput, err)
	}
	if !strings.Contains(err.Error(), s.URL) || !strings.Contains(err.Error(), `"<html>hello</html>"`) {
		t.Fatalf("error %q should name the URL and quote the body", err)
	}
}

func TestHTTPActivityTimeoutAndNetworkErrorsAreRetried(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 2}
	s := newHTTPServer(t, reply{hang: true})
	a := httpActivity(t, s.URL, []HTTPOption{HTTPTimeout(50 * time.Millisecond)})
	_, err := a.Invoke(attemptCtx(1), nil)
	if err == nil || ErrorType(err) != TypeTimeout || !policy.ShouldRetry(1, err) {
		t.Fatalf("want a retryable %q error, got %v (type %s)", TypeTimeout, err, ErrorType(err))
	}
	if !strings.Contains(err.Error(), "no response within 50ms") {
		t.Fatalf("error %q should say how long it waited", err)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	_, err = httpActivity(t, closed.URL, nil).Invoke(attemptCtx(1), nil)
	if err == nil || ErrorType(err) != TypeHTTP || !policy.ShouldRetry(1, err) {
		t.Fatalf("want a retryable %q error for a refused connection, got %v", TypeHTTP, err)
	}
	if !strings.Contains(err.Error(), "POST "+closed.URL) {
		t.Fatalf("error %q should name the URL", err)
	}
}

func TestHTTPActivityIdempotencyKeyIsStableAcrossAttempts(t *testing.T) {
	s := newHTTPServer(t, reply{status: 503}, reply{status: 200, body: `"ok"`})
	a := httpActivity(t, s.URL, nil)
	if _, err := a.Invoke(attemptCtx(1), nil); err == nil {
		t.Fatal("first attempt succeeded, want 503")
	}
	if out, err := a.Invoke(attemptCtx(2), nil); err != nil || string(out) != `"ok"` {
		t.Fatalf("second attempt: %s, %v", out, err)
	}
	got := s.requests()
	for i, r := range got {
		if k := r.header.Get(HeaderIdempotencyKey); k != "order-42/3" {
			t.Errorf("attempt %d: Idempotency-Key %q, want order-42/3", i+1, k)
		}
		if n := r.header.Get(HeaderAttempt); n != fmt.Sprint(i+1) {
			t.Errorf("attempt %d: Stent-Attempt %q, want %d", i+1, n, i+1)
		}
	}
}

func TestHTTPActivitySendsTraceparent(t *testing.T) {
	s := newHTTPServer(t, reply{status: 200})
	a := httpActivity(t, s.URL, []HTTPOption{HTTPHeader("Traceparent", "00-11111111111111111111111111111111-2222222222222222-01")})
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a, 0xf7}, SpanID: trace.SpanID{0xb7, 0xad}, TraceFlags: trace.FlagsSampled,
	})
	if _, err := a.Invoke(trace.ContextWithSpanContext(attemptCtx(1), sc), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Invoke(attemptCtx(1), nil); err != nil {
		t.Fatal(err)
	}
	got := s.requests()
	if tp, want := got[0].header.Get("traceparent"), "00-0af70000000000000000000000000000-b7ad000000000000-01"; tp != want {
		t.Fatalf("traceparent = %q, want %q", tp, want)
	}
	if tp := got[1].header.Get("traceparent"); tp != "" {
		t.Fatalf("without a span: traceparent = %q, want none", tp)
	}
}

func TestHTTPActivityHeaderValuesStayOutOfErrors(t *testing.T) {
	const secret = "s3cret-token"
	hopts := []HTTPOption{HTTPHeader("Authorization", "Bearer "+secret), HTTPHeader("X-Api-Key", secret), HTTPTimeout(50 * time.Millisecond)}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	servers := map[string]string{"refused": closed.URL}
	for name, rep := range map[string]reply{
		"503": {status: 503}, "422": {status: 422, body: "no"}, "not JSON": {status: 200, body: "<"}, "timeout": {hang: true},
	} {
		servers[name] = newHTTPServer(t, rep).URL
	}
	for name, url := range servers {
		_, err := httpActivity(t, url, hopts).Invoke(attemptCtx(1), nil)
		if err == nil {
			t.Fatalf("%s: Invoke succeeded, want an error", name)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("%s: the error shows a header value: %v", name, err)
		}
	}
	s := newHTTPServer(t, reply{status: 200})
	if _, err := httpActivity(t, s.URL, hopts).Invoke(attemptCtx(1), nil); err != nil {
		t.Fatal(err)
	}
	if got := s.requests()[0].header.Get("Authorization"); got != "Bearer "+secret {
		t.Fatalf("Authorization = %q, want the configured header", got)
	}
	err := NewRegistry().Register("bad", HTTPActivity(s.URL, HTTPHeader("Authorization", secret+"\r\nX: y")))
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("a header value with a line break: want an error without the value, got %v", err)
	}
}

func TestHTTPActivityRegistration(t *testing.T) {
	for _, bad := range []string{"ftp://example.com/x", "https://", "example.com/charge", "http://[::1"} {
		if err := NewRegistry().Register("a", HTTPActivity(bad)); err == nil {
			t.Errorf("Register(%q): want an error", bad)
		}
		if IsHTTPURL(bad) {
			t.Errorf("IsHTTPURL(%q) = true", bad)
		}
	}
	for _, good := range []string{"https://billing.internal/charge", "http://127.0.0.1:8080/x?y=1"} {
		if !IsHTTPURL(good) {
			t.Errorf("IsHTTPURL(%q) = false", good)
		}
	}
	if err := NewRegistry().Register("a", HTTPActivity("https://x", HTTPHeader("Bad Name", "v"))); err == nil {
		t.Errorf("a header name with a space: want an error")
	}
	if err := NewRegistry().Register("a", HTTPActivity("https://x", HTTPTimeout(-time.Second))); err == nil {
		t.Errorf("a negative timeout: want an error")
	}
	a := httpActivity(t, "https://user:pw@billing.internal/charge", nil)
	if a.URL() != "https://user:xxxxx@billing.internal/charge" {
		t.Errorf("URL() = %q, want the password masked", a.URL())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-5", 0}, {"120", 2 * time.Minute}, {" 3 ", 3 * time.Second},
		{"Sat, 01 Mar 2025 12:01:30 GMT", 90 * time.Second},
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0},
		{"soon", 0},
		{"99999999999999999", maxRetryAfter},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
