// Package api holds the OpenAPI 3.1 document of Stent's HTTP API (`stent serve`,
// /api/v1): openapi.yaml is the source, openapi.json is generated from it (go generate
// ./api) and is what GET /api/v1/openapi.json serves. A test keeps the two in step.
package api

import _ "embed" // the documents

//go:generate go test -run TestJSONMatchesYAML -update

// YAML is the document as written, api/openapi.yaml.
//
//go:embed openapi.yaml
var YAML []byte

// JSON is the same document as JSON, api/openapi.json.
//
//go:embed openapi.json
var JSON []byte
