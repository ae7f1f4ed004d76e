package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/stent-go/stent/api"
)

// The OpenAPI document (api/openapi.yaml, served as JSON) is checked here against the
// API itself: every registered route is in it (TestRoutesInSpec), and real requests
// and responses of every endpoint, errors included, validate against it
// (TestOpenAPIContract), with kin-openapi's validator.

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.JSON)
	if err != nil {
		t.Fatalf("loading the OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	return doc
}

var placeholder = regexp.MustCompile(`\{[^}]*\}`)

// specOperation finds the operation of method on a path template ("{x}" matching any
// parameter name), or nil.
func specOperation(doc *openapi3.T, method, path string) *openapi3.Operation {
	want := placeholder.ReplaceAllString(path, "{}")
	for p, item := range doc.Paths.Map() {
		if placeholder.ReplaceAllString(p, "{}") == want {
			return item.GetOperation(method)
		}
	}
	return nil
}

// routePatterns lists the "METHOD /path" patterns the API registers (all optional
// routes on), without its catch-all 404.
func routePatterns(t *testing.T) []string {
	t.Helper()
	a, err := Handler(nil, Options{ScriptsDir: t.TempDir(), Metrics: http.NotFoundHandler()})
	must(t, err)
	var out []string
	for _, p := range a.mux.patterns {
		if p != "/api/v1/" {
			out = append(out, p)
		}
	}
	return out
}

// TestRoutesInSpec fails when a route is added to the API but not to the document.
func TestRoutesInSpec(t *testing.T) {
	doc := loadSpec(t)
	for _, p := range routePatterns(t) {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Errorf("route %q has no method: give it one and describe it in api/openapi.yaml", p)
			continue
		}
		if specOperation(doc, method, path) == nil {
			t.Errorf("route %q is not in api/openapi.yaml: describe it there (then go generate ./api)", p)
		}
	}
}

// contract sends requests to a real API and validates each request and response
// against the document, remembering which operations were exercised.
type contract struct {
	t      *testing.T
	srv    *httptest.Server
	router routers.Router
	token  string
	seen   map[string]bool // "METHOD /path/{template}"
}

// req is one request: badInput marks a request the document itself forbids (only its
// response is validated).
type req struct {
	method, path, body string
	code               int    // 0: any 2xx
	want               string // a substring of the response body
	badInput           bool
	header             map[string]string
}

var validation = &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}

func (c *contract) do(r req) []byte {
	t := c.t
	t.Helper()
	httpReq, err := http.NewRequest(r.method, c.srv.URL+r.path, strings.NewReader(r.body))
	must(t, err)
	if r.body != "" {
		httpReq.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		httpReq.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range r.header {
		httpReq.Header.Set(k, v)
	}
	route, params, err := c.router.FindRoute(httpReq)
	if err != nil {
		t.Fatalf("%s %s: not in the OpenAPI document: %v", r.method, r.path, err)
	}
	c.seen[route.Method+" "+route.Path] = true
	in := &openapi3filter.RequestValidationInput{Request: httpReq, PathParams: params, Route: route, Options: validation}
	if !r.badInput {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Fatalf("%s %s %s: the request does not match the document: %v", r.method, r.path, r.body, err)
		}
		httpReq.Body = io.NopCloser(strings.NewReader(r.body))
	}
	resp, err := c.srv.Client().Do(httpReq)
	must(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	must(t, err)
	codeOK := resp.StatusCode == r.code || r.code == 0 && resp.StatusCode >= 200 && resp.StatusCode < 300
	if !codeOK || !bytes.Contains(body, []byte(r.want)) {
		t.Fatalf("%s %s %s: %d %s; want %d with %q", r.method, r.path, r.body, resp.StatusCode, body, r.code, r.want)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: validation}
	if err := openapi3filter.ValidateResponse(context.Background(), out.SetBodyBytes(body)); err != nil {
		t.Fatalf("%s %s: the response %d %s does not match the document: %v", r.method, r.path, resp.StatusCode, body, err)
	}
	return body
}

// id reads a JSON body's "id" (a string or a number) as text.
func id(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	must(t, json.Unmarshal(body, &v))
	return strings.Trim(string(v.ID), `"`)
}
