package where

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/errs"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f, err := Parse(`status=failed  script=./flows/checkout.star since=1h tag:customer=42 tag:note="a b" queue=q id=ord- until=2026-05-01`, now)
	if err != nil {
		t.Fatal(err)
	}
	want := backend.ListFilter{Status: backend.StatusFailed, Script: "flows/checkout.star", Queue: "q", IDPrefix: "ord-",
		Since: now.Add(-time.Hour), Until: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
		Tags: map[string]string{"customer": "42", "note": "a b"}}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("Parse = %+v, want %+v", f, want)
	}
	if f, err := Parse("  ", now); err != nil || !reflect.DeepEqual(f, backend.ListFilter{}) {
		t.Fatalf("Parse of blanks = %+v, %v; want the empty filter", f, err)
	}
	for expr, msg := range map[string]string{
		"status=lost":                       `status wants one of`,
		"colour=red":                        `unknown key "colour"`,
		"failed":                            `want KEY=VALUE`,
		"since=yesterday":                   `want a time`,
		"script=":                           `the value is empty`,
		`tag:note="open`:                    `unclosed " quote`,
		"tag:=1":                            `a tag key is empty`,
		"tag:k=" + strings.Repeat("v", 129): `over the limit of 128`,
	} {
		_, err := Parse(expr, now)
		var in *errs.InputError
		if !errors.As(err, &in) || !strings.Contains(err.Error(), msg) || !strings.HasPrefix(err.Error(), "--where: ") {
			t.Errorf("Parse(%q) = %v, want an InputError saying %q", expr, err, msg)
		}
	}
}

func TestWithout(t *testing.T) {
	for in, want := range map[string]string{
		`status=failed tag:customer=42`:           `tag:customer=42`,
		`tag:note="a b"  status=running script=x`: `tag:note="a b" script=x`,
		`tag:q='say "hi"' status=failed`:          `tag:q='say "hi"'`,
		`status=failed`:                           ``,
		`script="unclosed`:                        `script="unclosed`,
	} {
		if got := Without(in, "status"); got != want {
			t.Errorf("Without(%q, status) = %q, want %q", in, got, want)
		}
	}
}
