package ledger

import (
	"context"
	"encoding/binary"
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

// EntryBundle returns the n entries from seq from on, which must all
// be committed, as a C2SP tlog-tiles entry bundle: each entry's canonical
// bytes behind a two-byte big-endian length. It reads them with one
// iterator, copying each value once into the bundle; entries are served as
// stored, without decoding them (the tree's hashes vouch for them).
func (l *Ledger) EntryBundle(ctx context.Context, from, n int64) ([]byte, error) {
	if from < 0 || n < 0 || from+n > l.Size() {
		return nil, fmt.Errorf("%w: entries %d..%d beyond the log of size %d", ErrNotFound, from, from+n, l.Size())
	}
	var out []byte
	err := l.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{'e'}
		opts.PrefetchSize = int(min(max(n, 1), 256))
		it := txn.NewIterator(opts)
		defer it.Close()
		next := from
		for it.Seek(entryKey(from)); it.Valid() && next < from+n; it.Next() {
			if (next-from)%64 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			if k := item.Key(); len(k) != 9 || int64(binary.BigEndian.Uint64(k[1:])) != next {
				return fmt.Errorf("entry %d is missing (found key %x)", next, k)
			}
			if out == nil { // room for n entries of about this one's size
				out = make([]byte, 0, n*(2+item.ValueSize()+item.ValueSize()/4))
			}
			if err := item.Value(func(v []byte) error {
				if len(v) > 0xFFFF {
					return fmt.Errorf("entry %d of %d bytes does not fit an entry bundle", next, len(v))
				}
				out = binary.BigEndian.AppendUint16(out, uint16(len(v)))
				out = append(out, v...)
				return nil
			}); err != nil {
				return err
			}
			next++
		}
		if next != from+n {
			return fmt.Errorf("found %d of entries %d..%d", next-from, from, from+n-1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: entry bundle %d+%d: %w", from, n, err)
	}
	return out, nil
}
