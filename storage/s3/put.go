package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"

	"tongban/storage"
)

// Buffer classes: a Put reads its stream into a buffer of the smallest
// class, and moves to the next (4x) as the stream turns out longer, up to
// a part. The many small documents thus hold little memory each.
const (
	minBuf    = 64 << 10
	bufGrowth = 4
)

// cleanupTimeout bounds the removal of a failed upload's remains; it runs
// even when the caller's context is done.
const cleanupTimeout = 30 * time.Second

// Put implements storage.Store. A stream that fits in a part costs one
// request when new: a PUT that succeeds only if the key does not exist.
func (s *Store) Put(ctx context.Context, r io.Reader, opts storage.PutOptions) (info storage.Info, err error) {
	pr, err := storage.NewPutReader(r, opts)
	if err != nil {
		return storage.Info{}, err
	}
	defer func() { // the gm profile's digest, from the same pass (every success read the stream to its end)
		pr.Close()
		if err == nil {
			info.SM3 = pr.SM3()
		}
	}()
	claim := opts.BeforePublish
	if opts.SHA256 != "" && claim != nil {
		// Before the lookup below, which must not be outdated by a collector.
		if err := claim(opts.SHA256); err != nil {
			return storage.Info{}, err
		}
		claim = nil
	}
	l := s.mem.lease()
	defer l.release()
	buf, err := s.readPart(ctx, l, pr)
	if err != nil {
		return storage.Info{}, fmt.Errorf("storage/s3: put: %w", err)
	}
	defer func() { s.putBuf(buf, err) }()
	if pr.Done() { // pr only ends with EOF when every check held
		if claim != nil {
			if err := claim(pr.SHA256()); err != nil {
				return storage.Info{}, err
			}
		}
		return s.putSmall(ctx, pr.SHA256(), *buf)
	}
	if opts.SHA256 != "" {
		// Already stored: check the rest of the stream against its
		// declaration without uploading it again.
		e, err := s.head(ctx, opts.SHA256)
		if err == nil {
			if err := pr.Discard(ctx); err != nil {
				return storage.Info{}, fmt.Errorf("storage/s3: put: %w", err)
			}
			return e.info, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return storage.Info{}, err
		}
	}
	return s.putLarge(ctx, l, pr, *buf, claim)
}

// readPart reads the stream into pooled buffers of growing class until it
// ends or fills a part. The result is a pooled buffer sliced to what was
// read, whose capacity is on l; if the stream has not ended (!pr.Done())
// it is a full part.
func (s *Store) readPart(ctx context.Context, l *lease, pr *storage.PutReader) (*[]byte, error) {
	var bp *[]byte
	n := 0
	for c := 0; c < len(s.bufs); c++ {
		size := s.bufSize(c)
		if err := l.grow(ctx, int64(size)); err != nil {
			if bp != nil {
				s.putBuf(bp, nil)
			}
			return nil, err
		}
		nb := s.bufs[c].Get().(*[]byte)
		if bp != nil {
			copy(*nb, (*bp)[:n])
			s.putBuf(bp, nil)
			l.shrink(int64(cap(*bp)))
		}
		bp = nb
		m, err := io.ReadFull(pr, (*bp)[n:size])
		n += m
		switch err {
		case nil: // full: try the next class
		case io.EOF, io.ErrUnexpectedEOF:
			*bp = (*bp)[:n]
			return bp, nil
		default:
			s.putBuf(bp, nil)
			return nil, err
		}
	}
	return bp, nil // a full part; the stream goes on
}

// bufSize is the size of buffers of class c; the last class is a part.
func (s *Store) bufSize(c int) int {
	if c == len(s.bufs)-1 {
		return int(s.partSize)
	}
	size := minBuf
	for range c {
		size *= bufGrowth
	}
	return size
}

// bufClasses is the number of buffer classes for a part size: sizes
// minBuf, minBuf*bufGrowth, ... below the part size, then the part size.
func bufClasses(partSize int64) int {
	n := 1
	for size := int64(minBuf); size < partSize; size *= bufGrowth {
		n++
	}
	return n
}

// getPart takes a part buffer from the pool.
func (s *Store) getPart() *[]byte { return s.bufs[len(s.bufs)-1].Get().(*[]byte) }

// putBuf returns a buffer to its class's pool after a successful request
// only: after a failed one net/http may still be reading it.
func (s *Store) putBuf(bp *[]byte, err error) {
	if err != nil || bp == nil {
		return
	}
	*bp = (*bp)[:cap(*bp)]
	for c := range s.bufs {
		if s.bufSize(c) == cap(*bp) {
			s.bufs[c].Put(bp)
			return
		}
	}
}

// putSmall stores a stream that fit in memory with one PUT under its name,
// on the condition that the key does not exist yet: a 412 means the same
// bytes are stored already, by an earlier Put or one racing this one.
// (A server that ignores the condition just rewrites identical bytes.)
func (s *Store) putSmall(ctx context.Context, sum string, data []byte) (storage.Info, error) {
	digest, _ := hex.DecodeString(sum)
	opts := minio.PutObjectOptions{
		UserMetadata:         map[string]string{"X-Amz-Checksum-Sha256": base64.StdEncoding.EncodeToString(digest)},
		DisableContentSha256: true, // the checksum header already covers the payload
	}
	opts.SetMatchETagExcept("*")
	err := s.putIfAbsent(ctx, objKey(sum), data, opts)
	if err != nil && minio.ToErrorResponse(err).StatusCode != http.StatusPreconditionFailed {
		return storage.Info{}, fail("put", err)
	}
	return storage.Info{SHA256: sum, Size: int64(len(data)), Modified: time.Now()}, nil
}

// putIfAbsent sends a conditional PUT, retrying while the server answers
// 409: AWS does while another conditional write of the key is in flight.
func (s *Store) putIfAbsent(ctx context.Context, key string, data []byte, opts minio.PutObjectOptions) error {
	for attempt := 1; ; attempt++ {
		_, err := s.core.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), "", "", opts)
		if minio.ToErrorResponse(err).StatusCode != http.StatusConflict || attempt == 5 {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// putLarge uploads a stream longer than a part to a new blob, then names it.
// first is a full part; claim, if not nil, is called before the naming.
func (s *Store) putLarge(ctx context.Context, l *lease, pr *storage.PutReader, first []byte, claim func(string) error) (storage.Info, error) {
	id := newBlobID()
	key := blobKey(id)
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{
		UserMetadata: map[string]string{"X-Amz-Checksum-Algorithm": "CRC32C"},
	})
	if err != nil {
		return storage.Info{}, fail("put", err)
	}
	parts, err := s.uploadParts(ctx, l, key, uploadID, pr, first)
	if err == nil {
		_, err = s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, parts, minio.PutObjectOptions{})
		if err != nil {
			s.remove(ctx, key) // in case it completed but the answer was lost
			err = fail("put", err)
		}
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		s.core.AbortMultipartUpload(cctx, s.bucket, key, uploadID) // if it fails, Sweep will
		return storage.Info{}, err
	}
	if claim != nil {
		if err := claim(pr.SHA256()); err != nil {
			s.remove(ctx, key)
			return storage.Info{}, err
		}
	}
	return s.link(ctx, pr.SHA256(), pr.Size(), id)
}

// uploadParts reads the stream part by part into two buffers: while one is
// being sent by a second goroutine, the caller's goroutine reads the next
// one, hashing it into the stream's digest as it reads, and takes the part's
// checksum. Sending a part thus never waits for a hash.
func (s *Store) uploadParts(ctx context.Context, l *lease, key, uploadID string, pr *storage.PutReader, first []byte) ([]minio.CompletePart, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type job struct {
		num int
		buf []byte
		sum []byte
	}
	if err := l.grow(ctx, s.partSize); err != nil {
		return nil, fmt.Errorf("storage/s3: put: %w", err)
	}
	jobs := make(chan job)
	free := make(chan []byte, 2) // room for both buffers: the sender never blocks
	sent := make(chan error, 1)
	var parts []minio.CompletePart
	go func() {
		var err error
		for j := range jobs {
			if err == nil {
				var p minio.CompletePart
				if p, err = s.putPart(ctx, key, uploadID, j.num, j.buf, j.sum); err != nil {
					cancel(err)
				}
				parts = append(parts, p)
			}
			free <- j.buf[:cap(j.buf)]
		}
		sent <- err
	}()

	var err error
	bp := s.getPart()
	free <- *bp
	defer func() { s.putBuf(bp, err) }()

	var readErr error
	buf := first
	for num := 1; ; num++ {
		select {
		case jobs <- job{num, buf, crc32c(buf)}:
		case <-ctx.Done():
			readErr = context.Cause(ctx)
		}
		if readErr != nil || pr.Done() {
			break
		}
		select {
		case buf = <-free:
		case <-ctx.Done():
			readErr = context.Cause(ctx)
		}
		if readErr != nil {
			break
		}
		n, err := io.ReadFull(pr, buf)
		if err == io.EOF {
			break // the stream ended with the previous part
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			readErr = err
			break
		}
		buf = buf[:n]
	}
	close(jobs)
	if err = <-sent; err != nil {
		return nil, fail("put", err)
	}
	if err = readErr; err != nil {
		return nil, fmt.Errorf("storage/s3: put: %w", err)
	}
	return parts, nil
}

// putPart sends one part with its CRC32C (sum) in a signed header, for the
// server to verify. The payload itself is sent unsigned: signing it would
// make both sides hash every byte with SHA-256 once more.
func (s *Store) putPart(ctx context.Context, key, uploadID string, num int, buf []byte, sum []byte) (minio.CompletePart, error) {
	b64 := base64.StdEncoding.EncodeToString(sum)
	p, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, num, bytes.NewReader(buf), int64(len(buf)), minio.PutObjectPartOptions{
		CustomHeader:         http.Header{"X-Amz-Checksum-Crc32c": {b64}},
		DisableContentSha256: true,
	})
	return minio.CompletePart{PartNumber: num, ETag: p.ETag, ChecksumCRC32C: b64}, err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is b's CRC32C checksum as S3 wants it: big-endian, 4 bytes.
func crc32c(b []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, castagnoli))
}

// link names a complete blob: it writes the pointer unless the object
// exists, and removes the blob if another Put of the same bytes won.
// If-None-Match makes the race between two such Puts lose nothing on
// servers that support conditional writes; reading the pointer back keeps
// the result correct (if possibly leaving a blob for Sweep) on those that do not.
func (s *Store) link(ctx context.Context, sum string, size int64, id string) (storage.Info, error) {
	e, err := s.head(ctx, sum)
	if err == nil {
		s.remove(ctx, blobKey(id)) // already stored
		return e.info, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		s.remove(ctx, blobKey(id))
		return storage.Info{}, err
	}
	opts := minio.PutObjectOptions{
		UserMetadata: map[string]string{
			metaBlob: id,
			metaSize: strconv.FormatInt(size, 10),
		},
		// minio-go would sign the empty body as an aws-chunked stream, whose
		// final chunk VersityGW leaves unread: on a kept-alive connection
		// the next request then fails with 400.
		DisableContentSha256: true,
	}
	opts.SetMatchETagExcept("*")
	err = s.putIfAbsent(ctx, objKey(sum), nil, opts)
	if err != nil && minio.ToErrorResponse(err).StatusCode != http.StatusPreconditionFailed {
		// The pointer may have been written all the same: leave the blob
		// for Sweep, which removes it only if nothing names it.
		return storage.Info{}, fail("put pointer", err)
	}
	e, err = s.head(ctx, sum)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Deleted meanwhile (a collector that did not see a claim): the
		// object is not there, so this Put must not report it stored.
		s.remove(ctx, blobKey(id))
		return storage.Info{}, fmt.Errorf("%w: s3: object %s vanished while being stored; retry", storage.ErrUnavailable, sum)
	case err != nil:
		return storage.Info{}, err // the pointer may name our blob: keep it
	case e.blob != id:
		s.remove(ctx, blobKey(id)) // another Put of the same bytes won
	}
	return e.info, nil
}

// remove deletes a key on a best-effort basis, even when ctx is done; what it
// fails to remove is left for Sweep.
func (s *Store) remove(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
}

func newBlobID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validBlobID(id string) bool {
	_, err := hex.DecodeString(id)
	return len(id) == 32 && err == nil
}
