package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

// Containers reads what polls stored: the store's queries, the ones the
// REST API's /v1/containers answers with.
type Containers interface {
	ListContainers(ctx context.Context, f ingest.ContainerFilter) ([]ingest.StoredContainer, int, error)
	Container(ctx context.Context, id int64) (*ingest.StoredContainer, error)
	ListArtifacts(ctx context.Context, f ingest.ArtifactFilter) ([]ingest.StoredArtifact, int, error)
}

// containersPageSize is how many containers one page of the list shows.
const containersPageSize = 25

// maxArtifactsShown bounds the artifacts a container's page lists: a
// container a long-running poll keeps adding to may hold many thousands.
const maxArtifactsShown = 500

// severities are the SOAR's own; the filter offers them and refuses
// others, which no container can have been stored with by a parser
// following SOAR's defaults.
var severities = []string{"low", "medium", "high"}

// timeInputLayouts are what the from and to inputs accept, tried in order;
// those without a zone are UTC.
var timeInputLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// timeInputHint is how the form asks for a time.
const timeInputHint = "UTC, as 2026-12-05T14:30 or 2026-12-05, or RFC 3339 with a zone"

type containersData struct {
	pageData
	Assets     []string
	Severities []string
	// The filter as given, shown back in the form.
	Asset, Label, Severity, From, To string
	// Errors are the filter's bad fields by input name, shown beside
	// them.
	Errors   map[string]string
	Error    string
	TimeHint string
	Rows     []ingest.StoredContainer
	Total    int
	// Page counts from 1 here, as people count.
	Page, Pages      int
	PrevURL, NextURL string
	Filtered         bool
}

func (c *Console) containersPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := &containersData{
		pageData:   pageData{Title: "Containers", Nav: "Containers"},
		Severities: severities,
		Asset:      strings.TrimSpace(q.Get("asset")),
		Label:      strings.TrimSpace(q.Get("label")),
		Severity:   strings.TrimSpace(q.Get("severity")),
		From:       strings.TrimSpace(q.Get("from")),
		To:         strings.TrimSpace(q.Get("to")),
		Errors:     map[string]string{},
		TimeHint:   timeInputHint,
		Page:       1,
	}
	d.Filtered = d.Asset != "" || d.Label != "" || d.Severity != "" || d.From != "" || d.To != ""
	if list, err := c.opts.Assets.List(r.Context()); err == nil {
		for _, v := range list {
			d.Assets = append(d.Assets, v.Name)
		}
	}
	// An asset deleted since (its containers stay) or typed into the
	// address: the select shows it, so the filter on screen is the one
	// applied.
	if d.Asset != "" && !slices.Contains(d.Assets, d.Asset) {
		d.Assets = append(d.Assets, d.Asset)
	}
	f := ingest.ContainerFilter{Asset: d.Asset, Label: d.Label, NewestFirst: true, PageSize: containersPageSize}
	if d.Severity != "" {
		if slices.Contains(severities, d.Severity) {
			f.Severity = d.Severity
		} else {
			d.Errors["severity"] = fmt.Sprintf("%q is not a severity: choose low, medium or high, or any", d.Severity)
		}
	}
	var err error
	if f.CreatedFrom, err = parseTimeInput(d.From); err != nil {
		d.Errors["from"] = err.Error()
	}
	if f.CreatedTo, err = parseTimeInput(d.To); err != nil {
		d.Errors["to"] = err.Error()
	}
	if !f.CreatedFrom.IsZero() && !f.CreatedTo.IsZero() && !f.CreatedFrom.Before(f.CreatedTo) {
		d.Errors["to"] = "is not after from: give a to later than from (from is inclusive, to exclusive)"
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			d.Errors["page"] = fmt.Sprintf("page %q: want a page number from 1", p)
		} else {
			d.Page = n
		}
	}
	if len(d.Errors) > 0 {
		// 200, not 422: htmx swaps only a 2xx answer in, and the
		// messages belong beside the inputs.
		c.render(w, r, http.StatusOK, "containers", s, d)
		return
	}
	if c.opts.Containers == nil {
		d.Error = "Containers are not available on this server."
		c.render(w, r, http.StatusOK, "containers", s, d)
		return
	}
	f.Page = d.Page - 1
	d.Rows, d.Total, err = c.opts.Containers.ListContainers(r.Context(), f)
	if err != nil {
		c.opts.Logger.Error("console: list containers", "err", err)
		d.Error = "The containers could not be read: " + soarkafka.ErrorMessage(err)
	}
	d.Pages = (d.Total + containersPageSize - 1) / containersPageSize
	if d.Page > 1 {
		d.PrevURL = pageURL(q, d.Page-1)
	}
	if d.Page < d.Pages {
		d.NextURL = pageURL(q, d.Page+1)
	}
	c.render(w, r, http.StatusOK, "containers", s, d)
}

// parseTimeInput reads a from or to input; "" is an open end.
func parseTimeInput(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range timeInputLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write it %s", s, timeInputHint)
}

// pageURL is the list's URL for page n with the same filter.
func pageURL(q url.Values, n int) string {
	v := url.Values{}
	for _, k := range []string{"asset", "label", "severity", "from", "to"} {
		if x := q.Get(k); x != "" {
			v.Set(k, x)
		}
	}
	v.Set("page", strconv.Itoa(n))
	return "/containers?" + v.Encode()
}

// field is one name and value of a SOAR body, the value as text: a string
// as it is, anything else as its JSON.
type field struct{ Name, Value string }

type artifactView struct {
	ingest.StoredArtifact
	Name, Label, Type, Severity string
	CEF                         []field
	JSON                        string
}

type containerData struct {
	pageData
	Container *ingest.StoredContainer
	// Fields are the body's members but for those shown above them.
	Fields    []field
	JSON      string
	Artifacts []artifactView
	// Total is how many artifacts the container holds; Artifacts may
	// be the first maxArtifactsShown of them.
	Total int
	Error string
}

func (c *Console) containerPage(w http.ResponseWriter, r *http.Request, s *session) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 {
		c.render(w, r, http.StatusNotFound, "notfound", s, pageData{Title: fmt.Sprintf("Container %q: want a container's id, a whole number from 1", raw)})
		return
	}
	if c.opts.Containers == nil {
		c.render(w, r, http.StatusNotFound, "notfound", s, pageData{Title: "Containers are not available on this server"})
		return
	}
	ct, err := c.opts.Containers.Container(r.Context(), id)
	if err != nil {
		status := http.StatusInternalServerError
		if soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND {
			status = http.StatusNotFound
		} else {
			c.opts.Logger.Error("console: read container", "id", id, "err", err)
		}
		c.render(w, r, status, "notfound", s, pageData{Title: fmt.Sprintf("Container %d: %s", id, soarkafka.ErrorMessage(err))})
		return
	}
	d := &containerData{pageData: pageData{Title: "Container " + strconv.FormatInt(id, 10), Nav: "Containers"}, Container: ct}
	var body map[string]json.RawMessage
	_ = json.Unmarshal(ct.Body, &body)
	d.Fields = fields(body, "name", "label", "severity", "source_data_identifier")
	d.JSON = indentJSON(ct.Body)
	arts, total, err := c.opts.Containers.ListArtifacts(r.Context(), ingest.ArtifactFilter{ContainerID: id, PageSize: maxArtifactsShown})
	if err != nil {
		c.opts.Logger.Error("console: list artifacts", "container", id, "err", err)
		d.Error = "The artifacts could not be read: " + soarkafka.ErrorMessage(err)
	}
	d.Total = total
	for _, a := range arts {
		v := artifactView{StoredArtifact: a, JSON: indentJSON(a.Body)}
		var ab map[string]json.RawMessage
		_ = json.Unmarshal(a.Body, &ab)
		v.Name, v.Label, v.Type, v.Severity = text(ab["name"]), text(ab["label"]), text(ab["type"]), text(ab["severity"])
		var cef map[string]json.RawMessage
		_ = json.Unmarshal(ab["cef"], &cef)
		v.CEF = fields(cef)
		d.Artifacts = append(d.Artifacts, v)
	}
	c.render(w, r, http.StatusOK, "container", s, d)
}

// fields are m's members by name, but skip, each value as text.
func fields(m map[string]json.RawMessage, skip ...string) []field {
	out := make([]field, 0, len(m))
next:
	for k, v := range m {
		for _, s := range skip {
			if k == s {
				continue next
			}
		}
		out = append(out, field{k, text(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// text is a JSON value shown as text: a string unquoted, anything else
// compact JSON, absent empty.
func text(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

func indentJSON(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, v, "", "  ") != nil {
		return string(v)
	}
	return b.String()
}
