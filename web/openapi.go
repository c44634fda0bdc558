package web

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/soarkafka/soarkafka/assets"
)

// openAPI serves the OpenAPI 3.1 description of the API. A test keeps the
// paths in step with the router.
func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, OpenAPI(h.opts.Version))
}

// openAPIDocument is the API description as written by hand: the paths,
// the operations and the schemas of the bodies. What the code owns is left
// out of it and filled in by OpenAPI, so that it cannot drift.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the API description: openapi.json with the server's
// version, the asset configuration schema from the field registry, each
// route's query parameters from routeQueries, and the page size limit.
func OpenAPI(version string) map[string]any {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		// The document is part of the binary, and a test decodes it.
		panic(fmt.Sprintf("web: openapi.json: %v", err))
	}
	object(doc, "info")["version"] = version
	schemas := object(doc, "components", "schemas")
	schemas["AssetConfig"] = assets.JSONSchema()
	withArtifacts := object(schemas, "ContainerWithArtifacts")["allOf"].([]any)[1].(map[string]any)
	object(withArtifacts, "properties", "artifacts")["maxItems"] = maxPageSize
	for route, params := range routeQueries {
		method, path, _ := strings.Cut(route, " ")
		op := object(doc, "paths", path, strings.ToLower(method))
		if op == nil {
			panic(fmt.Sprintf("web: routeQueries lists %s, which openapi.json does not describe", route))
		}
		existing, _ := op["parameters"].([]any)
		op["parameters"] = append(existing, params...)
	}
	return doc
}

// object returns the object at keys under m, nil when there is none.
func object(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ = m[k].(map[string]any)
	}
	return m
}
