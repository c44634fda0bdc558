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

// Once the last large body is done and nothing else is in flight, the
// kept buffers are let go and the memory is given back.
func TestIdleMemoryGivenBack(t *testing.T) {
	h := NewHandler(Options{MaxBodyBytes: 8 << 20, BodyMemoryBudget: 16 << 20, BodyWait: time.Second})
	srv := httptest.NewServer(h.admitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r, h.opts.MaxBodyBytes, h.bufs)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		h.bufs.put(body)
	})))
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(strings.Repeat("x", 4<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.memoryFreed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("memory was not given back within 10 s of the server going idle")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(h.bufs.free); n != 0 {
		t.Fatalf("%d buffers still kept", n)
	}
}
