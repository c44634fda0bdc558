package web

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka"
)

// routeQueries is the one list of the query parameters each /v1 route
// takes, keyed "METHOD pattern" as Routes writes a route; a route not
// listed takes none. checkQuery refuses any other parameter, and the OpenAPI
// document lists these: a filter a route does not apply is refused rather
// than ignored, so that a client is never answered as if it had been
// applied. Each handler reads its parameters' values and refuses malformed
// ones with the form it expects.
var routeQueries = map[string][]any{
	"GET /v1/containers": append([]any{
		queryParam("asset", "string", "Only the containers of this asset (kafka_asset), exactly."),
		queryParam("label", "string", "Only containers with this label, exactly."),
		queryParam("severity", "string", "Only containers with this severity, exactly (case-sensitive)."),
		queryParam("since_id", "integer", "Only containers whose id is greater."),
		map[string]any{"name": "start_time", "in": "query", "schema": map[string]any{"type": "string", "format": "date-time"}, "description": "Only containers stored at or after this RFC 3339 time (inclusive)."},
		map[string]any{"name": "end_time", "in": "query", "schema": map[string]any{"type": "string", "format": "date-time"}, "description": "Only containers stored before this RFC 3339 time (exclusive); must be after start_time."},
	}, pageParams()...),
	"GET /v1/artifacts": append([]any{
		queryParam("container_id", "integer", "Only the artifacts of this container."),
		queryParam("asset", "string", "Only the artifacts of this asset (kafka_asset), exactly."),
		queryParam("since_id", "integer", "Only artifacts whose id is greater."),
	}, pageParams()...),
	"GET /v1/audit": append([]any{
		map[string]any{"name": "object_kind", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"asset", "parser", "delivery"}},
			"description": "Only the events of this kind of object."},
		queryParam("object_name", "string", "Only the events of the object of this name, exactly."),
		map[string]any{"name": "since", "in": "query", "schema": map[string]any{"type": "string", "format": "date-time"}, "description": "Only events at or after this RFC 3339 time (inclusive)."},
		map[string]any{"name": "until", "in": "query", "schema": map[string]any{"type": "string", "format": "date-time"}, "description": "Only events before this RFC 3339 time (exclusive); must be after since."},
	}, pageParams()...),
	"GET /v1/pull": {
		map[string]any{"name": "asset", "in": "query", "required": true, "schema": map[string]any{"type": "string"},
			"description": "The asset whose polls stored the containers: a stored asset's name, or soar:<asset_id> for the polls of a SOAR asset's inline configuration."},
		map[string]any{"name": "cursor", "in": "query", "schema": map[string]any{"type": "string"},
			"description": "The cursor of the previous answer, as it was; absent or empty: from the beginning; end: no items, just the cursor at the current end."},
		map[string]any{"name": "max_artifacts", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": maxPullArtifacts, "default": defaultPullArtifacts},
			"description": "Most artifacts in one answer."},
		map[string]any{"name": "max_containers", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": maxPullContainers, "default": defaultPullContainers},
			"description": "Most containers in one answer."},
	},
	"GET /v1/topics": {
		map[string]any{"name": "asset", "in": "query", "required": true, "schema": map[string]any{"type": "string"},
			"description": "The stored asset whose cluster to ask (for an inline configuration, POST /v1/topics)."},
		map[string]any{"name": "topic", "in": "query", "schema": map[string]any{"type": "string"},
			"description": "Only this topic; 404 when it does not exist. Absent: every topic the asset's credentials can see, internal topics left out."},
	},
	"POST /v1/assets/{name}/records": {
		map[string]any{"name": "topic", "in": "query", "schema": map[string]any{"type": "string"}, "description": "Topic to produce to; the asset's topic when absent."},
		map[string]any{"name": "format", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"events", "envelope"}, "default": "events"},
			"description": "events: each line is a JSON event sent as is. envelope: each line is {\"value\", \"key\", \"headers\", \"partition\", \"timestamp\", \"topic\"}."},
		map[string]any{"name": "validate", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"light", "full"}, "default": "light"},
			"description": "light: each events line must be valid UTF-8 opening and closing as a JSON object or array. full: each line is parsed (about half the throughput)."},
		map[string]any{"name": "results", "in": "query", "schema": map[string]any{"type": "string", "enum": []string{"all", "failed"}, "default": "all"},
			"description": "Answer a line for every record (all) or for failed records only (failed); the summary line comes last either way."},
	},
}

// queryNames are the names each route takes, built once from routeQueries.
var queryNames = func() map[string][]string {
	out := map[string][]string{}
	for route, params := range routeQueries {
		for _, p := range params {
			out[route] = append(out[route], p.(map[string]any)["name"].(string))
		}
	}
	return out
}()

// checkQuery refuses a query parameter the route does not take, and one
// given more than once (a handler would read only the first), naming each.
// It runs after routing, to know the route.
func (h *Handler) checkQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			next.ServeHTTP(w, r)
			return
		}
		route := r.Method + " " + chi.RouteContext(r.Context()).RoutePattern()
		takes := queryNames[route]
		q := r.URL.Query()
		var problems []soarkafka.FieldError
		for _, name := range slices.Sorted(maps.Keys(q)) {
			switch {
			case !slices.Contains(takes, name):
				msg := fmt.Sprintf("not a query parameter of %s, which takes none", route)
				if len(takes) > 0 {
					msg = fmt.Sprintf("not a query parameter of %s, which takes %s", route, strings.Join(takes, ", "))
				}
				problems = append(problems, soarkafka.FieldError{Field: name, Message: msg})
			case len(q[name]) > 1:
				problems = append(problems, soarkafka.FieldError{Field: name, Message: fmt.Sprintf("given %d times; give it once", len(q[name]))})
			}
		}
		if len(problems) > 0 {
			h.refuseBody(w, r, &soarkafka.Error{Code: soarkafka.EINVALID, Message: "bad query parameters", Fields: problems})
			return
		}
		next.ServeHTTP(w, r)
	})
}
