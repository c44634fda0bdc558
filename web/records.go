package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/produce"
)

// recordsWriteTimeout bounds how long one write of results may block on a
// client that sends its body but does not read the answer; the request is
// then abandoned rather than the server's producer being held.
const recordsWriteTimeout = time.Minute

// postRecords is the streaming variant of post data: an NDJSON body (one
// record a line, gzip-encoded or not), produced while it is read, answered
// with an NDJSON stream of one result per record and a final summary.
// Memory stays bounded whatever the body size: the producer's buffer limit
// holds the reading back.
//
// Query: topic (default: the asset's), format=events (each line is an event
// sent as is; the default) or envelope (each line is {"value", "key",
// "headers", "partition", "timestamp", "topic"}), results=all (default) or
// failed (only failed records, then the summary), validate=light (default:
// each events line is checked for its JSON shape, see shapeProblem) or full
// (each line is parsed).
func (h *Handler) postRecords(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	q := r.URL.Query()
	var errs []soarkafka.FieldError
	format := queryChoice(q, "format", &errs, "events", "envelope")
	results := queryChoice(q, "results", &errs, "all", "failed")
	validate := queryChoice(q, "validate", &errs, "light", "full")
	topic := q.Get("topic")
	if topic != "" {
		if msg := soarkafka.TopicNameProblem(topic); msg != "" {
			errs = append(errs, soarkafka.FieldError{Field: "topic", Message: msg})
		}
	}
	if len(errs) > 0 {
		writeError(w, r, h.opts.Logger, &soarkafka.Error{Code: soarkafka.EINVALID, Message: "invalid query", Fields: errs})
		return
	}
	cfg, _, err := h.opts.Assets.Resolve(r.Context(), name)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	if topic == "" {
		topic = cfg.Topic
	}

	body, err := recordsBody(r)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	pr, err := h.opts.Runner.Producer().Open(r.Context(), name, cfg)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	defer pr.Close()

	// Results are written while the body is still being read.
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		h.opts.Logger.Debug("records: full duplex unavailable", "err", err)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	out := &resultStream{w: bufio.NewWriterSize(w, 64<<10), rc: rc, onlyFailed: results == "failed"}
	stopFlush := out.flushEvery(r.Context(), h.opts.Logger, 100*time.Millisecond)

	s := &recordStream{topic: topic, envelope: format == "envelope", fullCheck: validate == "full", limit: cfg.Producer.MaxMessageBytes,
		blocks: h.blocks, logger: h.opts.Logger}
	res, readErr := s.run(r.Context(), pr, body, out.result)
	if readErr != nil {
		closeAfterAnswer(w)
	}
	stopFlush()
	out.summary(s, res, readErr)
	if out.err != nil {
		h.opts.Logger.Warn("records: writing results failed", "asset", name, "err", out.err)
	}
}

// queryChoice returns query parameter name, one of choices (the first when
// absent), or records a field error.
func queryChoice(q url.Values, name string, errs *[]soarkafka.FieldError, choices ...string) string {
	v := q.Get(name)
	if v == "" {
		return choices[0]
	}
	if slices.Contains(choices, v) {
		return v
	}
	*errs = append(*errs, soarkafka.FieldError{Field: name, Message: fmt.Sprintf("%q is not %s", v, strings.Join(choices, " or "))})
	return choices[0]
}

// recordsBody returns the request body, gunzipped when it says so in
// Content-Encoding or starts with the gzip magic bytes. A plain body is read
// directly, without a buffer in between: the line reader reads it into its
// blocks.
func recordsBody(r *http.Request) (io.Reader, error) {
	magic := make([]byte, 2)
	n, err := io.ReadFull(r.Body, magic)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "request body: %v", err)
	}
	body := io.MultiReader(bytes.NewReader(magic[:n]), r.Body)
	enc := strings.ToLower(r.Header.Get("Content-Encoding"))
	if enc == "gzip" || (enc == "" && bytes.Equal(magic[:n], []byte{0x1f, 0x8b})) {
		zr, err := gzip.NewReader(bufio.NewReaderSize(body, 256<<10))
		if err != nil {
			return nil, soarkafka.Errorf(soarkafka.EINVALID, "request body: not gzip data: %v", err)
		}
		return zr, nil
	}
	if enc != "" && enc != "identity" {
		return nil, soarkafka.Errorf(soarkafka.EINVALID, "Content-Encoding %q not supported; send gzip or plain NDJSON", enc)
	}
	return body, nil
}

// recordStream reads NDJSON lines into records for the produce engine.
type recordStream struct {
	topic     string
	envelope  bool
	fullCheck bool // parse every events line, not only check its shape
	limit     int64
	blocks    *produce.BlockPool
	logger    *slog.Logger
	header    *criblHeader // the handler's goroutine's alone
}

// criblHeader is the first line of a Cribl NDJSON batch.
type criblHeader struct {
	Format string `json:"format"`
	Count  *int   `json:"count"`
	Size   *int   `json:"size"`
}

// run produces the body's records through pr, reporting each one's
// outcome to onResult, and returns the stream's counts and the error that
// ended reading the body early, if any.
func (s *recordStream) run(ctx context.Context, pr *produce.Producer, body io.Reader, onResult func(produce.Outcome)) (produce.StreamResult, error) {
	// The body is read on a goroutine of its own, a few hundred lines
	// ahead: reading it (a system call per chunk the client sent) took as
	// long as producing the records, and one goroutine doing both was the
	// endpoint's bottleneck.
	batches := make(chan []lineItem, 4)
	free := make(chan []lineItem, 8) // handled batches, for the reader to fill again
	stop := make(chan struct{})
	var readErr, endErr error
	var reader sync.WaitGroup
	reader.Go(func() {
		defer soarkafka.Recover(ctx, s.logger, "records body reader", func(e *soarkafka.PanicError) { readErr = e })
		readErr = s.read(body, batches, free, stop)
	})
	defer func() {
		// Stop the reader and release what it read ahead; the body may
		// not be read once the handler returns.
		close(stop)
		for batch := range batches {
			releaseLines(batch)
		}
		reader.Wait()
	}()
	var batch []lineItem
	i := 0
	next := func() (produce.Record, bool) {
		for {
			if i == len(batch) {
				if batch != nil {
					select {
					case free <- batch[:0]:
					default:
					}
					batch = nil
				}
				b, ok := <-batches
				if !ok {
					return produce.Record{}, false
				}
				if err := ctx.Err(); err != nil {
					releaseLines(b)
					endErr = fmt.Errorf("request ended at line %d: %w", b[0].n, err)
					return produce.Record{}, false
				}
				batch, i = b, 0
			}
			it := batch[i]
			i++
			if rec, ok := s.line(it); ok {
				return rec, true
			}
		}
	}
	res := pr.Stream(ctx, next, onResult)
	if endErr != nil {
		return res, endErr
	}
	reader.Wait()
	return res, readErr
}

// lineItem is one line as read: its number, its bytes in blk (which holds a
// reference for it), or tooLong.
type lineItem struct {
	n       int
	raw     []byte
	blk     *produce.Block
	tooLong bool
}

// linesPerBatch is how many lines the reader hands over at a time.
const linesPerBatch = 256

// read reads the body's lines and sends them in batches until the end of
// the body, a read error (returned) or stop; it closes batches. It fills
// the batches handed back on free again, before allocating new ones. Blank lines
// are counted but not sent.
func (s *recordStream) read(body io.Reader, batches chan<- []lineItem, free <-chan []lineItem, stop <-chan struct{}) error {
	defer close(batches)
	// A line also carries envelope and JSON overhead.
	lines := produce.NewLineReader(body, s.blocks, int(s.limit)+64<<10)
	defer lines.Close()
	batch := make([]lineItem, 0, linesPerBatch)
	send := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case batches <- batch:
			select {
			case batch = <-free:
			default:
				batch = make([]lineItem, 0, linesPerBatch)
			}
			return true
		case <-stop:
			releaseLines(batch)
			return false
		}
	}
	for line := 1; ; line++ {
		raw, blk, tooLong, err := lines.Next()
		if len(raw) > 0 || tooLong {
			batch = append(batch, lineItem{n: line, raw: raw, blk: blk, tooLong: tooLong})
		} else if blk != nil {
			blk.Release()
		}
		// Hand the lines over when the batch is full, and before a read
		// that may wait for the client: a client that sends a line now
		// and then has each produced at once.
		if err != nil || len(batch) == linesPerBatch || !lines.Buffered() {
			if !send() {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("reading the body after line %d: nothing more came within the server's server.idle_read_timeout", line-1)
		}
		if err != nil {
			return fmt.Errorf("reading the body after line %d: %w", line-1, err)
		}
	}
}

func releaseLines(batch []lineItem) {
	for _, it := range batch {
		if it.blk != nil {
			it.blk.Release()
		}
	}
}

// line returns the record of one line, false for a line that is no
// record (blank, or the Cribl header). The record's value is the line, in
// its block, which the record holds a reference of (the engine releases
// it); a line that is no record releases it at once.
func (s *recordStream) line(it lineItem) (produce.Record, bool) {
	blk := it.blk
	if blk != nil && s.envelope {
		// An envelope's value is decoded into a copy of its own.
		blk.Release()
		blk = nil
	}
	trimmed := bytes.TrimSpace(it.raw)
	if len(trimmed) == 0 && !it.tooLong {
		blk.Release()
		return produce.Record{}, false
	}
	if it.n == 1 && !it.tooLong && s.parseHeader(trimmed) {
		blk.Release()
		return produce.Record{}, false
	}
	if it.tooLong {
		return produce.Record{ID: it.n, Err: fmt.Errorf("line is longer than producer.max_message_bytes %d", s.limit)}, true
	}
	rec, err := s.record(trimmed)
	if err != nil {
		blk.Release()
		return produce.Record{ID: it.n, Err: err}, true
	}
	rec.ID, rec.Block = it.n, blk
	return rec, true
}

// parseHeader recognises a Cribl header line, {"format":"ndjson","count":N}.
func (s *recordStream) parseHeader(line []byte) bool {
	if !bytes.HasPrefix(line, []byte(`{"format"`)) {
		return false
	}
	var h criblHeader
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if dec.Decode(&h) != nil || h.Format != "ndjson" || h.Count == nil {
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false // more on the line: a record, not the header
	}
	s.header = &h
	return true
}

type envelope struct {
	Value     json.RawMessage   `json:"value"`
	Key       *string           `json:"key"`
	Headers   map[string]string `json:"headers"`
	Partition *int32            `json:"partition"`
	Timestamp any               `json:"timestamp"`
	Topic     string            `json:"topic"`
}

// record builds the record of one line. An events record's value is the
// line itself, in its block; an envelope's is a copy.
func (s *recordStream) record(line []byte) (produce.Record, error) {
	if !s.envelope {
		if s.fullCheck {
			// As strict as the light check on bytes (UTF-8), no stricter
			// on JSON than post data and the consumers' decoders:
			// duplicate names and escaped lone surrogates are valid JSON.
			if !utf8.Valid(line) {
				return produce.Record{}, errors.New("not valid UTF-8")
			}
			if !jsontext.Value(line).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
				return produce.Record{}, errors.New("not valid JSON")
			}
		} else if msg := shapeProblem(line); msg != "" {
			return produce.Record{}, errors.New(msg)
		}
		return produce.Record{Topic: s.topic, Value: line}, nil
	}
	var e envelope
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return produce.Record{}, fmt.Errorf("not a record envelope ({\"value\", \"key\", \"headers\", \"partition\", \"timestamp\", \"topic\"}): %v", err)
	}
	// A second value on the line would be dropped unseen: one record a line.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return produce.Record{}, errors.New("more than one JSON value on the line; give one record envelope a line")
	}
	if len(e.Value) == 0 || string(e.Value) == "null" {
		return produce.Record{}, errors.New("envelope has no value")
	}
	rec := produce.Record{Topic: s.topic}
	if e.Value[0] == '"' {
		var text string
		if err := json.Unmarshal(e.Value, &text); err != nil {
			return produce.Record{}, fmt.Errorf("value: %v", err)
		}
		rec.Value = []byte(text)
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Value); err != nil {
			return produce.Record{}, fmt.Errorf("value: %v", err)
		}
		rec.Value = buf.Bytes()
	}
	if e.Topic != "" {
		if msg := soarkafka.TopicNameProblem(e.Topic); msg != "" {
			return produce.Record{}, fmt.Errorf("topic: %s", msg)
		}
		rec.Topic = e.Topic
	}
	if e.Key != nil {
		rec.Key = []byte(*e.Key)
	}
	for _, k := range sortedHeaderKeys(e.Headers) {
		rec.Headers = append(rec.Headers, produce.Header{Key: k, Value: []byte(e.Headers[k])})
	}
	if e.Partition != nil {
		if *e.Partition < 0 {
			return produce.Record{}, fmt.Errorf("partition %d is negative", *e.Partition)
		}
		rec.Partition = *e.Partition
		rec.Explicit = true
	}
	if e.Timestamp != nil {
		ts, err := produce.ParseTimestamp(e.Timestamp)
		if err != nil {
			return produce.Record{}, fmt.Errorf("timestamp: %v", err)
		}
		rec.Timestamp = ts
	}
	return rec, nil
}

func sortedHeaderKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shapeProblem is the light check of an events line: valid UTF-8 that
// opens and closes like a JSON object or array. It catches the usual bad
// lines (plain text, a truncated event) for a fraction of a full parse,
// which would halve the endpoint's throughput; validate=full parses.
func shapeProblem(line []byte) string {
	first, last := line[0], line[len(line)-1]
	if !(first == '{' && last == '}') && !(first == '[' && last == ']') {
		return "not a JSON object or array (a line must open with { and close with }, or [ and ])"
	}
	if !utf8.Valid(line) {
		return "not valid UTF-8"
	}
	return ""
}

// resultStream writes result lines from producer callbacks, serialised.
type resultStream struct {
	mu         sync.Mutex
	w          *bufio.Writer
	rc         *http.ResponseController
	onlyFailed bool
	err        error // the first write error; later writes are dropped
	closed     bool  // the summary is written: nothing may follow it
	scratch    []byte
}

// result writes the result line of one record's outcome.
func (o *resultStream) result(r produce.Outcome) {
	if r.Err != nil {
		o.failure(r.ID, r.Err.Error())
		return
	}
	o.success(r.ID, r.Partition, r.Offset)
}

func (o *resultStream) success(line int, partition int32, offset int64) {
	if o.onlyFailed {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	b := append(o.scratch[:0], `{"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	b = append(b, `,"status":"success","partition":`...)
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, offset, 10)
	b = append(b, "}\n"...)
	o.scratch = b
	o.writeLocked(b)
}

func (o *resultStream) failure(line int, msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"line": line, "status": actions.StatusFailed, "error": msg})
	o.writeLocked(append(b, '\n'))
}

func (o *resultStream) writeLocked(b []byte) {
	if o.err != nil || o.closed {
		return
	}
	if o.w.Available() < len(b) {
		_ = o.rc.SetWriteDeadline(time.Now().Add(recordsWriteTimeout))
	}
	if _, err := o.w.Write(b); err != nil {
		o.err = err
	}
}

// flushEvery flushes buffered results periodically, so a client sees them
// as they come; the returned function stops it.
func (o *resultStream) flushEvery(ctx context.Context, logger *slog.Logger, d time.Duration) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer soarkafka.Recover(ctx, logger, "records result flush", nil)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				o.mu.Lock()
				o.flushLocked()
				o.mu.Unlock()
			}
		}
	}()
	return func() { close(stop); <-done }
}

func (o *resultStream) flushLocked() {
	if o.err != nil || o.w.Buffered() == 0 {
		return
	}
	_ = o.rc.SetWriteDeadline(time.Now().Add(recordsWriteTimeout))
	if err := o.w.Flush(); err != nil {
		o.err = err
		return
	}
	_ = o.rc.Flush()
}

// summary writes the last line: the totals and one status for the whole
// body, failed when any record failed, the body could not be read to its
// end, or a Cribl header's count disagrees with the records read.
func (o *resultStream) summary(s *recordStream, res produce.StreamResult, readErr error) {
	sum := map[string]any{"records": res.Records, "succeeded": res.Succeeded, "failed": res.Failed, "topic": s.topic}
	var problems []string
	if res.Failed > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d records failed", res.Failed, res.Records))
	}
	if res.Unacked > 0 {
		problems = append(problems, fmt.Sprintf("%d records were not acknowledged within %s (they may still be written)", res.Unacked, res.Wait))
		sum["unacknowledged"] = res.Unacked
	}
	if readErr != nil {
		problems = append(problems, readErr.Error()+"; the records before it were sent")
	}
	if s.header != nil && *s.header.Count != res.Records {
		problems = append(problems, fmt.Sprintf("the Cribl header says %d events but the body has %d", *s.header.Count, res.Records))
		sum["header_count"] = *s.header.Count
	}
	if len(problems) > 0 {
		sum["status"] = actions.StatusFailed
		sum["message"] = strings.Join(problems, "; ")
	} else {
		sum["status"] = actions.StatusSuccess
		sum["message"] = fmt.Sprintf("Sent %d records to topic %s", res.Succeeded, s.topic)
	}
	b, _ := json.Marshal(map[string]any{"summary": sum})
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writeLocked(append(b, '\n'))
	o.flushLocked()
	o.closed = true
}
