package storage

import (
	"encoding/hex"
	"sync"

	"github.com/emmansun/gmsm/sm3"
)

// sm3Pipe hashes with SM3 on its own goroutine, so that the gm profile's
// second digest, several times slower than SHA-256 with SHA-NI, runs
// beside the upload instead of in series with it. Bytes are copied into
// pooled chunks; at most sm3Queue chunks wait, which bounds the memory
// per upload and slows the reader down when the hasher falls behind.
type sm3Pipe struct {
	ch     chan *[]byte
	sum    chan string
	closed bool
}

const (
	sm3Chunk = 256 << 10
	sm3Queue = 4
)

var sm3Chunks = sync.Pool{New: func() any { b := make([]byte, sm3Chunk); return &b }}

func newSM3Pipe() *sm3Pipe {
	p := &sm3Pipe{ch: make(chan *[]byte, sm3Queue), sum: make(chan string, 1)}
	go func() {
		h := sm3.New()
		for b := range p.ch {
			h.Write(*b)
			*b = (*b)[:cap(*b)]
			sm3Chunks.Put(b)
		}
		p.sum <- hex.EncodeToString(h.Sum(nil))
	}()
	return p
}

// write queues a copy of b; b may be reused as soon as it returns.
func (p *sm3Pipe) write(b []byte) {
	for len(b) > 0 {
		c := sm3Chunks.Get().(*[]byte)
		n := copy(*c, b)
		*c = (*c)[:n]
		p.ch <- c
		b = b[n:]
	}
}

// finish returns the digest of everything written.
func (p *sm3Pipe) finish() string {
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
}
