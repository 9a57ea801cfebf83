// Package durable writes files so that they survive a crash: the data is
// written to a uniquely named temporary file beside the final name, synced,
// renamed (or linked) into place, and the directory is synced. After a
// crash the final name holds the old content or the new, never a mix, and
// once a call returns the new content stays.
package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// File is a temporary file beside its final name. Commit publishes it;
// Abort removes it. Deferring Abort right after Create is safe: after a
// Commit it does nothing.
type File struct {
	f     *os.File
	final string
	done  bool
}

// Create starts a file to be published at path with mode perm. Its data
// goes to a temporary file in path's directory (same filesystem, so the
// rename is atomic), named uniquely, so concurrent writers never share one.
func Create(path string, perm fs.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{f: f, final: path}, nil
}

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Commit replaces the final file with this one and makes it durable.
func (f *File) Commit() error { return f.commit(false) }

// CommitNew publishes this file only if the final name does not exist yet;
// an existing file is left untouched and the error matches fs.ErrExist.
func (f *File) CommitNew() error { return f.commit(true) }

func (f *File) commit(exclusive bool) (err error) {
	if f.done {
		return errors.New("durable: " + f.final + ": already committed or aborted")
	}
	f.done = true
	tmp := f.f.Name()
	err = f.f.Sync()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if exclusive {
			err = link(tmp, f.final)
		} else {
			err = os.Rename(tmp, f.final)
		}
	}
	if exclusive || err != nil {
		// After a link the temporary name is a second name for the data:
		// drop it. After a failure it is all that is left: drop it too.
		os.Remove(tmp)
	}
	if err != nil {
		return err
	}
	return SyncDir(filepath.Dir(f.final))
}

// link makes newname a hard link to oldname, failing if newname exists,
// where a rename would replace it. The error names only newname.
func link(oldname, newname string) error {
	err := os.Link(oldname, newname)
	var le *os.LinkError
	if errors.As(err, &le) {
		return &fs.PathError{Op: "create", Path: newname, Err: le.Err}
	}
	return err
}

// Abort discards the temporary file. It does nothing after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.f.Close()
	os.Remove(f.f.Name())
}

// WriteFile replaces path with data, mode perm, atomically and durably.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, false)
}

// WriteNew creates path with data, mode perm, durably, and never replaces
// an existing file: then the error matches fs.ErrExist. Readers never see
// the file partly written.
func WriteNew(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, true)
}

func write(path string, data []byte, perm fs.FileMode, exclusive bool) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.commit(exclusive)
}

// SyncDir fsyncs a directory, making the creation, rename or removal of
// entries in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
