// Package fs is the filesystem driver of tongban/storage, the embedded
// default: each object is one read-only file, DIR/objects/ab/cd/<sha256>.
//
// A Put streams into a temporary file in DIR/tmp (same filesystem), fsyncs
// it, renames it into place and fsyncs the directory, so an object is
// either absent or complete and durable under its name, even across a crash.
// A crash can leave only temporary files, which Open and Sweep remove.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"tongban/internal/durable"
	"tongban/storage"
)

// staleTemp is how old a temporary file must be before Open removes it: old
// enough that no Put of a live process can still be writing it.
const staleTemp = time.Hour

const (
	dirPerm  = 0o750
	filePerm = 0o440 // objects are immutable; group read for backup tools
)

// Store is a storage.Store on a local directory.
type Store struct {
	objects string // DIR/objects
	tmp     string // DIR/tmp
}

var _ storage.Store = (*Store)(nil)
var _ storage.Sweeper = (*Store)(nil)

// Open opens (creating if needed) a store in dir and removes temporary files
// that crashed writers left behind.
func Open(dir string) (*Store, error) {
	s := &Store{objects: filepath.Join(dir, "objects"), tmp: filepath.Join(dir, "tmp")}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return nil, fmt.Errorf("storage/fs: open: %w", err)
		}
	}
	if err := s.Sweep(context.Background(), staleTemp); err != nil {
		return nil, err
	}
	return s, nil
}

// path is where the object named sum lives; sum must be valid.
func (s *Store) path(sum string) string {
	return filepath.Join(s.objects, sum[0:2], sum[2:4], sum)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Put implements storage.Store.
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
	if opts.SHA256 != "" {
		if claim != nil {
			if err := claim(opts.SHA256); err != nil {
				return storage.Info{}, err
			}
			claim = nil
		}
		// Already stored: verify the stream against the declaration without
		// writing it again.
		if info, err := s.Stat(ctx, opts.SHA256); err == nil {
			if err := pr.Discard(ctx); err != nil {
				return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
			}
			return info, nil
		}
	}

	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := copyCtx(ctx, f, pr); err != nil {
		return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
	}
	if err := f.Chmod(filePerm); err != nil {
		return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
	}
	if err := f.Sync(); err != nil {
		return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
	}

	sum := pr.SHA256()
	if claim != nil {
		if err := claim(sum); err != nil {
			return storage.Info{}, err
		}
	}
	if info, err := s.Stat(ctx, sum); err == nil {
		os.Remove(tmp) // already stored: keep the existing copy
		return info, nil
	}
	final := s.path(sum)
	if err := s.mkdirs(filepath.Dir(final)); err != nil {
		return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(final)); err != nil {
		return storage.Info{}, fmt.Errorf("storage/fs: put: %w", err)
	}
	return s.Stat(ctx, sum)
}

// mkdirs creates the two shard levels under objects, fsyncing each parent
// whose entries changed so that the new directories survive a crash.
func (s *Store) mkdirs(dir string) error {
	parent := filepath.Dir(dir)
	for _, d := range []string{parent, dir} {
		err := os.Mkdir(d, dirPerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := durable.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// Open implements storage.Store.
func (s *Store) Open(ctx context.Context, sum string) (io.ReadCloser, storage.Info, error) {
	if err := storage.CheckSHA256(sum); err != nil {
		return nil, storage.Info{}, err
	}
	f, err := os.Open(s.path(sum))
	if err != nil {
		return nil, storage.Info{}, s.fail("open", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, storage.Info{}, s.fail("open", err)
	}
	info := storage.Info{SHA256: sum, Size: fi.Size(), Modified: fi.ModTime()}
	return storage.VerifyReader(&ctxFile{ctx, f}, sum, fi.Size()), info, nil
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, sum string) (storage.Info, error) {
	if err := storage.CheckSHA256(sum); err != nil {
		return storage.Info{}, err
	}
	fi, err := os.Stat(s.path(sum))
	if err != nil {
		return storage.Info{}, s.fail("stat", err)
	}
	return storage.Info{SHA256: sum, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, sum string) error {
	if err := storage.CheckSHA256(sum); err != nil {
		return err
	}
	p := s.path(sum)
	if err := os.Remove(p); err != nil {
		return s.fail("delete", err)
	}
	if err := durable.SyncDir(filepath.Dir(p)); err != nil {
		return s.fail("delete", err)
	}
	return nil
}

// List implements storage.Store. Files whose name is not a digest in its
// own shard are not objects and are skipped.
func (s *Store) List(ctx context.Context, fn func(storage.Info) error) error {
	return filepath.WalkDir(s.objects, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return s.fail("list", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() || !storage.ValidSHA256(name) || p != s.path(name) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return s.fail("list", err)
		}
		return fn(storage.Info{SHA256: name, Size: fi.Size(), Modified: fi.ModTime()})
	})
}

// Ping implements storage.Store.
func (s *Store) Ping(ctx context.Context) error {
	for _, d := range []string{s.objects, s.tmp} {
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("%w: storage/fs: %w", storage.ErrUnavailable, err)
		}
	}
	return nil
}

// Sweep removes temporary files older than olderThan, left by writers that
// crashed. It implements storage.Sweeper.
func (s *Store) Sweep(ctx context.Context, olderThan time.Duration) error {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("storage/fs: sweep: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(s.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage/fs: sweep: %w", err)
		}
	}
	return nil
}

// fail translates a filesystem error at the edge.
func (s *Store) fail(op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: storage/fs: %s: %w", storage.ErrNotFound, op, err)
	}
	return fmt.Errorf("storage/fs: %s: %w", op, err)
}

// copyCtx copies r to w in large chunks (os.File.ReadFrom would fall back to
// 32 KiB writes for a plain reader), stopping when ctx is done.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ctxFile stops reading an object file once the Open context is done.
type ctxFile struct {
	ctx context.Context
	f   *os.File
}

func (c *ctxFile) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.Read(p)
}

func (c *ctxFile) Close() error { return c.f.Close() }
