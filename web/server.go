// Package web is the HTTP edge: the chi router, authentication, request
// limits and logs, the REST handlers for assets and actions, and the OpenAPI
// document that describes them. It is the one place where application errors
// become HTTP statuses.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sync/semaphore"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/assets"
	"github.com/soarkafka/soarkafka/audit"
	"github.com/soarkafka/soarkafka/ingest"
	"github.com/soarkafka/soarkafka/parsers"
	"github.com/soarkafka/soarkafka/poll"
	"github.com/soarkafka/soarkafka/produce"
)

// Pinger reports whether the store is reachable, for /readyz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options are what the handler serves and how.
type Options struct {
	Logger *slog.Logger
	// Assets serves the asset routes; what follows a write (the producer
	// pool, the scheduler, the metrics) hears of it from the service.
	Assets       *assets.Service
	Parsers      *parsers.Service
	Runner       *actions.Runner
	Store        Pinger
	APIToken     string
	MaxBodyBytes int64
	Version      string
	// Poller answers the ingest status of an asset; nil answers 503.
	Poller *poll.Poller
	// Ingest serves the stored containers and artifacts (GET
	// /v1/containers, /v1/artifacts); nil answers 503.
	Ingest ingest.QueryRepository
	// Delivery serves the push delivery routes (GET
	// /v1/assets/{name}/delivery, POST .../delivery/retry); nil answers
	// 503.
	Delivery Delivery
	// Audit records every change made through the API, after it
	// succeeded, and serves GET /v1/audit; nil records nothing and answers
	// 503. Its trusted proxies are the peers whose X-Forwarded-For names
	// the client address it records.
	Audit *audit.Recorder
	// Metrics serves GET /metrics (Prometheus); nil answers 404.
	Metrics http.Handler
	// MetricsPublic serves /metrics without the API token, for a scraper
	// in a trusted network; false requires the token as /v1 does.
	MetricsPublic bool
	// ReadTimeout bounds the time a request's body takes to arrive, on
	// every route but the records endpoint; 0: no bound.
	ReadTimeout time.Duration
	// IdleReadTimeout bounds each wait for more of a records body; 0: no
	// bound.
	IdleReadTimeout time.Duration
	// BodyMemoryBudget is how many bytes of request bodies (by their
	// declared length) are admitted at once; 0: no budget.
	BodyMemoryBudget int64
	// BodyWait is how long a body waits for room in the budget before it
	// is answered 503.
	BodyWait time.Duration
	// Console serves every path outside the API's (/v1, /healthz,
	// /readyz, /openapi.json, /metrics): the web console at "/". nil:
	// those paths answer the API's JSON 404.
	Console http.Handler
}

// Handler serves the REST API.
type Handler struct {
	opts     Options
	bufs     *bufPool           // request bodies and post data payloads
	blocks   *produce.BlockPool // the records endpoint's record values
	tokenSum [32]byte
	router   chi.Router
	budget   *bodyBudget // nil: bodies are admitted without a budget
	// idleFree gives memory back once large bodies are done (see
	// freeIdleMemory); nil without a budget.
	idleFree    *time.Timer
	streams     atomic.Int64 // records requests running
	memoryFreed atomic.Int64 // times freeIdleMemory gave memory back
}

// NewHandler returns the API handler.
func NewHandler(opts Options) *Handler {
	h := &Handler{opts: opts, tokenSum: sha256.Sum256([]byte(opts.APIToken)), bufs: newBufPool(4),
		blocks: produce.NewBlockPool(64)} // 16 MiB at most kept free
	if opts.BodyMemoryBudget > 0 {
		h.budget = &bodyBudget{sem: semaphore.NewWeighted(opts.BodyMemoryBudget), size: opts.BodyMemoryBudget, wait: opts.BodyWait}
		h.idleFree = time.AfterFunc(time.Hour, h.freeIdleMemory)
		h.idleFree.Stop()
	}
	r := chi.NewRouter()
	// audit.KeepPeer runs before RealIP rewrites RemoteAddr from proxy
	// headers: the audit trail trusts X-Forwarded-For only from its
	// trusted proxies, and the console limits sign-ins per connected
	// address (audit.Peer).
	r.Use(audit.KeepPeer, middleware.RequestID, middleware.RealIP, h.logRequests, h.recoverPanics, h.bodyDeadline, h.checkText)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Console != nil && r.URL.Path != "/v1" && !strings.HasPrefix(r.URL.Path, "/v1/") {
			h.opts.Console.ServeHTTP(w, r)
			return
		}
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.ENOTFOUND, "no route %s %s (the API is described at /openapi.json)", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeErrorStatus(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
	})
	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	r.Get("/openapi.json", h.openAPI)
	r.Group(func(r chi.Router) {
		if !opts.MetricsPublic {
			r.Use(h.authenticate)
		}
		r.Get("/metrics", h.metrics)
	})
	r.Route("/v1", func(r chi.Router) {
		r.Use(h.authenticate)
		// Routed first, so that the query is checked against the route's.
		r.Group(func(r chi.Router) {
			r.Use(h.checkQuery)
			r.Group(func(r chi.Router) {
				r.Use(h.limitBody, h.admitBody)
				r.Get("/assets", h.listAssets)
				r.Post("/assets", h.createAsset)
				r.Get("/assets/{name}", h.getAsset)
				r.Put("/assets/{name}", h.updateAsset)
				r.Delete("/assets/{name}", h.deleteAsset)
				r.Get("/assets/{name}/ingest", h.ingestStatus)
				r.Get("/assets/{name}/history", h.ingestHistory)
				r.Get("/assets/{name}/delivery", h.deliveryStatus)
				r.Post("/assets/{name}/delivery/retry", h.retryDelivery)
				r.Get("/containers", h.listContainers)
				r.Get("/containers/{id}", h.getContainer)
				r.Get("/artifacts", h.listArtifacts)
				r.Get("/pull", h.pull)
				r.Get("/topics", h.listTopics)
				r.Post("/topics", h.describeTopics)
				r.Post("/ingest/status", h.inlineIngestStatus)
				r.Post("/actions/{identifier}", h.runAction)
				r.Get("/parsers", h.listParsers)
				r.Post("/parsers", h.createParser)
				r.Post("/parsers/test", h.testParser)
				r.Get("/parsers/{name}", h.getParser)
				r.Put("/parsers/{name}", h.updateParser)
				r.Delete("/parsers/{name}", h.deleteParser)
				r.Get("/parsers/{name}/versions", h.parserVersions)
				r.Get("/parsers/{name}/versions/{version}", h.parserVersion)
				r.Get("/integrations/splunk-soar.tgz", h.splunkSOARPackage)
				r.Get("/integrations/xsoar.yml", h.xsoarIntegration)
				r.Get("/audit", h.listAudit)
			})
			// Streamed, so limited per record (producer.max_message_bytes),
			// not as a whole; bounded in time per read
			// (server.idle_read_timeout), not in all; and outside the body
			// budget: the producer's buffer bounds its memory.
			r.With(h.streamReads).Post("/assets/{name}/records", h.postRecords)
		})
	})
	h.router = r
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.router.ServeHTTP(w, r) }

// Routes returns every "METHOD /path" the router serves, for the test that
// keeps the OpenAPI document and the router in step.
func (h *Handler) Routes() ([]string, error) {
	var routes []string
	err := chi.Walk(h.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	return routes, err
}

// authenticate requires the API token in ph-auth-token (as SOAR sends it)
// or Authorization: Bearer. Comparing fixed-size digests keeps the
// comparison constant-time whatever the length of the presented token.
func (h *Handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("ph-auth-token")
		if tok == "" {
			if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
				tok = strings.TrimSpace(auth[7:])
			}
		}
		if tok == "" {
			h.refuseBody(w, r, soarkafka.Errorf(soarkafka.EUNAUTHORIZED, "missing API token: send it in the ph-auth-token header or as Authorization: Bearer <token>"))
			return
		}
		sum := sha256.Sum256([]byte(tok))
		if h.opts.APIToken == "" || subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) != 1 {
			h.refuseBody(w, r, soarkafka.Errorf(soarkafka.EUNAUTHORIZED, "invalid API token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every request body; reading past the cap fails the read
// with *http.MaxBytesError, which decodeJSON turns into a 413.
func (h *Handler) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > h.opts.MaxBodyBytes {
			h.refuseBody(w, r, tooLarge(h.opts.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func tooLarge(limit int64) error {
	return soarkafka.Errorf(soarkafka.ETOOLARGE, "request body larger than %d bytes (the server's max_body_bytes)", limit)
}

// logRequests writes one structured line per request. It logs the method,
// path, status, size and time, never headers or bodies, which carry tokens
// and secrets.
func (h *Handler) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		h.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", ww.Status()), slog.Int("bytes", ww.BytesWritten()),
			slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr),
			slog.String("request_id", middleware.GetReqID(r.Context())))
	})
}

func (h *Handler) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.opts.Logger.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, r, h.opts.Logger, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": h.opts.Version})
}

// metrics serves the Prometheus exposition, when the server has metrics.
func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) {
	if h.opts.Metrics == nil {
		writeError(w, r, h.opts.Logger, soarkafka.Errorf(soarkafka.ENOTFOUND, "this server exposes no metrics"))
		return
	}
	h.opts.Metrics.ServeHTTP(w, r)
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.opts.Store.Ping(ctx); err != nil {
		h.opts.Logger.Warn("readiness: store unreachable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "store": "unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": "ok"})
}

// decodeJSON decodes a request body into v, and turns each failure into an
// application error that says what is wrong and where. It uses the JSON v2
// decoder (github.com/go-json-experiment/json): several times faster than
// encoding/json on the large bodies post data gets, and stricter (duplicate
// member names and invalid UTF-8 are errors, as they should be).
func decodeJSON(r *http.Request, limit int64, v any) error {
	body, err := readBody(r, limit, nil)
	if err != nil {
		return err
	}
	return unmarshalBody(body, v)
}

func unmarshalBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return soarkafka.Errorf(soarkafka.EINVALID, "request body is empty; send a JSON object")
	}
	if err := jsonv2.Unmarshal(body, v); err != nil {
		return bodyError(err)
	}
	return nil
}

// readBody reads a request body whole, within limit, into one buffer of its
// declared length when it declares one (from bufs, when given).
func readBody(r *http.Request, limit int64, bufs *bufPool) ([]byte, error) {
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= limit {
		body = bufs.get(int(n))
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(r.Body)
	}
	if err != nil {
		bufs.put(body)
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, tooLarge(limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, soarkafka.Errorf(soarkafka.EINVALID, "request body: not received in full within the server's server.read_timeout")
		}
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "request body: %v", err)
	}
	return body, nil
}

// bufPool keeps a few large buffers between requests. A free list, not a
// sync.Pool: a pool drops its items at every collection, and a 10 MB buffer
// taken fresh costs more in page faults than the copy into it. A nil
// *bufPool allocates and keeps nothing.
type bufPool struct{ free chan []byte }

// bufPoolMin is the smallest buffer worth keeping.
const bufPoolMin = 1 << 20

func newBufPool(n int) *bufPool { return &bufPool{free: make(chan []byte, n)} }

// get returns a buffer of length n.
func (p *bufPool) get(n int) []byte {
	if p != nil && n >= bufPoolMin {
		select {
		case b := <-p.free:
			if cap(b) >= n {
				return b[:n]
			}
		default:
		}
	}
	return make([]byte, n)
}

// drain lets every kept buffer go, for the memory to be given back.
func (p *bufPool) drain() {
	for {
		select {
		case <-p.free:
		default:
			return
		}
	}
}

// put gives b back; nothing may use it afterwards.
func (p *bufPool) put(b []byte) {
	if p == nil || cap(b) < bufPoolMin {
		return
	}
	select {
	case p.free <- b[:0]:
	default:
	}
}

func bodyError(err error) error {
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return soarkafka.Errorf(soarkafka.EINVALID, "request body: JSON ends early")
	case errors.As(err, &syn):
		msg := syn.Err.Error()
		if errors.Is(syn.Err, io.ErrUnexpectedEOF) {
			return soarkafka.Errorf(soarkafka.EINVALID, "request body: JSON ends early")
		}
		if strings.Contains(msg, "after top-level value") {
			return soarkafka.Errorf(soarkafka.EINVALID, "request body: more than one JSON value (at byte %d)", syn.ByteOffset)
		}
		return soarkafka.Errorf(soarkafka.EINVALID, "request body: malformed JSON at byte %d: %s", syn.ByteOffset, msg)
	case errors.As(err, &sem):
		field := strings.TrimPrefix(strings.ReplaceAll(string(sem.JSONPointer), "/", "."), ".")
		if field == "" {
			field = "(the body)"
		}
		want := "another type"
		if sem.GoType != nil {
			want = jsonKind(sem.GoType.Kind().String())
		}
		got := sem.JSONKind.String()
		if sem.Err != nil && sem.JSONKind == 0 {
			return soarkafka.Errorf(soarkafka.EINVALID, "request body: %s: %v", field, sem.Err)
		}
		return soarkafka.Errorf(soarkafka.EINVALID, "request body: %s must be %s, got JSON %s", field, want, got)
	}
	return soarkafka.Errorf(soarkafka.EINVALID, "request body: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "interface":
		return "a JSON value"
	}
	return "a number"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// statusOf is the one mapping from application error codes to HTTP.
func statusOf(code string) int {
	switch code {
	case soarkafka.EINVALID:
		return http.StatusBadRequest
	case soarkafka.ENOTFOUND:
		return http.StatusNotFound
	case soarkafka.ECONFLICT:
		return http.StatusConflict
	case soarkafka.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case soarkafka.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case soarkafka.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers with the application error's status and body. An
// internal error's detail goes to the log only.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := soarkafka.ErrorCode(err)
	if code == soarkafka.EINTERNAL {
		logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err,
			"request_id", middleware.GetReqID(r.Context()))
	}
	body := map[string]any{"code": code, "message": soarkafka.ErrorMessage(err)}
	var e *soarkafka.Error
	if errors.As(err, &e) {
		body["message"] = e.Message
		if len(e.Fields) > 0 {
			body["fields"] = e.Fields
		}
	}
	switch code {
	case soarkafka.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", `Bearer realm="soarkafka"`)
	case soarkafka.EUNAVAILABLE:
		// Every 503 is a temporary refusal (a full memory budget, every
		// parser worker busy, the store away): say when to come back, unless
		// the refusal knew better.
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", defaultRetryAfter)
		}
	}
	writeJSON(w, statusOf(code), map[string]any{"error": body})
}

// defaultRetryAfter is the Retry-After, in seconds, of a 503 whose cause set
// none: about the time a parser call waits for a busy worker.
const defaultRetryAfter = "5"

func writeErrorStatus(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}
