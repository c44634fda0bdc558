package web

import (
	"net/http"

	"github.com/soarkafka/soarkafka/assets"
)

// openAPI serves the OpenAPI 3.1 description of the API. The asset
// configuration schema comes from the field registry, so it cannot drift
// from validation; a test keeps the paths in step with the router.
func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, OpenAPI(h.opts.Version))
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func jsonBody(schema map[string]any) map[string]any {
	return map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schema}}}
}

func jsonResponse(desc string, schema map[string]any) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": schema}}}
}

// errorResponses are the error answers every /v1 operation may give.
func errorResponses(codes ...string) map[string]any {
	desc := map[string]string{
		"400": "The request is bad: malformed JSON, wrong types, invalid fields, or a query parameter the route does not take (all listed in error.fields).",
		"401": "Missing or invalid API token.",
		"404": "Unknown asset or action.",
		"409": "The asset exists already.",
		"413": "The request body is larger than max_body_bytes.",
	}
	out := map[string]any{}
	for _, c := range codes {
		out[c] = jsonResponse(desc[c], ref("Error"))
	}
	return out
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// OpenAPI returns the API description.
func OpenAPI(version string) map[string]any {
	nameParam := map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}, "description": "Asset name."}
	idParam := map[string]any{"name": "identifier", "in": "path", "required": true,
		"schema":      map[string]any{"type": "string", "enum": []string{"test_connectivity", "on_poll", "post_data"}},
		"description": "Action identifier, as SOAR names it."}
	security := []any{map[string]any{"phAuthToken": []any{}}, map[string]any{"bearer": []any{}}}
	open := []any{}

	paths := map[string]any{
		"/healthz": map[string]any{"get": map[string]any{"summary": "Liveness", "security": open, "operationId": "healthz",
			"responses": map[string]any{"200": jsonResponse("The process is up.", map[string]any{"type": "object"})}}},
		"/readyz": map[string]any{"get": map[string]any{"summary": "Readiness: the store is reachable", "security": open, "operationId": "readyz",
			"responses": map[string]any{
				"200": jsonResponse("Ready.", map[string]any{"type": "object"}),
				"503": jsonResponse("The store is unreachable.", map[string]any{"type": "object"})}}},
		"/openapi.json": map[string]any{"get": map[string]any{"summary": "This document", "security": open, "operationId": "openapi",
			"responses": map[string]any{"200": jsonResponse("OpenAPI 3.1 document.", map[string]any{"type": "object"})}}},
		"/metrics": map[string]any{"get": map[string]any{"summary": "Prometheus metrics: the server's ingest and produce counters, Go runtime and process figures",
			"description": "Needs the API token unless the server runs with metrics.public (then no token: the empty security requirement).",
			"security":    []any{map[string]any{"phAuthToken": []any{}}, map[string]any{"bearer": []any{}}, map[string]any{}},
			"operationId": "metrics",
			"responses": merge(map[string]any{"200": map[string]any{"description": "The Prometheus exposition (text format unless the scraper negotiates another).",
				"content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}},
				errorResponses("401"), map[string]any{"404": jsonResponse("The server exposes no metrics.", ref("Error"))})}},
		"/v1/assets": map[string]any{
			"get": map[string]any{"summary": "List assets", "operationId": "listAssets",
				"responses": merge(map[string]any{"200": jsonResponse("Every asset, secrets omitted.", map[string]any{
					"type": "object", "properties": map[string]any{"count": map[string]any{"type": "integer"}, "data": map[string]any{"type": "array", "items": ref("Asset")}}})},
					errorResponses("401"))},
			"post": map[string]any{"summary": "Create an asset", "operationId": "createAsset", "requestBody": jsonBody(ref("AssetInput")),
				"responses": merge(map[string]any{"201": jsonResponse("Created.", ref("Asset"))}, errorResponses("400", "401", "409", "413"))},
		},
		"/v1/assets/{name}": map[string]any{
			"parameters": []any{nameParam},
			"get": map[string]any{"summary": "Get an asset", "operationId": "getAsset",
				"responses": merge(map[string]any{"200": jsonResponse("The asset, secrets omitted.", ref("Asset"))}, errorResponses("401", "404"))},
			"put": map[string]any{"summary": "Replace an asset's description and configuration; secret fields left out keep their value, null clears them", "operationId": "updateAsset",
				"requestBody": jsonBody(ref("AssetInput")),
				"responses":   merge(map[string]any{"200": jsonResponse("Updated.", ref("Asset"))}, errorResponses("400", "401", "404", "413"))},
			"delete": map[string]any{"summary": "Delete an asset", "operationId": "deleteAsset",
				"responses": merge(map[string]any{"204": map[string]any{"description": "Deleted."}}, errorResponses("401", "404"))},
		},
		"/v1/assets/{name}/ingest": map[string]any{
			"parameters": []any{nameParam},
			"get": map[string]any{"summary": "Where the asset's ingest stands: per partition the stored position, the log-end offset and the lag; the last poll; the recorded gaps; the dead-lettered count", "operationId": "ingestStatus",
				"responses": merge(map[string]any{"200": jsonResponse("The ingest status. When Kafka cannot be reached, kafka_error says why, lag is null and the stored part is still given.", ref("IngestStatus"))},
					errorResponses("401", "404"))},
		},
		"/v1/assets/{name}/records": map[string]any{
			"parameters": append([]any{nameParam}, routeQueries["POST /v1/assets/{name}/records"]...),
			"post": map[string]any{"summary": "Produce an NDJSON body, streamed, one record a line (gzip accepted; a Cribl header line is checked against the records)", "operationId": "postRecords",
				"requestBody": map[string]any{"required": true, "content": map[string]any{
					"application/x-ndjson": map[string]any{"schema": map[string]any{"type": "string"}}}},
				"responses": merge(map[string]any{"200": map[string]any{
					"description": "An NDJSON stream: {\"line\", \"status\", \"partition\", \"offset\"} or {\"line\", \"status\": \"failed\", \"error\"} per record, in completion order, then {\"summary\": {\"status\", \"message\", \"records\", \"succeeded\", \"failed\", \"topic\"}}. The HTTP status is sent before the body is read: the summary's status is the outcome.",
					"content":     map[string]any{"application/x-ndjson": map[string]any{"schema": map[string]any{"type": "string"}}}}},
					errorResponses("400", "401", "404"))},
		},
		"/v1/parsers": map[string]any{
			"get": map[string]any{"summary": "List parsers: the bundled ones, then yours (without sources)", "operationId": "listParsers",
				"responses": merge(map[string]any{"200": jsonResponse("Every parser.", map[string]any{"type": "object", "properties": map[string]any{
					"count": map[string]any{"type": "integer"}, "data": map[string]any{"type": "array", "items": ref("Parser")}}})}, errorResponses("401"))},
			"post": map[string]any{"summary": "Create a parser: checked statically, then run on a sample batch in the sandbox", "operationId": "createParser",
				"requestBody": map[string]any{"required": true, "content": map[string]any{
					"application/json":    map[string]any{"schema": ref("ParserInput")},
					"multipart/form-data": map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}, "description": map[string]any{"type": "string"}, "file": map[string]any{"type": "string", "format": "binary", "description": "the .go file"}}}}}},
				"responses": merge(map[string]any{"201": jsonResponse("Created as version 1.", ref("Parser"))}, errorResponses("400", "401", "409", "413"))},
		},
		"/v1/parsers/test": map[string]any{
			"post": map[string]any{"summary": "Playground: run a parser (source, or a parser's name) on given messages or on a live sample of an asset's topic (nothing is committed or stored)", "operationId": "testParser",
				"requestBody": jsonBody(ref("ParserTest")),
				"responses":   merge(map[string]any{"200": jsonResponse("The results and log, or the parser's error with its line.", ref("ParserTestResult"))}, errorResponses("400", "401", "404", "413"))},
		},
		"/v1/parsers/{name}": map[string]any{
			"parameters": []any{map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
			"get": map[string]any{"summary": "Get a parser with its current source", "operationId": "getParser",
				"responses": merge(map[string]any{"200": jsonResponse("The parser.", ref("Parser"))}, errorResponses("401", "404"))},
			"put": map[string]any{"summary": "Save a new version of a parser (older versions are kept)", "operationId": "updateParser",
				"requestBody": jsonBody(ref("ParserInput")),
				"responses":   merge(map[string]any{"200": jsonResponse("The new version.", ref("Parser"))}, errorResponses("400", "401", "404", "413"))},
			"delete": map[string]any{"summary": "Delete a parser and its versions; refused while an asset uses it", "operationId": "deleteParser",
				"responses": merge(map[string]any{"204": map[string]any{"description": "Deleted."}}, errorResponses("400", "401", "404", "409"))},
		},
		"/v1/parsers/{name}/versions": map[string]any{
			"parameters": []any{map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
			"get": map[string]any{"summary": "List a parser's versions", "operationId": "listParserVersions",
				"responses": merge(map[string]any{"200": jsonResponse("Every version, oldest first, without sources.", map[string]any{"type": "object"})}, errorResponses("401", "404"))},
		},
		"/v1/parsers/{name}/versions/{version}": map[string]any{
			"parameters": []any{map[string]any{"name": "name", "in": "path", "required": true, "schema": map[string]any{"type": "string"}},
				map[string]any{"name": "version", "in": "path", "required": true, "schema": map[string]any{"type": "integer", "minimum": 1}}},
			"get": map[string]any{"summary": "Get one version of a parser with its source", "operationId": "getParserVersion",
				"responses": merge(map[string]any{"200": jsonResponse("The version.", ref("Parser"))}, errorResponses("400", "401", "404"))},
		},
		"/v1/containers": map[string]any{
			"get": map[string]any{"summary": "List the containers polls stored, in id order, a page at a time as the SOAR REST API pages",
				"description": "Pull new containers incrementally with since_id set to the highest id already pulled, and their new artifacts with GET /v1/artifacts?since_id= (a container that receives artifacts later keeps its id). " +
					"With a PostgreSQL store, pull per asset (asset=): batches of different assets commit concurrently, so a lower id of one asset can appear after a higher id of another. Unknown or repeated parameters and bad values are a 400 naming each.",
				"operationId": "listContainers",
				"parameters":  routeQueries["GET /v1/containers"],
				"responses":   merge(map[string]any{"200": jsonResponse("One page of the matching containers.", listOf("Container"))}, errorResponses("400", "401"), storeUnavailable())},
		},
		"/v1/containers/{id}": map[string]any{
			"parameters": []any{map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "integer", "minimum": 1}}},
			"get": map[string]any{"summary": "Get a stored container with its artifacts", "operationId": "getContainer",
				"responses": merge(map[string]any{"200": jsonResponse("The container.", ref("ContainerWithArtifacts"))},
					errorResponses("400", "401"), map[string]any{"404": jsonResponse("No container has this id.", ref("Error"))}, storeUnavailable())},
		},
		"/v1/artifacts": map[string]any{
			"get": map[string]any{"summary": "List the artifacts polls stored, in id order, a page at a time as the SOAR REST API pages", "operationId": "listArtifacts",
				"parameters": routeQueries["GET /v1/artifacts"],
				"responses":  merge(map[string]any{"200": jsonResponse("One page of the matching artifacts.", listOf("Artifact"))}, errorResponses("400", "401"), storeUnavailable())},
		},
		"/v1/actions/{identifier}": map[string]any{
			"parameters": []any{idParam},
			"post": map[string]any{"summary": "Run an action against a stored asset or an inline configuration", "operationId": "runAction",
				"requestBody": jsonBody(ref("ActionRequest")),
				"responses": merge(map[string]any{"200": jsonResponse("The action ran (whatever its outcome: see status). One result, or one per parameter set for an app-run document.",
					map[string]any{"oneOf": []any{ref("ActionResult"), ref("ActionResults")}})},
					errorResponses("400", "401", "404", "413"))},
		},
	}

	schemas := map[string]any{
		"AssetConfig": assets.JSONSchema(),
		"IngestStatus": map[string]any{"type": "object", "properties": map[string]any{
			"asset":     map[string]any{"type": "string"},
			"topic":     map[string]any{"type": "string"},
			"group_id":  map[string]any{"type": "string", "description": "Consumer group the polls commit their positions to, after storing them."},
			"scheduled": map[string]any{"type": "boolean", "description": "The server polls the asset at ingest.interval."},
			"interval":  map[string]any{"type": "string"},
			"partitions": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
				"partition":      map[string]any{"type": "integer"},
				"stored_offset":  map[string]any{"type": []string{"integer", "null"}, "description": "Next offset the asset's polls read; null before the first poll stored one."},
				"log_end_offset": map[string]any{"type": []string{"integer", "null"}},
				"lag":            map[string]any{"type": []string{"integer", "null"}}}}},
			"lag":         map[string]any{"type": []string{"integer", "null"}},
			"kafka_error": map[string]any{"type": "string"},
			"last_poll": map[string]any{"type": []string{"object", "null"}, "properties": map[string]any{
				"kind":          map[string]any{"type": "string", "enum": []string{"scheduled", "action", "poll_now"}},
				"started_at":    map[string]any{"type": "string", "format": "date-time"},
				"duration_ms":   map[string]any{"type": "number"},
				"status":        map[string]any{"type": "string", "enum": []string{"success", "failed"}},
				"error":         map[string]any{"type": "string"},
				"messages_read": map[string]any{"type": "integer"}, "containers_created": map[string]any{"type": "integer"},
				"artifacts_created": map[string]any{"type": "integer"}, "duplicates_skipped": map[string]any{"type": "integer"},
				"dead_lettered": map[string]any{"type": "integer"}, "gaps": map[string]any{"type": "integer"}}},
			"last_success": map[string]any{"type": []string{"string", "null"}, "format": "date-time"},
			"gaps": map[string]any{"type": "array", "description": "The newest 100 gaps: messages retention deleted before they were ingested.",
				"items": map[string]any{"type": "object", "properties": map[string]any{
					"topic": map[string]any{"type": "string"}, "partition": map[string]any{"type": "integer"},
					"from": map[string]any{"type": "integer"}, "to": map[string]any{"type": "integer"}, "count": map[string]any{"type": "integer"},
					"detected_at": map[string]any{"type": "string", "format": "date-time"}}}},
			"gap_count":     map[string]any{"type": "integer"},
			"gap_messages":  map[string]any{"type": "integer"},
			"dead_lettered": map[string]any{"type": "integer"},
		}},
		"Container": map[string]any{"type": "object", "additionalProperties": true,
			"description": "The SOAR /rest/container body the parser returned, with these fields set over it.",
			"properties": map[string]any{
				"id":                     map[string]any{"type": "integer", "description": "Only grows: pull with since_id."},
				"source_data_identifier": map[string]any{"type": []string{"string", "null"}, "description": "null when the parser gave none."},
				"name":                   map[string]any{"type": "string"},
				"label":                  map[string]any{"type": "string"},
				"severity":               map[string]any{"type": "string"},
				"create_time":            map[string]any{"type": "string", "format": "date-time", "description": "When it was stored, as SOAR writes it: 2026-11-23T12:00:00.123456Z."},
				"update_time":            map[string]any{"type": "string", "format": "date-time", "description": "When a later poll last added artifacts to it."},
				"artifact_count":         map[string]any{"type": "integer"},
				"kafka_asset":            map[string]any{"type": "string", "description": "The asset whose poll stored it."}}},
		"ContainerWithArtifacts": map[string]any{"allOf": []any{ref("Container"), map[string]any{"type": "object", "properties": map[string]any{
			"artifacts": map[string]any{"type": "array", "items": ref("Artifact"), "maxItems": maxPageSize,
				"description": "The container's first artifacts in id order, at most maxItems; when artifact_count is higher, page the rest with GET /v1/artifacts?container_id=."}}}}},
		"Artifact": map[string]any{"type": "object", "additionalProperties": true,
			"description": "The SOAR /rest/artifact body the parser returned, with these fields set over it.",
			"properties": map[string]any{
				"id":                     map[string]any{"type": "integer"},
				"container":              map[string]any{"type": "integer", "description": "The container's id."},
				"source_data_identifier": map[string]any{"type": "string"},
				"create_time":            map[string]any{"type": "string", "format": "date-time"},
				"kafka_asset":            map[string]any{"type": "string"}}},
		"AssetInput": map[string]any{"type": "object", "required": []string{"name", "config"}, "properties": map[string]any{
			"name":        map[string]any{"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"},
			"description": map[string]any{"type": "string"},
			"config":      ref("AssetConfig")}},
		"Asset": map[string]any{"type": "object", "properties": map[string]any{
			"name":        map[string]any{"type": "string"},
			"description": map[string]any{"type": "string"},
			"config":      map[string]any{"type": "object", "description": "The configuration without its secret fields."},
			"secrets":     map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "boolean"}, "description": "For each secret field, whether it is set."},
			"version":     map[string]any{"type": "integer"},
			"created_at":  map[string]any{"type": "string", "format": "date-time"},
			"updated_at":  map[string]any{"type": "string", "format": "date-time"}}},
		"Error": map[string]any{"type": "object", "properties": map[string]any{"error": map[string]any{"type": "object", "properties": map[string]any{
			"code":    map[string]any{"type": "string", "enum": []string{"invalid", "not_found", "conflict", "unauthorized", "too_large", "unavailable", "internal", "method_not_allowed"}},
			"message": map[string]any{"type": "string"},
			"fields": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
				"field": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}}}}}}}},
		"ActionRequest": map[string]any{"type": "object", "description": "Either asset or config. parameters is one object, or a list of objects in the SOAR app-run document (action, identifier, config, parameters, asset_id).",
			"properties": map[string]any{
				"asset":  map[string]any{"type": "string"},
				"config": map[string]any{"type": "object", "description": "An inline asset configuration (AssetConfig); keys the registry does not know are ignored."},
				"parameters": map[string]any{"description": "The action's parameters (PostDataParameters for post_data; none for test_connectivity).",
					"oneOf": []any{map[string]any{"type": "object"}, map[string]any{"type": "array", "items": map[string]any{"type": "object"}}}},
				"action":     map[string]any{"type": "string"},
				"identifier": map[string]any{"type": "string"},
				"asset_id":   map[string]any{}}},
		"ParserInput": map[string]any{"type": "object", "required": []string{"name", "source"}, "properties": map[string]any{
			"name": map[string]any{"type": "string"}, "description": map[string]any{"type": "string"},
			"source": map[string]any{"type": "string", "description": "Go source defining func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error)"}}},
		"Parser": map[string]any{"type": "object", "properties": map[string]any{
			"name": map[string]any{"type": "string"}, "description": map[string]any{"type": "string"}, "bundled": map[string]any{"type": "boolean"},
			"version": map[string]any{"type": "integer"}, "source": map[string]any{"type": "string"},
			"created_at": map[string]any{"type": "string", "format": "date-time"}, "updated_at": map[string]any{"type": "string", "format": "date-time"}}},
		"ParserTest": map[string]any{"type": "object", "description": "source or parser; messages or asset (with sample).", "properties": map[string]any{
			"source": map[string]any{"type": "string"}, "parser": map[string]any{"type": "string"}, "topic": map[string]any{"type": "string"},
			"messages": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
				"value": map[string]any{"description": "text, or any JSON (sent compact)"}, "key": map[string]any{"type": "string"},
				"partition": map[string]any{"type": "integer"}, "offset": map[string]any{"type": "integer"},
				"headers": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}, "timestamp": map[string]any{}}}},
			"asset": map[string]any{"type": "string"},
			"sample": map[string]any{"type": "object", "properties": map[string]any{
				"from":  map[string]any{"type": "string", "enum": []string{"latest", "earliest"}, "default": "latest"},
				"count": map[string]any{"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}}}}},
		"ParserTestResult": map[string]any{"type": "object", "properties": map[string]any{
			"parser": map[string]any{"type": "string"}, "messages": map[string]any{"type": "integer"}, "duration_ms": map[string]any{"type": "number"},
			"run":   map[string]any{"type": "object", "properties": map[string]any{"results": map[string]any{"type": "array"}, "log": map[string]any{"type": "string"}, "native": map[string]any{"type": "boolean"}}},
			"error": map[string]any{"type": "object", "properties": map[string]any{"kind": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}, "problems": map[string]any{"type": "array"}, "trace": map[string]any{"type": "string"}, "log": map[string]any{"type": "string"}}}}},
		"PostDataParameters": map[string]any{"type": "object", "required": []string{"data_type", "data", "topic"}, "properties": map[string]any{
			"data_type":   map[string]any{"type": "string", "description": "string or JSON, in any case"},
			"data":        map[string]any{"description": "The data: text, or JSON text; a JSON list sends one message per element (wrap a list in a list to send it as one message)."},
			"topic":       map[string]any{"type": "string"},
			"timeout":     map[string]any{"type": "number", "minimum": 0, "maximum": 3600, "default": 0, "description": "Seconds to wait for acknowledgement; 0 awaits every send but reports no per-message data."},
			"json_format": map[string]any{"type": "string", "enum": []string{"pretty", "compact"}, "default": "pretty"},
			"key":         map[string]any{"type": "string"},
			"headers":     map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			"partition":   map[string]any{"type": "integer", "minimum": 0},
			"timestamp":   map[string]any{"oneOf": []any{map[string]any{"type": "string", "format": "date-time"}, map[string]any{"type": "integer", "description": "epoch milliseconds"}}},
		}},
		"ActionResult": map[string]any{"type": "object", "properties": map[string]any{
			"identifier": map[string]any{"type": "string"},
			"status":     map[string]any{"type": "string", "enum": []string{"success", "failed"}},
			"message":    map[string]any{"type": "string"},
			"parameter":  map[string]any{"type": "object"},
			"data":       map[string]any{"type": "array", "items": map[string]any{"type": "object"}},
			"summary":    map[string]any{"type": "object"},
			"result_summary": map[string]any{"type": "object", "properties": map[string]any{
				"total_objects": map[string]any{"type": "integer"}, "total_objects_successful": map[string]any{"type": "integer"}}}}},
		"ActionResults": map[string]any{"type": "object", "properties": map[string]any{
			"identifier": map[string]any{"type": "string"},
			"status":     map[string]any{"type": "string", "enum": []string{"success", "failed"}},
			"message":    map[string]any{"type": "string"},
			"results":    map[string]any{"type": "array", "items": ref("ActionResult")}}},
	}

	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "soarkafka", "version": version,
			"description": "Connects SOAR platforms to Apache Kafka: assets, and the SOAR app actions test connectivity, on poll and post data."},
		"security": security,
		"paths":    paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"phAuthToken": map[string]any{"type": "apiKey", "in": "header", "name": "ph-auth-token"},
				"bearer":      map[string]any{"type": "http", "scheme": "bearer"},
			},
		},
	}
}
