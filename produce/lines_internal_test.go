package produce

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
func readAll(t *testing.T, lr *LineReader) (lines []string, tooLong []int, held []*Block, err error) {
	t.Helper()
	var raw [][]byte
	for n := 1; ; n++ {
		line, blk, long, err := lr.Next()
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
			pool := NewBlockPool(64)
			lr := NewLineReader(r(), pool, 2*blockSize)
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
			lr.Close()
			for _, b := range held {
				b.Release()
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
	lr := NewLineReader(iotest.HalfReader(strings.NewReader(body)), NewBlockPool(4), max)
	got, tooLong, _, err := readAll(t, lr)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v", err)
	}
	// Line 3 is blank: it comes back empty, with its block, to be counted.
	if fmt.Sprint(got) != fmt.Sprint([]string{"short", "", "", "after", ""}) || fmt.Sprint(tooLong) != "[2 5]" {
		t.Fatalf("lines %q, too long %v", got, tooLong)
	}

	lr = NewLineReader(strings.NewReader(""), NewBlockPool(4), max)
	if line, blk, long, err := lr.Next(); line != nil || blk != nil || long || !errors.Is(err, io.EOF) {
		t.Fatalf("empty body: %q %v %v %v", line, blk, long, err)
	}
}

// A read error comes after the lines read before it, and again after.
func TestLineReaderError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("one\ntwo\nthr"), iotest.ErrReader(boom))
	lr := NewLineReader(r, NewBlockPool(4), 1000)
	got, _, _, err := readAll(t, lr)
	if !errors.Is(err, boom) || fmt.Sprint(got) != "[one two thr]" {
		t.Fatalf("lines %q, err %v", got, err)
	}
	if _, _, _, err := lr.Next(); !errors.Is(err, boom) {
		t.Fatalf("next after the error: %v", err)
	}
}

// A pooled block is handed out again only once every reference is gone.
func TestBlockPoolReuse(t *testing.T) {
	pool := NewBlockPool(1)
	b := pool.Get(10)
	b.buf = append(b.buf, "abc"...)
	b.refs.Add(1) // a record cut from it
	b.Release()   // the reader is done with it
	if c := pool.Get(10); c == b {
		t.Fatal("a block still referenced was handed out again")
	}
	b.Release() // the record is finished
	c := pool.Get(10)
	if c != b || len(c.buf) != 0 || c.refs.Load() != 1 {
		t.Fatalf("the freed block was not reused empty: same %v, len %d, refs %d", c == b, len(c.buf), c.refs.Load())
	}
	big := pool.Get(blockSize + 1)
	big.Release()
	if d := pool.Get(10); d == big || cap(d.buf) != blockSize {
		t.Fatal("an outsized block was pooled")
	}
	var nilBlock *Block
	nilBlock.Release() // a value in no block: nothing to do
}

// buffered says whether next can answer without reading the body.
func TestLineReaderBuffered(t *testing.T) {
	r, w := io.Pipe()
	lr := NewLineReader(r, NewBlockPool(4), 1000)
	if lr.Buffered() {
		t.Fatal("buffered before anything was read")
	}
	go func() { io.WriteString(w, "a\nb\npart") }()
	want := []struct {
		line     string
		buffered bool
	}{{"a", true}, {"b", false}}
	for _, x := range want {
		line, blk, _, err := lr.Next()
		if err != nil || string(line) != x.line {
			t.Fatalf("next = %q, %v; want %q", line, err, x.line)
		}
		blk.Release()
		if got := lr.Buffered(); got != x.buffered {
			t.Fatalf("after %q: buffered = %v, want %v", x.line, got, x.buffered)
		}
	}
	go func() { io.WriteString(w, "ial\n"); w.Close() }()
	if line, blk, _, err := lr.Next(); err != nil || string(line) != "partial" {
		t.Fatalf("next = %q, %v; want the line cut across two reads", line, err)
	} else {
		blk.Release()
	}
	if _, _, _, err := lr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("at the end: %v", err)
	}
	if !lr.Buffered() {
		t.Fatal("at the end of the body next answers without reading: buffered should say so")
	}
}
