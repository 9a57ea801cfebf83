package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// names lists dir's entries, so a test can see what a write left behind.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range ents {
		ns = append(ns, e.Name())
	}
	sort.Strings(ns)
	return ns
}

func want(t *testing.T, path, content string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != content {
		t.Fatalf("%s holds %q (%v), want %q", path, b, err, content)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v (%v), want 0600", path, st.Mode().Perm(), err)
	}
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, p, "old")
	// A file made by someone else with a looser mode gets 0600 too.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new content"), 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, p, "new content")
	if got := names(t, dir); !slices.Equal(got, []string{"state.json"}) {
		t.Fatalf("dir holds %v", got)
	}
}

// TestReplaceOldOrNew: while a replacement is being written, readers of
// the final name see the old content in full; after Commit, the new.
func TestReplaceOldOrNew(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cp")
	if err := WriteFile(p, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := f.Write([]byte("new, half")); err != nil {
		t.Fatal(err)
	}
	want(t, p, "old\n")
	if _, err := f.Write([]byte(" and the rest\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	want(t, p, "new, half and the rest\n")
	f.Abort() // after Commit: nothing happens
	want(t, p, "new, half and the rest\n")
	if err := f.Commit(); err == nil {
		t.Fatal("a second Commit succeeded")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"cp"}) {
		t.Fatalf("dir holds %v", got)
	}
}

func TestWriteNewRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "signer.key")
	if err := WriteNew(p, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, p, "first\n")
	err := WriteNew(p, []byte("second\n"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteNew over an existing file: %v, want fs.ErrExist", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != p {
		t.Fatalf("error %v does not name %s", err, p)
	}
	want(t, p, "first\n")
	if got := names(t, dir); !slices.Equal(got, []string{"signer.key"}) {
		t.Fatalf("dir holds %v", got)
	}
	// Not even a directory is replaced.
	d := filepath.Join(dir, "sub")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(d, []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteNew over a directory: %v", err)
	}
}

func TestWriteIntoMissingDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gone", "f")
	if err := WriteFile(p, []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile into a missing dir: %v", err)
	}
	if err := WriteNew(p, []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteNew into a missing dir: %v", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Fatalf("dir holds %v", got)
	}
}

// TestFailedCommitLeavesNoTemp: a rename that fails (the final name is a
// non-empty directory) removes the temporary file.
func TestFailedCommitLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("data"), 0o600); err == nil {
		t.Fatal("WriteFile replaced a directory")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"out"}) {
		t.Fatalf("dir holds %v", got)
	}
}

// TestCommitAfterDirRemoved: the final directory vanishes mid-write; Commit
// fails and nothing is published.
func TestCommitAfterDirRemoved(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := Create(filepath.Join(dir, "f"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Commit into a removed dir: %v", err)
	}
	if got := names(t, parent); len(got) != 0 {
		t.Fatalf("parent holds %v", got)
	}
}

func TestAbortRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "export.csv")
	f, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("id,item\n")); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 1 || got[0] == "export.csv" {
		t.Fatalf("while writing, dir holds %v, want one temporary file", got)
	}
	f.Abort()
	f.Abort() // twice is harmless
	if got := names(t, dir); len(got) != 0 {
		t.Fatalf("after Abort dir holds %v", got)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Commit after Abort published %s: %v", p, err)
	}
}

// TestConcurrentWritersOwnTemps: two writers of one name each have their
// own temporary file, so neither publishes the other's bytes.
func TestConcurrentWritersOwnTemps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	a, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("aaaa"))
	b.Write([]byte("bb"))
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	want(t, p, "aaaa")
	b.Write([]byte("bb"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	want(t, p, "bbbb")
	if got := names(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("dir holds %v", got)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing dir: %v", err)
	}
}
