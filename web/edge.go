package web

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/semaphore"

	"github.com/soarkafka/soarkafka"
)

// The limits at the HTTP edge: how long a body may take to arrive, how many
// body bytes may be held at once, and what text a path or query may carry.
// Each one answers before the body is read or a store is asked.

// refusedBodyDrain is how long the server goes on reading a refused body
// after its answer is out. net/http reads up to 256 KiB of what is left so
// that closing does not reset the connection: a socket closed with unread
// bytes sends a reset, which can reach the client before it has read the
// answer. A client that trickles its body gets no more than this.
const refusedBodyDrain = time.Second

// refuseBody answers err to a request whose body was not read. Without
// "Connection: close", net/http reads up to 256 KiB of the unread body
// before it answers, so that the connection can serve another request: a
// client that sends it a byte at a time would hold the answer, and the
// connection, for as long as it likes. The read deadline bounds the read of
// what is left once the answer is out (refusedBodyDrain).
func (h *Handler) refuseBody(w http.ResponseWriter, r *http.Request, err error) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(refusedBodyDrain))
	}
	writeError(w, r, h.opts.Logger, err)
}

// closeAfterAnswer makes the server close the connection once the answer
// is written, for an answer whose header is out already (a stream): the
// rest of a body that could not be read must not be taken for the next
// request. A zero-limit http.MaxBytesReader is net/http's one way to ask
// for that: reading past its limit tells the server's response writer to
// close the connection after the reply.
func closeAfterAnswer(w http.ResponseWriter) {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	_, _ = http.MaxBytesReader(w, io.NopCloser(strings.NewReader(" ")), 0).Read(make([]byte, 1))
}

// deadlineBody bounds the reading of a request body with the connection's
// read deadline. Once the body is read to its end, net/http lifts the
// deadline itself (it then reads the connection in the background, to
// notice a client that goes away, and a deadline passing there would
// cancel a handler still at work); a read past the end must not arm it
// again.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
	// idle, when set, is the deadline of each read, armed as the read
	// starts: a streamed body may take as long as it likes in all, as long
	// as it never keeps the server waiting for idle. Armed at the read, not
	// after the last one, so that time the handler spends elsewhere (a
	// producer holding the reading back) is not counted against the client.
	idle time.Duration
	eof  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.idle > 0 && !b.eof {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// bodyDeadline gives every request that has a body server.read_timeout to
// send all of it; the records endpoint changes that to a per-read idle
// timeout (streamReads).
func (h *Handler) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || (h.opts.ReadTimeout <= 0 && h.opts.IdleReadTimeout <= 0) {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if h.opts.ReadTimeout > 0 {
			_ = rc.SetReadDeadline(time.Now().Add(h.opts.ReadTimeout))
		}
		// On a copy of the request: net/http looks at its own request's
		// body, once the handler is done, to tell whether the connection
		// can serve another request.
		r2 := r.WithContext(r.Context())
		r2.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		next.ServeHTTP(w, r2)
	})
}

// streamReads makes the records endpoint's body bounded by
// server.idle_read_timeout per read instead of server.read_timeout in all:
// it streams for as long as the client sends.
func (h *Handler) streamReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := r.Body.(*deadlineBody); ok {
			b.idle = h.opts.IdleReadTimeout
			if b.idle > 0 {
				_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
			} else {
				_ = b.rc.SetReadDeadline(time.Time{})
			}
		}
		h.streams.Add(1)
		defer h.streams.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// bodyBudget admits request bodies against server.body_memory_budget. A
// request holds, while it runs, a multiple of its body in memory (the body,
// the values decoded from it, the records made of them); admitting bodies
// by their size keeps many large ones from arriving at once.
type bodyBudget struct {
	sem      *semaphore.Weighted
	size     int64
	wait     time.Duration
	inFlight atomic.Int64 // bytes admitted and not yet released
}

// idleFreeAfter is how long the server waits, after the last large body is
// done and nothing else is in flight, before it gives memory back.
const idleFreeAfter = time.Second

// bodyCharge is what a request is charged against the budget: its declared
// length, or, for a chunked body, the most it may be (max_body_bytes), and
// at most the whole budget: a body larger than the budget is handled
// alone. Only the methods whose handlers read bodies are charged.
func (h *Handler) bodyCharge(r *http.Request) int64 {
	if r.ContentLength == 0 || (r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch) {
		return 0
	}
	n := r.ContentLength
	if n < 0 || n > h.opts.MaxBodyBytes {
		n = h.opts.MaxBodyBytes
	}
	return min(n, h.budget.size)
}

// admitBody waits, up to server.body_wait, until the request's body fits in
// the memory budget, or answers 503 with Retry-After.
func (h *Handler) admitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.budget == nil {
			next.ServeHTTP(w, r)
			return
		}
		n := h.bodyCharge(r)
		if n == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if !h.budget.sem.TryAcquire(n) {
			ctx, cancel := context.WithTimeout(r.Context(), h.budget.wait)
			err := h.budget.sem.Acquire(ctx, n)
			cancel()
			if err != nil {
				retry := max(1, int(math.Ceil(h.budget.wait.Seconds())))
				w.Header().Set("Retry-After", strconv.Itoa(retry))
				h.refuseBody(w, r, soarkafka.Errorf(soarkafka.EUNAVAILABLE,
					"busy: the request bodies being handled fill the server's server.body_memory_budget (%d bytes); retry in %d s", h.budget.size, retry))
				return
			}
		}
		h.budget.inFlight.Add(n)
		defer h.releaseBody(n)
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) releaseBody(n int64) {
	h.budget.sem.Release(n)
	if h.budget.inFlight.Add(-n) == 0 && n >= bufPoolMin {
		h.idleFree.Reset(idleFreeAfter)
	}
}

// freeIdleMemory gives the memory of large bodies back to the operating
// system once nothing is in flight: the kept buffers, then the freed heap,
// which the Go runtime would otherwise return only slowly. It runs on the
// timer's goroutine, off every request's path.
func (h *Handler) freeIdleMemory() {
	if h.budget.inFlight.Load() != 0 || h.streams.Load() != 0 {
		return
	}
	h.bufs.drain()
	debug.FreeOSMemory()
	h.memoryFreed.Add(1)
}

// checkText refuses a path or query that carries a NUL byte or is not
// valid UTF-8, and a query that does not parse. PostgreSQL refuses such
// text in a query with an error, which would be a 500; the request is bad,
// and is refused here once for every route, before any handler sees it.
func (h *Handler) checkText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var problems []soarkafka.FieldError
		if msg := textProblem(r.URL.Path); msg != "" {
			for _, seg := range strings.Split(r.URL.Path, "/") {
				if msg := textProblem(seg); msg != "" {
					problems = append(problems, soarkafka.FieldError{Field: "path", Message: fmt.Sprintf("segment %q %s", seg, msg)})
				}
			}
		}
		if r.URL.RawQuery != "" {
			q, err := url.ParseQuery(r.URL.RawQuery)
			if err != nil {
				problems = append(problems, soarkafka.FieldError{Field: "query", Message: fmt.Sprintf("%v: write the query as name=value pairs joined by &, each percent-encoded", err)})
			}
			for _, name := range slices.Sorted(maps.Keys(q)) {
				field := name
				if msg := textProblem(name); msg != "" {
					field = fmt.Sprintf("%q", name)
					problems = append(problems, soarkafka.FieldError{Field: field, Message: "the parameter's name " + msg})
				}
				for _, v := range q[name] {
					if msg := textProblem(v); msg != "" {
						problems = append(problems, soarkafka.FieldError{Field: field, Message: fmt.Sprintf("%q %s", v, msg)})
					}
				}
			}
		}
		if len(problems) > 0 {
			h.refuseBody(w, r, &soarkafka.Error{Code: soarkafka.EINVALID, Message: "bad request URL", Fields: problems})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bodyText refuses text from a request body that names or describes a
// stored thing (given as field, value pairs) when the store could not hold
// it: JSON lets a string carry \u0000, and PostgreSQL refuses it in text
// with an error that was a 500.
func bodyText(fieldValues ...string) error {
	var problems []soarkafka.FieldError
	for i := 0; i+1 < len(fieldValues); i += 2 {
		if msg := textProblem(fieldValues[i+1]); msg != "" {
			problems = append(problems, soarkafka.FieldError{Field: fieldValues[i], Message: msg})
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid request body", Fields: problems}
}

// textProblem says what makes s unfit for the store, or "".
func textProblem(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL byte; give text without it"
	case !utf8.ValidString(s):
		return "is not valid UTF-8; percent-encode the UTF-8 bytes of the text"
	}
	return ""
}
