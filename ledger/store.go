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

// hashReader reads stored tree hashes from Badger for tlog, caching the
// chunks it has already read in this transaction, and complete chunks
// (which never change) in the shared cache, if any.
type hashReader struct {
	txn    *badger.Txn
	cache  *chunkCache
	chunks map[int64][]byte
}

func (r *hashReader) chunk(c int64) ([]byte, error) {
	if b, ok := r.chunks[c]; ok {
		return b, nil
	}
	if b, ok := r.cache.get(c); ok {
		return b, nil
	}
	b, err := getValue(r.txn, chunkKey(c))
	if err != nil {
		return nil, err
	}
	if r.chunks == nil {
		r.chunks = make(map[int64][]byte)
	}
	r.chunks[c] = b
	if len(b) == chunkHashes*HashSize {
		r.cache.put(c, b)
	}
	return b, nil
}

// chunkCache keeps complete chunks of tree hashes in memory. The upper
// levels of the tree are shared by every proof, so even a small cache
// saves most reads. Eviction is random: cheap and good enough here.
type chunkCache struct {
	mu  sync.RWMutex
	max int
	m   map[int64][]byte
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

func (c *chunkCache) put(i int64, b []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m { // map order is random enough
			delete(c.m, k)
			break
		}
	}
	c.m[i] = b
}

func (r *hashReader) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		b, err := r.chunk(x / chunkHashes)
		if err != nil {
			return nil, fmt.Errorf("ledger: tree hash %d: %w", x, err)
		}
		off := int(x%chunkHashes) * HashSize
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
