// Package console owns the web console served at "/": its sign-in and
// sessions, the CSRF tokens of its forms, its security headers, its pages
// (server-rendered html/template, htmx for partial updates) and the
// front-end files it embeds. It reads the services it shows through small
// interfaces of its own; the web package mounts it, and the REST API keeps
// its token header.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Options are what the console shows and how it lets people in.
type Options struct {
	Logger *slog.Logger
	// Assets lists the assets and resolves each one's configuration.
	Assets Assets
	// Ingest answers an asset's ingest status (last poll, lag, gaps);
	// nil shows the health as not available.
	Ingest IngestStatus
	// Delivery answers where an asset's push delivery stands; nil shows
	// it as not available.
	Delivery DeliveryReports
	// Parsers lists, edits and runs parsers; nil leaves the parser pages
	// empty.
	Parsers Parsers
	// AssetEditor creates, updates and deletes assets for the asset
	// forms, and Audit records the console's changes (assets, parsers)
	// with the console's actor; nil Audit records nothing.
	AssetEditor AssetEditor
	Audit       AuditRecorder
	// AuditTrail reads the trail for the audit page; nil says it is not
	// available.
	AuditTrail AuditTrail
	// Actions runs test connectivity and poll now for the asset detail,
	// and post data for its page; nil says they are not available.
	Actions ActionRunner
	// Containers reads the stored containers and artifacts; nil says
	// they are not available.
	Containers Containers
	// APIToken signs a person in; Password (console.password) too, when
	// set.
	APIToken string
	Password string
	// IdleTimeout ends a session this long after its last request
	// (console.idle_timeout); 0 means 30 minutes.
	IdleTimeout time.Duration
	// Sessions keeps the sessions: the server's store, so every replica
	// on its database knows them. nil keeps them in this process's
	// memory, for tests and a console embedded without a store.
	Sessions SessionStore
	// Version is the server's, shown in the footer and put in the SOAR
	// app's package.
	Version string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Console is the web console's handler.
type Console struct {
	opts     Options
	sessions *sessions
	limiter  *signInLimiter
	pages    map[string]*template.Template
	static   http.Handler
	mux      *http.ServeMux
}

// maxFormBytes bounds a console form's body.
const maxFormBytes = 64 << 10

// DefaultIdleTimeout is console.idle_timeout's default.
const DefaultIdleTimeout = 30 * time.Minute

// New returns the console. It panics only when its embedded templates do
// not parse, which the package's tests catch.
func New(opts Options) *Console {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Sessions == nil {
		opts.Sessions = newMemorySessions()
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	c := &Console{
		opts:     opts,
		sessions: newSessions(opts.Sessions, opts.IdleTimeout, opts.Now),
		limiter:  newSignInLimiter(signInFailures, signInWindow, opts.Now),
		pages:    parsePages(),
		static:   http.StripPrefix("/static/", http.FileServerFS(static)),
	}
	mux := http.NewServeMux()
	// Open to everyone: the sign-in page and what it loads.
	mux.HandleFunc("GET /static/", c.serveStatic)
	mux.HandleFunc("GET /signin", c.signInPage)
	// Browsers ask for it on every page; it has none.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /signin", c.signIn)
	// Everything else needs a session, and a CSRF token on every write.
	mux.Handle("POST /signout", c.signedIn(c.signOut))
	mux.Handle("GET /{$}", c.signedIn(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, "/assets", http.StatusSeeOther)
	}))
	mux.Handle("GET /assets", c.signedIn(c.assetsPage))
	mux.Handle("GET /assets/health", c.signedIn(c.assetsHealth))
	// Asset forms and detail (assetform.go, assetdetail.go).
	mux.Handle("GET /assets/new", c.signedIn(c.newAssetPage))
	mux.Handle("POST /assets/new", c.signedIn(c.saveAsset))
	mux.Handle("GET /assets/{name}/edit", c.signedIn(c.editAssetPage))
	mux.Handle("POST /assets/{name}/edit", c.signedIn(c.saveAsset))
	mux.Handle("POST /assets/{name}/delete", c.signedIn(c.deleteAsset))
	mux.Handle("GET /assets/{name}", c.signedIn(c.assetDetailPage))
	mux.Handle("GET /assets/{name}/status", c.signedIn(c.assetStatus))
	mux.Handle("GET /assets/{name}/history.json", c.signedIn(c.assetHistory))
	mux.Handle("POST /assets/{name}/enabled", c.signedIn(c.setEnabled))
	mux.Handle("POST /assets/{name}/poll-now", c.signedIn(c.pollNow))
	mux.Handle("POST /assets/{name}/test-connectivity", c.signedIn(c.testConnectivity))
	mux.Handle("GET /integrations", c.signedIn(c.integrationsPage))
	mux.Handle("GET /integrations/splunk-soar.tgz", c.signedIn(c.splunkSOARPackage))
	mux.Handle("GET /integrations/xsoar.yml", c.signedIn(c.xsoarIntegration))
	// The parser pages: list, editor, playground, versions.
	mux.Handle("GET /parsers", c.signedIn(c.parsersPage))
	mux.Handle("GET /parsers/new", c.signedIn(c.parserNewPage))
	mux.Handle("POST /parsers", c.signedIn(c.parserSave))
	mux.Handle("POST /parsers/playground", c.signedIn(c.parserPlayground))
	mux.Handle("GET /parsers/{name}", c.signedIn(c.parserPage))
	mux.Handle("POST /parsers/{name}", c.signedIn(c.parserSave))
	mux.Handle("POST /parsers/{name}/delete", c.signedIn(c.parserDelete))
	mux.Handle("GET /parsers/{name}/diff", c.signedIn(c.parserDiff))
	// Containers and post data (containers.go, postdata.go).
	mux.Handle("GET /containers", c.signedIn(c.containersPage))
	mux.Handle("GET /containers/{id}", c.signedIn(c.containerPage))
	mux.Handle("GET /post-data", c.signedIn(c.postDataPage))
	mux.Handle("POST /post-data", c.signedIn(c.postData))
	mux.Handle("GET /audit", c.signedIn(c.auditPage))
	mux.Handle("/", c.signedIn(c.notFound))
	c.mux = mux
	return c
}

// ServeHTTP serves every console path, with the security headers on every
// answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// The console's forms are small; nothing larger is read.
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	c.mux.ServeHTTP(w, r)
}

// ContentSecurityPolicy is sent with every console answer: scripts and
// styles only from the console's own files (no inline script, no eval),
// nothing framed, forms posted only to the console.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// serveStatic serves the embedded CSS and vendored libraries. They change
// only with the binary, so a browser may keep them for an hour.
func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/") {
		// Files only, no folder listings.
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	c.static.ServeHTTP(w, r)
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, http.StatusNotFound, "notfound", s, pageData{Title: "Not found"})
}
