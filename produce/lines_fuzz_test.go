package produce

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzRecordsLines feeds the body of POST /v1/assets/{name}/records to the
// line reader, read in chunks of a fuzzed size, and checks its lines
// against a plain split of the body: each line whole and unchanged (less
// its "\r\n" or "\n"), a line longer than the limit reported as too long
// and nothing of it returned, nothing lost or invented at block edges.
func FuzzRecordsLines(f *testing.F) {
	for _, seed := range []struct {
		body  string
		max   uint16
		chunk uint8
	}{
		{"{\"a\":1}\n{\"b\":2}\n", 64, 0},
		{"{\"a\":1}\r\n\r\n{\"b\":2}", 64, 1},
		{"no newline at all", 4, 3},
		{"\n\n\n", 1, 0},
		{"", 10, 0},
		{"\r", 0, 2},
		{"short\n" + string(bytes.Repeat([]byte("L"), 300)) + "\nafter\r\n", 100, 7},
		{"exactly10!\n0123456789\r\n", 10, 5},
		{"{\"format\":\"ndjson\",\"count\":2}\n{}\n[]\n", 200, 0},
	} {
		f.Add([]byte(seed.body), seed.max, seed.chunk)
	}
	pool := NewBlockPool(4)
	f.Fuzz(func(t *testing.T, body []byte, max uint16, chunk uint8) {
		var r io.Reader = bytes.NewReader(body)
		switch {
		case chunk == 1:
			r = iotest.OneByteReader(r)
		case chunk > 1:
			r = &chunkReader{r: r, n: int(chunk)}
		}
		lr := NewLineReader(iotest.DataErrReader(r), pool, int(max))
		defer lr.Close()
		want := splitLines(body)
		for i := 0; ; i++ {
			line, blk, tooLong, err := lr.Next()
			if errors.Is(err, io.EOF) {
				if i != len(want) {
					t.Fatalf("%q (max %d): %d lines, want %d", body, max, i, len(want))
				}
				return
			}
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			if i >= len(want) {
				t.Fatalf("%q (max %d): line %d %q beyond the %d lines of the body", body, max, i+1, line, len(want))
			}
			w := want[i]
			if long := len(w) > int(max); tooLong != long {
				t.Fatalf("%q (max %d): line %d %q: tooLong %v, want %v", body, max, i+1, w, tooLong, long)
			}
			if tooLong {
				if line != nil || blk != nil {
					t.Fatalf("line %d: too long, yet with bytes or a block", i+1)
				}
				continue
			}
			if got := string(line); got != string(bytes.TrimSuffix(w, []byte("\r"))) {
				t.Fatalf("%q (max %d): line %d = %q, want %q", body, max, i+1, got, w)
			}
			blk.Release()
		}
	})
}

// splitLines is the oracle: the body's lines as the line reader's contract
// says, each with its "\r" if any (the limit counts it).
func splitLines(body []byte) [][]byte {
	if len(body) == 0 {
		return nil
	}
	lines := bytes.Split(body, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1] // a final newline ends the last line
	}
	return lines
}

// chunkReader reads at most n bytes at a time, as a client's packets come.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}
