package ledger

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ProveInclusion returns the RFC 6962 audit path for the entry at seq in
// the tree of the given size, which must not exceed Size().
func (l *Ledger) ProveInclusion(seq, size int64) ([]Hash, error) {
	if size < 1 || size > l.Size() || seq < 0 || seq >= size {
		return nil, fmt.Errorf("%w: no inclusion proof for seq %d in size %d (log size %d)", ErrNotFound, seq, size, l.Size())
	}
	hr := &hashReader{db: l.db, cache: l.cache}
	defer hr.done()
	p, err := tlog.ProveRecord(size, seq, hr)
	if err != nil {
		return nil, fmt.Errorf("ledger: inclusion proof: %w", err)
	}
	return p, nil
}

// ProveConsistency returns the RFC 6962 consistency proof between the trees
// of sizes from and to, with 0 <= from <= to <= Size(). It is empty when
// from is 0 or equals to.
func (l *Ledger) ProveConsistency(from, to int64) ([]Hash, error) {
	if from < 0 || to > l.Size() || from > to {
		return nil, fmt.Errorf("%w: no consistency proof from %d to %d (log size %d)", ErrNotFound, from, to, l.Size())
	}
	if from == 0 || from == to {
		return []Hash{}, nil
	}
	hr := &hashReader{db: l.db, cache: l.cache}
	defer hr.done()
	p, err := tlog.ProveTree(to, from, hr)
	if err != nil {
		return nil, fmt.Errorf("ledger: consistency proof: %w", err)
	}
	return p, nil
}
