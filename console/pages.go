package console

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/soarkafka/soarkafka/integrations"
)

// pageData is what every page's layout needs.
type pageData struct {
	Title string
	// Nav is the current navigation entry's name.
	Nav     string
	CSRF    string
	Version string
}

// HXHeaders is the hx-headers attribute's JSON: htmx sends the session's
// CSRF token with each of its requests.
func (p pageData) HXHeaders() string {
	b, _ := json.Marshal(map[string]string{csrfHeader: p.CSRF})
	return string(b)
}

// pageFiles names each page's template files; each is parsed with the
// layout into a set of its own, so that pages' blocks do not collide.
var pageFiles = map[string][]string{
	"signin":       {"templates/layout.html", "templates/signin.html"},
	"assets":       {"templates/layout.html", "templates/assets.html", "templates/health.html"},
	"health":       {"templates/health.html"},
	"integrations": {"templates/layout.html", "templates/integrations.html"},
	"notfound":     {"templates/layout.html", "templates/notfound.html"},
	// The parser pages.
	"parsers":     {"templates/layout.html", "templates/parsers.html"},
	"parser":      {"templates/layout.html", "templates/parser.html"},
	"playground":  {"templates/playground.html"},
	"parserplay":  {"templates/layout.html", "templates/parserplay.html", "templates/playground.html"},
	"parserdiff":  {"templates/layout.html", "templates/parserdiff.html"},
	"assetform":   {"templates/layout.html", "templates/assetform.html"},
	"assetdetail": {"templates/layout.html", "templates/assetdetail.html"},
	// Containers and post data.
	"containers": {"templates/layout.html", "templates/containers.html"},
	"container":  {"templates/layout.html", "templates/container.html"},
	"postdata":   {"templates/layout.html", "templates/postdata.html"},
	"audit":      {"templates/layout.html", "templates/audit.html"},
}

var funcs = template.FuncMap{
	"nav": func() []navEntry { return navigation },
	"inc": func(n int) int { return n + 1 },
}

// navEntry is one entry of the navigation. Entries appear as their pages
// are built.
type navEntry struct{ Name, Path string }

var navigation = []navEntry{
	{"Assets", "/assets"},
	{"Parsers", "/parsers"},
	{"Containers", "/containers"},
	{"Post data", "/post-data"},
	{"Integrations", "/integrations"},
	{"Audit", "/audit"},
}

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for name, files := range pageFiles {
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles, files...))
	}
	return out
}

// setter lets render fill in the layout's part of any page's data.
type setter interface {
	setPage(s *session, version string)
}

func (p *pageData) setPage(s *session, version string) {
	if s != nil {
		p.CSRF = s.csrf
	}
	p.Version = version
}

// render executes a page into a buffer first, so a template error answers
// a clean 500 instead of half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, s *session, data any) {
	if st, ok := data.(setter); ok {
		st.setPage(s, c.opts.Version)
	}
	var buf bytes.Buffer
	tmpl := c.pages[page]
	root := "layout"
	if page == "health" || page == "playground" {
		root = page
	}
	if err := tmpl.ExecuteTemplate(&buf, root, data); err != nil {
		c.opts.Logger.Error("console: render page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "The console could not show this page; the server's log says why.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type integrationsData struct {
	pageData
	ServerURL       string
	SplunkSOARFile  string
	XSOARFile       string
	TokenHeader     string
	PasswordEnabled bool
}

func (c *Console) integrationsPage(w http.ResponseWriter, r *http.Request, s *session) {
	scheme := "http"
	if secure(r) {
		scheme = "https"
	}
	d := &integrationsData{
		pageData:       pageData{Title: "Integrations", Nav: "Integrations"},
		ServerURL:      scheme + "://" + r.Host,
		SplunkSOARFile: integrations.SplunkSOARFileName(c.opts.Version),
		XSOARFile:      integrations.XSOARFileName,
	}
	c.render(w, r, http.StatusOK, "integrations", s, d)
}

// splunkSOARPackage and xsoarIntegration serve the platform apps built
// from the sources in this binary, as GET /v1/integrations/... does for a
// token, here for a signed-in browser.
func (c *Console) splunkSOARPackage(w http.ResponseWriter, r *http.Request, _ *session) {
	c.download(w, r, "application/gzip", integrations.SplunkSOARFileName(c.opts.Version), func(w io.Writer) error {
		return integrations.SplunkSOARPackage(w, c.opts.Version)
	})
}

func (c *Console) xsoarIntegration(w http.ResponseWriter, r *http.Request, _ *session) {
	c.download(w, r, "application/yaml", integrations.XSOARFileName, integrations.XSOARIntegration)
}

func (c *Console) download(w http.ResponseWriter, r *http.Request, contentType, filename string, build func(io.Writer) error) {
	var buf bytes.Buffer
	if err := build(&buf); err != nil {
		c.opts.Logger.Error("console: build package", "file", filename, "err", err)
		http.Error(w, "The package could not be built; the server's log says why.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}
