package sandbox

// The wire protocol between a Worker and its child: frames on the child's
// stdin and stdout, each a 4-byte big-endian length, then a 1-byte kind,
// then the payload. Strings and byte slices are a uvarint length and the
// bytes; integers are varints. Messages are encoded by hand (they are mostly
// bytes: JSON would double the cost of a batch); the reply to a call is the
// results already encoded as JSON by the worker, straight into the reply
// frame, and passed on by the parent without a copy or a parse. Each frame
// is built in one buffer and written with one Write (see newFrame), and the
// pipes are enlarged to 1 MiB (growPipe), so that a batch crosses in one
// write each way.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/soarkafka/soarkafka/soar"
)

const (
	kindReady  byte = 'R' // worker → parent, once at start: memory limit applied
	kindLoad   byte = 'L' // parent → worker: name, source
	kindCall   byte = 'C' // parent → worker: topic, messages
	kindOK     byte = 'O' // worker → parent: log, memory in use, then for a call the results JSON (the rest of the frame)
	kindError  byte = 'E' // worker → parent: see scriptFault
	maxRequest      = 1 << 30
	frameHead       = 5
)

// newFrame starts a frame in buf (reused; nil allocates): the head is
// filled in by frame, the payload is appended after it. A frame is built
// in one buffer and written with one Write: one syscall, no copy through a
// bufio.Writer.
func newFrame(buf []byte) enc { return enc{b: append(buf[:0], make([]byte, frameHead)...)} }

// frame fills in the head and returns the frame to write.
func (e *enc) frame(kind byte) []byte {
	binary.BigEndian.PutUint32(e.b[:4], uint32(len(e.b)-frameHead+1))
	e.b[4] = kind
	return e.b
}

// writeFrame writes a small frame (it copies the payload).
func writeFrame(w io.Writer, kind byte, payload []byte) error {
	e := newFrame(make([]byte, 0, frameHead+len(payload)))
	e.b = append(e.b, payload...)
	_, err := w.Write(e.frame(kind))
	return err
}

// readFrame reads one frame of at most max payload bytes.
func readFrame(r *bufio.Reader, max int) (byte, []byte, error) {
	var head [frameHead]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(head[:4]))
	if n < 1 || n-1 > max {
		return 0, nil, fmt.Errorf("frame of %d bytes over the limit of %d", n, max)
	}
	payload := make([]byte, n-1)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return head[4], payload, nil
}

// enc appends protocol values to a buffer.
type enc struct{ b []byte }

func (e *enc) int(v int64)     { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) uint(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) bytes(v []byte)  { e.uint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) string(v string) { e.uint(uint64(len(v))); e.b = append(e.b, v...) }

// nilBytes keeps nil apart from empty (a Kafka record's key is often null).
func (e *enc) nilBytes(v []byte) {
	if v == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(v)) + 1)
	e.b = append(e.b, v...)
}

var errShort = errors.New("truncated frame")

// dec reads protocol values; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) take(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// text is d's whole input as one string (the same length as the []byte
// d started with): str and nilBytesText slice their strings out of it
// instead of allocating one per field.
func (d *dec) str(text string) string {
	n := d.uint()
	start := len(text) - len(d.b)
	if d.take(n); d.err != nil {
		return ""
	}
	return text[start : start+int(n)]
}

// nilBytesText is nilBytes, with the same bytes as a string out of text.
func (d *dec) nilBytesText(text string) ([]byte, string) {
	v := d.nilBytes()
	if v == nil || d.err != nil {
		return nil, ""
	}
	start := len(text) - len(d.b) - len(v)
	return v, text[start : start+len(v)]
}

func (d *dec) bytes() []byte  { return d.take(d.uint()) }
func (d *dec) string() string { return string(d.bytes()) }
func (d *dec) fail()          { d.err, d.b = errShort, nil }
func (d *dec) nilBytes() []byte {
	n := d.uint()
	if n == 0 || d.err != nil {
		return nil
	}
	return d.take(n - 1)
}

// encodeCall encodes a call request. Message.Message is not sent: the worker
// sets it from Value. Timestamps arrive in UTC.
func encodeCall(topic string, msgs []soar.Message) []byte {
	return encodeCallFrame(nil, topic, msgs)[frameHead:]
}

// encodeCallFrame encodes a call request as a frame, in buf (reused).
func encodeCallFrame(buf []byte, topic string, msgs []soar.Message) []byte {
	size := frameHead + len(topic) + 8
	for i := range msgs {
		size += len(msgs[i].Topic) + len(msgs[i].Key) + len(msgs[i].Value) + 40
		for _, h := range msgs[i].Headers {
			size += len(h.Key) + len(h.Value) + 4
		}
	}
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	e := newFrame(buf)
	e.string(topic)
	e.uint(uint64(len(msgs)))
	for i := range msgs {
		m := &msgs[i]
		e.string(m.Topic)
		e.int(int64(m.Partition))
		e.int(m.Offset)
		if m.Timestamp.IsZero() {
			e.uint(0)
		} else {
			e.uint(1)
			e.int(m.Timestamp.Unix())
			e.uint(uint64(m.Timestamp.Nanosecond()))
		}
		e.nilBytes(m.Key)
		e.nilBytes(m.Value)
		e.uint(uint64(len(m.Headers)))
		for _, h := range m.Headers {
			e.string(h.Key)
			e.string(h.Value)
		}
	}
	return e.frame(kindCall)
}

// decodeCall decodes a call request. Key and Value are slices of b (each
// with its capacity cut at its length, so an append by the script copies);
// the strings (Message, topics, headers) are slices of one copy of b made
// as a string: one allocation and one copy for the batch instead of one per
// field.
func decodeCall(b []byte) (string, []soar.Message, error) {
	text := string(b)
	d := dec{b: b}
	topic := d.str(text)
	n := d.uint()
	if n > uint64(len(b)) { // each message takes at least one byte
		return "", nil, errShort
	}
	msgs := make([]soar.Message, 0, n)
	for range n {
		var m soar.Message
		m.Topic = d.str(text)
		m.Partition = int32(d.int())
		m.Offset = d.int()
		if d.uint() == 1 {
			sec := d.int()
			m.Timestamp = time.Unix(sec, int64(d.uint())).UTC()
		}
		m.Key = d.nilBytes()
		m.Value, m.Message = d.nilBytesText(text)
		if nh := d.uint(); nh > 0 && nh <= uint64(len(d.b)) {
			m.Headers = make([]soar.Header, nh)
			for j := range m.Headers {
				m.Headers[j] = soar.Header{Key: d.str(text), Value: d.str(text)}
			}
		} else if nh > 0 {
			d.fail()
		}
		if d.err != nil {
			return "", nil, d.err
		}
		msgs = append(msgs, m)
	}
	return topic, msgs, d.err
}

// Kinds of script faults.
const (
	faultCompile  = "compile" // the load failed
	faultPanic    = "panic"   // the script panicked or misbehaved
	faultReturned = "error"   // ParseMessages returned an error
	faultResult   = "result"  // the results do not encode
)

// scriptFault is the payload of an error reply.
type scriptFault struct {
	Kind    string
	Message string // what went wrong, with the script position when known
	Trace   string // what the interpreter wrote to its stderr (panic positions)
	Log     string // the script's fmt output
	Broken  bool   // the worker must not be used again
}

// encode bounds each text of the fault (see MaxErrorText) as it encodes
// it: every fault leaves the worker through here.
func (f scriptFault) encode() []byte {
	var e enc
	e.string(f.Kind)
	e.string(BoundText(f.Message, MaxErrorText))
	e.string(BoundText(f.Trace, MaxErrorText))
	e.string(f.Log) // bounded by its buffer, to Config.MaxLog
	if f.Broken {
		e.uint(1)
	} else {
		e.uint(0)
	}
	return e.b
}

func decodeFault(b []byte) (scriptFault, error) {
	d := dec{b: b}
	f := scriptFault{Kind: d.string(), Message: d.string(), Trace: d.string(), Log: d.string(), Broken: d.uint() == 1}
	return f, d.err
}
