package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

// Paging of the read API, as the SOAR REST API pages: page counts from 0,
// page_size 10 unless given, page_size 0 asks for everything on one page.
//
// One answer holds at most maxPageSize items, whatever the client asks:
// a SOAR pulling a backlog of a million containers with page_size=0 would
// otherwise make the server build, and the client parse, one answer of
// gigabytes. A page_size above it is refused rather than quietly lowered,
// since a client that pages by "fewer items than page_size means the end"
// would stop early on a lowered one; page_size=0 is served while at most
// maxPageSize items match, and refused with the count otherwise. Either
// refusal says how to page instead. Pulling incrementally with since_id,
// as SOAR's on poll does, keeps every answer small.
const (
	defaultPageSize = 10
	maxPageSize     = 1000
)

// soarTimeLayout is how the SOAR REST API writes create_time and
// update_time: UTC, to the microsecond.
const soarTimeLayout = "2006-01-02T15:04:05.000000Z"

// listContainers answers GET /v1/containers.
func (h *Handler) listContainers(w http.ResponseWriter, r *http.Request) {
	repo, ok := h.queryRepository(w, r)
	if !ok {
		return
	}
	q := queryParams{values: r.URL.Query()}
	f := ingest.ContainerFilter{
		Asset:    q.values.Get("asset"),
		Label:    q.values.Get("label"),
		Severity: q.values.Get("severity"),
		SinceID:  q.id("since_id", 0),
	}
	f.CreatedFrom = q.time("start_time")
	f.CreatedTo = q.time("end_time")
	if !f.CreatedFrom.IsZero() && !f.CreatedTo.IsZero() && !f.CreatedFrom.Before(f.CreatedTo) {
		q.bad("end_time", "%s is not after start_time %s: give an end_time later than start_time (start inclusive, end exclusive)",
			f.CreatedTo.Format(time.RFC3339Nano), f.CreatedFrom.Format(time.RFC3339Nano))
	}
	p := q.paging()
	if err := q.err(); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	f.Page, f.PageSize = p.store()
	list, total, err := repo.ListContainers(r.Context(), f)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if err := p.check(total, "containers"); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	data := make([]map[string]json.RawMessage, len(list))
	for i := range list {
		if data[i], err = containerJSON(&list[i]); err != nil {
			writeError(w, r, h.opts.Logger, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, p.answer(total, data))
}

// getContainer answers GET /v1/containers/{id}: the container with its
// artifacts, the first maxPageSize of them in id order.
func (h *Handler) getContainer(w http.ResponseWriter, r *http.Request) {
	repo, ok := h.queryRepository(w, r)
	if !ok {
		return
	}
	raw := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EINVALID,
			"container id %q: want a container's id, a whole number from 1 (the id field of GET /v1/containers)", raw))
		return
	}
	c, err := repo.Container(r.Context(), id)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	arts, total, err := repo.ListArtifacts(r.Context(), ingest.ArtifactFilter{ContainerID: id, PageSize: maxPageSize})
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	// The artifacts were read after the container: their count is the
	// fresher one, and agrees with the list.
	c.ArtifactCount = total
	out, err := containerJSON(c)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	list := make([]map[string]json.RawMessage, len(arts))
	for i := range arts {
		if list[i], err = artifactJSON(&arts[i]); err != nil {
			writeError(w, r, h.opts.Logger, err)
			return
		}
	}
	if out["artifacts"], err = json.Marshal(list); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// listArtifacts answers GET /v1/artifacts.
func (h *Handler) listArtifacts(w http.ResponseWriter, r *http.Request) {
	repo, ok := h.queryRepository(w, r)
	if !ok {
		return
	}
	q := queryParams{values: r.URL.Query()}
	f := ingest.ArtifactFilter{
		ContainerID: q.id("container_id", 1),
		Asset:       q.values.Get("asset"),
		SinceID:     q.id("since_id", 0),
	}
	p := q.paging()
	if err := q.err(); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	f.Page, f.PageSize = p.store()
	list, total, err := repo.ListArtifacts(r.Context(), f)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if err := p.check(total, "artifacts"); err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	data := make([]map[string]json.RawMessage, len(list))
	for i := range list {
		if data[i], err = artifactJSON(&list[i]); err != nil {
			writeError(w, r, h.opts.Logger, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, p.answer(total, data))
}

// queryRepository returns the stored containers, or answers 503 for a
// server built without them.
func (h *Handler) queryRepository(w http.ResponseWriter, r *http.Request) (ingest.QueryRepository, bool) {
	if h.opts.Ingest == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.EUNAVAILABLE,
			"stored containers are not available: this server was started without an ingest store"))
		return nil, false
	}
	return h.opts.Ingest, true
}

// containerJSON is the SOAR container body with our fields set over it.
func containerJSON(c *ingest.StoredContainer) (map[string]json.RawMessage, error) {
	var sdi any
	if c.SourceDataIdentifier != "" {
		sdi = c.SourceDataIdentifier
	}
	return overlay(c.Body, fmt.Sprintf("container %d", c.ID), map[string]any{
		"id":                     c.ID,
		"source_data_identifier": sdi,
		"name":                   c.Name,
		"label":                  c.Label,
		"severity":               c.Severity,
		"create_time":            c.CreatedAt.UTC().Format(soarTimeLayout),
		"update_time":            c.UpdatedAt.UTC().Format(soarTimeLayout),
		"artifact_count":         c.ArtifactCount,
		"kafka_asset":            c.Asset,
	})
}

// artifactJSON is the SOAR artifact body with our fields set over it;
// container is the container's id, as SOAR names it.
func artifactJSON(a *ingest.StoredArtifact) (map[string]json.RawMessage, error) {
	return overlay(a.Body, fmt.Sprintf("artifact %d", a.ID), map[string]any{
		"id":                     a.ID,
		"container":              a.ContainerID,
		"source_data_identifier": a.SourceDataIdentifier,
		"create_time":            a.CreatedAt.UTC().Format(soarTimeLayout),
		"kafka_asset":            a.Asset,
	})
}

// overlay decodes the JSON object body and sets fields over its members.
// The body's other members pass through as they were stored.
func overlay(body json.RawMessage, what string, fields map[string]any) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if err := json.Unmarshal(body, &out); err != nil || out == nil {
		// The store accepts only objects: this is a fault of ours.
		return nil, fmt.Errorf("%s: stored body is not a JSON object: %v", what, err)
	}
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: encode %s: %w", what, k, err)
		}
		out[k] = b
	}
	return out, nil
}

// queryParams reads query parameters, collecting every bad one so that a
// request is refused once, naming them all.
type queryParams struct {
	values   url.Values
	problems []soarkafka.FieldError
}

func (q *queryParams) bad(param, format string, args ...any) {
	q.problems = append(q.problems, soarkafka.FieldError{Field: param, Message: fmt.Sprintf(format, args...)})
}

func (q *queryParams) err() error {
	if len(q.problems) == 0 {
		return nil
	}
	return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "bad query parameters", Fields: q.problems}
}

// id reads an id parameter: 0 when absent, else a whole number from lowest.
func (q *queryParams) id(param string, lowest int64) int64 {
	s := q.values.Get(param)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lowest {
		q.bad(param, "%q: want a whole number from %d", s, lowest)
		return 0
	}
	return n
}

// integer reads an int parameter in [lo, hi], def when absent.
func (q *queryParams) integer(param string, def, lo, hi int, hint string) int {
	s := q.values.Get(param)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		q.bad(param, "%q: want a whole number from %d to %d%s", s, lo, hi, hint)
		return def
	}
	return n
}

// time reads an RFC 3339 time parameter: the zero time when absent.
func (q *queryParams) time(param string) time.Time {
	s := q.values.Get(param)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.bad(param, "%q: want an RFC 3339 time such as 2026-11-23T12:00:00Z or 2026-11-23T13:00:00.5+01:00", s)
		return time.Time{}
	}
	return t
}

// paging is a list request's page and page_size.
type paging struct{ page, size int }

// maxPage keeps page * page_size far from overflowing: a page past the
// last answers an empty list anyway.
const maxPage = 1<<31 - 1

func (q *queryParams) paging() paging {
	return paging{
		page: q.integer("page", 0, 0, maxPage, " (pages count from 0)"),
		size: q.integer("page_size", defaultPageSize, 0, maxPageSize,
			fmt.Sprintf("; 0 asks for all, while at most %d match; page through more with page, or pull only new ones with since_id", maxPageSize)),
	}
}

// store is the page and page size to ask the store for: page_size 0
// reads up to maxPageSize, which is every match when the check passes.
func (p paging) store() (page, size int) {
	if p.size == 0 {
		return p.page, maxPageSize
	}
	return p.page, p.size
}

// check refuses page_size=0 when more than maxPageSize items match.
func (p paging) check(total int, what string) error {
	if p.size == 0 && total > maxPageSize {
		return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "bad query parameters", Fields: []soarkafka.FieldError{{
			Field: "page_size",
			Message: fmt.Sprintf("0 asks for all %d matching %s at once, more than the %d one answer holds; "+
				"give page_size from 1 to %d and page through them with page, or pull only new ones with since_id",
				total, what, maxPageSize, maxPageSize)}}}
	}
	return nil
}

// answer is a list body as the SOAR REST API writes one.
func (p paging) answer(total int, data any) map[string]any {
	pages := 0
	switch {
	case total == 0:
	case p.size == 0:
		pages = 1
	default:
		pages = (total + p.size - 1) / p.size
	}
	return map[string]any{"count": total, "num_pages": pages, "data": data}
}

// queryParam documents an optional query parameter, for the OpenAPI
// document.
func queryParam(name, typ, desc string) map[string]any {
	schema := map[string]any{"type": typ}
	if typ == "integer" {
		schema["minimum"] = 1
		if name == "since_id" {
			schema["minimum"] = 0
		}
	}
	return map[string]any{"name": name, "in": "query", "schema": schema, "description": desc}
}

// pageParams documents page and page_size, for the OpenAPI document.
func pageParams() []any {
	return []any{
		map[string]any{"name": "page", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 0, "maximum": maxPage, "default": 0},
			"description": "The page to answer, counting from 0; a page past the last answers an empty data list."},
		map[string]any{"name": "page_size", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 0, "maximum": maxPageSize, "default": defaultPageSize},
			"description": fmt.Sprintf("Items per page, at most %d. 0 asks for all on one page, as SOAR, and is refused (400) when more than %d match: "+
				"page through them, or pull only new ones with since_id.", maxPageSize, maxPageSize)},
	}
}
