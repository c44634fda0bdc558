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
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
	"github.com/soarkafka/soarkafka/kafka"
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
	cl, release, err := h.opts.Runner.Producers().Acquire(r.Context(), name, cfg)
	if err != nil {
		writeError(w, r, h.opts.Logger, err)
		return
	}
	defer release()

	// Results are written while the body is still being read.
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		h.opts.Logger.Debug("records: full duplex unavailable", "err", err)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	out := &resultStream{w: bufio.NewWriterSize(w, 64<<10), rc: rc, onlyFailed: results == "failed"}
	stopFlush := out.flushEvery(r.Context(), h.opts.Logger, 100*time.Millisecond)

	s := &recordStream{topic: topic, envelope: format == "envelope", fullCheck: validate == "full", limit: cfg.Producer.MaxMessageBytes, out: out,
		ackWait: h.opts.Runner.DeliveryWait(), blocks: h.blocks, logger: h.opts.Logger}
	readErr := s.run(r.Context(), cl, body)
	if readErr != nil {
		closeAfterAnswer(w)
	}
	stopFlush()
	out.summary(s, readErr)
	s.mu.Lock()
	h.opts.Runner.RecordProduced(name, s.succeeded, s.failed)
	s.mu.Unlock()
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

// recordStream reads NDJSON lines into records and produces them.
type recordStream struct {
	topic     string
	envelope  bool
	fullCheck bool // parse every events line, not only check its shape
	limit     int64
	out       *resultStream
	ackWait   time.Duration // cap on waiting for acknowledgements at the end
	unacked   int           // records still unacknowledged when the wait ended
	blocks    *blockPool
	logger    *slog.Logger

	wg        sync.WaitGroup
	mu        sync.Mutex
	records   int // lines that were records (not blank, not the header); the handler's goroutine's alone
	succeeded int
	failed    int
	header    *criblHeader
}

// criblHeader is the first line of a Cribl NDJSON batch.
type criblHeader struct {
	Format string `json:"format"`
	Count  *int   `json:"count"`
	Size   *int   `json:"size"`
}

func (s *recordStream) run(ctx context.Context, cl *kgo.Client, body io.Reader) error {
	// Records outlive a cancelled request in kgo's buffer; see
	// actions.produce for why they are never produced under a cancellable
	// context.
	pctx := context.WithoutCancel(ctx)
	defer s.awaitAcks()

	// The body is read on a goroutine of its own, a few hundred lines
	// ahead: reading it (a system call per chunk the client sent) took as
	// long as producing the records, and one goroutine doing both was the
	// endpoint's bottleneck.
	batches := make(chan []lineItem, 4)
	free := make(chan []lineItem, 8) // handled batches, for the reader to fill again
	stop := make(chan struct{})
	var readErr error
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
	for batch := range batches {
		if err := ctx.Err(); err != nil {
			releaseLines(batch)
			return fmt.Errorf("request ended at line %d: %w", batch[0].n, err)
		}
		for _, it := range batch {
			s.handle(pctx, cl, it.n, it.raw, it.blk, it.tooLong)
		}
		select {
		case free <- batch[:0]:
		default:
		}
	}
	reader.Wait()
	return readErr
}

// lineItem is one line as read: its number, its bytes in blk (which holds a
// reference for it), or tooLong.
type lineItem struct {
	n       int
	raw     []byte
	blk     *block
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
	lines := newLineReader(body, s.blocks, int(s.limit)+64<<10)
	defer lines.close()
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
		raw, blk, tooLong, err := lines.next()
		if len(raw) > 0 || tooLong {
			batch = append(batch, lineItem{n: line, raw: raw, blk: blk, tooLong: tooLong})
		} else if blk != nil {
			blk.release()
		}
		// Hand the lines over when the batch is full, and before a read
		// that may wait for the client: a client that sends a line now
		// and then has each produced at once.
		if err != nil || len(batch) == linesPerBatch || !lines.buffered() {
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
			it.blk.release()
		}
	}
}

// handle produces the record of one line. raw lives in blk, whose
// reference handle releases once the record is finished (or at once when
// the line is no record).
func (s *recordStream) handle(ctx context.Context, cl *kgo.Client, line int, raw []byte, blk *block, tooLong bool) {
	if blk != nil && s.envelope {
		// An envelope's value is decoded into a copy of its own.
		defer blk.release()
		blk = nil
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 && !tooLong {
		blk.release()
		return
	}
	if line == 1 && !tooLong && s.parseHeader(trimmed) {
		blk.release()
		return
	}
	s.records++ // only the handler's goroutine touches records: no lock
	if tooLong {
		s.fail(line, fmt.Sprintf("line is longer than producer.max_message_bytes %d", s.limit))
		return
	}
	rec, err := s.record(trimmed)
	if err != nil {
		blk.release()
		s.fail(line, err.Error())
		return
	}
	if size := kafka.RecordSize(rec); int64(size) > s.limit {
		blk.release()
		s.fail(line, fmt.Sprintf("record is %d bytes, over producer.max_message_bytes %d", size, s.limit))
		return
	}
	s.wg.Add(1)
	cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
		defer s.wg.Done()
		defer blk.release() // the value is the line, in blk
		// On kgo's goroutine: a panic would end the process.
		defer soarkafka.Recover(ctx, s.logger, "records acknowledgement", nil, "line", line)
		if err != nil {
			s.fail(line, actions.ProduceError(err, rec).Error())
			return
		}
		s.mu.Lock()
		s.succeeded++
		s.mu.Unlock()
		s.out.success(line, rec.Partition, rec.Offset)
	})
}

// awaitAcks waits for the acknowledgements of every produced record, up to
// ackWait; records still pending then are counted as unacknowledged (they
// may still be written), and their late results are not written: the
// summary is the last line.
func (s *recordStream) awaitAcks() {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(s.ackWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.mu.Lock()
		s.unacked = s.records - s.succeeded - s.failed
		s.mu.Unlock()
	}
}

func (s *recordStream) fail(line int, msg string) {
	s.mu.Lock()
	s.failed++
	s.mu.Unlock()
	s.out.failure(line, msg)
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
func (s *recordStream) record(line []byte) (*kgo.Record, error) {
	if !s.envelope {
		if s.fullCheck {
			// As strict as the light check on bytes (UTF-8), no stricter
			// on JSON than post data and the consumers' decoders:
			// duplicate names and escaped lone surrogates are valid JSON.
			if !utf8.Valid(line) {
				return nil, errors.New("not valid UTF-8")
			}
			if !jsontext.Value(line).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
				return nil, errors.New("not valid JSON")
			}
		} else if msg := shapeProblem(line); msg != "" {
			return nil, errors.New(msg)
		}
		return &kgo.Record{Topic: s.topic, Value: line}, nil
	}
	var e envelope
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("not a record envelope ({\"value\", \"key\", \"headers\", \"partition\", \"timestamp\", \"topic\"}): %v", err)
	}
	// A second value on the line would be dropped unseen: one record a line.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value on the line; give one record envelope a line")
	}
	if len(e.Value) == 0 || string(e.Value) == "null" {
		return nil, errors.New("envelope has no value")
	}
	rec := &kgo.Record{Topic: s.topic}
	if e.Value[0] == '"' {
		var text string
		if err := json.Unmarshal(e.Value, &text); err != nil {
			return nil, fmt.Errorf("value: %v", err)
		}
		rec.Value = []byte(text)
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Value); err != nil {
			return nil, fmt.Errorf("value: %v", err)
		}
		rec.Value = buf.Bytes()
	}
	if e.Topic != "" {
		if msg := soarkafka.TopicNameProblem(e.Topic); msg != "" {
			return nil, fmt.Errorf("topic: %s", msg)
		}
		rec.Topic = e.Topic
	}
	if e.Key != nil {
		rec.Key = []byte(*e.Key)
	}
	for _, k := range sortedHeaderKeys(e.Headers) {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(e.Headers[k])})
	}
	if e.Partition != nil {
		if *e.Partition < 0 {
			return nil, fmt.Errorf("partition %d is negative", *e.Partition)
		}
		rec.Partition = *e.Partition
		rec.Context = kafka.ExplicitPartition
	}
	if e.Timestamp != nil {
		ts, err := actions.ParseTimestamp(e.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("timestamp: %v", err)
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
func (o *resultStream) summary(s *recordStream, readErr error) {
	s.mu.Lock()
	sum := map[string]any{"records": s.records, "succeeded": s.succeeded, "failed": s.failed, "topic": s.topic}
	var problems []string
	if s.failed > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d records failed", s.failed, s.records))
	}
	if s.unacked > 0 {
		problems = append(problems, fmt.Sprintf("%d records were not acknowledged within %s (they may still be written)", s.unacked, s.ackWait))
		sum["unacknowledged"] = s.unacked
	}
	if readErr != nil {
		problems = append(problems, readErr.Error()+"; the records before it were sent")
	}
	if s.header != nil && *s.header.Count != s.records {
		problems = append(problems, fmt.Sprintf("the Cribl header says %d events but the body has %d", *s.header.Count, s.records))
		sum["header_count"] = *s.header.Count
	}
	s.mu.Unlock()
	if len(problems) > 0 {
		sum["status"] = actions.StatusFailed
		sum["message"] = strings.Join(problems, "; ")
	} else {
		sum["status"] = actions.StatusSuccess
		sum["message"] = fmt.Sprintf("Sent %d records to topic %s", s.succeeded, s.topic)
	}
	b, _ := json.Marshal(map[string]any{"summary": sum})
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writeLocked(append(b, '\n'))
	o.flushLocked()
	o.closed = true
}
