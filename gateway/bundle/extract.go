package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Extract writes the files an INTACT report verified into dir, which must
// not exist yet or be empty. It reads each file again from r and checks its
// digest while writing into a fresh directory beside dir, creating every
// file exclusively; only when all are written and checked is that
// directory renamed to dir. On any failure nothing is left behind.
func (rep *Report) Extract(r io.ReaderAt, dir string) error {
	if rep.Verdict != Intact || len(rep.files) == 0 {
		return fmt.Errorf("bundle: not extracted: the verdict is %s", rep.Verdict)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("bundle: not extracted: %s is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bundle: not extracted: %w", err)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	tmp, err := os.MkdirTemp(parent, ".tongban-extract-")
	if err != nil {
		return fmt.Errorf("bundle: not extracted: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	for _, f := range rep.files {
		if err := writeVerified(r, tmp, f); err != nil {
			return fmt.Errorf("bundle: not extracted: %s: %w", f.rec.name, err)
		}
	}
	// An empty dir is replaced; a non-empty one makes the rename fail, so
	// nothing that appeared meanwhile is overwritten.
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("bundle: not extracted: %w", err)
	}
	done = true
	return nil
}

func writeVerified(r io.ReaderAt, root string, f verified) error {
	// The names were held to the canonical form; check again that the
	// path stays below root, as a second line against a verifier bug.
	rel := filepath.FromSlash(f.rec.name)
	if !filepath.IsLocal(rel) || badName(f.rec.name) != "" {
		return errors.New("unsafe name")
	}
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), f.rec.open(r))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.sha256 {
		return fmt.Errorf("changed since it was verified: sha256 %s, verified %s", got, f.sha256)
	}
	return nil
}

// Files lists the names Extract writes, in bundle order.
func (rep *Report) Files() []string {
	var out []string
	for _, f := range rep.files {
		out = append(out, f.rec.name)
	}
	return out
}
