package storage_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"tongban/storage"
	"tongban/storage/fs"
	"tongban/storage/s3"
	"tongban/storage/s3test"
	"tongban/storage/storagetest"
)

const benchSize = 256 << 20

// block is the random MiB that benchmark streams repeat.
var block = func() []byte {
	b := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{7}).Read(b)
	return b
}()

// blocks is a stream of unknown length (only Read) that costs little to
// produce: copies of block, each stamped with a seed and its index so that
// every stream, and every MiB of it, is distinct. It reads block in place
// and keeps only the stamped head of the current MiB.
type blocks struct {
	seed   uint64
	n, off int64
	head   [16]byte
}

func newBlocks(seed uint64, n int64) io.Reader {
	return &blocks{seed: seed, n: n}
}

func (r *blocks) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	i := int(r.off % int64(len(block)))
	src := block[i:]
	if i < len(r.head) {
		binary.LittleEndian.PutUint64(r.head[0:], r.seed)
		binary.LittleEndian.PutUint64(r.head[8:], uint64(r.off-int64(i)))
		src = r.head[i:]
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	n := copy(p, src)
	r.off += int64(n)
	return n, nil
}

func openS3(b *testing.B, srv *s3test.Server) *s3.Store {
	s, err := s3.Open(b.Context(), s3.Config{
		Endpoint:  srv.Endpoint,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Secure:    srv.Secure,
		Region:    srv.Region,
		Bucket:    srv.NewBucket(b),
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// rawOptions are s3-raw's: minio-go's PutObject as an application would
// call it, with the part size this package uses (its default for an unknown
// length is 537 MiB).
var rawOptions = minio.PutObjectOptions{PartSize: s3.DefaultPartSize}

// BenchmarkPut stores a 256 MiB stream of unknown length. s3-raw is the
// same upload with plain minio-go and no hashing, the bound for s3.
func BenchmarkPut(b *testing.B) {
	srv := s3test.StartInMemory(b)
	ctx := context.Background()
	b.Run("s3", func(b *testing.B) { benchPut(b, openS3(b, srv)) })
	b.Run("s3-raw", func(b *testing.B) {
		c, bucket := srv.Client(), srv.NewBucket(b)
		b.SetBytes(benchSize)
		var seed uint64
		for b.Loop() {
			seed++
			key := fmt.Sprint("raw/", seed)
			if _, err := c.PutObject(ctx, bucket, key, newBlocks(seed, benchSize), -1, rawOptions); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
			b.StartTimer()
		}
	})
	b.Run("fs", func(b *testing.B) {
		s, err := fs.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		benchPut(b, s)
	})
}

func benchPut(b *testing.B, s storage.Store) {
	ctx := context.Background()
	b.SetBytes(benchSize)
	var seed uint64
	for b.Loop() {
		seed++
		info, err := s.Put(ctx, newBlocks(seed, benchSize), storage.PutOptions{Size: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Delete(ctx, info.SHA256)
		b.StartTimer()
	}
}

// BenchmarkGet reads and verifies a 256 MiB object; s3-raw reads it with
// plain minio-go, without verifying.
func BenchmarkGet(b *testing.B) {
	srv := s3test.StartInMemory(b)
	ctx := context.Background()
	b.Run("s3", func(b *testing.B) {
		s := openS3(b, srv)
		info, err := s.Put(ctx, newBlocks(1, benchSize), storage.PutOptions{Size: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(benchSize)
		for b.Loop() {
			rc, _, err := s.Open(ctx, info.SHA256)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	})
	b.Run("s3-raw", func(b *testing.B) {
		c, bucket := srv.Client(), srv.NewBucket(b)
		if _, err := c.PutObject(ctx, bucket, "raw", newBlocks(1, benchSize), -1, rawOptions); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(benchSize)
		for b.Loop() {
			obj, err := c.GetObject(ctx, bucket, "raw", minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, obj); err != nil {
				b.Fatal(err)
			}
			obj.Close()
		}
	})
}

// BenchmarkPutMemory reports how much the heap grows, at its peak, while a
// 1 GiB stream of unknown length is stored on S3 with the default part size.
func BenchmarkPutMemory(b *testing.B) {
	const size = 1 << 30
	srv := s3test.StartInMemory(b)
	s := openS3(b, srv)
	ctx := context.Background()
	b.SetBytes(size)
	var peak uint64
	var seed uint64
	for b.Loop() {
		seed++
		var info storage.Info
		var err error
		growth := storagetest.HeapGrowth(func() {
			info, err = s.Put(ctx, newBlocks(seed, size), storage.PutOptions{Size: -1})
		})
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, growth)
		b.StopTimer()
		s.Delete(ctx, info.SHA256)
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// BenchmarkPutMemorySmall reports how much the heap grows, at its peak,
// while 32 streams of 200 KiB and unknown length (as the gateway stores
// files) are stored on S3 at once with the default part size.
func BenchmarkPutMemorySmall(b *testing.B) {
	const clients, size = 32, 200 << 10
	s := openS3(b, s3test.StartInMemory(b))
	ctx := context.Background()
	b.SetBytes(clients * size)
	var peak uint64
	var seed uint64
	for b.Loop() {
		errs := make(chan error, clients)
		peak = max(peak, storagetest.HeapGrowth(func() {
			var wg sync.WaitGroup
			for range clients {
				seed++
				wg.Go(func() {
					_, err := s.Put(ctx, newBlocks(seed, size), storage.PutOptions{Size: -1})
					errs <- err
				})
			}
			wg.Wait()
		}))
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
