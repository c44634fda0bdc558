package web

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads every line, keeping each (and its block reference) until
// the end, so that a block reused too early would show as changed lines.
func readAll(t *testing.T, lr *lineReader) (lines []string, tooLong []int, held []*block, err error) {
	t.Helper()
	var raw [][]byte
	for n := 1; ; n++ {
		line, blk, long, err := lr.next()
		switch {
		case long:
			if blk != nil || line != nil {
				t.Fatalf("line %d: too long, yet came with bytes or a block", n)
			}
			tooLong = append(tooLong, n)
			raw = append(raw, nil)
		case blk != nil:
			raw = append(raw, line)
			held = append(held, blk)
		case line != nil:
			t.Fatalf("line %d: bytes without a block", n)
		}
		if err != nil {
			for _, r := range raw {
				lines = append(lines, string(r))
			}
			return lines, tooLong, held, err
		}
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("L", blockSize+blockSize/2) // longer than a block, within max
	var body strings.Builder
	var want []string
	for i := range 3000 {
		l := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("p", i%700))
		if i == 1500 {
			l = long
		}
		want = append(want, l)
		body.WriteString(l)
		if i%3 == 0 {
			body.WriteString("\r\n")
		} else {
			body.WriteString("\n")
		}
	}
	want = append(want, `{"last":"no newline"}`)
	body.WriteString(want[len(want)-1])

	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(body.String()) },
		"halves":   func() io.Reader { return iotest.HalfReader(strings.NewReader(body.String())) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(body.String())) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(body.String())) },
	} {
		t.Run(name, func(t *testing.T) {
			pool := newBlockPool(64)
			lr := newLineReader(r(), pool, 2*blockSize)
			got, tooLong, held, err := readAll(t, lr)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want io.EOF", err)
			}
			if len(tooLong) > 0 {
				t.Fatalf("lines %v too long", tooLong)
			}
			if len(got) != len(want) {
				t.Fatalf("%d lines, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("line %d = %.60q…, want %.60q…", i+1, got[i], want[i])
				}
			}
			// Every block comes back once its lines and the reader are done.
			lr.close()
			for _, b := range held {
				b.release()
			}
			for _, b := range held {
				if n := b.refs.Load(); n != 0 {
					t.Fatalf("a block still holds %d references", n)
				}
			}
			if len(pool.free) == 0 {
				t.Fatal("no block went back to the pool")
			}
		})
	}
}

func TestLineReaderTooLongAndEmpty(t *testing.T) {
	const max = 100
	body := "short\n" + strings.Repeat("x", 5*blockSize) + "\n\nafter\n" + strings.Repeat("y", max+1)
	lr := newLineReader(iotest.HalfReader(strings.NewReader(body)), newBlockPool(4), max)
	got, tooLong, _, err := readAll(t, lr)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v", err)
	}
	// Line 3 is blank: it comes back empty, with its block, to be counted.
	if fmt.Sprint(got) != fmt.Sprint([]string{"short", "", "", "after", ""}) || fmt.Sprint(tooLong) != "[2 5]" {
		t.Fatalf("lines %q, too long %v", got, tooLong)
	}

	lr = newLineReader(strings.NewReader(""), newBlockPool(4), max)
	if line, blk, long, err := lr.next(); line != nil || blk != nil || long || !errors.Is(err, io.EOF) {
		t.Fatalf("empty body: %q %v %v %v", line, blk, long, err)
	}
}

// A read error comes after the lines read before it, and again after.
func TestLineReaderError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("one\ntwo\nthr"), iotest.ErrReader(boom))
	lr := newLineReader(r, newBlockPool(4), 1000)
	got, _, _, err := readAll(t, lr)
	if !errors.Is(err, boom) || fmt.Sprint(got) != "[one two thr]" {
		t.Fatalf("lines %q, err %v", got, err)
	}
	if _, _, _, err := lr.next(); !errors.Is(err, boom) {
		t.Fatalf("next after the error: %v", err)
	}
}

// A pooled block is handed out again only once every reference is gone.
func TestBlockPoolReuse(t *testing.T) {
	pool := newBlockPool(1)
	b := pool.get(10)
	b.buf = append(b.buf, "abc"...)
	b.refs.Add(1) // a record cut from it
	b.release()   // the reader is done with it
	if c := pool.get(10); c == b {
		t.Fatal("a block still referenced was handed out again")
	}
	b.release() // the record is finished
	c := pool.get(10)
	if c != b || len(c.buf) != 0 || c.refs.Load() != 1 {
		t.Fatalf("the freed block was not reused empty: same %v, len %d, refs %d", c == b, len(c.buf), c.refs.Load())
	}
	big := pool.get(blockSize + 1)
	big.release()
	if d := pool.get(10); d == big || cap(d.buf) != blockSize {
		t.Fatal("an outsized block was pooled")
	}
	var nilBlock *block
	nilBlock.release() // a value in no block: nothing to do
}

// buffered says whether next can answer without reading the body.
func TestLineReaderBuffered(t *testing.T) {
	r, w := io.Pipe()
	lr := newLineReader(r, newBlockPool(4), 1000)
	if lr.buffered() {
		t.Fatal("buffered before anything was read")
	}
	go func() { io.WriteString(w, "a\nb\npart") }()
	want := []struct {
		line     string
		buffered bool
	}{{"a", true}, {"b", false}}
	for _, x := range want {
		line, blk, _, err := lr.next()
		if err != nil || string(line) != x.line {
			t.Fatalf("next = %q, %v; want %q", line, err, x.line)
		}
		blk.release()
		if got := lr.buffered(); got != x.buffered {
			t.Fatalf("after %q: buffered = %v, want %v", x.line, got, x.buffered)
		}
	}
	go func() { io.WriteString(w, "ial\n"); w.Close() }()
	if line, blk, _, err := lr.next(); err != nil || string(line) != "partial" {
		t.Fatalf("next = %q, %v; want the line cut across two reads", line, err)
	} else {
		blk.release()
	}
	if _, _, _, err := lr.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("at the end: %v", err)
	}
	if !lr.buffered() {
		t.Fatal("at the end of the body next answers without reading: buffered should say so")
	}
}
