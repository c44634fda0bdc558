package testenv

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SOAR is an in-memory stand-in for the REST API of a Splunk SOAR
// instance: the part push delivery uses (creating containers with their
// artifacts, adding artifacts to a container, and listing both to find
// out what a request whose answer was lost did), with SOAR's rules, and
// knobs that make it slow, failing, hanging or forgetful on purpose.
//
// Serves, under /rest/:
//   - POST container: one container (or a JSON array of them), with
//     optional inline "artifacts".
//   - POST artifact: one artifact (or a JSON array of them).
//   - GET container, artifact: paginated lists with filters;
//     GET container/<id>, artifact/<id>: one record;
//     GET container/<id>/artifacts: a container's artifacts, paginated.
//
// The rules it enforces, and where each comes from. "Docs" are the Splunk
// SOAR REST API reference pages named (docs.splunk.com, PlatformAPI and
// PlaybookAPI); "probe" is a public record of requests made against a live
// SOAR (On-premises) 8.5.0 to verify each write path (the SOAR REST notes
// of a third-party command-line tool, July 2026); "SDK" is
// Splunk's own app SDK, phantomcyber/splunk-soar-sdk
// (src/soar_sdk/apis/container.py and artifact.py), which shows which answer
// keys Splunk's code reads.
//   - Authentication (docs, "Using the REST API reference"): the automation
//     token in the ph-auth-token header, or as the password of HTTP Basic
//     auth with an empty user name. Anything else: 401 with
//     {"failed": true, "message": ...}.
//   - Errors (docs, "Delete Records"; probe): a non-200 status and
//     {"failed": true, "message": ...}. Missing fields are named in the
//     wording of the docs' bulk example: "Missing required parameter: <f>".
//   - POST /rest/container (docs, "REST Containers"; probe): name and label
//     are required; label must be one SOAR knows (labels are made in the UI
//     only, so an unknown one is refused: 400); asset_id is optional and an
//     integer; artifacts is a list of objects. The answer is 200
//     {"success": true, "id": N, "new_artifact_ids": [...]} (probe) with
//     "artifacts": one result per inline artifact, {"success": true,
//     "id": N}, {"failed": true, "existing_artifact_id": N, ...} or
//     {"failed": true, "message": ...} (the keys the SDK reads).
//   - Container de-duplication (probe; SDK): a container whose
//     source_data_identifier is already that of a container of the same
//     asset (asset_id; containers without one form one group) is not
//     created: 400 {"failed": true, "existing_container_id": N,
//     "message": ...}. Its inline artifacts are ignored unless
//     SetDuplicateContainerAddsArtifacts(true) (the SDK processes
//     "artifacts" on such an answer; the probe posted none, so which one
//     SOAR does is not established: the default is the one that loses data
//     for a client that assumes the other).
//   - POST /rest/artifact (docs, "REST Artifact"; probe): container_id is
//     required and must name an existing container; cef and data are
//     objects, run_automation a boolean. The answer is 200
//     {"success": true, "id": N}.
//   - Artifact de-duplication: the docs ("Understanding artifacts", Python
//     Playbook API) say the artifact's hash is used "to avoid saving
//     duplicate artifacts for the same container"; the probe found that
//     SOAR 8.5 stored a second artifact with the same source_data_identifier
//     in the same container. So it is a setting here, per asset
//     (SetArtifactDedup), off by default: when on, an artifact whose hash
//     equals that of an artifact already in the container is not stored and
//     the answer is 400 {"failed": true, "existing_artifact_id": N, ...}.
//   - Bulk (docs, "Bulk Create and Update Records"): an array body gets an
//     array of per-record answers, 200 when at least one record succeeded
//     (400 when none did); nothing is transactional.
//   - Queries (docs, "Query for Data"; probe): page (from 0), page_size
//     (0 for all; 10 when absent, the value of the docs' URL template, as
//     the default itself is not stated), answer {"count", "num_pages",
//     "data"} (num_pages at least 1: not in the sources);
//     _filter_<field>[__<lookup>]=<value> and _exclude_..., ANDed, where
//     the value is a Python literal ("abc" or 'abc' quoted, 5, True, None,
//     [1, 2]); lookups exact, iexact, contains, icontains, startswith,
//     istartswith, endswith, iendswith, in, gt, gte, lt, lte, isnull; a
//     JSON field is traversed by name (_filter_cef__sourceAddress="1.2.3.4");
//     sort=<field>&order=asc|desc, by id otherwise. A value that is not a
//     literal (an unquoted string) is refused with 400 so that a client's
//     quoting bug shows in tests; SOAR's own answer to one is not documented.
//   - Ids are increasing integers from 1, one sequence for containers and
//     one for artifacts, as SOAR assigns them.
//
// What it does not do: other record types, updates (POST
// /rest/container/<id>: 501), DELETE (405), playbooks and automation
// (run_automation is stored, nothing runs), custom fields an admin made
// required, the vocabularies of severity, sensitivity and status, related
// traversal (_filter_container__name), pretty and include_expensive, users,
// roles and tenants. Choices of the stand-in where the sources say
// nothing: successes answer 200 (Splunk's SDK tests mock 201); a duplicate
// artifact answers 400, as a duplicate container does; 5xx from FailNext
// have an HTML body, as the web server in front of SOAR sends. Messages
// are SOAR's only where cited above; SOAR's
// artifact hash algorithm is not documented (here: MD5 of the artifact's
// JSON without container_id and run_automation). Field names in filters
// are not checked against a schema: an unknown one matches as null.
//
// Knobs (all safe for concurrent use): SetLatency, FailNext,
// TimeoutNext, RefuseAuth, RejectLabel, DropAfterCommitNext,
// SetArtifactDedup, SetDuplicateContainerAddsArtifacts. Readers:
// Containers, Artifacts, Counts, Requests.
type SOAR struct {
	// URL is the base URL, http(s)://127.0.0.1:<port>; the API is under
	// URL + "/rest/". Read-only.
	URL string
	// Token is the automation token the stand-in accepts. Read-only.
	Token string

	closing chan struct{} // closed when the test ends, to free hung requests

	mu              sync.Mutex
	labels          map[string]bool
	rejected        map[string]bool
	containers      []*soarContainer // index id-1
	artifacts       []*soarArtifact  // index id-1
	bySDI           map[soarSDIKey]int
	dedup           map[int]bool // artifact de-duplication per asset id
	dupAddsArtifact bool
	latency         time.Duration
	failures        []soarFailure
	timeoutNext     int
	dropNext        int
	refuseAuth      bool
	requests        map[SOARRequestKey]int
}

// SOAROption changes what NewSOAR starts.
type SOAROption func(*soarOptions)

type soarOptions struct {
	token  string
	labels []string
	certs  *TLSCerts
}

// SOARToken sets the automation token, overriding a random one.
func SOARToken(token string) SOAROption {
	return func(o *soarOptions) { o.token = token }
}

// SOARLabels adds container labels SOAR knows, to the default "events"
// (the label SOAR ships with).
func SOARLabels(labels ...string) SOAROption {
	return func(o *soarOptions) { o.labels = append(o.labels, labels...) }
}

// SOARTLS serves HTTPS with the PKI's server certificate (127.0.0.1 and
// localhost); clients trust certs.CAPool. The default is plain HTTP.
func SOARTLS(certs *TLSCerts) SOAROption {
	return func(o *soarOptions) { o.certs = certs }
}

// SOARRequestKey is what Requests counts by.
type SOARRequestKey struct {
	Method string // "GET", "POST"
	Path   string // the URL path, "/rest/container"
	// Status is the status answered, or 0 when the request got no answer
	// (TimeoutNext, DropAfterCommitNext, or the client gave up first).
	Status int
}

// SOARContainer is a stored container, for assertions.
type SOARContainer struct {
	ID                   int
	AssetID              int // 0 without one
	Name                 string
	Label                string
	SourceDataIdentifier string
	// Fields is the container as GET /rest/container/<id> answers it
	// (numbers as json.Number); a copy.
	Fields map[string]any
}

// SOARArtifact is a stored artifact, for assertions.
type SOARArtifact struct {
	ID                   int
	ContainerID          int
	Name                 string
	Label                string
	SourceDataIdentifier string
	CEF                  map[string]any
	RunAutomation        bool // as posted; false when absent
	// Created is when the stand-in stored it, just before it answered
	// (create_time, to the nanosecond).
	Created time.Time
	// Fields is the artifact as GET /rest/artifact/<id> answers it; a copy.
	Fields map[string]any
}

type soarContainer struct {
	id     int
	asset  int
	sdi    string
	fields map[string]any
	arts   []int
}

type soarArtifact struct {
	id        int
	container int
	hash      string
	created   time.Time
	fields    map[string]any
}

type soarSDIKey struct {
	asset int
	sdi   string
}

type soarFailure struct {
	n          int
	status     int
	retryAfter string
}

// NewSOAR starts the stand-in; it stops when the test ends.
func NewSOAR(t testing.TB, opts ...SOAROption) *SOAR {
	t.Helper()
	s, stop, err := StartSOAR(opts...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(stop)
	return s
}

// StartSOAR starts the stand-in outside a test (the benchmark command
// uses it); stop lets hung requests go and closes the server. It is
// NewSOAR without a testing.TB.
func StartSOAR(opts ...SOAROption) (s *SOAR, stop func(), err error) {
	o := soarOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.token == "" {
		b := make([]byte, 20)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("SOAR token: %w", err)
		}
		o.token = hex.EncodeToString(b)
	}
	s = &SOAR{
		Token:    o.token,
		closing:  make(chan struct{}),
		labels:   map[string]bool{"events": true},
		rejected: map[string]bool{},
		bySDI:    map[soarSDIKey]int{},
		dedup:    map[int]bool{},
		requests: map[SOARRequestKey]int{},
	}
	for _, l := range o.labels {
		s.labels[l] = true
	}
	srv := httptest.NewUnstartedServer(s)
	// A test's client that does not trust the certificate on purpose
	// would otherwise print handshake errors.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if o.certs != nil {
		srv.TLS = o.certs.ServerTLS()
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s.URL = srv.URL
	var once sync.Once
	// Hung requests must be let go before Close, which waits for them.
	stop = func() {
		once.Do(func() {
			close(s.closing)
			srv.Close()
		})
	}
	return s, stop, nil
}

// SetLatency delays every request by d before anything else happens to it
// (0, the default, for none).
func (s *SOAR) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// FailNext answers the next n requests, whatever they are, with status
// (meant for 500, 502, 503, 504) and, when retryAfter is not empty, a
// Retry-After header with that value ("2", or an HTTP date). Nothing is
// applied. 5xx bodies are HTML, as the web server in front of SOAR sends
// them; others are {"failed": true, "message": ...}. Calls queue up: the
// second call's failures follow the first's.
func (s *SOAR) FailNext(n, status int, retryAfter string) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("testenv: SOAR.FailNext: status %d is not an error status (400-599)", status))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 {
		s.failures = append(s.failures, soarFailure{n: n, status: status, retryAfter: retryAfter})
	}
}

// TimeoutNext makes the next n requests hang: each is accepted and never
// answered (nothing is applied) until the client gives up, which closes
// the connection. It comes before FailNext: a hung request uses up no
// failure.
func (s *SOAR) TimeoutNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timeoutNext += n
}

// DropAfterCommitNext makes the next n POST requests that pass
// authentication be applied as usual, and then the connection closed
// without an answer: the client cannot tell whether its write happened.
// GET requests do not count (they commit nothing).
//
// net/http's client does not resend a POST on its own after a broken
// connection, unless the request carries an Idempotency-Key or
// X-Idempotency-Key header: then it may, on a reused connection, and the
// write is applied twice.
func (s *SOAR) DropAfterCommitNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropNext += n
}

// RefuseAuth, while on, answers every request with 401, as SOAR does once
// the token has been revoked or its automation user disabled.
func (s *SOAR) RefuseAuth(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseAuth = on
}

// RejectLabel makes SOAR refuse containers with this label (400 and a
// failed message), as for a label it does not know.
func (s *SOAR) RejectLabel(label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected[label] = true
}

// SetArtifactDedup turns artifact de-duplication on or off for the
// containers of one asset (asset_id; 0 for containers without one). Off
// by default; see the type's comment.
func (s *SOAR) SetArtifactDedup(assetID int, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dedup[assetID] = on
}

// SetDuplicateContainerAddsArtifacts chooses what happens to the inline
// artifacts of a container POST that is refused as a duplicate: added to
// the existing container (true) or ignored (false, the default). The
// answer carries existing_container_id either way, and per-artifact
// results only when they were added.
func (s *SOAR) SetDuplicateContainerAddsArtifacts(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dupAddsArtifact = on
}

// Containers lists the stored containers, by id.
func (s *SOAR) Containers() []SOARContainer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SOARContainer, 0, len(s.containers))
	for _, c := range s.containers {
		f := soarClone(s.containerView(c))
		name, _ := f["name"].(string)
		label, _ := f["label"].(string)
		out = append(out, SOARContainer{ID: c.id, AssetID: c.asset, Name: name, Label: label, SourceDataIdentifier: c.sdi, Fields: f})
	}
	return out
}

// Artifacts lists the artifacts stored in one container, by id (none for
// a container that does not exist).
func (s *SOAR) Artifacts(containerID int) []SOARArtifact {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.container(containerID)
	if c == nil {
		return nil
	}
	out := make([]SOARArtifact, 0, len(c.arts))
	for _, id := range c.arts {
		a := s.artifacts[id-1]
		f := soarClone(a.fields)
		name, _ := f["name"].(string)
		label, _ := f["label"].(string)
		sdi, _ := f["source_data_identifier"].(string)
		cef, _ := f["cef"].(map[string]any)
		ra, _ := f["run_automation"].(bool)
		out = append(out, SOARArtifact{ID: a.id, ContainerID: a.container, Name: name, Label: label, SourceDataIdentifier: sdi, CEF: cef, RunAutomation: ra, Created: a.created, Fields: f})
	}
	return out
}

// Counts returns how many containers and artifacts are stored, without
// copying them (a benchmark polls it while it waits).
func (s *SOAR) Counts() (containers, artifacts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.containers), len(s.artifacts)
}

// Requests counts the requests received so far by method, path and the
// status answered.
func (s *SOAR) Requests() map[SOARRequestKey]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[SOARRequestKey]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// soarStatusWriter remembers the status written, for Requests.
type soarStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *soarStatusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *soarStatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// soarFailed is SOAR's error body.
type soarFailed struct {
	Failed              bool   `json:"failed"`
	Message             string `json:"message"`
	ExistingContainerID int    `json:"existing_container_id,omitempty"`
	ExistingArtifactID  int    `json:"existing_artifact_id,omitempty"`
}

// soarAnswer is the outcome of creating one record.
type soarAnswer struct {
	status int
	body   any
}

func soarFail(status int, format string, args ...any) soarAnswer {
	return soarAnswer{status, soarFailed{Failed: true, Message: fmt.Sprintf(format, args...)}}
}

func (s *SOAR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &soarStatusWriter{ResponseWriter: w}
	// Runs during the panics below too, so a request that got no answer
	// is counted with status 0.
	defer func() { s.count(r.Method, r.URL.Path, sw.status) }()

	// Read first: net/http notices a client that gave up (and cancels
	// r.Context()) only once the body has been read.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 && !s.wait(r.Context(), latency) {
		panic(http.ErrAbortHandler)
	}
	if s.takeTimeout() {
		s.wait(r.Context(), 0)
		// Closes the connection without writing anything.
		panic(http.ErrAbortHandler)
	}
	if f, ok := s.takeFailure(); ok {
		if f.retryAfter != "" {
			sw.Header().Set("Retry-After", f.retryAfter)
		}
		if f.status >= 500 {
			text := fmt.Sprintf("%d %s", f.status, http.StatusText(f.status))
			sw.Header().Set("Content-Type", "text/html")
			sw.WriteHeader(f.status)
			fmt.Fprintf(sw, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", text, text)
			return
		}
		s.reply(sw, soarFail(f.status, "%s", http.StatusText(f.status)))
		return
	}
	if msg := s.authenticate(r); msg != "" {
		s.reply(sw, soarFail(http.StatusUnauthorized, "%s", msg))
		return
	}

	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/rest/"), "/")
	parts := strings.Split(path, "/")
	if !strings.HasPrefix(r.URL.Path, "/rest/") || (parts[0] != "container" && parts[0] != "artifact") || len(parts) > 3 {
		s.reply(sw, soarFail(http.StatusNotFound, "Resource not found: %s", r.URL.Path))
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.reply(sw, s.query(parts, r.URL.RawQuery))
	case http.MethodPost:
		if len(parts) > 1 {
			s.reply(sw, soarFail(http.StatusNotImplemented, "the SOAR stand-in does not update records (POST %s)", r.URL.Path))
			return
		}
		ans := s.create(parts[0], body)
		if s.takeDrop() {
			// Applied; the client never hears of it.
			panic(http.ErrAbortHandler)
		}
		s.reply(sw, ans)
	default:
		s.reply(sw, soarFail(http.StatusMethodNotAllowed, "Method %q not allowed", r.Method))
	}
}

// wait sleeps for d (until the client gives up or the test ends when d
// is 0) and reports whether the request is still wanted.
func (s *SOAR) wait(ctx context.Context, d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

func (s *SOAR) takeTimeout() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timeoutNext > 0 {
		s.timeoutNext--
		return true
	}
	return false
}

func (s *SOAR) takeDrop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropNext > 0 {
		s.dropNext--
		return true
	}
	return false
}

func (s *SOAR) takeFailure() (soarFailure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return soarFailure{}, false
	}
	f := s.failures[0]
	s.failures[0].n--
	if s.failures[0].n == 0 {
		s.failures = s.failures[1:]
	}
	return f, true
}

func (s *SOAR) count(method, path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[SOARRequestKey{Method: method, Path: path, Status: status}]++
}

// authenticate returns why the request is refused, or "".
func (s *SOAR) authenticate(r *http.Request) string {
	s.mu.Lock()
	refuse := s.refuseAuth
	s.mu.Unlock()
	if refuse {
		return "Invalid token"
	}
	tok := r.Header.Get("ph-auth-token")
	if tok == "" {
		if user, pass, ok := r.BasicAuth(); ok && user == "" {
			tok = pass
		}
	}
	if tok == "" {
		return "Authentication credentials were not provided"
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.Token)) != 1 {
		return "Invalid token"
	}
	return ""
}

func (s *SOAR) reply(w http.ResponseWriter, a soarAnswer) {
	b, err := json.Marshal(a.body)
	if err != nil {
		a.status, b = http.StatusInternalServerError, []byte(`{"failed": true, "message": "stand-in: encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write(b)
}

// create applies a POST body to container or artifact: one record or a
// bulk array.
func (s *SOAR) create(kind string, body []byte) soarAnswer {
	v, err := soarDecode(body)
	if err != nil {
		return soarFail(http.StatusBadRequest, "Invalid JSON in request body: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	one := func(rec any) soarAnswer {
		obj, ok := rec.(map[string]any)
		if !ok {
			return soarFail(http.StatusBadRequest, "Expected a JSON object, got %s", soarTypeName(rec))
		}
		if kind == "container" {
			return s.createContainer(obj)
		}
		return s.createArtifact(obj)
	}
	list, bulk := v.([]any)
	if !bulk {
		return one(v)
	}
	answers := make([]any, 0, len(list))
	status := http.StatusBadRequest
	for _, rec := range list {
		a := one(rec)
		if a.status == http.StatusOK {
			status = http.StatusOK
		}
		answers = append(answers, a.body)
	}
	return soarAnswer{status, answers}
}

// createContainer stores one container and its inline artifacts; s.mu is
// held.
func (s *SOAR) createContainer(obj map[string]any) soarAnswer {
	for _, f := range []string{"name", "label"} {
		if v, ok := obj[f]; !ok || v == nil || v == "" {
			return soarFail(http.StatusBadRequest, "Missing required parameter: %s", f)
		}
	}
	if _, ok := obj["name"].(string); !ok {
		return soarFail(http.StatusBadRequest, "name must be a string, not %s", soarTypeName(obj["name"]))
	}
	label, ok := obj["label"].(string)
	if !ok {
		return soarFail(http.StatusBadRequest, "label must be a string, not %s", soarTypeName(obj["label"]))
	}
	if !s.labels[label] || s.rejected[label] {
		return soarFail(http.StatusBadRequest, "Invalid label: %q is not a label configured in SOAR", label)
	}
	asset := 0
	if v, ok := obj["asset_id"]; ok && v != nil {
		n, ok := soarInt(v)
		if !ok {
			return soarFail(http.StatusBadRequest, "asset_id must be an integer, not %s", soarTypeName(v))
		}
		asset = n
	}
	sdi := ""
	if v, ok := obj["source_data_identifier"]; ok && v != nil {
		str, ok := v.(string)
		if !ok {
			return soarFail(http.StatusBadRequest, "source_data_identifier must be a string, not %s", soarTypeName(v))
		}
		sdi = str
	}
	var inline []any
	if v, ok := obj["artifacts"]; ok && v != nil {
		if inline, ok = v.([]any); !ok {
			return soarFail(http.StatusBadRequest, "artifacts must be a list of objects, not %s", soarTypeName(v))
		}
	}

	if sdi != "" {
		if existing, dup := s.bySDI[soarSDIKey{asset, sdi}]; dup {
			body := map[string]any{
				"failed":                true,
				"message":               fmt.Sprintf("duplicate: container %d of this asset has source_data_identifier %q", existing, sdi),
				"existing_container_id": existing,
			}
			if s.dupAddsArtifact && len(inline) > 0 {
				results, _ := s.createInline(s.containers[existing-1], inline)
				body["artifacts"] = results
			}
			return soarAnswer{http.StatusBadRequest, body}
		}
	}

	c := &soarContainer{id: len(s.containers) + 1, asset: asset, sdi: sdi, fields: map[string]any{}}
	for k, v := range obj {
		switch k {
		case "artifacts", "asset_id", "id":
		default:
			c.fields[k] = v
		}
	}
	c.fields["id"] = c.id
	if asset != 0 {
		c.fields["asset"] = asset
	} else {
		c.fields["asset"] = nil
	}
	c.fields["create_time"] = time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	for k, v := range map[string]any{"status": "new", "severity": "medium", "sensitivity": "amber"} {
		if _, ok := c.fields[k]; !ok {
			c.fields[k] = v
		}
	}
	s.containers = append(s.containers, c)
	if sdi != "" {
		s.bySDI[soarSDIKey{asset, sdi}] = c.id
	}
	results, created := s.createInline(c, inline)
	return soarAnswer{http.StatusOK, map[string]any{
		"success":          true,
		"id":               c.id,
		"new_artifact_ids": created,
		"artifacts":        results,
	}}
}

// createInline stores a container POST's artifacts in c; s.mu is held.
func (s *SOAR) createInline(c *soarContainer, inline []any) (results []any, created []int) {
	results, created = []any{}, []int{}
	for _, rec := range inline {
		obj, ok := rec.(map[string]any)
		if !ok {
			results = append(results, soarFail(http.StatusBadRequest, "Expected a JSON object, got %s", soarTypeName(rec)).body)
			continue
		}
		obj = soarShallowCopy(obj)
		obj["container_id"] = c.id
		a := s.createArtifact(obj)
		results = append(results, a.body)
		if a.status == http.StatusOK {
			created = append(created, a.body.(map[string]any)["id"].(int))
		}
	}
	return results, created
}

// createArtifact stores one artifact; s.mu is held.
func (s *SOAR) createArtifact(obj map[string]any) soarAnswer {
	v, ok := obj["container_id"]
	if !ok || v == nil {
		return soarFail(http.StatusBadRequest, "Missing required parameter: container_id")
	}
	cid, ok := soarInt(v)
	if !ok {
		return soarFail(http.StatusBadRequest, "container_id must be an integer, not %s", soarTypeName(v))
	}
	c := s.container(cid)
	if c == nil {
		return soarFail(http.StatusBadRequest, "Invalid container_id: container %d does not exist", cid)
	}
	for _, f := range []string{"cef", "data", "cef_types"} {
		if v, ok := obj[f]; ok && v != nil {
			if _, ok := v.(map[string]any); !ok {
				return soarFail(http.StatusBadRequest, "%s must be a JSON object, not %s", f, soarTypeName(v))
			}
		}
	}
	for _, f := range []string{"name", "label", "source_data_identifier", "type", "severity", "description"} {
		if v, ok := obj[f]; ok && v != nil {
			if _, ok := v.(string); !ok {
				return soarFail(http.StatusBadRequest, "%s must be a string, not %s", f, soarTypeName(v))
			}
		}
	}
	if v, ok := obj["run_automation"]; ok && v != nil {
		if _, ok := v.(bool); !ok {
			return soarFail(http.StatusBadRequest, "run_automation must be a boolean, not %s", soarTypeName(v))
		}
	}

	content := map[string]any{}
	for k, v := range obj {
		switch k {
		case "container_id", "run_automation", "id":
		default:
			content[k] = v
		}
	}
	canon, err := json.Marshal(content) // map keys sorted: canonical
	if err != nil {
		return soarFail(http.StatusBadRequest, "artifact: %v", err)
	}
	sum := md5.Sum(canon)
	hash := hex.EncodeToString(sum[:])
	if s.dedup[c.asset] {
		for _, id := range c.arts {
			if s.artifacts[id-1].hash == hash {
				return soarAnswer{http.StatusBadRequest, soarFailed{
					Failed:             true,
					Message:            fmt.Sprintf("artifact already exists: artifact %d of container %d has the same contents", id, c.id),
					ExistingArtifactID: id,
				}}
			}
		}
	}

	now := time.Now()
	a := &soarArtifact{id: len(s.artifacts) + 1, container: c.id, hash: hash, created: now, fields: content}
	if ra, ok := obj["run_automation"]; ok {
		a.fields["run_automation"] = ra
	}
	a.fields["id"] = a.id
	a.fields["container"] = c.id
	a.fields["hash"] = hash
	a.fields["create_time"] = now.UTC().Format("2006-01-02T15:04:05.000000Z")
	s.artifacts = append(s.artifacts, a)
	c.arts = append(c.arts, a.id)
	return soarAnswer{http.StatusOK, map[string]any{"success": true, "id": a.id}}
}

func (s *SOAR) container(id int) *soarContainer {
	if id < 1 || id > len(s.containers) {
		return nil
	}
	return s.containers[id-1]
}

// containerView is a container as GET answers it; s.mu is held.
func (s *SOAR) containerView(c *soarContainer) map[string]any {
	v := soarShallowCopy(c.fields)
	v["artifact_count"] = len(c.arts)
	return v
}

// query answers a GET of /rest/<kind>[/<id>[/artifacts]].
func (s *SOAR) query(parts []string, rawQuery string) soarAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var records []map[string]any
	if len(parts) >= 2 {
		id, err := strconv.Atoi(parts[1])
		if err != nil || id < 1 {
			return soarFail(http.StatusNotFound, "Requested item not found")
		}
		var one map[string]any
		switch parts[0] {
		case "container":
			if c := s.container(id); c != nil {
				one = s.containerView(c)
				if len(parts) == 3 {
					if parts[2] != "artifacts" {
						return soarFail(http.StatusNotFound, "the SOAR stand-in has no container detail %q", parts[2])
					}
					for _, aid := range c.arts {
						records = append(records, s.artifacts[aid-1].fields)
					}
				}
			}
		case "artifact":
			if id <= len(s.artifacts) {
				one = s.artifacts[id-1].fields
			}
			if len(parts) == 3 {
				return soarFail(http.StatusNotFound, "the SOAR stand-in has no artifact detail %q", parts[2])
			}
		}
		if one == nil {
			return soarFail(http.StatusNotFound, "Requested item not found")
		}
		if len(parts) == 2 {
			return soarAnswer{http.StatusOK, one}
		}
	} else if parts[0] == "container" {
		for _, c := range s.containers {
			records = append(records, s.containerView(c))
		}
	} else {
		for _, a := range s.artifacts {
			records = append(records, a.fields)
		}
	}
	page, err := soarParseQuery(rawQuery)
	if err != nil {
		return soarFail(http.StatusBadRequest, "%v", err)
	}
	return soarAnswer{http.StatusOK, page.apply(records)}
}

// soarPage is a list query: filters, sort and paging.
type soarPage struct {
	filters  []soarFilter
	sortBy   string
	desc     bool
	page     int
	pageSize int
}

type soarFilter struct {
	path    []string
	lookup  string
	value   any
	exclude bool
}

var soarLookups = map[string]bool{
	"exact": true, "iexact": true, "contains": true, "icontains": true,
	"startswith": true, "istartswith": true, "endswith": true, "iendswith": true,
	"in": true, "gt": true, "gte": true, "lt": true, "lte": true, "isnull": true,
}

// soarFieldAliases maps the foreign-key column names a client may filter
// on (as Django allows) to the field the records carry.
var soarFieldAliases = map[string]string{"container_id": "container", "asset_id": "asset"}

func soarParseQuery(raw string) (soarPage, error) {
	p := soarPage{sortBy: "id", pageSize: 10}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return p, fmt.Errorf("malformed query: %v", err)
	}
	for key, vals := range q {
		val := vals[len(vals)-1]
		switch {
		case key == "page":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return p, fmt.Errorf("page must be a non-negative integer, not %q", val)
			}
			p.page = n
		case key == "page_size":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return p, fmt.Errorf("page_size must be a non-negative integer, not %q", val)
			}
			p.pageSize = n
		case key == "sort":
			p.sortBy = val
		case key == "order":
			switch val {
			case "asc":
				p.desc = false
			case "desc":
				p.desc = true
			default:
				return p, fmt.Errorf("order must be asc or desc, not %q", val)
			}
		case strings.HasPrefix(key, "_filter_") || strings.HasPrefix(key, "_exclude_"):
			f := soarFilter{exclude: strings.HasPrefix(key, "_exclude_"), lookup: "exact"}
			field := strings.TrimPrefix(strings.TrimPrefix(key, "_filter_"), "_exclude_")
			f.path = strings.Split(field, "__")
			if last := f.path[len(f.path)-1]; len(f.path) > 1 && soarLookups[last] {
				f.lookup = last
				f.path = f.path[:len(f.path)-1]
			}
			if a, ok := soarFieldAliases[f.path[0]]; ok {
				f.path[0] = a
			}
			lit, err := soarParseLiteral(val)
			if err != nil {
				return p, fmt.Errorf("%s: %v", key, err)
			}
			f.value = lit
			if f.lookup == "in" {
				if _, ok := lit.([]any); !ok {
					return p, fmt.Errorf("%s: __in takes a list, like [1, 2]", key)
				}
			}
			if f.lookup == "isnull" {
				if _, ok := lit.(bool); !ok {
					return p, fmt.Errorf("%s: __isnull takes True or False", key)
				}
			}
			p.filters = append(p.filters, f)
		}
	}
	return p, nil
}

func (p soarPage) apply(records []map[string]any) map[string]any {
	var kept []map[string]any
	for _, r := range records {
		ok := true
		for _, f := range p.filters {
			if f.match(r) == f.exclude {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, r)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool {
		c := soarCompare(soarLookup(kept[i], []string{p.sortBy}), soarLookup(kept[j], []string{p.sortBy}))
		if c == 0 {
			c = soarCompare(kept[i]["id"], kept[j]["id"])
		}
		if p.desc {
			return c > 0
		}
		return c < 0
	})
	count := len(kept)
	numPages := 1
	data := kept
	if p.pageSize > 0 {
		numPages = max(1, (count+p.pageSize-1)/p.pageSize)
		lo := min(p.page*p.pageSize, count)
		hi := min(lo+p.pageSize, count)
		data = kept[lo:hi]
	}
	if data == nil {
		data = []map[string]any{}
	}
	return map[string]any{"count": count, "num_pages": numPages, "data": data}
}

func soarLookup(r map[string]any, path []string) any {
	var v any = r
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func (f soarFilter) match(r map[string]any) bool {
	v := soarNorm(soarLookup(r, f.path))
	lit := f.value
	str := func() (string, string, bool) {
		a, ok1 := v.(string)
		b, ok2 := lit.(string)
		return a, b, ok1 && ok2
	}
	switch f.lookup {
	case "exact":
		return soarEqual(v, lit)
	case "iexact":
		a, b, ok := str()
		return ok && strings.EqualFold(a, b)
	case "contains":
		a, b, ok := str()
		return ok && strings.Contains(a, b)
	case "icontains":
		a, b, ok := str()
		return ok && strings.Contains(strings.ToLower(a), strings.ToLower(b))
	case "startswith":
		a, b, ok := str()
		return ok && strings.HasPrefix(a, b)
	case "istartswith":
		a, b, ok := str()
		return ok && strings.HasPrefix(strings.ToLower(a), strings.ToLower(b))
	case "endswith":
		a, b, ok := str()
		return ok && strings.HasSuffix(a, b)
	case "iendswith":
		a, b, ok := str()
		return ok && strings.HasSuffix(strings.ToLower(a), strings.ToLower(b))
	case "in":
		for _, e := range lit.([]any) {
			if soarEqual(v, e) {
				return true
			}
		}
		return false
	case "isnull":
		return (v == nil) == lit.(bool)
	case "gt", "gte", "lt", "lte":
		if v == nil || lit == nil || reflect.TypeOf(v) != reflect.TypeOf(soarNorm(lit)) {
			return false
		}
		c := soarCompare(v, lit)
		switch f.lookup {
		case "gt":
			return c > 0
		case "gte":
			return c >= 0
		case "lt":
			return c < 0
		default:
			return c <= 0
		}
	}
	return false
}

// soarNorm turns the numbers of stored JSON and literals into float64 so
// they compare.
func soarNorm(v any) any {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return n.String()
		}
		return f
	case int:
		return float64(n)
	case int64:
		return float64(n)
	}
	return v
}

// soarEqual is an exact lookup. A quoted number matches a number, as
// Django converts the value for an integer column.
func soarEqual(stored, lit any) bool {
	a, b := soarNorm(stored), soarNorm(lit)
	if fa, ok := a.(float64); ok {
		if sb, ok := b.(string); ok {
			fb, err := strconv.ParseFloat(sb, 64)
			return err == nil && fa == fb
		}
	}
	return reflect.DeepEqual(a, b)
}

// soarCompare orders values of one kind: null first, then numbers, then
// strings, then booleans.
func soarCompare(x, y any) int {
	a, b := soarNorm(x), soarNorm(y)
	rank := func(v any) int {
		switch v.(type) {
		case nil:
			return 0
		case float64:
			return 1
		case string:
			return 2
		case bool:
			return 3
		}
		return 4
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	switch av := a.(type) {
	case float64:
		bv := b.(float64)
		switch {
		case av < bv:
			return -1
		case av > bv:
			return 1
		}
	case string:
		return strings.Compare(av, b.(string))
	case bool:
		bv := b.(bool)
		if av != bv {
			if !av {
				return -1
			}
			return 1
		}
	}
	return 0
}

// soarParseLiteral reads a filter value the way SOAR does: a Python
// literal (a quoted string, a number, True, False, None, or a list or
// tuple of those).
func soarParseLiteral(s string) (any, error) {
	p := &soarLiteralParser{s: s}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("value %q is not a Python literal (strings must be quoted: \"abc\")", s)
	}
	return v, nil
}

type soarLiteralParser struct {
	s string
	i int
}

func (p *soarLiteralParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *soarLiteralParser) value() (any, error) {
	p.space()
	bad := fmt.Errorf("value %q is not a Python literal (strings must be quoted: \"abc\")", p.s)
	if p.i >= len(p.s) {
		return nil, bad
	}
	switch c := p.s[p.i]; {
	case c == '"' || c == '\'':
		return p.str(c)
	case c == '[' || c == '(':
		end := byte(']')
		if c == '(' {
			end = ')'
		}
		p.i++
		list := []any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				return list, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				return list, nil
			}
			return nil, bad
		}
	}
	j := p.i
	for j < len(p.s) && !strings.ContainsRune(",)] \t", rune(p.s[j])) {
		j++
	}
	word := p.s[p.i:j]
	p.i = j
	switch word {
	case "True":
		return true, nil
	case "False":
		return false, nil
	case "None":
		return nil, nil
	}
	f, err := strconv.ParseFloat(word, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, bad
	}
	return f, nil
}

func (p *soarLiteralParser) str(quote byte) (any, error) {
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == quote:
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			p.i++
			switch e := p.s[p.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
		p.i++
	}
	return nil, fmt.Errorf("value %q: unterminated string", p.s)
}

func soarDecode(body []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// soarInt reads an integer JSON number (or the container id the
// stand-in itself gives an inline artifact).
func soarInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case json.Number:
		i, err := strconv.Atoi(n.String())
		return i, err == nil
	}
	return 0, false
}

func soarTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func soarShallowCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// soarClone deep-copies a record for a reader, so a test can keep it.
func soarClone(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	v, err := soarDecode(b)
	if err != nil {
		return nil
	}
	out, _ := v.(map[string]any)
	return out
}
