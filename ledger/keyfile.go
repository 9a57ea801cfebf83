package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"tongban/internal/durable"
	"tongban/ledger/format"
)

// loadKey reads the signer key; a writable ledger creates it on first use.
func (l *Ledger) loadKey() (string, error) {
	if l.opts.ReadOnly {
		b, err := os.ReadFile(l.opts.KeyFile)
		if err != nil {
			return "", fmt.Errorf("ledger: read key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return loadOrCreateKey(l.opts.KeyFile, l.opts.Origin)
}

// loadOrCreateKey reads the signer key at path, or creates one (mode 0600)
// when the file does not exist.
func loadOrCreateKey(path, origin string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		skey := strings.TrimSpace(string(b))
		if _, err := note.NewSigner(skey); err != nil {
			return "", fmt.Errorf("ledger: key file %s: %w", path, err)
		}
		return skey, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("ledger: read key: %w", err)
	}
	skey, _, err := format.GenerateKey(origin)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("ledger: key dir: %w", err)
	}
	return skey, WriteKeyFile(path, skey)
}

// WriteKeyFile writes a new signer key file (mode 0600), durably: the file
// and its directory entry are synced, since a key lost in a power cut
// while the log survives would make the log unsignable. It never
// overwrites a file, and the key appears complete or not at all.
func WriteKeyFile(path, skey string) error {
	err := durable.WriteNew(path, []byte(skey+"\n"), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("ledger: create key: %w", err)
	}
	if err != nil {
		return fmt.Errorf("ledger: write key %s: %w", path, err)
	}
	return nil
}
