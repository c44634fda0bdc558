package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/console"
	"github.com/soarkafka/soarkafka/web"
)

// TestConsoleMountedAtRoot: every path outside the API's goes to the
// console, which closes it without a session; the API's paths keep their
// JSON answers and their token.
func TestConsoleMountedAtRoot(t *testing.T) {
	const token = "a-token-of-the-api-1234"
	h := web.NewHandler(web.Options{Logger: slog.New(slog.DiscardHandler), APIToken: token, MaxBodyBytes: 1 << 20,
		Console: console.New(console.Options{APIToken: token})})
	for _, tt := range []struct {
		method, path string
		status       int
		location     string // for a redirect
		contentType  string
	}{
		{"GET", "/", http.StatusSeeOther, "/signin", ""},
		{"GET", "/assets", http.StatusSeeOther, "/signin?next=%2Fassets", ""},
		{"POST", "/signout", http.StatusSeeOther, "/signin", ""},
		{"GET", "/signin", http.StatusOK, "", "text/html; charset=utf-8"},
		{"GET", "/healthz", http.StatusOK, "", "application/json"},
		{"GET", "/v1/nothing", http.StatusUnauthorized, "", "application/json"},
		{"GET", "/v1", http.StatusUnauthorized, "", "application/json"},
		{"GET", "/v1/assets", http.StatusUnauthorized, "", "application/json"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader("")))
		if rec.Code != tt.status || (tt.location != "" && rec.Header().Get("Location") != tt.location) ||
			(tt.contentType != "" && rec.Header().Get("Content-Type") != tt.contentType) {
			t.Errorf("%s %s: %d %v, want %d %q %q", tt.method, tt.path, rec.Code, rec.Header(), tt.status, tt.location, tt.contentType)
		}
		isConsole := rec.Header().Get("Content-Security-Policy") != ""
		if wantConsole := tt.path != "/healthz" && !strings.HasPrefix(tt.path, "/v1"); isConsole != wantConsole {
			t.Errorf("%s %s: served by the console: %v, want %v", tt.method, tt.path, isConsole, wantConsole)
		}
	}
}
