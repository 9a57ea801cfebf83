package fs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"tongban/storage"
	"tongban/storage/storagetest"
)

func harness(t *testing.T) storagetest.Harness {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return storagetest.Harness{
		Store:   s,
		Corrupt: func(t *testing.T, sum string) { storagetest.FlipByte(t, s.path(sum)) },
		Leftovers: func(t *testing.T) []string {
			entries, err := os.ReadDir(s.tmp)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return names
		},
	}
}

func TestConformance(t *testing.T) { storagetest.Run(t, harness) }

func TestOpenRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(s.tmp, "put-stale")
	fresh := filepath.Join(s.tmp, "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file survived Open: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file (a Put in progress?) removed by Open: %v", err)
	}
}

func TestLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Put(t.Context(), storagetest.Data(1, 10), storage.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "objects", info.SHA256[:2], info.SHA256[2:4], info.SHA256)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("object not at %s: %v", p, err)
	}
	if fi.Mode().Perm()&0o222 != 0 {
		t.Errorf("object file is writable: %v", fi.Mode())
	}
}
