package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// TypeHTTP is the error type of an HTTP activity whose request failed: the server
// answered with a status other than 2xx, or could not be reached. 408, 429, 5xx and
// network errors are retryable; other statuses are not.
const TypeHTTP = "HTTPError"

// Headers every attempt of an HTTP activity sends, besides Content-Type and Accept
// (application/json) and the W3C traceparent of the attempt's span when tracing is on.
const (
	HeaderIdempotencyKey = "Idempotency-Key" // Info.IdempotencyKey: the same on every attempt
	HeaderAttempt        = "Stent-Attempt"   // 1 for the first attempt
)

const (
	// DefaultHTTPTimeout bounds a request that has no deadline of its own: no
	// HTTPTimeout, no Options.Timeout and no timeout on the workflow's call.
	DefaultHTTPTimeout = time.Minute
	// httpMaxBody is the largest response body read as a result; the engine's payload
	// limit (usually smaller) applies after.
	httpMaxBody = 64 << 20
	// httpErrorQuote is how much of an error response's body its message quotes.
	httpErrorQuote = 1 << 10
	// maxRetryAfter caps a Retry-After: a longer one (a broken header, most likely)
	// counts as this.
	maxRetryAfter = 24 * time.Hour
)

// HTTPEndpoint is the target of an HTTP activity: each attempt POSTs the activity's
// JSON array of arguments to its URL and takes the JSON response body as the result.
// Make one with HTTPActivity and register it like a function:
//
//	reg.Register("charge", activities.HTTPActivity("https://billing.internal/charge",
//		activities.HTTPHeader("Authorization", "Bearer "+token)))
type HTTPEndpoint struct {
	url     string
	header  http.Header
	timeout time.Duration
	hasTime bool
	client  *http.Client
}

// HTTPOption configures an HTTPEndpoint.
type HTTPOption func(*HTTPEndpoint)

// HTTPActivity returns the endpoint POSTing to rawURL, an http or https URL. The URL
// and the options are checked when the endpoint is registered.
func HTTPActivity(rawURL string, opts ...HTTPOption) *HTTPEndpoint {
	h := &HTTPEndpoint{url: rawURL, header: http.Header{}}
	for _, opt := range opts {
		if opt != nil {
			opt(h)
		}
	}
	return h
}

// HTTPHeader adds a header to every request (Authorization, an API key, …). Its value
// is never logged nor shown in an error. The headers Stent sets (Content-Type,
// Idempotency-Key, Stent-Attempt, traceparent) cannot be replaced.
func HTTPHeader(name, value string) HTTPOption {
	return func(h *HTTPEndpoint) { h.header.Add(name, value) }
}

// HTTPTimeout bounds each request (0: no bound of its own). Without it a request is
// bounded by DefaultHTTPTimeout unless the attempt already has a deadline. A request
// that times out fails with a retryable *Error of type "timeout".
func HTTPTimeout(d time.Duration) HTTPOption {
	return func(h *HTTPEndpoint) { h.timeout, h.hasTime = d, true }
}

// HTTPClient sends the requests with c instead of a client that does not follow
// redirects (a redirect is then a non-retryable failure naming its Location).
func HTTPClient(c *http.Client) HTTPOption {
	return func(h *HTTPEndpoint) { h.client = c }
}

// IsHTTPURL reports whether s is an absolute http or https URL with a host: what an
// --activity NAME=VALUE registers as an HTTP activity rather than a command.
func IsHTTPURL(s string) bool {
	_, err := parseHTTPURL(s)
	return err == nil
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("parsing URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: want an http:// or https:// URL", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", u.Redacted())
	}
	return u, nil
}

// noRedirects is the default client: a redirect could carry the headers elsewhere.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// bindHTTP validates the endpoint and stores a copy of it.
func (a *Activity) bindHTTP(h *HTTPEndpoint) error {
	if h == nil {
		return errors.New("HTTP endpoint is nil")
	}
	u, err := parseHTTPURL(h.url)
	if err != nil {
		return err
	}
	if h.timeout < 0 {
		return fmt.Errorf("HTTP timeout must be >= 0, got %s", h.timeout)
	}
	for name, values := range h.header {
		if !validHeaderName(name) {
			return fmt.Errorf("header name %q is not valid", name)
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return fmt.Errorf("the value of header %q contains a line break or NUL", name)
			}
		}
	}
	c := *h
	c.url, c.header = u.String(), h.header.Clone()
	if c.client == nil {
		c.client = noRedirects
	}
	a.http = &c
	return nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110 section 5.6.2).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// URL is the URL an HTTP activity POSTs to ("" for other activities), with any
// password in it masked.
func (a *Activity) URL() string {
	if a.http == nil {
		return ""
	}
	u, err := url.Parse(a.http.url)
	if err != nil {
		return ""
	}
	return u.Redacted()
}

// runHTTP runs an HTTP activity once: POST the arguments, read the JSON result.
func (a *Activity) runHTTP(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
	if _, err := a.splitArgs(args); err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(args)
	if len(body) == 0 || string(body) == "null" {
		body = []byte("[]")
	}
	h := a.http
	timeout := h.timeout
	if _, deadline := ctx.Deadline(); !h.hasTime && !deadline {
		timeout = DefaultHTTPTimeout
	}
	reqCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Type: TypeHTTP, NonRetryable: true, Cause: err,
			Message: fmt.Sprintf("HTTP activity %q: building the request to %s: %v", a.Name, a.URL(), err)}
	}
	req.Header = h.header.Clone()
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "stent")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Del("Traceparent")
	req.Header.Del("Tracestate")
	if info, ok := InfoFromContext(ctx); ok {
		req.Header.Set(HeaderIdempotencyKey, info.IdempotencyKey())
		req.Header.Set(HeaderAttempt, strconv.Itoa(info.Attempt))
	}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))

	resp, err := h.client.Do(req)
	if err != nil {
		return nil, a.httpSendError(ctx, reqCtx, timeout, err)
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	if status < 200 || status > 299 {
		quote, _ := io.ReadAll(io.LimitReader(resp.Body, httpErrorQuote+1))
		return nil, a.httpStatusError(resp, quote)
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, httpMaxBody+1))
	if err != nil {
		return nil, a.httpSendError(ctx, reqCtx, timeout, fmt.Errorf("reading the response: %w", err))
	}
	if len(out) > httpMaxBody {
		return nil, &Error{Type: TypeOutput, NonRetryable: true,
			Message: fmt.Sprintf("HTTP activity %q: the response of POST %s is larger than %d MiB", a.Name, a.URL(), httpMaxBody>>20)}
	}
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return json.RawMessage("null"), nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		return nil, &Error{Type: TypeOutput, NonRetryable: true, Cause: err,
			Message: fmt.Sprintf("HTTP activity %q: the response of POST %s (%s) is not JSON (%v); it began with %q; "+
				"an HTTP activity must answer with its result as JSON, or nothing", a.Name, a.URL(), resp.Status, err, excerpt(out, stdoutQuote))}
	}
	return json.RawMessage(compact.Bytes()), nil
}

// httpSendError is the retryable failure of a request that got no (complete) response.
func (a *Activity) httpSendError(ctx, reqCtx context.Context, timeout time.Duration, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL, unredacted
	}
	if ctx.Err() == nil && errors.Is(reqCtx.Err(), context.DeadlineExceeded) {
		return &Error{Type: TypeTimeout, Cause: err,
			Message: fmt.Sprintf("HTTP activity %q: POST %s: no response within %s", a.Name, a.URL(), timeout)}
	}
	return &Error{Type: TypeHTTP, Cause: err,
		Message: fmt.Sprintf("HTTP activity %q: POST %s: %v", a.Name, a.URL(), err)}
}

// httpStatusError is the failure of a non-2xx response: its message is the start of
// the body and the status. 408, 429 and 5xx are retryable, no sooner than Retry-After.
func (a *Activity) httpStatusError(resp *http.Response, body []byte) error {
	where := fmt.Sprintf("HTTP %s from POST %s", resp.Status, a.URL())
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		where += ", redirected to " + redactURL(loc)
	}
	msg := where
	if quote := excerpt(body, httpErrorQuote); quote != "" {
		msg = quote + " (" + where + ")"
	}
	status := resp.StatusCode
	retryable := status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
	e := &Error{Type: TypeHTTP, Message: msg, NonRetryable: !retryable}
	if retryable {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}

// parseRetryAfter reads a Retry-After header, seconds or an HTTP date, as a wait from
// now (0 when absent, unparsable or past), at most maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
