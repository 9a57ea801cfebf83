package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// HashSize is the size of a Hash in bytes.
const HashSize = tlog.HashSize

func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func getInt(txn *badger.Txn, key []byte) (int64, error) {
	v, err := getValue(txn, key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: read %s: %w", key, err)
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("ledger: malformed %s", key)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// hashReader reads stored tree hashes for tlog: from the shared caches
// when it can, else from Badger, in a read transaction it opens on first
// need (the caller discards it with done). Stored hashes never change once
// written, so whatever has been read may be kept.
type hashReader struct {
	db     *badger.DB
	txn    *badger.Txn
	cache  *chunkCache
	chunks map[int64][]byte
}

func (r *hashReader) done() {
	if r.txn != nil && r.db != nil {
		r.txn.Discard()
	}
}

// chunk returns chunk c holding at least need bytes.
func (r *hashReader) chunk(c int64, need int) ([]byte, error) {
	if b, ok := r.chunks[c]; ok && len(b) >= need {
		return b, nil
	}
	if b, ok := r.cache.get(c); ok && len(b) >= need {
		return b, nil
	}
	if r.txn == nil {
		r.txn = r.db.NewTransaction(false)
	}
	b, err := getValue(r.txn, chunkKey(c))
	if err != nil {
		return nil, err
	}
	if r.chunks == nil {
		r.chunks = make(map[int64][]byte)
	}
	r.chunks[c] = b
	r.cache.put(c, b)
	return b, nil
}

// upperLevel is the lowest tree level whose hashes chunkCache keeps one
// by one: they are one in 16 of all hashes, yet all but the lowest five
// hashes of every proof. A proof then reads about one chunk.
const upperLevel = 5

// maxUpper bounds the upper hashes kept: 64 MiB, all of them for logs of
// up to 32M entries (position n of upper level i is kept if n < maxUpper>>(i+1)).
const maxUpper = 1 << 21

// chunkCache keeps chunks of tree hashes in memory, and every hash at
// upperLevel and above out of each chunk it sees. Chunks are evicted at
// random (cheap and good enough here).
type chunkCache struct {
	mu    sync.RWMutex
	max   int
	m     map[int64][]byte
	upper upperHashes
}

func newChunkCache(max int) *chunkCache {
	return &chunkCache{max: max, m: make(map[int64][]byte, max)}
}

func (c *chunkCache) get(i int64) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, ok := c.m[i]
	return b, ok
}

func (c *chunkCache) getUpper(x int64) (Hash, bool) {
	if c == nil {
		return Hash{}, false
	}
	level, n := tlog.SplitStoredHashIndex(x)
	if level < upperLevel {
		return Hash{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.upper.get(level-upperLevel, n)
}

// put keeps chunk i, which may be partial (the last one, still growing).
func (c *chunkCache) put(i int64, b []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[i]; ok && len(old) >= len(b) {
		return
	}
	if len(c.m) >= c.max {
		for k := range c.m { // map order is random enough
			delete(c.m, k)
			break
		}
	}
	c.m[i] = b
	for j := 0; j+HashSize <= len(b); j += HashSize {
		if level, n := tlog.SplitStoredHashIndex(i*chunkHashes + int64(j/HashSize)); level >= upperLevel {
			c.upper.set(level-upperLevel, n, Hash(b[j:j+HashSize]))
		}
	}
}

// putUpper keeps the upper hashes of chunk i, which b holds only for the call.
func (c *chunkCache) putUpper(i int64, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for j := 0; j+HashSize <= len(b); j += HashSize {
		if level, n := tlog.SplitStoredHashIndex(i*chunkHashes + int64(j/HashSize)); level >= upperLevel {
			c.upper.set(level-upperLevel, n, Hash(b[j:j+HashSize]))
		}
	}
}

// upperHashes holds tree hashes by level and position, densely: 32 bytes
// and a bit for each.
type upperHashes struct {
	hashes [][]Hash   // by level - upperLevel, then position
	have   [][]uint64 // which of hashes are set
}

func (u *upperHashes) get(level int, n int64) (Hash, bool) {
	if level >= len(u.have) || n/64 >= int64(len(u.have[level])) || u.have[level][n/64]&(1<<(n%64)) == 0 {
		return Hash{}, false
	}
	return u.hashes[level][n], true
}

func (u *upperHashes) set(level int, n int64, h Hash) {
	if n >= maxUpper>>(level+1) {
		return
	}
	for len(u.hashes) <= level {
		u.hashes, u.have = append(u.hashes, nil), append(u.have, nil)
	}
	if n >= int64(len(u.hashes[level])) {
		u.hashes[level] = append(u.hashes[level], make([]Hash, n+1-int64(len(u.hashes[level])))...)
		u.have[level] = append(u.have[level], make([]uint64, n/64+1-int64(len(u.have[level])))...)
	}
	u.hashes[level][n] = h
	u.have[level][n/64] |= 1 << (n % 64)
}

func (r *hashReader) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		if h, ok := r.cache.getUpper(x); ok {
			out[i] = h
			continue
		}
		off := int(x%chunkHashes) * HashSize
		b, err := r.chunk(x/chunkHashes, off+HashSize)
		if err != nil {
			return nil, fmt.Errorf("ledger: tree hash %d: %w", x, err)
		}
		if off+HashSize > len(b) {
			return nil, fmt.Errorf("ledger: tree hash %d: %w", x, ErrNotFound)
		}
		copy(out[i][:], b[off:])
	}
	return out, nil
}

// frontierIndexes returns the stored-hash indexes of the complete subtrees
// whose roots make up a tree of size n: the right edge that new records
// are hashed against. They are sorted, as tlog prefers.
func frontierIndexes(n int64) []int64 {
	var idx []int64
	var lo int64
	for level := 63; level >= 0; level-- {
		if n&(1<<level) == 0 {
			continue
		}
		idx = append(idx, tlog.StoredHashIndex(level, lo>>level))
		lo += 1 << level
	}
	return idx
}

// latestCheckpoint returns the signed checkpoint with the largest size.
func latestCheckpoint(txn *badger.Txn, vkey string) (Checkpoint, []byte, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'c'}, Reverse: true})
	defer it.Close()
	it.Seek(checkpointKey(1<<63 - 1))
	if !it.Valid() {
		return Checkpoint{}, nil, nil
	}
	signed, err := it.Item().ValueCopy(nil)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	cp, err := OpenCheckpoint(signed, vkey)
	if err != nil {
		var unknown *note.UnknownVerifierError
		if errors.As(err, &unknown) {
			return cp, nil, fmt.Errorf("ledger: latest checkpoint was signed by another key (%s): %w", unknown.Name, err)
		}
		return cp, nil, err
	}
	return cp, signed, nil
}
