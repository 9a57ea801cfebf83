// Package ledgertest lets tests make a real ledger's disk fail, so that the
// ledger's commit rollback and its recovery can be shown end to end.
package ledgertest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// FailingDisk is a value-log directory that can be made to refuse new
// files, the way a full or failing disk refuses them. Pass its
// BadgerOptions as ledger.Options.BadgerOptions.
//
// Its options put every value in the value log and start a new value-log
// file after each commit that wrote more than one value, which every
// ledger batch does. While Fail is in effect, the name of the next file
// is taken (by a directory), so Badger cannot create it and fails each
// commit after writing its values to the current file and before making
// them visible: exactly the failure a disk that stops taking writes
// causes mid-commit. Heal frees the name again.
type FailingDisk struct {
	dir string

	mu      sync.Mutex
	blocker string // the directory that holds the next file's name, or ""
}

// NewFailingDisk keeps the value log in dir, which need not exist yet.
func NewFailingDisk(dir string) *FailingDisk { return &FailingDisk{dir: dir} }

// BadgerOptions adjusts Badger's options as described on FailingDisk.
func (d *FailingDisk) BadgerOptions(o badger.Options) badger.Options {
	return o.WithValueDir(d.dir).WithValueThreshold(0).WithValueLogMaxEntries(1)
}

// Fail makes every following commit fail, until Heal. It must not run
// while a commit is under way (the file it blocks could be created in
// between); tests call it between appends.
func (d *FailingDisk) Fail() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.blocker != "" {
		return nil
	}
	names, err := filepath.Glob(filepath.Join(d.dir, "*.vlog"))
	if err != nil {
		return err
	}
	last := -1
	for _, n := range names {
		if fid, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(n), ".vlog")); err == nil {
			last = max(last, fid)
		}
	}
	if last < 0 {
		return fmt.Errorf("ledgertest: no value-log file in %s: was the ledger opened with these BadgerOptions?", d.dir)
	}
	next := filepath.Join(d.dir, fmt.Sprintf("%06d.vlog", last+1))
	if err := os.Mkdir(next, 0o700); err != nil {
		return fmt.Errorf("ledgertest: block %s: %w", next, err)
	}
	d.blocker = next
	return nil
}

// Heal lets commits succeed again.
func (d *FailingDisk) Heal() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.blocker == "" {
		return nil
	}
	if err := os.Remove(d.blocker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ledgertest: unblock: %w", err)
	}
	d.blocker = ""
	return nil
}
