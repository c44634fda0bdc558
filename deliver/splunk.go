package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka/ingest"
)

// splunkSOAR delivers to Splunk SOAR's REST API: POST /rest/container
// with the first artifacts inline, POST /rest/artifact for the rest and
// for the rows that add artifacts to a delivered container.
type splunkSOAR struct {
	c *client
	w *Worker
}

// The fields SOAR's container and artifact accept, as the Splunk SOAR
// app (integrations/splunk_soar) sends them: soarkafka's own fields (id,
// kafka_asset, create_time...) are not sent.
var (
	containerFields = fieldSet("name", "label", "description", "severity", "sensitivity", "status", "tags", "owner_id",
		"custom_fields", "data", "due_time", "start_time", "end_time", "close_time", "open_time",
		"kill_chain", "role_id", "run_automation", "tenant_id", "container_type", "template_id",
		"authorized_users", "external_id")
	artifactFields = fieldSet("name", "label", "description", "type", "severity", "source_data_identifier", "data",
		"run_automation", "owner_id", "cef", "cef_types", "tags", "start_time", "end_time", "kill_chain")
)

func fieldSet(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// ContainerSDI is the SOAR source_data_identifier of a stored container:
// the one the Splunk SOAR app gives it too, so that the SOAR finds a
// container pulled before as the one pushed now (and the reverse), and a
// retried POST finds the container the lost one made.
func ContainerSDI(containerID int64) string {
	return "soarkafka:container:" + strconv.FormatInt(containerID, 10)
}

func (s *splunkSOAR) send(ctx context.Context, r ingest.OutboxRow, c *ingest.StoredContainer, arts []ingest.StoredArtifact, check bool) (int64, error) {
	st := s.w.store
	soarID, known, err := st.SOARContainerID(ctx, c.ID)
	if err != nil {
		return 0, err
	}
	if !known && check {
		if soarID, known, err = s.findContainer(ctx, c.ID); err != nil {
			return 0, err
		}
		if known {
			if err := st.SetSOARContainerID(ctx, c.ID, c.Asset, soarID); err != nil {
				return 0, err
			}
		}
	}
	todo := arts
	if known && check && len(todo) > 0 {
		if todo, err = s.missing(ctx, soarID, todo); err != nil {
			return 0, err
		}
	}
	per := int(s.w.cfg.Delivery.ArtifactsPerRequest)
	if !known {
		first := todo[:min(per, len(todo))]
		id, dup, err := s.postContainer(ctx, c, first)
		if err != nil {
			return 0, err
		}
		soarID = id
		if dup {
			// The SOAR had the container (the pull app made it, or an
			// earlier attempt whose answer was lost); what it did with
			// the inline artifacts is not established: look.
			if todo, err = s.missing(ctx, soarID, todo); err != nil {
				return 0, err
			}
		} else {
			todo = todo[len(first):]
		}
	}
	for len(todo) > 0 {
		if !known || len(todo) < len(arts) {
			s.w.fault(FaultMidArtifacts) // a request of this row went through
		}
		chunk := todo[:min(per, len(todo))]
		if err := s.postArtifacts(ctx, soarID, chunk); err != nil {
			if !known {
				// Where the container is, for the retry, which then
				// looks for the artifacts that went through. Kept only
				// on this path: MarkDelivered keeps it otherwise, and a
				// crash before either is an attempt whose retry finds
				// the container by its source_data_identifier. A write
				// per container on the happy path waited behind the
				// poll's batches on SQLite (docs/performance.md).
				if serr := st.SetSOARContainerID(ctx, c.ID, c.Asset, soarID); serr != nil {
					s.w.logger.Warn("delivery: keep the SOAR container id", "container", c.ID, "error", serr)
				}
			}
			return 0, err
		}
		todo = todo[len(chunk):]
	}
	return soarID, nil
}

// containerBody is the SOAR container of c, with arts inline, encoded.
func (s *splunkSOAR) containerBody(c *ingest.StoredContainer, arts []ingest.StoredArtifact) (json.RawMessage, error) {
	body, err := pick(c.Body, containerFields)
	if err != nil {
		return nil, fmt.Errorf("container %d: %w", c.ID, err)
	}
	body["source_data_identifier"] = ContainerSDI(c.ID)
	body["asset_id"] = s.w.cfg.Delivery.AssetID
	var head struct {
		Name  string `json:"name"`
		Label string `json:"label"`
	}
	_ = json.Unmarshal(c.Body, &head) // pick read it: it is an object
	if head.Label == "" {
		// delivery.label, or ingest.container_label: SOAR refuses a
		// container without one.
		body["label"] = s.w.cfg.DeliveryLabel()
	}
	if head.Name == "" && c.Name != "" {
		body["name"] = c.Name
	}
	out, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("container %d: %w", c.ID, err)
	}
	// The artifacts go in as encoded here, not through maps: decoding
	// and encoding each artifact's body again was most of the worker's
	// CPU for a large container (docs/performance.md).
	out = append(out[:len(out)-1], `,"artifacts":`...) // body is never empty: it has source_data_identifier
	if out, err = appendArtifacts(out, arts, 0); err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// appendArtifacts appends arts as a JSON list of SOAR artifacts, each
// with container_id when containerID is not 0.
func appendArtifacts(dst []byte, arts []ingest.StoredArtifact, containerID int64) ([]byte, error) {
	dst = append(dst, '[')
	for i, a := range arts {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendArtifact(dst, a, containerID); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

// appendArtifact appends the SOAR artifact of a: the members of its stored
// body SOAR accepts, as stored, then its source_data_identifier (and
// container_id when not 0).
func appendArtifact(dst []byte, a ingest.StoredArtifact, containerID int64) ([]byte, error) {
	dst = append(dst, '{')
	dec := jsontext.NewDecoder(bytes.NewReader(a.Body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	fail := func(err error) ([]byte, error) { return nil, fmt.Errorf("artifact %d: stored body: %w", a.ID, err) }
	if tok, err := dec.ReadToken(); err != nil {
		return fail(err)
	} else if tok.Kind() != '{' {
		return fail(fmt.Errorf("not a JSON object"))
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return fail(err)
		}
		k := name.String() // void after the decoder's next read
		v, err := dec.ReadValue()
		if err != nil {
			return fail(err)
		}
		if !artifactFields[k] || k == "source_data_identifier" || v.Kind() == 'n' {
			continue
		}
		if dst, err = jsontext.AppendQuote(dst, k); err != nil {
			return fail(err)
		}
		dst = append(dst, ':')
		dst = append(dst, v...)
		dst = append(dst, ',')
	}
	var err error
	dst = append(dst, `"source_data_identifier":`...)
	if dst, err = jsontext.AppendQuote(dst, a.SourceDataIdentifier); err != nil {
		return fail(err)
	}
	if containerID != 0 {
		dst = append(dst, `,"container_id":`...)
		dst = strconv.AppendInt(dst, containerID, 10)
	}
	return append(dst, '}'), nil
}

// pick decodes a stored JSON object and keeps the fields SOAR accepts.
func pick(raw json.RawMessage, keep map[string]bool) (map[string]any, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(all))
	for k, v := range all {
		if keep[k] && string(v) != "null" {
			out[k] = v
		}
	}
	return out, nil
}

// soarResult is SOAR's answer for one record.
type soarResult struct {
	Success             bool            `json:"success"`
	Failed              bool            `json:"failed"`
	ID                  int64           `json:"id"`
	ExistingContainerID int64           `json:"existing_container_id"`
	ExistingArtifactID  int64           `json:"existing_artifact_id"`
	Message             string          `json:"message"`
	Artifacts           json.RawMessage `json:"artifacts"`
}

// postContainer creates the container with arts inline; dup says SOAR
// had it already (existing_container_id, which the live SOAR answers with
// HTTP 400), so the inline artifacts' fate is unknown.
func (s *splunkSOAR) postContainer(ctx context.Context, c *ingest.StoredContainer, arts []ingest.StoredArtifact) (id int64, dup bool, err error) {
	body, err := s.containerBody(c, arts)
	if err != nil {
		return 0, false, &failure{kind: "dead", msg: err.Error()}
	}
	u := s.c.base + "/rest/container"
	a, err := s.c.do(ctx, http.MethodPost, u, body)
	if err != nil {
		return 0, false, err
	}
	var res soarResult
	jsonErr := json.Unmarshal(a.body, &res)
	switch {
	case jsonErr == nil && res.ExistingContainerID > 0:
		return res.ExistingContainerID, true, nil
	case a.status != http.StatusOK && a.status != http.StatusCreated:
		return 0, false, s.c.refusal(http.MethodPost, u, a)
	case jsonErr != nil || res.ID == 0:
		return 0, false, &failure{kind: "retry", msg: fmt.Sprintf("POST /rest/container: the SOAR's answer has no container id: %s", answerText(a.body))}
	}
	if len(res.Artifacts) > 0 {
		var results []soarResult
		if err := json.Unmarshal(res.Artifacts, &results); err == nil {
			if f := artifactFailures(results, a, "POST /rest/container"); f != nil {
				return res.ID, false, f
			}
		}
	}
	return res.ID, false, nil
}

// postArtifacts adds arts to the SOAR container soarID, in one request.
// An artifact SOAR has already (existing_artifact_id) is a success.
func (s *splunkSOAR) postArtifacts(ctx context.Context, soarID int64, arts []ingest.StoredArtifact) error {
	list, err := appendArtifacts(nil, arts, soarID)
	if err != nil {
		return &failure{kind: "dead", msg: err.Error()}
	}
	u := s.c.base + "/rest/artifact"
	a, err := s.c.do(ctx, http.MethodPost, u, json.RawMessage(list))
	if err != nil {
		return err
	}
	var results []soarResult
	if a.status == http.StatusOK || a.status == http.StatusCreated || a.status == http.StatusBadRequest {
		// A bulk answer is a list, 400 when no record succeeded (all
		// duplicates is no record created).
		if json.Unmarshal(a.body, &results) == nil && len(results) == len(arts) {
			return artifactFailures(results, a, "POST /rest/artifact")
		}
	}
	if a.status == http.StatusOK || a.status == http.StatusCreated {
		return &failure{kind: "retry", msg: fmt.Sprintf("POST /rest/artifact: the SOAR's answer is not one result per artifact: %s", answerText(a.body))}
	}
	return s.c.refusal(http.MethodPost, u, a)
}

// artifactFailures is a dead-letter failure naming the artifacts SOAR
// refused, or nil when each was created or existed.
func artifactFailures(results []soarResult, a *answer, where string) error {
	var bad []string
	for i, r := range results {
		if r.Success || r.ExistingArtifactID > 0 {
			continue
		}
		bad = append(bad, fmt.Sprintf("artifact %d: %s", i, r.Message))
	}
	if len(bad) == 0 {
		return nil
	}
	return &failure{kind: "dead", answer: truncate(string(a.body), 64<<10),
		msg: fmt.Sprintf("%s: the SOAR refused %d artifacts: %s", where, len(bad), truncate(strings.Join(bad, "; "), 500))}
}

// listAnswer is a page of a SOAR list query.
type listAnswer struct {
	Count    int `json:"count"`
	NumPages int `json:"num_pages"`
	Data     []struct {
		ID                   int64  `json:"id"`
		SourceDataIdentifier string `json:"source_data_identifier"`
	} `json:"data"`
}

// list runs a list query, page by page, and calls fn for each record.
func (s *splunkSOAR) list(ctx context.Context, kind string, q url.Values, fn func(id int64, sdi string)) error {
	q.Set("page_size", "100")
	for page := 0; ; page++ {
		q.Set("page", strconv.Itoa(page))
		u := s.c.base + "/rest/" + kind + "?" + q.Encode()
		a, err := s.c.do(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if a.status != http.StatusOK {
			return s.c.refusal(http.MethodGet, u, a)
		}
		var l listAnswer
		if err := json.Unmarshal(a.body, &l); err != nil {
			return &failure{kind: "retry", msg: fmt.Sprintf("GET /rest/%s: the SOAR's answer is not a list: %v", kind, err)}
		}
		for _, d := range l.Data {
			fn(d.ID, d.SourceDataIdentifier)
		}
		if page+1 >= l.NumPages || len(l.Data) == 0 {
			return nil
		}
	}
}

// findContainer looks for the container's SOAR copy by its
// source_data_identifier in the asset.
func (s *splunkSOAR) findContainer(ctx context.Context, containerID int64) (int64, bool, error) {
	q := url.Values{}
	q.Set("_filter_source_data_identifier", pyString(ContainerSDI(containerID)))
	q.Set("_filter_asset_id", strconv.FormatInt(s.w.cfg.Delivery.AssetID, 10))
	var found int64
	err := s.list(ctx, "container", q, func(id int64, _ string) {
		if found == 0 || id < found {
			found = id
		}
	})
	return found, found != 0, err
}

// missingLookup is how many identifiers one artifact query names: the
// query travels in the URL.
const missingLookup = 50

// missing returns the artifacts of arts the SOAR container soarID does
// not hold (by source_data_identifier), in order.
func (s *splunkSOAR) missing(ctx context.Context, soarID int64, arts []ingest.StoredArtifact) ([]ingest.StoredArtifact, error) {
	have := map[string]bool{}
	for i := 0; i < len(arts); i += missingLookup {
		chunk := arts[i:min(i+missingLookup, len(arts))]
		sdis := make([]string, len(chunk))
		for j, a := range chunk {
			sdis[j] = pyString(a.SourceDataIdentifier)
		}
		q := url.Values{}
		q.Set("_filter_container_id", strconv.FormatInt(soarID, 10))
		q.Set("_filter_source_data_identifier__in", "["+strings.Join(sdis, ", ")+"]")
		if err := s.list(ctx, "artifact", q, func(_ int64, sdi string) { have[sdi] = true }); err != nil {
			return nil, err
		}
	}
	var out []ingest.StoredArtifact
	for _, a := range arts {
		if !have[a.SourceDataIdentifier] {
			out = append(out, a)
		}
	}
	return out, nil
}

// pyString quotes s as the Python string literal SOAR's filters take.
func pyString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
