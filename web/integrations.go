package web

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/soarkafka/soarkafka/integrations"
)

// splunkSOARPackage serves the Splunk SOAR app built from the sources in
// this binary, so that an administrator downloads it from the server the
// app will talk to, at the server's version.
func (h *Handler) splunkSOARPackage(w http.ResponseWriter, r *http.Request) {
	h.serveIntegration(w, r, "application/gzip", integrations.SplunkSOARFileName(h.opts.Version), func(w io.Writer) error {
		return integrations.SplunkSOARPackage(w, h.opts.Version)
	})
}

// xsoarIntegration serves the unified Cortex XSOAR integration YAML.
func (h *Handler) xsoarIntegration(w http.ResponseWriter, r *http.Request) {
	h.serveIntegration(w, r, "application/yaml", integrations.XSOARFileName, integrations.XSOARIntegration)
}

// serveIntegration builds a package in memory first (they are small), so a
// failed build answers an error rather than a cut file.
func (h *Handler) serveIntegration(w http.ResponseWriter, r *http.Request, contentType, filename string, build func(io.Writer) error) {
	var buf bytes.Buffer
	if err := build(&buf); err != nil {
		writeError(w, r, h.opts.Logger, fmt.Errorf("build %s: %w", filename, err))
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
