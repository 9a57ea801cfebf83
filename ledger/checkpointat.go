package ledger

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// CheckpointAt signs a checkpoint for the first size entries, computed from
// the stored tree hashes, and returns it without storing it. A bundle is
// proven into the tree exactly as it stood at its download entry, so that
// nothing of the packet can follow inside the signed tree. Signing a past
// size cannot fork the log: the root is the one every later tree extends.
func (l *Ledger) CheckpointAt(size int64) ([]byte, error) {
	if size < 1 || size > l.Size() {
		return nil, fmt.Errorf("%w: no checkpoint at size %d (log size %d)", ErrNotFound, size, l.Size())
	}
	if l.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	var root Hash
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		root, err = tlog.TreeHash(size, &hashReader{txn: txn, cache: l.cache})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: tree hash at %d: %w", size, err)
	}
	signed, err := note.Sign(&note.Note{Text: string(FormatCheckpoint(Checkpoint{Origin: l.opts.Origin, Size: size, Root: root}))}, l.signers()...)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign checkpoint: %w", err)
	}
	return signed, nil
}

// signers are the keys every checkpoint is signed with: the log key, then
// the co-signers (the gm profile's SM2 key).
func (l *Ledger) signers() []note.Signer {
	return append([]note.Signer{l.signer}, l.opts.CoSigners...)
}
