package s3

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"tongban/storage"
)

func TestReadAhead(t *testing.T) {
	data := make([]byte, 3*raChunkSize+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, size := range []int{0, 1, raChunkSize, len(data)} {
		r := newBody(io.NopCloser(iotest.HalfReader(bytes.NewReader(data[:size]))), int64(size))
		got, err := io.ReadAll(iotest.OneByteReader(r))
		if err != nil || !bytes.Equal(got, data[:size]) {
			t.Errorf("size %d: read %d bytes, %v", size, len(got), err)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestReadAheadBrokenBody checks that a transfer cut short is reported as
// ErrUnavailable, not as the end of the object (which the verifier would
// then report as corruption).
func TestReadAheadBrokenBody(t *testing.T) {
	for _, cut := range []error{io.ErrUnexpectedEOF, errors.New("connection reset by peer")} {
		for _, size := range []int64{100, 2 * raChunkSize} {
			body := io.MultiReader(bytes.NewReader(make([]byte, size/2)), iotest.ErrReader(cut))
			r := newBody(io.NopCloser(body), size)
			_, err := io.ReadAll(r)
			r.Close()
			if !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, cut) {
				t.Errorf("size %d, cut by %v: ReadAll = %v, want ErrUnavailable", size, cut, err)
			}
		}
	}
}

// TestReadAheadClose checks that closing early stops the goroutine even
// while it waits on the network.
func TestReadAheadClose(t *testing.T) {
	pr, pw := io.Pipe()
	go pw.Write(make([]byte, raChunkSize+1)) // then blocks: the body never ends
	r := newReadAhead(pr)
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	r.Close() // returns only once the goroutine has exited
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, errClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
