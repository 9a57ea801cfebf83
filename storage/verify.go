package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// VerifyReader returns a reader of rc's bytes that hashes them as they pass
// and, when rc ends, returns io.EOF only if they hashed to want and numbered
// size; otherwise it returns a *CorruptError, so the caller never sees a
// clean end of altered bytes. Errors from rc are passed through.
//
// It implements io.WriterTo so that io.Copy moves large chunks.
func VerifyReader(rc io.ReadCloser, want string, size int64) io.ReadCloser {
	return &verifier{rc: rc, want: want, size: size, h: sha256.New()}
}

type verifier struct {
	rc   io.ReadCloser
	want string
	size int64
	n    int64
	h    hash.Hash
	err  error // sticky
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if n > 0 {
			return n, nil // report the end on the next call, after checking
		}
		err = v.check()
	}
	v.err = err
	return n, err
}

// check compares what was read with the object's name and recorded size.
func (v *verifier) check() error {
	got := hex.EncodeToString(v.h.Sum(nil))
	if got != v.want || v.n != v.size {
		return &CorruptError{Want: v.want, Got: got}
	}
	return io.EOF
}

// verifyChunk is the buffer WriteTo reads into; large enough that hashing,
// not call overhead, dominates.
const verifyChunk = 256 << 10

func (v *verifier) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, verifyChunk)
	var written int64
	for {
		n, err := v.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
		}
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, err
		}
	}
}

func (v *verifier) Close() error { return v.rc.Close() }
