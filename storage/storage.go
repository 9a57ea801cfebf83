// Package storage defines the object store behind Tongban: a content-addressed
// store of immutable byte streams named by their SHA-256 digest.
//
// Every implementation hashes while it writes and verifies while it reads, so a
// stream is never made visible under a digest it does not hash to, and bytes
// that changed at rest are never presented as valid. The drivers live in
// subpackages: storage/fs (local files, the embedded default) and storage/s3
// (any S3-compatible server, through minio-go). storage/storagetest holds the
// conformance suite both pass.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Errors returned by every Store, possibly wrapped: test them with errors.Is.
// The comment after each names the HTTP status the API answers with.
var (
	ErrNotFound       = errors.New("storage: object not found")               // 404
	ErrUnavailable    = errors.New("storage: backend unavailable")            // 503, with Retry-After
	ErrTooLarge       = errors.New("storage: object too large")               // 413
	ErrDigestMismatch = errors.New("storage: declared digest does not match") // 422
	ErrSizeMismatch   = errors.New("storage: declared size does not match")   // 422
	ErrInvalidDigest  = errors.New("storage: invalid sha256 digest")          // 400
	ErrCorrupt        = errors.New("storage: stored object is corrupt")       // 500; record integrity.violation
)

// CorruptError reports stored bytes that no longer hash to their name.
// errors.Is(err, ErrCorrupt) holds for it.
type CorruptError struct {
	Want string // the object's name: lowercase hex SHA-256
	Got  string // digest of the bytes actually read; "" if they are missing
}

func (e *CorruptError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("storage: stored object is corrupt: sha256 %s: data missing", e.Want)
	}
	return fmt.Sprintf("storage: stored object is corrupt: want sha256 %s, got %s", e.Want, e.Got)
}

// Is makes errors.Is(err, ErrCorrupt) true for a *CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Info describes a stored object.
type Info struct {
	SHA256   string // lowercase hex; the object's name
	SM3      string // lowercase hex; set only by a Put asked for it (PutOptions.SM3)
	Size     int64
	Modified time.Time // when this copy was stored (from Put, possibly the time of that Put)
}

// PutOptions are the limits and declarations checked while a stream is stored.
// The zero value stores a stream of unknown length with no limit.
type PutOptions struct {
	// Size is the stream's length when known in advance. -1 (or 0, so that the
	// zero value is safe) means unknown. A stream of another length fails with
	// ErrSizeMismatch and stores nothing.
	Size int64
	// MaxSize is the largest stream accepted; 0 means no limit. A longer stream
	// fails with ErrTooLarge after reading at most MaxSize+1 bytes, and stores nothing.
	MaxSize int64
	// SHA256 is an optional declared digest (lowercase hex). A stream that does
	// not hash to it fails with ErrDigestMismatch and stores nothing.
	SHA256 string
	// BeforePublish, if set, is called once with the object's digest before
	// Put looks for a stored copy or makes this one visible: once the stream
	// is read and checked, or at the start for a declared SHA256. An error
	// from it fails the Put, which then stores nothing. A caller that keeps
	// objects from a concurrent collector claims the digest here: a Delete
	// that starts after BeforePublish returned cannot remove what a
	// successful Put reports stored.
	BeforePublish func(sha256 string) error
	// SM3 asks Put to compute the stream's SM3 digest (GB/T 32905) in the
	// same pass as its SHA-256, and return it in Info.SM3: the gm crypto
	// profile. The object is still named by its SHA-256.
	SM3 bool
	// Ended, if set, is called once the stream has been read to its end
	// with every declaration holding, with its SHA256, SM3 (if asked for)
	// and Size: what a successful Put will report, known before the object
	// is published. The Put may still fail after it.
	Ended func(Info)
}

// Check validates the options themselves, before any byte is read.
func (o PutOptions) Check() error {
	if o.SHA256 != "" && !ValidSHA256(o.SHA256) {
		return fmt.Errorf("%w: declared %q", ErrInvalidDigest, o.SHA256)
	}
	if o.MaxSize > 0 && o.Size > o.MaxSize {
		return fmt.Errorf("%w: declared size %d exceeds limit %d", ErrTooLarge, o.Size, o.MaxSize)
	}
	return nil
}

// Store is a content-addressed object store. All methods are safe for
// concurrent use.
type Store interface {
	// Put stores the stream r and returns its digest and size. Storing bytes
	// that are already present is not an error and does not store them twice.
	// Until Put returns successfully nothing is visible under the digest, and
	// after a failure nothing is left behind.
	Put(ctx context.Context, r io.Reader, opts PutOptions) (Info, error)
	// Open returns a reader of the object that verifies it while streaming:
	// if the bytes do not hash to sha256, Read returns a *CorruptError instead
	// of io.EOF. ctx bounds the whole read, not just the call. The caller must
	// Close the reader.
	Open(ctx context.Context, sha256 string) (io.ReadCloser, Info, error)
	// Stat describes an object without reading or verifying it.
	Stat(ctx context.Context, sha256 string) (Info, error)
	// Delete removes an object; ErrNotFound if there was none.
	Delete(ctx context.Context, sha256 string) error
	// List calls fn for every object, in no particular order, for garbage
	// collection and scrubs. An error from fn stops the listing and is returned.
	List(ctx context.Context, fn func(Info) error) error
	// Ping reports whether the backend can serve requests (for /readyz):
	// ErrUnavailable when it cannot be reached.
	Ping(ctx context.Context) error
}

// Sweeper is implemented by stores that can leave internal garbage behind
// after a crash (temporary files, incomplete uploads). Sweep removes such
// garbage older than olderThan; it never touches objects visible through List.
type Sweeper interface {
	Sweep(ctx context.Context, olderThan time.Duration) error
}

// ValidSHA256 reports whether s is a digest as objects are named: 64 lowercase
// hex characters. Drivers check names with it before they reach a path or key.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckSHA256 returns an error wrapping ErrInvalidDigest unless ValidSHA256(s).
func CheckSHA256(s string) error {
	if !ValidSHA256(s) {
		return fmt.Errorf("%w: %q", ErrInvalidDigest, s)
	}
	return nil
}
