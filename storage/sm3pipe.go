package storage

import (
	"encoding/hex"
	"sync"

	"github.com/emmansun/gmsm/sm3"
)

// sm3Pipe hashes with SM3 on its own goroutine, so that the gm profile's
// second digest, several times slower than SHA-256 with SHA-NI, runs
// beside the upload instead of in series with it. Bytes are gathered into
// pooled chunks, handed over only when full: the reads of a multipart body
// are a few KiB each, and a hand-over per read would make the reader and
// the hasher take turns. At most sm3Queue chunks wait, which bounds the
// memory per upload and slows the reader down when the hasher falls behind.
type sm3Pipe struct {
	ch     chan *[]byte
	sum    chan string
	cur    *[]byte // the chunk being filled; nil when none
	closed bool
}

const (
	sm3Chunk = 256 << 10
	sm3Queue = 4
)

var sm3Chunks = sync.Pool{New: func() any { b := make([]byte, 0, sm3Chunk); return &b }}

func newSM3Pipe() *sm3Pipe {
	p := &sm3Pipe{ch: make(chan *[]byte, sm3Queue), sum: make(chan string, 1)}
	go func() {
		h := sm3.New()
		for b := range p.ch {
			h.Write(*b)
			*b = (*b)[:0]
			sm3Chunks.Put(b)
		}
		p.sum <- hex.EncodeToString(h.Sum(nil))
	}()
	return p
}

// write queues a copy of b; b may be reused as soon as it returns.
func (p *sm3Pipe) write(b []byte) {
	for len(b) > 0 {
		if p.cur == nil {
			p.cur = sm3Chunks.Get().(*[]byte)
		}
		c := *p.cur
		n := copy(c[len(c):cap(c)], b)
		*p.cur = c[:len(c)+n]
		b = b[n:]
		if len(*p.cur) == cap(*p.cur) {
			p.ch <- p.cur
			p.cur = nil
		}
	}
}

// finish returns the digest of everything written, or "" once closed
// (the chunk being filled was dropped then).
func (p *sm3Pipe) finish() string {
	if p.closed {
		return ""
	}
	if p.cur != nil {
		p.ch <- p.cur
		p.cur = nil
	}
	p.close()
	return <-p.sum
}

// close ends the goroutine (it hashes what is queued and exits); safe to
// call more than once and after finish.
func (p *sm3Pipe) close() {
	if !p.closed {
		p.closed = true
		close(p.ch)
	}
	if p.cur != nil {
		*p.cur = (*p.cur)[:0]
		sm3Chunks.Put(p.cur)
		p.cur = nil
	}
}
