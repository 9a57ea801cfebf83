package s3

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"tongban/storage"
)

// Read-ahead window: raChunks buffers of raChunkSize per open reader.
const (
	raChunks    = 4
	raChunkSize = 256 << 10
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, raChunkSize); return &b }}

// newBody wraps an object's body for reading: with a read-ahead if it is
// larger than a chunk, and with transport errors reported as ErrUnavailable.
func newBody(body io.ReadCloser, size int64) io.ReadCloser {
	if size <= raChunkSize {
		return bodyReader{body}
	}
	return newReadAhead(body)
}

// bodyReader reports a failed transfer as ErrUnavailable.
type bodyReader struct{ io.ReadCloser }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: storage/s3: read: %w", storage.ErrUnavailable, err)
	}
	return n, err
}

// readAhead receives an object's body in its own goroutine, a few chunks
// ahead of the caller, so that receiving from the network overlaps with the
// caller hashing the previous chunks. Without it a verified read of a large
// object ran at about half the speed of an unverified one.
type readAhead struct {
	body io.ReadCloser
	full chan chunk
	free chan *[]byte
	stop chan struct{}
	done chan struct{}
	once sync.Once

	cur chunk // consumed by Read, owned by the caller's goroutine
	off int
}

type chunk struct {
	buf *[]byte
	b   []byte // the filled part of *buf
	err error  // after b: io.EOF or the failure that ended the body
}

func newReadAhead(body io.ReadCloser) *readAhead {
	r := &readAhead{
		body: body,
		full: make(chan chunk, raChunks),
		free: make(chan *[]byte, raChunks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range raChunks {
		r.free <- chunkPool.Get().(*[]byte)
	}
	go r.fill()
	return r
}

func (r *readAhead) fill() {
	defer close(r.done)
	for {
		var bp *[]byte
		select {
		case bp = <-r.free:
		case <-r.stop:
			return
		}
		// Not io.ReadFull: it would turn the transport's io.ErrUnexpectedEOF
		// for a cut connection into a clean end, which the verifier would then
		// report as corruption.
		buf := *bp
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.body.Read(buf[n:])
			n += m
		}
		if err != nil && err != io.EOF {
			err = fmt.Errorf("%w: storage/s3: read: %w", storage.ErrUnavailable, err)
		}
		select {
		case r.full <- chunk{bp, buf[:n], err}:
		case <-r.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (r *readAhead) Read(p []byte) (int, error) {
	for r.off == len(r.cur.b) {
		if r.cur.err != nil {
			return 0, r.cur.err
		}
		if r.cur.buf != nil {
			r.free <- r.cur.buf
		}
		r.cur, r.off = <-r.full, 0
	}
	n := copy(p, r.cur.b[r.off:])
	r.off += n
	return n, nil
}

// Close stops the goroutine (closing the body unblocks its read) and waits for it.
func (r *readAhead) Close() error {
	var err error
	r.once.Do(func() {
		close(r.stop)
		err = r.body.Close()
		<-r.done
		// No read is in flight any more: the buffers can be reused.
		if r.cur.buf != nil {
			chunkPool.Put(r.cur.buf)
		}
		r.cur, r.off = chunk{err: errClosed}, 0
		for len(r.free) > 0 {
			chunkPool.Put(<-r.free)
		}
		for len(r.full) > 0 {
			chunkPool.Put((<-r.full).buf)
		}
	})
	return err
}

var errClosed = errors.New("storage/s3: read after close")
