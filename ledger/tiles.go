package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// ReadTileData returns the data of the hash tile t (tlog.ReadTileData's
// layout) from the stored hashes. The tile must lie within the committed tree.
func (l *Ledger) ReadTileData(t tlog.Tile) ([]byte, error) {
	if t.L < 0 || t.W < 1 || t.N<<t.H+int64(t.W) > l.Size()>>(t.L*t.H) {
		return nil, fmt.Errorf("%w: tile %s beyond the tree of size %d", ErrNotFound, t.Path(), l.Size())
	}
	var data []byte
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		data, err = tlog.ReadTileData(t, &hashReader{txn: txn, cache: l.cache})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: tile %s: %w", t.Path(), err)
	}
	return data, nil
}

// TreeHash returns the root of the tree of the given size, which must not
// exceed Size(). It works on a read-only ledger too.
func (l *Ledger) TreeHash(size int64) (Hash, error) {
	if size < 0 || size > l.Size() {
		return Hash{}, fmt.Errorf("%w: no tree of size %d (log size %d)", ErrNotFound, size, l.Size())
	}
	var h Hash
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		h, err = tlog.TreeHash(size, &hashReader{txn: txn, cache: l.cache})
		return err
	})
	if err != nil {
		return Hash{}, fmt.Errorf("ledger: tree hash of size %d: %w", size, err)
	}
	return h, nil
}

// StoredCheckpoint returns the newest signed checkpoint kept in the
// database, without signing one (nil when none is). It works on a
// read-only ledger too.
func (l *Ledger) StoredCheckpoint() (Checkpoint, []byte, error) {
	var cp Checkpoint
	var signed []byte
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		cp, signed, err = latestCheckpoint(txn, l.vkey)
		return err
	})
	return cp, signed, err
}

// errStopScan ends a Scan early without an error.
var errStopScan = errors.New("stop")

// RawEntries returns the canonical bytes of the n entries from seq from on,
// which must all be committed.
func (l *Ledger) RawEntries(ctx context.Context, from, n int64) ([][]byte, error) {
	if from < 0 || n < 0 || from+n > l.Size() {
		return nil, fmt.Errorf("%w: entries %d..%d beyond the log of size %d", ErrNotFound, from, from+n, l.Size())
	}
	out := make([][]byte, 0, n)
	err := l.Scan(ctx, from, func(r *Record) error {
		out = append(out, r.Raw)
		if int64(len(out)) == n {
			return errStopScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, err
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("ledger: entries %d..%d: found %d", from, from+n, len(out))
	}
	return out, nil
}
