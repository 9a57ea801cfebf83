package storage_test

import (
	"crypto/sha256"
	"hash"
	"io"
	"testing"

	"github.com/emmansun/gmsm/sm3"

	"tongban/storage"
)

// BenchmarkHash is the gm profile's cost per byte: SHA-256 alone, SM3
// alone, and the PutReader hashing both in one pass, over 1 MiB buffers
// (the size a driver reads). Compare the MB/s of the three in one run.
func BenchmarkHash(b *testing.B) {
	for _, c := range []struct {
		name string
		h    func() hash.Hash
	}{{"sha256", sha256.New}, {"sm3", sm3.New}} {
		b.Run(c.name, func(b *testing.B) {
			h := c.h()
			b.SetBytes(int64(len(block)))
			for b.Loop() {
				h.Write(block)
			}
		})
	}
	for _, gm := range []bool{false, true} {
		name := "putreader"
		if gm {
			name = "putreader-gm"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(block)))
			pr, err := storage.NewPutReader(endless{}, storage.PutOptions{SM3: gm})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, len(block))
			for b.Loop() {
				if _, err := io.ReadFull(pr, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// endless reads block over and over, at no cost.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return copy(p, block), nil }
