package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"tongban/ledger/format"
)

type appendReq struct {
	e    Entry               // as given, without Seq, Time and Prev
	enc  *format.Unsequenced // e encoded, awaiting its seq, time and prev
	rec  *Record
	err  error
	done chan struct{}
}

// Append adds an entry and returns it as recorded, with Seq, Time and Prev
// filled in. It returns only after the entry and its tree hashes are synced
// to disk. Concurrent appends are group-committed: one transaction and one
// fsync for every entry that arrived while the previous batch was syncing.
//
// The entry is checked and encoded here, in the caller's goroutine; the
// committer only fills in seq, time and prev.
//
// A cancelled ctx stops the wait for a place in the queue; once queued, the
// entry is committed or fails on its own, and Append reports which.
func (l *Ledger) Append(ctx context.Context, e Entry) (*Record, error) {
	if l.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	e.Seq, e.Prev = 0, Hash{}
	// One meaning, one spelling, one leaf hash: a payload must come
	// canonical (docs/formats.md); the ledger does not rewrite it.
	enc, err := format.NewCanonicalUnsequenced(e)
	if err != nil {
		return nil, err
	}
	r := &appendReq{e: e, enc: enc, done: make(chan struct{})}
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

// seqState is the sequencer's state: what the next entry builds on.
type seqState struct {
	size     int64
	lastLeaf Hash
	frontier frontier // stored hashes of the complete subtrees on the right edge
	tail     []byte   // the last, partial chunk of stored hashes
}

// pending is a batch being built into a transaction, then committing.
type pending struct {
	batch  []*appendReq
	txn    *badger.Txn
	before seqState   // to roll back to if the batch fails
	slab   []byte     // entries' bytes, which the transaction holds until written
	head   Checkpoint // the tree after the batch
	result chan error // the commit's outcome
}

// commitLoop is the one goroutine that owns the sequencer state. It keeps
// at most one commit in flight; while that commit syncs, it builds the
// next batch from the appends that arrive, entry by entry, and sends it
// as soon as the one before it is durable. So Badger never holds a later
// batch without the earlier one, and order equals seq. If a commit fails,
// the batch built on top of it fails with it and the state goes back to
// before the failed batch.
func (l *Ledger) commitLoop() {
	defer close(l.committed)
	defer func() {
		if l.spare != nil {
			l.spare.Discard()
		}
	}()
	var inflight, next *pending
	for {
		if inflight == nil {
			if next == nil {
				select {
				case r := <-l.reqs:
					next = l.begin()
					l.add(next, r)
				case <-l.closing:
					l.drain()
					return
				}
			}
			inflight = l.seal(l.fill(next))
			next = nil
			continue
		}
		reqs := l.reqs
		if next != nil && len(next.batch) >= l.opts.MaxBatch {
			reqs = nil // full: wait for the commit in flight
		}
		select {
		case r := <-reqs:
			if next == nil {
				next = l.begin()
			}
			if !l.add(next, r) {
				next = nil
			}
		case err := <-inflight.result:
			next = l.settle(inflight, err, next)
			inflight = nil
		case <-l.closing:
			if next = l.settle(inflight, <-inflight.result, next); next != nil {
				if p := l.seal(next); p != nil {
					l.finish(p, <-p.result)
				}
			}
			l.drain()
			return
		}
	}
}

// settle finishes the commit in flight and returns the batch built on top
// of it, or nil if that batch failed with it.
func (l *Ledger) settle(inflight *pending, err error, next *pending) *pending {
	if err = l.finish(inflight, err); err != nil && next != nil {
		next.txn.Discard()
		l.fail(next.batch, fmt.Errorf("%w (in the batch before this one)", err))
		return nil
	}
	return next
}

// drain commits what was queued before Close, one batch at a time.
func (l *Ledger) drain() {
	for {
		select {
		case r := <-l.reqs:
			p := l.begin()
			if l.add(p, r) {
				if p = l.seal(l.fill(p)); p != nil {
					l.finish(p, <-p.result)
				}
			}
		default:
			return
		}
	}
}

// fill adds what is waiting in the queue to p, without waiting. A nil p
// (a batch that failed) stays nil.
func (l *Ledger) fill(p *pending) *pending {
	for p != nil && len(p.batch) < l.opts.MaxBatch {
		select {
		case r := <-l.reqs:
			if !l.add(p, r) {
				return nil
			}
		default:
			return p
		}
	}
	return p
}

func (l *Ledger) state() seqState {
	return seqState{size: l.size, lastLeaf: l.lastLeaf, frontier: slices.Clone(l.frontier), tail: l.tail}
}

func (l *Ledger) restore(s seqState) {
	l.size, l.lastLeaf, l.frontier, l.tail = s.size, s.lastLeaf, s.frontier, s.tail
}

// begin starts a batch on top of the current state.
func (l *Ledger) begin() *pending {
	l.tail = slices.Clip(l.tail) // appends copy it; the snapshot and the commit in flight keep their bytes
	txn := l.spare
	if l.spare = nil; txn == nil {
		txn = l.db.NewTransaction(true)
	}
	return &pending{before: l.state(), txn: txn}
}

// abort fails a batch that could not be built and rolls the state back.
func (l *Ledger) abort(p *pending, err error) {
	p.txn.Discard()
	l.failed.Store(&err)
	l.restore(p.before)
	l.fail(p.batch, err)
}

// add writes one entry into the batch and advances the state past it. An
// entry too large once sealed is refused alone and takes no seq. If the
// transaction refuses a write, the whole batch fails and add reports false.
func (l *Ledger) add(p *pending, r *appendReq) bool {
	p.batch = append(p.batch, r)
	if cap(p.slab)-len(p.slab) < r.enc.MaxSize() {
		p.slab = make([]byte, 0, max(64<<10, r.enc.MaxSize()))
	}
	start := len(p.slab)
	now := l.opts.Now().UTC() // when it is recorded, not when its batch began
	var err error
	if p.slab, err = r.enc.Seal(p.slab, l.size, now, l.lastLeaf); err != nil {
		r.err = err
		return true
	}
	entry := p.slab[start:len(p.slab):len(p.slab)]
	leaf := LeafHash(entry)
	hashes, err := tlog.StoredHashesForRecordHash(l.size, leaf, l.frontier)
	if err != nil {
		l.abort(p, fmt.Errorf("ledger: tree hashes: %w", err))
		return false
	}
	if err := p.txn.Set(entryKey(l.size), entry); err != nil {
		l.abort(p, fmt.Errorf("ledger: write entry: %w", err))
		return false
	}
	if r.e.Packet != "" {
		if err := p.txn.Set(packetKey(r.e.Packet, l.size), nil); err != nil {
			l.abort(p, fmt.Errorf("ledger: write index: %w", err))
			return false
		}
	}
	next := tlog.StoredHashCount(l.size)
	for i, h := range hashes {
		if cap(l.tail)-len(l.tail) < HashSize { // a new chunk, or one clipped by begin
			l.tail = append(make([]byte, 0, chunkHashes*HashSize), l.tail...)
		}
		l.tail = append(l.tail, h[:]...)
		if len(l.tail) == chunkHashes*HashSize {
			if err := p.txn.Set(chunkKey((next+int64(i))/chunkHashes), l.tail); err != nil {
				l.abort(p, fmt.Errorf("ledger: write tree: %w", err))
				return false
			}
			l.tail = nil
		}
	}
	e := r.e
	e.Seq, e.Time, e.Prev = l.size, now, l.lastLeaf
	r.rec = &Record{Entry: e, Raw: entry, Hash: leaf}
	l.frontier = l.frontier.push(next, hashes)
	l.size++
	l.lastLeaf = leaf
	return true
}

// seal completes a batch (the partial chunk of tree hashes, the size) and
// starts its commit. It returns nil when nothing is left to commit: p is
// nil, every entry was refused, or a write failed (then the batch fails).
func (l *Ledger) seal(p *pending) *pending {
	if p == nil {
		return nil
	}
	if l.size == p.before.size {
		p.txn.Discard()
		l.fail(p.batch, nil) // every entry was refused, each with its error
		return nil
	}
	if len(l.tail) > 0 {
		if err := p.txn.Set(chunkKey(tlog.StoredHashCount(l.size)/chunkHashes), l.tail); err != nil {
			l.abort(p, fmt.Errorf("ledger: write tree: %w", err))
			return nil
		}
	}
	if err := p.txn.Set(keySize, binary.BigEndian.AppendUint64(nil, uint64(l.size))); err != nil {
		l.abort(p, fmt.Errorf("ledger: write size: %w", err))
		return nil
	}
	root, err := tlog.TreeHash(l.size, l.frontier)
	if err != nil {
		// Cannot happen: the frontier holds exactly what TreeHash reads.
		panic(fmt.Sprintf("ledger: root of a new batch: %v", err))
	}
	p.head = Checkpoint{Origin: l.opts.Origin, Size: l.size, Root: root}
	l.send(p)
	return p
}

// send starts the commit of a built batch. It first opens the next
// batch's transaction: Badger's NewTransaction waits until every commit in
// flight is applied, which would keep the committer from building the next
// batch while this one syncs. A batch's transaction must never read: it
// would see the database before the batch in flight. Writing only, its
// older read timestamp cannot make it conflict either.
func (l *Ledger) send(p *pending) {
	if l.spare == nil {
		l.spare = l.db.NewTransaction(true)
	}
	p.result = make(chan error, 1)
	p.txn.CommitWith(func(err error) { p.result <- err })
}

// finish acknowledges a batch whose commit is durable, or rolls the state
// back to before it and fails it with the error it returns.
func (l *Ledger) finish(p *pending, err error) error {
	if err != nil {
		err = fmt.Errorf("ledger: commit: %w", err)
		l.failed.Store(&err)
		l.restore(p.before)
		l.fail(p.batch, err)
		return err
	}
	l.mu.Lock()
	l.head = p.head
	l.mu.Unlock()
	l.failed.Store(nil)
	l.commits.Add(1)
	for _, r := range p.batch {
		close(r.done)
	}
	return nil
}

// fail answers every request of a batch that has no error of its own with
// err (and no record).
func (l *Ledger) fail(batch []*appendReq, err error) {
	for _, r := range batch {
		if r.err == nil {
			r.rec, r.err = nil, err
		}
		close(r.done)
	}
}

// frontier is the tree's right edge: the stored hashes of the complete
// subtrees that make it up, largest first. It is all tlog reads to add a
// record or to hash the tree.
type frontier []storedHash

type storedHash struct {
	index int64
	hash  Hash
}

// push records the stored hashes of a new record, the first at index
// next: its leaf, then one per subtree it completes. Those subtrees were
// the last len(hashes)-1 on the edge; their merge replaces them.
func (f frontier) push(next int64, hashes []Hash) frontier {
	t := len(hashes) - 1
	return append(f[:len(f)-t], storedHash{next + int64(t), hashes[t]})
}

func (f frontier) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		j := slices.IndexFunc(f, func(h storedHash) bool { return h.index == x })
		if j < 0 {
			return nil, fmt.Errorf("ledger: tree hash %d not on the right edge", x)
		}
		out[i] = f[j].hash
	}
	return out, nil
}

var _ tlog.HashReader = frontier(nil)
