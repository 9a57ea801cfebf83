package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// PutReader is the input side of every driver's Put: it hashes and counts the
// bytes read through it and enforces PutOptions while streaming. Instead of
// io.EOF it returns an error when the stream broke a limit or a declaration,
// so a driver that copies until EOF and publishes only after a clean EOF
// can never publish a stream that should have been refused.
type PutReader struct {
	r    io.Reader
	h    hash.Hash
	sm3  *sm3Pipe // nil unless opts.SM3
	n    int64
	opts PutOptions
	err  error // sticky
	sum  string
	sum3 string
}

// NewPutReader wraps r. It fails at once if opts are invalid or declare a
// size over the limit.
func NewPutReader(r io.Reader, opts PutOptions) (*PutReader, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	p := &PutReader{r: r, h: sha256.New(), opts: opts}
	if opts.SM3 {
		p.sm3 = newSM3Pipe()
	}
	return p, nil
}

// Read reads from the underlying stream. It never reads more than
// MaxSize+1 bytes from it: the extra byte proves the stream too large.
func (p *PutReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if max := p.opts.MaxSize; max > 0 && int64(len(b)) > max+1-p.n {
		b = b[:max+1-p.n]
	}
	n, err := p.r.Read(b)
	p.h.Write(b[:n])
	if p.sm3 != nil {
		p.sm3.write(b[:n])
	}
	p.n += int64(n)
	switch {
	case p.opts.MaxSize > 0 && p.n > p.opts.MaxSize:
		p.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, p.opts.MaxSize)
	case p.opts.Size > 0 && p.n > p.opts.Size:
		p.err = fmt.Errorf("%w: more than the declared %d bytes", ErrSizeMismatch, p.opts.Size)
	case err == io.EOF:
		p.err = p.finish()
	case err != nil:
		p.err = err
	}
	if p.err != nil && p.err != io.EOF {
		return 0, p.err // withhold the bytes of a refused stream
	}
	return n, p.err
}

// finish checks the declarations once the stream has ended.
func (p *PutReader) finish() error {
	p.sum = hex.EncodeToString(p.h.Sum(nil))
	if p.sm3 != nil {
		p.sum3 = p.sm3.finish()
	}
	if p.opts.Size > 0 && p.n != p.opts.Size {
		return fmt.Errorf("%w: got %d bytes, declared %d", ErrSizeMismatch, p.n, p.opts.Size)
	}
	if p.opts.SHA256 != "" && p.sum != p.opts.SHA256 {
		return fmt.Errorf("%w: declared sha256 %s, got %s", ErrDigestMismatch, p.opts.SHA256, p.sum)
	}
	if p.opts.Ended != nil {
		p.opts.Ended(Info{SHA256: p.sum, SM3: p.sum3, Size: p.n})
	}
	return io.EOF
}

// Done reports whether the stream ended cleanly: read to EOF with every
// declaration holding.
func (p *PutReader) Done() bool { return p.err == io.EOF }

// SHA256 returns the stream's digest (lowercase hex); valid once Done.
func (p *PutReader) SHA256() string { return p.sum }

// SM3 returns the stream's SM3 digest (lowercase hex) if PutOptions.SM3
// asked for it; valid once Done.
func (p *PutReader) SM3() string { return p.sum3 }

// Close releases the SM3 hasher of a stream not read to its end. Drivers
// call it when Put returns; it is a no-op once the stream ended.
func (p *PutReader) Close() {
	if p.sm3 != nil {
		p.sm3.close()
	}
}

// Size returns the number of bytes read so far.
func (p *PutReader) Size() int64 { return p.n }

// Discard reads the rest of the stream, checking it as Read does, for a
// Put whose object is already stored. It stops early when ctx is done.
func (p *PutReader) Discard(ctx context.Context) error {
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := p.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
