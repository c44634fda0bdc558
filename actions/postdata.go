package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/produce"
)

// PostDataParams are the parameters of post data: the Splunk app's
// data_type, data, topic and timeout, plus what Kafka users ask for beyond
// it (key, headers, partition, record timestamp, JSON layout).
type PostDataParams struct {
	DataType   string           // "string" or "json"
	Data       Payload          // as given: text for string, JSON text for json
	Topic      string           //
	Timeout    time.Duration    // 0: await every send, but fill no per-message data
	JSONFormat string           // "pretty" (the Splunk app's 4-space indent) or "compact"
	Key        []byte           // nil: no key
	Headers    []produce.Header // in the order given
	Partition  int32            // -1: the partitioner chooses
	Timestamp  time.Time        // zero: the producer's clock

	echo Echo
}

func (*PostDataParams) Identifier() string { return PostData }
func (p *PostDataParams) Echo() Echo       { return p.echo }

// Release gives the payload's buffer back.
func (p *PostDataParams) Release() { p.Data.Release() }

// Payload is post data's data. A string parameter (possibly megabytes) is
// unquoted once into a buffer lent by Buffers, which Release gives back;
// structured JSON is kept as its text.
type Payload struct {
	b    []byte
	bufs Buffers
}

// Bytes is the payload's text. It is not valid after Release.
func (p *Payload) Bytes() []byte { return p.b }

// Release gives the payload's buffer back to where it came from. Safe to
// call more than once.
func (p *Payload) Release() {
	if p.bufs != nil && p.b != nil {
		p.bufs.Put(p.b)
	}
	p.b, p.bufs = nil, nil
}

// postDataFields are post data's members as given, nil where absent, read
// in one pass and checked in this order: a request with several bad
// members has them reported in the same order whatever order it wrote
// them in.
type postDataFields struct {
	dataType, data, topic, timeout, jsonFormat, key, headers, partition, timestamp jsontext.Value
}

// DecodePostData decodes post data's parameters and reports every bad one
// at once as an EINVALID *soarkafka.Error. A string data is unquoted into
// a buffer from bufs (nil: allocated); the caller Releases the parameters
// when the action is done. The fields' memory is not kept.
func DecodePostData(fields Fields, bufs Buffers) (PostDataParams, error) {
	var in postDataFields
	slots := [...]struct {
		name string
		v    *jsontext.Value
	}{
		{"data_type", &in.dataType}, {"data", &in.data}, {"topic", &in.topic}, {"timeout", &in.timeout},
		{"json_format", &in.jsonFormat}, {"key", &in.key}, {"headers", &in.headers},
		{"partition", &in.partition}, {"timestamp", &in.timestamp},
	}
	for _, f := range fields {
		for _, s := range slots {
			if s.name == f.Name {
				*s.v = f.Value
				break
			}
		}
	}
	p := PostDataParams{Partition: -1, JSONFormat: "pretty"}
	var r fieldReader

	switch v := in.dataType; {
	case v == nil || v.Kind() == 'n':
		r.bad("data_type", "required: string or JSON")
	case v.Kind() == '"':
		dt, _ := str(v)
		switch strings.ToLower(strings.TrimSpace(dt)) {
		case "string":
			p.DataType = "string"
		case "json":
			p.DataType = "json"
		default:
			r.bad("data_type", "%q is not a data type; use string or JSON", dt)
		}
	default:
		r.bad("data_type", "must be a string (string or JSON), got %s", kindName(v))
	}

	switch v := in.data; {
	case v == nil || v.Kind() == 'n':
		r.bad("data", "required: the data to post")
	case v.Kind() == '"':
		var buf []byte
		if bufs != nil {
			buf = bufs.Get(len(v))[:0]
		}
		b, err := jsontext.AppendUnquote(buf, v)
		if err != nil {
			if bufs != nil {
				bufs.Put(buf)
			}
			r.bad("data", "%v", err)
			break
		}
		p.Data = Payload{b: b, bufs: bufs}
	case p.DataType == "json":
		// A SOAR playbook may pass structured data for data_type JSON:
		// its text as written (a copy: the fields' memory is reused).
		p.Data = Payload{b: bytes.Clone(v)}
	default:
		r.bad("data", "must be a string for data_type string, got %s", kindName(v))
	}

	switch v := in.topic; {
	case v == nil || v.Kind() == 'n':
		r.bad("topic", "required: the topic to post the data to")
	case v.Kind() == '"':
		t, _ := str(v)
		if msg := soarkafka.TopicNameProblem(t); msg != "" {
			r.bad("topic", "%s", msg)
		}
		p.Topic = t
	default:
		r.bad("topic", "must be a string, got %s", kindName(v))
	}

	if v := in.timeout; !absent(v) {
		secs, ok := number(v)
		switch {
		case !ok:
			r.bad("timeout", "must be a number of seconds, got %s", kindName(v))
		case secs < 0:
			r.bad("timeout", "%v is negative; give the seconds to wait for acknowledgement, or 0 not to report per-message details", secs)
		case secs > 3600:
			r.bad("timeout", "%v is over the maximum of 3600 seconds", secs)
		default:
			p.Timeout = time.Duration(secs * float64(time.Second))
		}
	}

	if v := in.jsonFormat; !absent(v) {
		s, _ := str(v)
		switch strings.ToLower(s) {
		case "pretty", "compact":
			p.JSONFormat = strings.ToLower(s)
		default:
			r.bad("json_format", "%s is not pretty or compact", shown(v))
		}
	}

	switch v := in.key; {
	case v == nil || v.Kind() == 'n':
	case v.Kind() == '"':
		k, _ := str(v)
		p.Key = []byte(k)
	default:
		r.bad("key", "must be a string, got %s", kindName(v))
	}

	switch v := in.headers; {
	case v == nil || v.Kind() == 'n':
	case v.Kind() == '{':
		p.Headers = headers(&r, v)
	default:
		r.bad("headers", "must be an object of string values, got %s", kindName(v))
	}

	if v := in.partition; !absent(v) {
		n, ok := number(v)
		if !ok || n != math.Trunc(n) || n < 0 || n > math.MaxInt32 {
			r.bad("partition", "must be a partition number (0 or more), got %s", shown(v))
		} else {
			p.Partition = int32(n)
		}
	}

	if v := in.timestamp; !absent(v) {
		var given any
		switch v.Kind() {
		case '"':
			given, _ = str(v)
		case '0':
			given, _ = number(v)
		default:
			given = kindName(v) // refused with what it is
		}
		ts, err := produce.ParseTimestamp(given)
		if err != nil {
			r.bad("timestamp", "%v", err)
		}
		p.Timestamp = ts
	}

	if err := r.err("post data"); err != nil {
		p.Data.Release()
		return PostDataParams{}, err
	}
	p.echo = echoPostData(fields, p.Data.Bytes())
	return p, nil
}

// headers reads the headers object's members in the order given (Kafka
// headers are ordered, and a name may repeat in them but not in JSON).
func headers(r *fieldReader, v jsontext.Value) []produce.Header {
	dec := jsontext.NewDecoder(bytes.NewReader(v))
	var out []produce.Header
	if _, err := dec.ReadToken(); err != nil { // '{': the value was decoded once already
		r.bad("headers", "%v", err)
		return nil
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			r.bad("headers", "%v", err)
			return nil
		}
		key := name.String()
		val, err := dec.ReadValue()
		if err != nil {
			r.bad("headers", "%v", err)
			return nil
		}
		s, ok := str(val)
		if !ok {
			r.bad("headers", "header %q must be a string, got %s", key, kindName(val))
			continue
		}
		out = append(out, produce.Header{Key: key, Value: []byte(s)})
	}
	return out
}

// SplitJSON parses data as one JSON value and returns the messages it
// stands for: each element of a top-level array, or the value itself. To
// send an array as one message, wrap it in another array. A parse error
// names the line and column. The messages are slices of data, not copies.
//
// Duplicate names in an object and invalid UTF-8 in strings are accepted
// and sent as given, as the Splunk app's Python json.loads and Go's
// encoding/json accept them; whitespace is JSON's only (space, tab, CR, LF).
func SplitJSON(data []byte) ([]json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("data is empty; give a JSON value")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	// value returns the next value as a slice of data: the decoder's own
	// slice is only valid until its next read.
	value := func() (json.RawMessage, error) {
		v, err := dec.ReadValue()
		if err != nil {
			return nil, jsonError(data, err, dec.InputOffset())
		}
		end := int(dec.InputOffset())
		return json.RawMessage(data[end-len(v) : end : end]), nil
	}
	var msgs []json.RawMessage
	if dec.PeekKind() == '[' {
		if _, err := dec.ReadToken(); err != nil {
			return nil, jsonError(data, err, dec.InputOffset())
		}
		msgs = make([]json.RawMessage, 0, 64)
		for dec.PeekKind() != ']' {
			v, err := value()
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, v)
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, jsonError(data, err, dec.InputOffset())
		}
		if len(msgs) == 0 {
			return nil, errors.New("data is an empty JSON list, which holds no message; to send an empty list as one message, send [[]]")
		}
	} else {
		v, err := value()
		if err != nil {
			return nil, err
		}
		msgs = []json.RawMessage{v}
	}
	if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		// +1: lineCol counts the characters up to and including the one
		// at fault, as for a syntax error's offset.
		line, col := lineCol(data, len(data)-len(rest)+1)
		return nil, fmt.Errorf("data is not valid JSON: more data after the first value at line %d, column %d (send several messages as one JSON list)", line, col)
	}
	return msgs, nil
}

func jsonError(data []byte, err error, offset int64) error {
	var syn *jsontext.SyntacticError
	msg := err.Error()
	if errors.As(err, &syn) {
		offset = syn.ByteOffset + 1
		msg = syn.Err.Error()
		if errors.Is(syn.Err, io.ErrUnexpectedEOF) {
			msg = "the JSON ends early"
			offset = int64(len(data))
		}
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "the JSON ends early"
		offset = int64(len(data))
	}
	line, col := lineCol(data, int(offset))
	return fmt.Errorf("data is not valid JSON: %s at line %d, column %d", msg, line, col)
}

// lineCol turns a byte offset into a 1-based line and column (in
// characters, not bytes).
func lineCol(data []byte, offset int) (line, col int) {
	if offset > len(data) {
		offset = len(data)
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	lastNL := bytes.LastIndexByte(before, '\n')
	col = len([]rune(string(before[lastNL+1:])))
	if col == 0 {
		col = 1
	}
	return line, col
}

// FormatJSON lays out one JSON message as sent: the Splunk app's 4-space
// indent (key order and the text of strings and numbers kept as written),
// or compact.
func FormatJSON(msg json.RawMessage, format string) []byte {
	return AppendFormatJSON(make([]byte, 0, len(msg)+len(msg)/4), msg, format)
}

// AppendFormatJSON appends FormatJSON(msg, format) to dst, so that many
// messages can share one buffer. msg must be valid JSON, as SplitJSON
// returns it.
func AppendFormatJSON(dst []byte, msg json.RawMessage, format string) []byte {
	if format == "compact" {
		return appendCompact(dst, msg)
	}
	opts := []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true), jsontext.PreserveRawStrings(true),
		jsontext.Multiline(true), jsontext.WithIndent("    ")}
	out, err := jsontext.AppendFormat(dst, msg, opts...)
	if err != nil { // msg came from the decoder: always valid
		return append(dst, msg...)
	}
	return out
}

// appendCompact appends msg without the whitespace between its tokens.
// msg was validated by SplitJSON already, so this only copies: strings
// whole (their closing quote found with bytes.IndexByte), and what lies
// between them without spaces. Laying out with jsontext would validate
// every message a second time, on the path that sets a large list's rate.
func appendCompact(dst, msg []byte) []byte {
	for len(msg) > 0 {
		i := 0
		for i < len(msg) && msg[i] != '"' && msg[i] != ' ' && msg[i] != '\t' && msg[i] != '\n' && msg[i] != '\r' {
			i++
		}
		dst = append(dst, msg[:i]...)
		msg = msg[i:]
		if len(msg) == 0 {
			break
		}
		if msg[0] != '"' {
			msg = msg[1:] // whitespace between tokens
			continue
		}
		// A string, through its closing quote: the first quote not
		// escaped by an odd run of backslashes.
		end := 1
		for {
			k := bytes.IndexByte(msg[end:], '"')
			if k < 0 { // not valid JSON after all: keep the rest as it is
				return append(dst, msg...)
			}
			end += k
			backslashes := 0
			for j := end - 1; j > 0 && msg[j] == '\\'; j-- {
				backslashes++
			}
			end++
			if backslashes%2 == 0 {
				break
			}
		}
		dst = append(dst, msg[:end]...)
		msg = msg[end:]
	}
	return dst
}

// indentedSize is len(FormatJSON(msg, "pretty")) for a message SplitJSON
// returned, counted without building it (as json.Indent lays it out).
func indentedSize(msg json.RawMessage) int {
	n, depth := 0, 0
	inString, escaped, needIndent := false, false, false
	for _, c := range msg {
		if inString {
			n++
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		if needIndent && c != '}' && c != ']' {
			needIndent = false
			depth++
			n += 1 + 4*depth
		}
		switch c {
		case '"':
			inString = true
			n++
		case '{', '[':
			needIndent = true // "{}" and "[]" stay on one line
			n++
		case ',':
			n += 2 + 4*depth
		case ':':
			n += 2
		case '}', ']':
			if needIndent {
				needIndent = false
			} else {
				depth--
				n += 1 + 4*depth
			}
			n++
		default:
			n++
		}
	}
	return n
}

// PostData sends the data to Kafka with the Splunk app's semantics: JSON
// lists become one message per element, every send is awaited, any failed
// message fails the action, and with a timeout each message's partition,
// offset and sizes are reported.
func (r *Runner) PostData(ctx context.Context, target Target, p *PostDataParams) (*Result, error) {
	res := NewResult(PostData, p.echo)
	data := p.Data.Bytes()

	limit := target.Config.Producer.MaxMessageBytes
	var values [][]byte
	if p.DataType == "json" {
		msgs, err := SplitJSON(data)
		if err != nil {
			return res.Fail(err.Error()), nil
		}
		// One buffer for every message: one allocation, not one each.
		total := 0
		for _, m := range msgs {
			total += len(m)
		}
		if p.JSONFormat != "compact" {
			total += total / 2
		}
		buf := make([]byte, 0, total)
		values = make([][]byte, len(msgs))
		for i, m := range msgs {
			// Measure before laying out: the indented form grows with
			// the square of the nesting depth (20 KB of [[[…]]] indents
			// to 400 MB).
			if p.JSONFormat != "compact" {
				if size := indentedSize(m); int64(size) > limit {
					return res.Fail(fmt.Sprintf("message %d is %d bytes pretty-printed, over producer.max_message_bytes %d; nothing was sent (send it with json_format compact, or raise producer.max_message_bytes)",
						i+1, size, limit)), nil
				}
			}
			start := len(buf)
			buf = AppendFormatJSON(buf, m, p.JSONFormat)
			values[i] = buf[start:len(buf):len(buf)]
		}
	} else {
		// A copy: the caller may reuse Data's memory once we return, and an
		// unacknowledged record may still be in the producer then.
		values = [][]byte{bytes.Clone(data)}
	}

	records := make([]produce.Record, len(values))
	for i, v := range values {
		records[i] = produce.Record{Topic: p.Topic, Key: p.Key, Value: v, Headers: p.Headers, Timestamp: p.Timestamp, ID: i}
		if p.Partition >= 0 {
			records[i].Partition, records[i].Explicit = p.Partition, true
		}
		if size := produce.RecordSize(records[i]); int64(size) > limit {
			return res.Fail(fmt.Sprintf("message %d is %d bytes, over producer.max_message_bytes %d; nothing was sent (raise producer.max_message_bytes and the topic's max.message.bytes, or send smaller messages)",
				i+1, size, limit)), nil
		}
	}

	pr, err := r.producer.Open(ctx, target.Asset, target.Config)
	if err != nil {
		if soarkafka.ErrorCode(err) == soarkafka.EINVALID {
			return res.Fail(soarkafka.ErrorMessage(err)), nil
		}
		return nil, err
	}
	defer pr.Close()

	outcomes := pr.Send(ctx, records, p.Timeout)
	failed := 0
	var firstErr string
	for i, o := range outcomes {
		if o.Err != nil {
			failed++
			if firstErr == "" {
				firstErr = fmt.Sprintf("message %d: %s", i+1, o.Err)
			}
		}
		if p.Timeout > 0 || o.Err != nil {
			res.Data = append(res.Data, messageData(i, &records[i], o))
		}
	}
	res.ResultSummary = ResultSummary{TotalObjects: len(records), TotalObjectsSuccessful: len(records) - failed}
	res.Summary = &PostDataSummary{TotalObjects: len(records), TotalObjectsSuccessful: len(records) - failed}
	if failed > 0 {
		return res.Fail(fmt.Sprintf("%s failed to send (first: %s)", plural(failed, "message"), firstErr)), nil
	}
	res.Message = fmt.Sprintf("Successfully sent data to Kafka (%s to topic %s)", plural(len(records), "message"), p.Topic)
	return res, nil
}

// echoLimit is how much of data the result echoes in its parameter.
const echoLimit = 64 << 10

// echoPostData is post data's echo: a string data over echoLimit is cut
// there, so a 10 MB list is not sent back whole. text is the unquoted data
// (nil for structured data).
func echoPostData(fields Fields, text []byte) Echo {
	e := make(Echo, len(fields))
	for _, f := range fields {
		if f.Name == "data" && f.Value.Kind() == '"' && len(text) > echoLimit {
			if cut, err := jsontext.AppendQuote(nil, cutEcho(string(text[:echoLimit+1]), len(text))); err == nil {
				e[f.Name] = cut
				continue
			}
		}
		e[f.Name] = f.Value.Clone()
	}
	return e
}

// cutEcho cuts text at echoLimit, on a character boundary, and says how
// long it was.
func cutEcho(text string, total int) string {
	cut := echoLimit
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes in all)", text[:cut], total)
}

// PostDataSummary is post data's result summary.
type PostDataSummary struct {
	TotalObjects           int `json:"total_objects"`
	TotalObjectsSuccessful int `json:"total_objects_successful"`
}

// MessageData is one message's entry in post data's result data: the
// Splunk app's data paths, plus status and error. A struct, not a map: a
// large list answers one per message, and maps (sorted keys, boxed values)
// made encoding them a large part of such a request's time.
type MessageData struct {
	Index               int    `json:"index"`
	Topic               string `json:"topic"`
	SerializedKeySize   int    `json:"serialized_key_size"`
	SerializedValueSize int    `json:"serialized_value_size"`
	Checksum            uint32 `json:"checksum"`
	Status              string `json:"status"`
	Error               string `json:"error,omitempty"`
	// Where the message landed: set when it was sent (partition 0 too),
	// absent when it failed.
	Partition      *int32 `json:"partition,omitempty"`
	Offset         *int64 `json:"offset,omitempty"`
	Timestamp      *int64 `json:"timestamp,omitempty"`
	TopicPartition string `json:"topic_partition,omitempty"`
}

func messageData(i int, rec *produce.Record, o produce.Outcome) *MessageData {
	keySize := -1 // kafka-python's value for no key
	if rec.Key != nil {
		keySize = len(rec.Key)
	}
	d := &MessageData{Index: i, Topic: rec.Topic, SerializedKeySize: keySize, SerializedValueSize: len(rec.Value),
		Checksum: crc32.Checksum(rec.Value, crc32c)}
	if o.Err != nil {
		d.Status, d.Error = StatusFailed, o.Err.Error()
		return d
	}
	partition, offset, timestamp := o.Partition, o.Offset, o.Timestamp.UnixMilli()
	d.Status = StatusSuccess
	d.Partition, d.Offset, d.Timestamp = &partition, &offset, &timestamp
	d.TopicPartition = rec.Topic + "-" + strconv.Itoa(int(o.Partition))
	return d
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)
