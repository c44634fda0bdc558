package soarkafka_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/soarkafka/soarkafka"
)

// A panic under Recover ends the work that panicked, not the process: it
// is logged with its stack and handed over as a *PanicError.
func TestRecover(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	var mu sync.Mutex
	var got error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer soarkafka.Recover(context.Background(), logger, "test work", func(e *soarkafka.PanicError) {
			mu.Lock()
			got = e
			mu.Unlock()
		}, "asset", "a")
		panic("boom")
	})
	wg.Wait()
	var pe *soarkafka.PanicError
	if !errors.As(got, &pe) || pe.Value != "boom" || pe.What != "test work" || !strings.Contains(string(pe.Stack), "panic_test.go") {
		t.Fatalf("got %#v", got)
	}
	if soarkafka.ErrorCode(got) != soarkafka.EINTERNAL || !strings.Contains(got.Error(), "test work panicked: boom") {
		t.Fatalf("error %q, code %q", got, soarkafka.ErrorCode(got))
	}
	log := buf.String()
	for _, want := range []string{`"in":"test work"`, `"panic":"boom"`, `"asset":"a"`, `"stack":"goroutine `} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}

	// Go: the same for a goroutine of its own; nothing when nothing panics.
	w := &notifyWriter{wrote: make(chan struct{}, 10)}
	logger = slog.New(slog.NewJSONHandler(w, nil))
	ok := make(chan struct{})
	soarkafka.Go(context.Background(), logger, "quiet work", func() { close(ok) })
	<-ok
	soarkafka.Go(context.Background(), logger, "other work", func() { panic(errors.New("bang")) })
	<-w.wrote
	if log := w.String(); !strings.Contains(log, `"in":"other work"`) || !strings.Contains(log, `"panic":"bang"`) || strings.Contains(log, "quiet work") {
		t.Fatalf("log:\n%s", log)
	}
}

// notifyWriter is a log sink safe across goroutines that signals each write.
type notifyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() { w.wrote <- struct{}{} }()
	return w.buf.Write(p)
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
