package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"tongban/storage"
)

// TestPutReaderSM3: the SM3 digest of a stream read in odd pieces, of
// chunks larger than the hasher's, and of nothing; a stream abandoned
// midway releases its hasher on Close.
func TestPutReaderSM3(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 3, 256<<10 - 1, 256 << 10, 3<<20 + 17} {
		// Random bytes: with a repeating pattern every chunk would be the
		// same, and a chunk hashed twice or reused while queued unseen.
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		want := sm3.Sum(data)
		for name, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(bytes.NewReader(data)),
			"whole":    bytes.NewReader(data),
			"odd":      &oddReader{data: data, rng: rng}, // pieces of 1 B to 700 KiB, across chunk edges
		} {
			if n > 1<<20 && name == "one byte" {
				continue
			}
			pr, err := storage.NewPutReader(r, storage.PutOptions{SM3: true})
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1<<20+5)
			for {
				_, err := pr.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !pr.Done() || pr.SM3() != hex.EncodeToString(want[:]) || pr.SHA256() != hexSHA(data) {
				t.Fatalf("%d bytes, %s: sm3 %s", n, name, pr.SM3())
			}
			pr.Close() // after the end: a no-op
		}
	}
	before := runtime.NumGoroutine()
	for range 50 {
		pr, _ := storage.NewPutReader(bytes.NewReader(make([]byte, 1<<20)), storage.PutOptions{SM3: true})
		pr.Read(make([]byte, 1000))
		pr.Close()
		pr.Close()
		if pr.SM3() != "" {
			t.Fatal("an unfinished stream has an SM3 digest")
		}
	}
	for i := 0; runtime.NumGoroutine() > before+5; i++ {
		if i > 100 {
			t.Fatalf("%d goroutines left after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// oddReader returns data in pieces of random length, and overwrites the
// caller's buffer past each piece, as a reused read buffer would be.
type oddReader struct {
	data []byte
	rng  *rand.Rand
}

func (o *oddReader) Read(p []byte) (int, error) {
	if len(o.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+o.rng.IntN(700<<10))], o.data)
	o.data = o.data[n:]
	for i := n; i < len(p) && i < n+64; i++ {
		p[i] = 0xee
	}
	return n, nil
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
