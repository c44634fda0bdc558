package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// server.read_timeout bounds the body, not the handler: one that works on
// past it, its body read, is not cancelled.
func TestReadTimeoutEndsWithTheBody(t *testing.T) {
	h := &Handler{opts: Options{ReadTimeout: 200 * time.Millisecond}}
	srv := httptest.NewServer(h.bodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", 500)
		case <-time.After(time.Second):
			io.WriteString(w, "worked on")
		}
	})))
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != "worked on" {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
}
