package produce

import "sync/atomic"

// The records endpoint reads the body into shared blocks and sends each
// record's value from the block it was read into (see LineReader), and a
// block is reused once every record cut from it is finished. Allocating fresh blocks instead meant
// zeroing a gigabyte for a gigabyte of NDJSON, and a garbage collection
// every few hundred megabytes; each collection also empties the producer's
// own buffer pool, which then regrew its request buffers by copying. Those
// three were a large share of the endpoint's CPU (docs/performance.md).

// blockSize is the size of a block; a longer record gets a block of its own,
// which is not reused.
const blockSize = 256 << 10

// BlockPool keeps up to a fixed number of free blocks for reuse, shared by
// the requests of one handler.
type BlockPool struct{ free chan *Block }

// NewBlockPool returns a pool that keeps up to keep free blocks.
func NewBlockPool(keep int) *BlockPool { return &BlockPool{free: make(chan *Block, keep)} }

// Get returns an empty block of at least n bytes, holding one reference:
// the caller's.
func (p *BlockPool) Get(n int) *Block {
	var b *Block
	if n <= blockSize {
		select {
		case b = <-p.free:
		default:
		}
	}
	if b == nil {
		b = &Block{buf: make([]byte, 0, max(blockSize, n)), pool: p}
	}
	b.refs.Store(1)
	return b
}

func (p *BlockPool) put(b *Block) {
	if cap(b.buf) != blockSize {
		return // an outsized block: let it go
	}
	b.buf = b.buf[:0]
	select {
	case p.free <- b:
	default: // enough are kept
	}
}

// Block is a buffer that record values are cut from. refs counts the
// records cut from it that are not finished yet, plus one while the line
// reader is still filling it.
type Block struct {
	buf  []byte
	refs atomic.Int64
	pool *BlockPool
}

// Release drops one reference; the last one returns the block to its pool.
// Nothing may read a value cut from the block after releasing it. A nil
// block (a value that is not in one) has nothing to release.
func (b *Block) Release() {
	if b == nil {
		return
	}
	if b.refs.Add(-1) == 0 {
		b.pool.put(b)
	}
}
