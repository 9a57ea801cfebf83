package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// VerifyError reports the first entry at which the ledger fails a check.
type VerifyError struct {
	Seq    int64
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("ledger: first bad seq %d: %s", e.Seq, e.Reason)
}

// Report summarises a successful verification.
type Report struct {
	Size        int64
	Root        Hash
	Checkpoints int   // signed checkpoints checked
	From        int64 // entries taken on trust from a checkpoint (VerifyFrom)
}

// Verify re-reads the whole ledger from disk and checks that every entry is
// at its seq, links to its predecessor, hashes to the stored leaf, that
// every stored tree hash and the root are what the entries imply, and that
// every stored checkpoint is validly signed and matches the tree of its
// size (so each is consistent with the next, which is checked too). It
// returns a *VerifyError naming the first bad seq. progress, if not nil,
// is called now and then with the entries checked so far.
//
// Reading, leaf hashing and tree building run as a pipeline, so the check
// runs at about the speed Badger iterates.
func (l *Ledger) Verify(ctx context.Context, progress func(done, total int64)) (Report, error) {
	return l.verify(ctx, nil, progress)
}

// VerifyFrom is Verify resumed from a trusted checkpoint of this log (one
// an earlier verification or a witness vouched for): it checks that the
// stored tree is consistent with it and that the entry before it is the
// one it commits to, then checks only the entries after it as Verify does.
// Stored checkpoints up to it are checked for consistency with it.
func (l *Ledger) VerifyFrom(ctx context.Context, trusted Checkpoint, progress func(done, total int64)) (Report, error) {
	if trusted.Origin != l.opts.Origin {
		return Report{}, fmt.Errorf("ledger: trusted checkpoint is of log %q, not %q", trusted.Origin, l.opts.Origin)
	}
	return l.verify(ctx, &trusted, progress)
}

func (l *Ledger) verify(ctx context.Context, from *Checkpoint, progress func(done, total int64)) (Report, error) {
	var rep Report
	err := l.db.View(func(txn *badger.Txn) error {
		size, err := getInt(txn, keySize)
		if err != nil {
			return err
		}
		rep.Size = size
		cps, err := l.storedCheckpoints(txn, size)
		if err != nil {
			return err
		}
		rep.Checkpoints = len(cps)

		chunks := &chunkCursor{txn: txn}
		defer chunks.close()
		v := treeBuilder{chunks: chunks}
		if from != nil {
			if err := startFrom(txn, &v, *from, size); err != nil {
				return err
			}
			rep.From = from.Size
			for at, cp := range cps {
				if at >= from.Size {
					continue
				}
				if err := consistent(txn, cp, *from); err != nil {
					return &VerifyError{Seq: max(at-1, 0), Reason: fmt.Sprintf("signed checkpoint of size %d is not consistent with the trusted one: %v", at, err)}
				}
			}
		}
		if cp, ok := cps[v.n]; ok && v.root() != cp.Root {
			return &VerifyError{Seq: max(v.n-1, 0), Reason: fmt.Sprintf("signed checkpoint of size %d does not match the tree", v.n)}
		}

		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		raw := make(chan *entryBatch, 4)
		hashed := make(chan *entryBatch, 4)
		free := make(chan *entryBatch, 8) // batches done with, for the reader to fill again
		readErr := make(chan error, 1)
		go func() { readErr <- readEntries(ctx, txn, v.n, raw, free) }()
		go hashLeaves(raw, hashed)

		var verr error
		for b := range hashed {
			if verr != nil {
				continue // drain so the stages can exit
			}
			batch := b.items
			for i := range batch {
				if verr = v.add(&batch[i], size); verr != nil {
					cancel()
					break
				}
				if cp, ok := cps[v.n]; ok && v.root() != cp.Root {
					verr = &VerifyError{Seq: v.n - 1, Reason: fmt.Sprintf("signed checkpoint of size %d does not match the tree", v.n)}
					cancel()
					break
				}
			}
			if progress != nil && verr == nil {
				progress(v.n, size)
			}
			select {
			case free <- b:
			default:
			}
		}
		if err := <-readErr; verr == nil && err != nil {
			return err
		}
		if verr != nil {
			return verr
		}
		if v.n < size {
			return &VerifyError{Seq: v.n, Reason: "entry is missing"}
		}
		rep.Root = v.root()
		stored, err := tlog.TreeHash(size, &hashReader{txn: txn})
		if err != nil || stored != rep.Root {
			return &VerifyError{Seq: size - 1, Reason: "stored root does not match the entries"}
		}
		return chainConsistent(txn, cps)
	})
	return rep, err
}

// startFrom sets v up at the trusted checkpoint: its root must be the
// stored tree's at its size, and the entry before it the leaf it commits
// to, so what v builds on is what the checkpoint vouches for.
func startFrom(txn *badger.Txn, v *treeBuilder, cp Checkpoint, size int64) error {
	if cp.Size > size {
		return &VerifyError{Seq: size, Reason: fmt.Sprintf("trusted checkpoint of size %d is beyond the end of the log (%d entries): entries were removed", cp.Size, size)}
	}
	if cp.Size == 0 {
		return nil
	}
	hr := &hashReader{txn: txn}
	bad := func(reason string) error {
		return &VerifyError{Seq: cp.Size - 1, Reason: "tree does not match the trusted checkpoint: " + reason}
	}
	idx := frontierIndexes(cp.Size)
	hashes, err := hr.ReadHashes(idx)
	if err != nil {
		return bad(err.Error())
	}
	v.n, v.stack = cp.Size, hashes
	if v.root() != cp.Root {
		return bad("stored root differs")
	}
	raw, err := getValue(txn, entryKey(cp.Size-1))
	if err != nil {
		return bad(fmt.Sprintf("entry %d: %v", cp.Size-1, err))
	}
	v.lastLeaf = LeafHash(raw)
	proof, err := tlog.ProveRecord(cp.Size, cp.Size-1, hr)
	if err != nil {
		return bad(err.Error())
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Root, cp.Size-1, v.lastLeaf); err != nil {
		return bad(fmt.Sprintf("entry %d is not the one it commits to", cp.Size-1))
	}
	return nil
}

// consistent checks, from stored hashes, that older is a prefix of newer.
func consistent(txn *badger.Txn, older, newer Checkpoint) error {
	if older.Size == 0 || older.Size == newer.Size {
		if older.Size == newer.Size && older.Root != newer.Root {
			return errors.New("same size, different roots")
		}
		return nil
	}
	proof, err := tlog.ProveTree(newer.Size, older.Size, &hashReader{txn: txn})
	if err != nil {
		return err
	}
	return tlog.CheckTree(proof, newer.Size, newer.Root, older.Size, older.Root)
}

// chainConsistent checks each stored checkpoint against the next larger one.
func chainConsistent(txn *badger.Txn, cps map[int64]Checkpoint) error {
	sizes := slices.Sorted(maps.Keys(cps))
	for i := 1; i < len(sizes); i++ {
		if err := consistent(txn, cps[sizes[i-1]], cps[sizes[i]]); err != nil {
			return &VerifyError{Seq: sizes[i] - 1, Reason: fmt.Sprintf("signed checkpoints of sizes %d and %d are not consistent: %v", sizes[i-1], sizes[i], err)}
		}
	}
	return nil
}

// storedCheckpoints checks every stored checkpoint's signature and returns
// them by size.
func (l *Ledger) storedCheckpoints(txn *badger.Txn, size int64) (map[int64]Checkpoint, error) {
	cps := make(map[int64]Checkpoint)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'c'}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		at := int64(binary.BigEndian.Uint64(k[1:]))
		signed, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		cp, err := OpenCheckpoint(signed, l.vkey)
		bad := func(reason string) error {
			return &VerifyError{Seq: max(at-1, 0), Reason: fmt.Sprintf("checkpoint of size %d: %s", at, reason)}
		}
		switch {
		case err != nil:
			return nil, bad(err.Error())
		case cp.Size != at:
			return nil, bad(fmt.Sprintf("stored under size %d but says %d", at, cp.Size))
		case cp.Size > size:
			return nil, bad("beyond the end of the log: entries were removed")
		case cp.Origin != l.opts.Origin:
			return nil, bad(fmt.Sprintf("origin %q is not this log", cp.Origin))
		}
		cps[at] = cp
	}
	return cps, nil
}

type verifyItem struct {
	seq  int64 // from the key
	raw  []byte
	leaf Hash
}

const verifyBatch = 1024

// entryBatch is verifyBatch entries as read, their bytes in one slab: one
// allocation per batch, not per entry, and none once batches come back
// through the free list.
type entryBatch struct {
	items []verifyItem
	slab  []byte
}

func readEntries(ctx context.Context, txn *badger.Txn, from int64, out chan<- *entryBatch, free <-chan *entryBatch) error {
	defer close(out)
	next := func() *entryBatch {
		select {
		case b := <-free:
			b.items, b.slab = b.items[:0], b.slab[:0]
			return b
		default:
			return &entryBatch{items: make([]verifyItem, 0, verifyBatch), slab: make([]byte, 0, verifyBatch*512)}
		}
	}
	send := func(b *entryBatch) error {
		select {
		case out <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Entries are far below Badger's value threshold, so their values sit
	// in the LSM tree beside their keys: prefetching them would start a
	// goroutine per entry only to copy what Value reads in place.
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'e'}})
	defer it.Close()
	b := next()
	for it.Seek(entryKey(from)); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) != 9 {
			return fmt.Errorf("ledger: malformed entry key %x", k)
		}
		start := len(b.slab)
		err := item.Value(func(v []byte) error {
			b.slab = append(b.slab, v...)
			return nil
		})
		if err != nil {
			return fmt.Errorf("ledger: read entry: %w", err)
		}
		b.items = append(b.items, verifyItem{seq: int64(binary.BigEndian.Uint64(k[1:])), raw: b.slab[start:len(b.slab):len(b.slab)]})
		if len(b.items) == verifyBatch {
			if err := send(b); err != nil {
				return err
			}
			b = next()
		}
	}
	if len(b.items) > 0 {
		if err := send(b); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func hashLeaves(in <-chan *entryBatch, out chan<- *entryBatch) {
	defer close(out)
	for b := range in {
		for i := range b.items {
			b.items[i].leaf = LeafHash(b.items[i].raw)
		}
		out <- b
	}
}

// treeBuilder rebuilds the tree from leaves in order, keeping only the
// right edge (O(log n) hashes), and compares each stored hash as it goes.
type treeBuilder struct {
	n        int64
	lastLeaf Hash
	stack    []Hash // roots of complete subtrees, largest first
	chunks   *chunkCursor
}

func (v *treeBuilder) add(it *verifyItem, size int64) error {
	switch {
	case it.seq > v.n:
		return &VerifyError{Seq: v.n, Reason: "entry is missing"}
	case it.seq >= size:
		return &VerifyError{Seq: it.seq, Reason: fmt.Sprintf("entry beyond the recorded tree size %d", size)}
	}
	seq, prev, ok := peekSeqPrev(it.raw)
	if !ok {
		_, err := ParseEntry(it.raw)
		if err == nil {
			err = errors.New("unexpected layout")
		}
		return &VerifyError{Seq: it.seq, Reason: "malformed entry: " + err.Error()}
	}
	if seq != it.seq {
		return &VerifyError{Seq: it.seq, Reason: fmt.Sprintf("entry stored at seq %d says seq %d", it.seq, seq)}
	}
	if prev != v.lastLeaf {
		return &VerifyError{Seq: it.seq, Reason: fmt.Sprintf("prev does not match the hash of entry %d", it.seq-1)}
	}
	// The hashes tlog stored for this record: the leaf, then one parent for
	// every subtree the leaf completes.
	idx := tlog.StoredHashCount(v.n)
	h := it.leaf
	if err := v.chunks.expect(idx, h); err != nil {
		return &VerifyError{Seq: it.seq, Reason: "entry bytes do not match the stored leaf hash: " + err.Error()}
	}
	v.stack = append(v.stack, h)
	for m := v.n; m&1 == 1; m >>= 1 {
		top := len(v.stack) - 1
		h = tlog.NodeHash(v.stack[top-1], v.stack[top])
		v.stack = append(v.stack[:top-1], h)
		idx++
		if err := v.chunks.expect(idx, h); err != nil {
			return &VerifyError{Seq: it.seq, Reason: "stored tree hash is wrong: " + err.Error()}
		}
	}
	v.n++
	v.lastLeaf = it.leaf
	return nil
}

// root folds the right edge into the root of the tree built so far.
func (v *treeBuilder) root() Hash {
	if len(v.stack) == 0 {
		return sha256.Sum256(nil) // RFC 6962: the empty tree's root
	}
	h := v.stack[len(v.stack)-1]
	for i := len(v.stack) - 2; i >= 0; i-- {
		h = tlog.NodeHash(v.stack[i], h)
	}
	return h
}

// chunkCursor reads stored tree hashes in index order, one chunk at a time,
// walking the chunks with one iterator: a Get per chunk, with its search
// of every level, cost Verify a quarter of its time.
type chunkCursor struct {
	txn   *badger.Txn
	it    *badger.Iterator // over the chunks; nil until the first
	index int64            // chunk held in buf, or -1
	buf   []byte
}

func (c *chunkCursor) expect(i int64, want Hash) error {
	if c.buf == nil || c.index != i/chunkHashes {
		if err := c.load(i / chunkHashes); err != nil {
			return fmt.Errorf("tree hash %d: %w", i, err)
		}
	}
	off := int(i%chunkHashes) * HashSize
	if off+HashSize > len(c.buf) {
		return fmt.Errorf("tree hash %d is missing", i)
	}
	var got Hash
	copy(got[:], c.buf[off:])
	if got != want {
		return fmt.Errorf("tree hash %d is %s, recomputed %s", i, got, want)
	}
	return nil
}

// load reads chunk ci: the next one after the last, mostly.
func (c *chunkCursor) load(ci int64) error {
	key := chunkKey(ci)
	if c.it == nil {
		c.it = c.txn.NewIterator(badger.IteratorOptions{Prefix: key[:1]})
		c.it.Seek(key)
	} else if c.buf != nil && ci == c.index+1 {
		c.it.Next()
	} else {
		c.it.Seek(key)
	}
	if !c.it.Valid() || !bytes.Equal(c.it.Item().Key(), key) {
		c.buf = nil
		return badger.ErrKeyNotFound
	}
	b, err := c.it.Item().ValueCopy(c.buf[:0])
	if err != nil {
		c.buf = nil
		return err
	}
	c.buf, c.index = b, ci
	return nil
}

// close releases the iterator; the transaction needs it closed before it ends.
func (c *chunkCursor) close() {
	if c.it != nil {
		c.it.Close()
	}
}

// peekSeqPrev reads seq and prev from canonical bytes without a full JSON
// decode; Verify uses it to keep pace with the disk. It relies on the fixed
// field order: "seq" comes first and "prev" is the first key of that name,
// since no earlier string value can hold an unescaped quote.
func peekSeqPrev(data []byte) (seq int64, prev Hash, ok bool) {
	const seqKey, prevKey = `{"seq":`, `,"prev":"`
	if !bytes.HasPrefix(data, []byte(seqKey)) {
		return 0, prev, false
	}
	rest := data[len(seqKey):]
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0, prev, false
	}
	seq, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil {
		return 0, prev, false
	}
	i := bytes.Index(data, []byte(prevKey))
	if i < 0 || len(data) < i+len(prevKey)+45 || data[i+len(prevKey)+44] != '"' {
		return 0, prev, false
	}
	b64 := data[i+len(prevKey) : i+len(prevKey)+44]
	var tmp [33]byte // DecodedLen of 44 base64 characters
	if n, err := base64.StdEncoding.Decode(tmp[:], b64); err != nil || n != len(prev) {
		return 0, prev, false
	}
	copy(prev[:], tmp[:])
	return seq, prev, true
}
