package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"

	"golang.org/x/mod/sumdb/tlog"

	"tongban/ledger/format"
)

type appendReq struct {
	e    Entry
	rec  *Record
	err  error
	done chan struct{}
}

// Append adds an entry and returns it as recorded, with Seq, Time and Prev
// filled in. It returns only after the entry and its tree hashes are synced
// to disk. Concurrent appends are group-committed: one transaction and one
// fsync for every entry that arrived while the previous batch was syncing.
//
// A cancelled ctx stops the wait for a place in the queue; once queued, the
// entry is committed or fails on its own, and Append reports which.
func (l *Ledger) Append(ctx context.Context, e Entry) (*Record, error) {
	if l.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	e.Seq, e.Prev = 0, Hash{}
	if err := e.Check(); err != nil {
		return nil, err
	}
	// One meaning, one spelling, one leaf hash: a payload must come
	// canonical (docs/formats.md); the ledger does not rewrite it.
	if err := format.CheckPayload(e.Payload); err != nil {
		return nil, err
	}
	r := &appendReq{e: e, done: make(chan struct{})}
	select {
	case <-l.closing:
		return nil, ErrClosed
	default:
	}
	select {
	case l.reqs <- r:
	case <-l.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
	case <-l.committed:
		// The committer stopped; it closes done for all it took first.
		select {
		case <-r.done:
		default:
			return nil, ErrClosed
		}
	}
	return r.rec, r.err
}

func (l *Ledger) commitLoop() {
	defer close(l.committed)
	batch := make([]*appendReq, 0, l.opts.MaxBatch)
	for {
		select {
		case r := <-l.reqs:
			batch = l.fill(append(batch[:0], r))
			l.commit(batch)
		case <-l.closing:
			// Commit what was queued before Close, then stop.
			for batch = l.fill(batch[:0]); len(batch) > 0; batch = l.fill(batch[:0]) {
				l.commit(batch)
			}
			return
		}
	}
}

// fill adds what is waiting in the queue to batch, without waiting.
func (l *Ledger) fill(batch []*appendReq) []*appendReq {
	for len(batch) < l.opts.MaxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit writes one batch in one transaction. On failure every request in
// the batch fails and the in-memory state is rolled back, so the next batch
// continues from the last durable entry.
func (l *Ledger) commit(batch []*appendReq) {
	size, lastLeaf, tail := l.size, l.lastLeaf, l.tail
	frontier := maps.Clone(l.frontier)
	fail := func(err error) {
		if err != nil {
			l.failed.Store(&err)
		}
		l.size, l.lastLeaf, l.tail, l.frontier = size, lastLeaf, tail, frontier
		for _, r := range batch {
			if r.err == nil {
				r.rec, r.err = nil, err
			}
			close(r.done)
		}
	}

	txn := l.db.NewTransaction(true)
	defer txn.Discard()
	l.tail = append([]byte(nil), tail...)
	now := l.opts.Now().UTC()
	for _, r := range batch {
		e := r.e
		e.Seq, e.Time, e.Prev = l.size, now, l.lastLeaf
		raw, err := e.Marshal()
		if err != nil {
			r.err = err // this entry alone is refused; it takes no seq
			continue
		}
		leaf := LeafHash(raw)
		hashes, err := tlog.StoredHashesForRecordHash(l.size, leaf, frontierReader(l.frontier))
		if err != nil {
			fail(fmt.Errorf("ledger: tree hashes: %w", err))
			return
		}
		if err := txn.Set(entryKey(e.Seq), raw); err != nil {
			fail(fmt.Errorf("ledger: write entry: %w", err))
			return
		}
		if e.Packet != "" {
			if err := txn.Set(packetKey(e.Packet, e.Seq), nil); err != nil {
				fail(fmt.Errorf("ledger: write index: %w", err))
				return
			}
		}
		next := tlog.StoredHashCount(l.size)
		for i, h := range hashes {
			l.frontier[next+int64(i)] = h
			l.tail = append(l.tail, h[:]...)
			if len(l.tail) == chunkHashes*HashSize {
				if err := txn.Set(chunkKey((next+int64(i))/chunkHashes), l.tail); err != nil {
					fail(fmt.Errorf("ledger: write tree: %w", err))
					return
				}
				l.tail = nil
			}
		}
		l.size++
		l.lastLeaf = leaf
		l.pruneFrontier()
		r.rec = &Record{Entry: e, Raw: raw, Hash: leaf}
	}
	if l.size == size {
		fail(nil) // nothing valid in this batch
		return
	}
	if len(l.tail) > 0 {
		if err := txn.Set(chunkKey(tlog.StoredHashCount(l.size)/chunkHashes), l.tail); err != nil {
			fail(fmt.Errorf("ledger: write tree: %w", err))
			return
		}
	}
	if err := txn.Set(keySize, binary.BigEndian.AppendUint64(nil, uint64(l.size))); err != nil {
		fail(fmt.Errorf("ledger: write size: %w", err))
		return
	}
	if err := txn.Commit(); err != nil {
		fail(fmt.Errorf("ledger: commit: %w", err))
		return
	}
	root, err := tlog.TreeHash(l.size, frontierReader(l.frontier))
	if err != nil {
		// Cannot happen: the frontier holds exactly what TreeHash reads.
		panic(fmt.Sprintf("ledger: root after commit: %v", err))
	}
	l.mu.Lock()
	l.head = Checkpoint{Origin: l.opts.Origin, Size: l.size, Root: root}
	l.mu.Unlock()
	l.failed.Store(nil)
	for _, r := range batch {
		close(r.done)
	}
}

// pruneFrontier drops hashes that are no longer roots of right-edge subtrees.
func (l *Ledger) pruneFrontier() {
	keep := frontierIndexes(l.size)
	if len(l.frontier) == len(keep) {
		return
	}
	next := make(map[int64]Hash, len(keep))
	for _, x := range keep {
		next[x] = l.frontier[x]
	}
	l.frontier = next
}

// frontierReader serves tlog the right-edge hashes from memory.
type frontierReader map[int64]Hash

func (f frontierReader) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		h, ok := f[x]
		if !ok {
			return nil, fmt.Errorf("ledger: tree hash %d not on the right edge", x)
		}
		out[i] = h
	}
	return out, nil
}

var _ tlog.HashReader = frontierReader(nil)
