package produce

import (
	"bytes"
	"errors"
	"io"
)

// minRead is the least room a read is given: a block with less left is
// done with.
const minRead = 16 << 10

// LineReader reads NDJSON lines straight into pooled blocks, so a record's
// value is the line where it was read, not a copy of it: reading through a
// bufio.Reader and copying each line out cost a copy of the whole body.
// Only a line cut by the end of a block is copied, to the next block.
type LineReader struct {
	r    io.Reader
	pool *BlockPool
	max  int // longest line returned; a longer one is skipped to its end

	cur      *Block // the block being filled; nil before the first read
	start    int    // where cur's unread lines begin
	nl       int    // index of the next newline after start, when known; -1 when not
	skipping bool   // inside a line longer than max
	err      error  // the read error, returned once the lines before it are
}

// Buffered reports whether Next can return a line without reading the
// body, which may block: the caller hands over what it has before that.
func (lr *LineReader) Buffered() bool {
	if lr.cur == nil {
		return lr.err != nil
	}
	if lr.nl < 0 {
		lr.nl = bytes.IndexByte(lr.cur.buf[lr.start:], '\n')
	}
	return lr.nl >= 0 || lr.err != nil
}

// NewLineReader reads r's lines into blocks of pool; a line longer than
// max bytes is skipped and reported as too long.
func NewLineReader(r io.Reader, pool *BlockPool, max int) *LineReader {
	return &LineReader{r: r, pool: pool, max: max, nl: -1}
}

// Next returns the next line without its end of line ("\n" or "\r\n") and
// the block holding it, with a reference for the caller to release once
// done with the line. A line longer than max comes back as tooLong, without
// its bytes or a block. At the end of the body err is io.EOF, after the
// last line (which needs no final newline).
func (lr *LineReader) Next() (line []byte, blk *Block, tooLong bool, err error) {
	for {
		var data []byte
		if lr.cur != nil {
			data = lr.cur.buf[lr.start:]
		}
		i := lr.nl
		if i < 0 {
			i = bytes.IndexByte(data, '\n')
		}
		lr.nl = -1
		if i >= 0 {
			lr.start += i + 1
			return lr.cut(data[:i])
		}
		if lr.err != nil {
			err := lr.err
			if len(data) > 0 || lr.skipping {
				// The last line, without a final newline; err comes
				// with the next call.
				lr.start += len(data)
				line, blk, tooLong, _ := lr.cut(data)
				return line, blk, tooLong, nil
			}
			return nil, nil, false, err
		}
		if lr.skipping || len(data) > lr.max {
			// Too long already: nothing of it is kept.
			lr.skipping = true
			lr.start += len(data)
			data = nil
		}
		if lr.cur == nil || cap(lr.cur.buf)-len(lr.cur.buf) < minRead {
			// Full, or nearly (reads into the last bytes of a block
			// would each fetch little): carry the partial line over to
			// a new block, large enough for it and more.
			nb := lr.pool.Get(2 * len(data))
			nb.buf = append(nb.buf, data...)
			lr.Close()
			lr.cur, lr.start = nb, 0
		}
		buf := lr.cur.buf
		n, err := lr.r.Read(buf[len(buf):cap(buf)])
		lr.cur.buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			err = io.EOF // wrapped or not, the end of the body
		}
		lr.err = err
	}
}

// cut returns one line read whole, or the end of one being skipped.
func (lr *LineReader) cut(line []byte) ([]byte, *Block, bool, error) {
	if lr.skipping {
		lr.skipping = false
		return nil, nil, true, nil
	}
	if len(line) > lr.max {
		return nil, nil, true, nil
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	lr.cur.refs.Add(1)
	return line[:len(line):len(line)], lr.cur, false, nil
}

// Close drops the reader's own reference to the block it fills.
func (lr *LineReader) Close() {
	if lr.cur != nil {
		lr.cur.Release()
		lr.cur = nil
	}
}
