package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
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
	for _, n := range []int{0, 3, 256<<10 - 1, 256 << 10, 3<<20 + 17} {
		data := bytes.Repeat([]byte("通办gm"), n/8+1)[:n]
		want := sm3.Sum(data)
		for name, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(bytes.NewReader(data)),
			"whole":    bytes.NewReader(data),
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

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
