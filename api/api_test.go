package api

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

var update = flag.Bool("update", false, "rewrite openapi.json from openapi.yaml")

// TestJSONMatchesYAML checks that openapi.json is openapi.yaml converted (go generate
// ./api rewrites it) and that the document is a valid OpenAPI 3.1 document.
func TestJSONMatchesYAML(t *testing.T) {
	var doc any
	if err := yaml.Unmarshal(YAML, &doc); err != nil {
		t.Fatalf("reading openapi.yaml: %v", err)
	}
	want, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatalf("converting openapi.yaml to JSON: %v", err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("openapi.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(JSON, want) {
		t.Fatal("openapi.json is not openapi.yaml converted: run go generate ./api")
	}
	loaded, err := openapi3.NewLoader().LoadFromData(JSON)
	if err != nil {
		t.Fatalf("loading openapi.json: %v", err)
	}
	if !loaded.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", loaded.OpenAPI)
	}
	if err := loaded.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
}
