// Package s3 is the S3 driver of tongban/storage, for any S3-compatible
// server (AWS, MinIO, VersityGW, Ceph RGW), through minio-go.
//
// # Layout
//
// An object is named by the key "sha256/<digest>". S3 has no rename and a key
// is fixed when an upload starts, so a stream whose digest is unknown until
// its end cannot be uploaded under its name. Two layouts follow:
//
//   - A stream that fits in one part (PartSize, 16 MiB by default) is read
//     into memory, hashed, and stored by a single PUT at "sha256/<digest>",
//     conditional on the key being absent (If-None-Match: *): one request
//     for a new object, and a 412 for one already stored.
//   - A longer stream is uploaded in parts to "blob/<random id>"; once it is
//     complete and hashed, "sha256/<digest>" is written as an empty pointer
//     object whose metadata names the blob and its size.
//
// The pointer costs one more small request per read of a large object. The
// alternative, a server-side copy from a temporary key, rewrites every large
// object once more: measured on VersityGW it made uploads about 0.6x as fast
// as a plain upload, against the 0.85x required.
//
// # Memory
//
// A Put reads its stream into a pooled buffer of 64 KiB and moves to one
// four times larger each time it fills, up to a part: a small document
// holds about its own size, a long stream two parts. All Puts together
// hold at most Config.MaxBufferMemory (plus one Put's two parts, so that
// Puts each holding some of it never wait on each other forever); a Put
// that would exceed it waits before reading more of its stream.
//
// Every single PUT carries an x-amz-checksum-sha256 header (its name's
// digest, known already) and every part an x-amz-checksum-crc32c one, so
// the server verifies the bytes it receives as well; reads are verified by
// the client while streaming. A part's checksum only guards the transfer
// (the object's SHA-256 is checked end to end), and CRC32C costs both sides
// a small fraction of a second SHA-256 pass over every byte.
//
// Blobs no pointer names (left by a crash between the upload and the pointer
// write) and incomplete uploads are invisible to List; Sweep removes them.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"tongban/storage"
)

// Part sizes. The default bounds a Put's memory to two parts (32 MiB)
// whatever the stream's length; minio-go's own default for an unknown
// length would allocate 537 MiB per upload. DefaultMaxBufferMemory bounds
// all Puts' buffers together.
const (
	DefaultPartSize = 16 << 20
	MinPartSize     = 5 << 20 // S3's minimum for every part but the last
	maxPartSize     = 5 << 30

	DefaultMaxBufferMemory = 512 << 20

	maxIdleConns = 256 // kept-alive connections to the server
)

// Key layout inside the bucket.
const (
	objPrefix  = "sha256/"
	blobPrefix = "blob/"
	metaBlob   = "Tongban-Blob" // pointer metadata: the blob's id
	metaSize   = "Tongban-Size" // pointer metadata: the blob's size
)

// emptySHA256 names the empty object, the one object of size 0 that is not a pointer.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Config locates the bucket. Zero values mean defaults.
type Config struct {
	Endpoint  string // host:port, without scheme
	AccessKey string
	SecretKey string
	Bucket    string // created if missing
	Secure    bool   // TLS
	Region    string // "" lets minio-go discover it
	// PartSize is the size of each part of a multipart upload, and the
	// largest object stored with a single PUT. A Put holds at most two parts
	// in memory. 0 means DefaultPartSize; at least MinPartSize.
	PartSize int64
	// MaxBufferMemory bounds the buffers all Puts hold at once; a Put that
	// would exceed it waits. At least two parts; 0 means
	// DefaultMaxBufferMemory, or two parts if more. It can be exceeded by at
	// most one Put's two parts, so that Puts each holding some of it never
	// wait on each other forever.
	MaxBufferMemory int64
	// MaxRetries bounds minio-go's retries of a failed request, with
	// exponential backoff (0: minio-go's default, 10). It sets how long a
	// call keeps trying before it reports ErrUnavailable.
	MaxRetries int
}

// Store is a storage.Store on an S3 bucket.
type Store struct {
	client   *minio.Client
	core     *minio.Core
	bucket   string
	partSize int64
	bufs     []sync.Pool // *[]byte by size class, smallest first; see readPart
	mem      *budget
}

var _ storage.Store = (*Store)(nil)
var _ storage.Sweeper = (*Store)(nil)

// Open connects to the server and creates the bucket if it does not exist.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("storage/s3: endpoint and bucket are required")
	}
	if strings.Contains(cfg.Endpoint, "://") {
		return nil, fmt.Errorf("storage/s3: endpoint %q: want host:port without scheme", cfg.Endpoint)
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize || partSize > maxPartSize {
		return nil, fmt.Errorf("storage/s3: part size %d out of range [%d, %d]", partSize, MinPartSize, maxPartSize)
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("storage/s3: %w", err)
	}
	// minio-go keeps 16 idle connections to the server; concurrent uploads,
	// each with a few requests under way, need more, or every request past
	// the 16th opens (and then closes) a connection of its own.
	tr.MaxIdleConnsPerHost = maxIdleConns
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: tr,
		// Required by minio-go for requests that carry x-amz-checksum-* headers.
		TrailingHeaders: true,
		MaxRetries:      cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("storage/s3: %w", err)
	}
	maxMem := cfg.MaxBufferMemory
	if maxMem == 0 {
		maxMem = max(DefaultMaxBufferMemory, 2*partSize)
	}
	if maxMem < 2*partSize {
		return nil, fmt.Errorf("storage/s3: buffer memory %d below two parts (%d)", maxMem, 2*partSize)
	}
	s := &Store{client: client, core: &minio.Core{Client: client}, bucket: cfg.Bucket, partSize: partSize, mem: newBudget(maxMem)}
	s.bufs = make([]sync.Pool, bufClasses(partSize))
	for c := range s.bufs {
		size := s.bufSize(c)
		s.bufs[c].New = func() any { b := make([]byte, size); return &b }
	}

	exists, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fail("open", err)
	}
	if !exists {
		err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			err = nil // created concurrently
		}
		if err != nil {
			return nil, fail("create bucket", err)
		}
	}
	return s, nil
}

func objKey(sum string) string { return objPrefix + sum }
func blobKey(id string) string { return blobPrefix + id }

// entry is what an object key holds: the bytes themselves (blob == "") or a
// pointer to the blob that holds them.
type entry struct {
	info storage.Info
	blob string
}

// parseEntry reads an object key's metadata.
func parseEntry(sum string, oi minio.ObjectInfo) (entry, error) {
	e := entry{info: storage.Info{SHA256: sum, Size: oi.Size, Modified: oi.LastModified}}
	blob := userMeta(oi, metaBlob)
	if blob == "" {
		return e, nil
	}
	size, err := strconv.ParseInt(userMeta(oi, metaSize), 10, 64)
	if err != nil || size < 0 || !validBlobID(blob) {
		return entry{}, &storage.CorruptError{Want: sum} // a garbled pointer
	}
	e.blob, e.info.Size = blob, size
	return e, nil
}

// userMeta looks a metadata key up regardless of how the server cased it.
func userMeta(oi minio.ObjectInfo, key string) string {
	for k, v := range oi.UserMetadata {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// head reads an object key's metadata.
func (s *Store) head(ctx context.Context, sum string) (entry, error) {
	oi, err := s.client.StatObject(ctx, s.bucket, objKey(sum), minio.StatObjectOptions{})
	if err != nil {
		return entry{}, fail("stat", err)
	}
	return parseEntry(sum, oi)
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, sum string) (storage.Info, error) {
	if err := storage.CheckSHA256(sum); err != nil {
		return storage.Info{}, err
	}
	e, err := s.head(ctx, sum)
	return e.info, err
}

// Open implements storage.Store. Reading the object's key returns its bytes
// or, for a pointer, an empty body and the blob to read next.
func (s *Store) Open(ctx context.Context, sum string) (io.ReadCloser, storage.Info, error) {
	if err := storage.CheckSHA256(sum); err != nil {
		return nil, storage.Info{}, err
	}
	var missing string // a blob already found missing once
	for {
		body, oi, _, err := s.core.GetObject(ctx, s.bucket, objKey(sum), minio.GetObjectOptions{})
		if err != nil {
			return nil, storage.Info{}, fail("open", err)
		}
		e, err := parseEntry(sum, oi)
		if err != nil {
			body.Close()
			return nil, storage.Info{}, err
		}
		if e.blob == "" {
			return storage.VerifyReader(newBody(body, e.info.Size), sum, e.info.Size), e.info, nil
		}
		body.Close() // the pointer's empty body
		body, _, _, err = s.core.GetObject(ctx, s.bucket, blobKey(e.blob), minio.GetObjectOptions{})
		switch {
		case err == nil:
			return storage.VerifyReader(newBody(body, e.info.Size), sum, e.info.Size), e.info, nil
		case !isNotFound(err):
			return nil, storage.Info{}, fail("open", err)
		case e.blob == missing:
			return nil, storage.Info{}, &storage.CorruptError{Want: sum} // the pointer names nothing
		}
		// A concurrent Put may have replaced the pointer and removed the blob
		// it named, or a Delete removed both: look once more.
		missing = e.blob
	}
}

// Delete implements storage.Store. The pointer goes first: once it is
// removed the object is gone, and a blob that then fails to be removed is
// left for Sweep rather than reported, never a pointer to nothing.
func (s *Store) Delete(ctx context.Context, sum string) error {
	if err := storage.CheckSHA256(sum); err != nil {
		return err
	}
	e, err := s.head(ctx, sum)
	var ce *storage.CorruptError
	if err != nil && !errors.As(err, &ce) {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, objKey(sum), minio.RemoveObjectOptions{}); err != nil {
		return fail("delete", err)
	}
	if e.blob != "" {
		s.remove(ctx, blobKey(e.blob))
	}
	return nil
}

// List implements storage.Store. Pointers list with size 0, so their size is
// read from their metadata: one request per object larger than a part.
func (s *Store) List(ctx context.Context, fn func(storage.Info) error) error {
	return s.ListFrom(ctx, "", fn)
}

// ListFrom is List in digest order from just after the digest after ("":
// from the start), so that a long listing stopped part-way can resume
// where it stopped instead of from the beginning. minio-go pages through
// the bucket with continuation tokens meanwhile.
func (s *Store) ListFrom(ctx context.Context, after string, fn func(storage.Info) error) error {
	opts := minio.ListObjectsOptions{Prefix: objPrefix, Recursive: true}
	if after != "" {
		if err := storage.CheckSHA256(after); err != nil {
			return err
		}
		opts.StartAfter = objKey(after)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine on an early return
	for oi := range s.client.ListObjects(ctx, s.bucket, opts) {
		if oi.Err != nil {
			return fail("list", oi.Err)
		}
		sum := strings.TrimPrefix(oi.Key, objPrefix)
		if !storage.ValidSHA256(sum) {
			continue // not ours
		}
		info := storage.Info{SHA256: sum, Size: oi.Size, Modified: oi.LastModified}
		if oi.Size == 0 && sum != emptySHA256 {
			e, err := s.head(ctx, sum)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted while listing
			}
			if err != nil {
				return err
			}
			info = e.info
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Ping implements storage.Store with a HEAD of the bucket.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fail("ping", err)
	}
	if !ok {
		return fmt.Errorf("%w: storage/s3: bucket %q does not exist", storage.ErrUnavailable, s.bucket)
	}
	return nil
}
