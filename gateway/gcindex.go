package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"tongban/storage"
)

// The collector's index lives in the state database beside the views, so
// that a collection costs what was stored and recorded since the last one,
// not everything ever stored:
//
//	Gr<digest>              an object some ledger entry names
//	Gn<digest>              an object stored since the collector last looked
//	Gy<modified><digest>    an unreferenced object too young when last looked
//	                        at, by store time (8-byte big-endian Unix nanoseconds)
//	Gmseq                   ledger size up to which Gr is complete
//	Gmfull                  present once a collection has listed the whole store
//
// Gr is written before Gmseq moves past the entries naming it, so a lost
// tail (the database is not synced) only makes the collector read those
// entries again. Gn is written when a request claims an object, before the
// store publishes it. If the state database is dropped (a rebuild), the
// next collection lists the whole store again, as the first one does. A
// power cut can lose a Gn note; the object it named is then left until a
// full collection (`tongban gc --full`): garbage kept, never a named
// object taken.
type gcIndex struct {
	db *badger.DB
}

var (
	gcRefPrefix   = []byte("Gr")
	gcNewPrefix   = []byte("Gn")
	gcYoungPrefix = []byte("Gy")
	gcKeySeq      = []byte("Gmseq")
	gcKeyFull     = []byte("Gmfull")
)

func gcKey(prefix []byte, digest string) []byte {
	return append(append(make([]byte, 0, len(prefix)+len(digest)), prefix...), digest...)
}

func gcYoungKey(modified time.Time, digest string) []byte {
	k := binary.BigEndian.AppendUint64(append([]byte(nil), gcYoungPrefix...), uint64(max(modified.UnixNano(), 0)))
	return append(k, digest...)
}

// noteNew records that digest is being stored.
func (ix gcIndex) noteNew(digest string) error {
	return ix.db.Update(func(txn *badger.Txn) error { return txn.Set(gcKey(gcNewPrefix, digest), nil) })
}

func (ix gcIndex) seq() (int64, error) {
	var n int64
	err := ix.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, gcKeySeq)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			return nil
		case err != nil:
			return err
		case len(v) != 8:
			return errors.New("malformed ledger watermark")
		}
		n = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return n, err
}

func (ix gcIndex) fullDone() (done bool, err error) {
	err = ix.db.View(func(txn *badger.Txn) error {
		done, err = has(txn, gcKeyFull)
		return err
	})
	return done, err
}

func (ix gcIndex) setFullDone() error {
	return ix.db.Update(func(txn *badger.Txn) error { return txn.Set(gcKeyFull, nil) })
}

// isRef reports whether a ledger entry read into the index names digest.
func isRef(txn *badger.Txn, digest string) (bool, error) {
	return has(txn, gcKey(gcRefPrefix, digest))
}

// has reports whether key is set.
func has(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// indexReferences brings Gr up to the ledger's size and returns it.
func (g *Gateway) indexReferences(ctx context.Context, ix gcIndex) (int64, error) {
	from, err := ix.seq()
	if err != nil {
		return 0, err
	}
	if from > g.cfg.Ledger.Size() {
		return 0, fmt.Errorf("ledger watermark %d is beyond the ledger (%d entries)", from, g.cfg.Ledger.Size())
	}
	wb := ix.db.NewWriteBatch()
	defer wb.Cancel()
	next, err := g.named(ctx, from, func(d string, _ objectRef) error {
		return wb.Set(gcKey(gcRefPrefix, d), nil)
	})
	if err != nil {
		return 0, err
	}
	if next == from {
		return next, nil
	}
	if err := wb.Flush(); err != nil {
		return 0, err
	}
	err = ix.db.Update(func(txn *badger.Txn) error {
		return txn.Set(gcKeySeq, be8(next))
	})
	return next, err
}

// gcRun is one collection.
type gcRun struct {
	g      *Gateway
	ix     gcIndex
	rep    *GCReport
	cutoff time.Time
	dryRun bool
	seen   map[string]bool // digests looked at in this run
}

type gcItem struct {
	key    []byte // its note: Gn or Gy
	digest string
	info   storage.Info
}

// gcPage bounds how many notes a run holds in memory at once.
const gcPage = 4096

// listAll lists the whole store, counting every object, and notes each
// unreferenced one for drainYoung, which deletes those past the grace.
func (r *gcRun) listAll(ctx context.Context) error {
	wb := r.ix.db.NewWriteBatch()
	defer wb.Cancel()
	txn := r.ix.db.NewTransaction(false)
	defer func() { txn.Discard() }()
	n := 0
	err := r.g.cfg.Store.List(ctx, func(info storage.Info) error {
		r.rep.Objects++
		if n++; n%4096 == 0 { // a fresh view now and then, so Badger can let go of old versions
			txn.Discard()
			txn = r.ix.db.NewTransaction(false)
		}
		ref, err := isRef(txn, info.SHA256)
		switch {
		case err != nil:
			return err
		case ref:
			r.rep.Referenced++
			return nil
		case info.Modified.After(r.cutoff):
			r.rep.Young++
		}
		return wb.Set(gcYoungKey(info.Modified, info.SHA256), nil)
	})
	if err != nil {
		return fmt.Errorf("list objects: %w", storageErr(err))
	}
	return wb.Flush()
}

// drainNew looks at every object noted as stored since the last run.
func (r *gcRun) drainNew(ctx context.Context) error {
	return r.drain(ctx, gcNewPrefix, nil, true)
}

// drainYoung looks at the objects that were too young at an earlier run
// and are now past the grace, then (incremental runs) counts those still young.
func (r *gcRun) drainYoung(ctx context.Context) error {
	limit := gcYoungKey(r.cutoff.Add(time.Nanosecond), "")
	count := !r.rep.Full // a full run counted everything while listing
	if err := r.drain(ctx, gcYoungPrefix, limit, count); err != nil {
		return err
	}
	if !count {
		return nil
	}
	return r.ix.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: gcYoungPrefix})
		defer it.Close()
		for it.Seek(limit); it.Valid(); it.Next() {
			if d := string(it.Item().Key()[len(gcYoungPrefix)+8:]); !r.seen[d] {
				r.seen[d] = true
				r.rep.Objects++
				r.rep.Young++
			}
		}
		return nil
	})
}

// drain examines the notes under prefix (below limit, if set), a page at a time.
func (r *gcRun) drain(ctx context.Context, prefix, limit []byte, count bool) error {
	from := prefix
	for {
		var page []gcItem
		err := r.ix.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			defer it.Close()
			for it.Seek(from); it.Valid() && len(page) < gcPage; it.Next() {
				k := it.Item().KeyCopy(nil)
				if limit != nil && bytes.Compare(k, limit) >= 0 {
					break
				}
				d := string(k[len(prefix):])
				if bytes.Equal(prefix, gcYoungPrefix) {
					d = string(k[len(prefix)+8:])
				}
				page = append(page, gcItem{key: k, digest: d})
			}
			return nil
		})
		if err != nil || len(page) == 0 {
			return err
		}
		if err := r.examine(ctx, page, count); err != nil {
			return err
		}
		if len(page) < gcPage {
			return nil
		}
		from = append(page[len(page)-1].key, 0)
	}
}

// examine decides about one page of notes: referenced objects and those
// gone are forgotten, young ones wait in Gy, the rest are deleted unless
// a request claims them or an entry appended meanwhile names them.
func (r *gcRun) examine(ctx context.Context, page []gcItem, count bool) error {
	var drop []gcItem
	var add [][]byte
	var cands []gcItem
	txn := r.ix.db.NewTransaction(false)
	defer txn.Discard()
	for _, it := range page {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.seen[it.digest] {
			drop = append(drop, it)
			continue
		}
		r.seen[it.digest] = true
		r.g.inflightMu.Lock()
		claimed := r.g.claimed(it.digest)
		r.g.inflightMu.Unlock()
		if claimed {
			if count {
				r.rep.Objects++
			}
			continue // its request is still running: look again next time
		}
		ref, err := isRef(txn, it.digest)
		if err != nil {
			return err
		}
		if ref {
			if count {
				r.rep.Objects++
				r.rep.Referenced++
			}
			drop = append(drop, it)
			continue
		}
		info, err := r.g.cfg.Store.Stat(ctx, it.digest)
		if errors.Is(err, storage.ErrNotFound) {
			drop = append(drop, it) // never published, or already deleted
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", it.digest, storageErr(err))
		}
		if count {
			r.rep.Objects++
		}
		if info.Modified.After(r.cutoff) {
			if count {
				r.rep.Young++
			}
			if k := gcYoungKey(info.Modified, it.digest); !bytes.Equal(k, it.key) {
				drop, add = append(drop, it), append(add, k)
			}
			continue
		}
		it.info = info
		cands = append(cands, it)
	}
	if len(cands) > 0 {
		// Entries appended while we looked may name candidates.
		if _, err := r.g.indexReferences(ctx, r.ix); err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		txn.Discard()
		txn = r.ix.db.NewTransaction(false)
	}
	var keep []gcItem
	for _, c := range cands {
		ref, err := isRef(txn, c.digest)
		if err != nil {
			return err
		}
		if ref {
			r.rep.Referenced++
			drop = append(drop, c)
			continue
		}
		if r.dryRun {
			r.rep.Deleted++
			r.rep.Bytes += c.info.Size
			continue
		}
		keep = append(keep, c)
	}
	deleted, err := r.deleteAll(ctx, keep)
	if err != nil {
		return err
	}
	for _, c := range deleted {
		r.rep.Deleted++
		r.rep.Bytes += c.info.Size
		drop = append(drop, c)
	}
	if r.dryRun {
		return nil
	}
	wb := r.ix.db.NewWriteBatch()
	defer wb.Cancel()
	// A note rewritten by a claim since we read it stays: its request may
	// yet fail and leave the object unnamed.
	r.g.inflightMu.Lock()
	drop = slices.DeleteFunc(drop, func(it gcItem) bool { return r.g.claimedDuringGC[it.digest] })
	r.g.inflightMu.Unlock()
	for _, it := range drop {
		if err := wb.Delete(it.key); err != nil {
			return err
		}
	}
	for _, k := range add {
		if err := wb.Set(k, nil); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// gcDeleters is how many deletes run at once: each may wait for a sync
// (files) or a round trip (S3), so they overlap well.
const gcDeleters = 16

// deleteAll deletes the unclaimed ones of cands and returns those deleted.
func (r *gcRun) deleteAll(ctx context.Context, cands []gcItem) ([]gcItem, error) {
	var (
		mu       sync.Mutex
		deleted  []gcItem
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan gcItem)
	for range min(gcDeleters, len(cands)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				ok, err := r.g.deleteUnclaimed(ctx, c.digest)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = fmt.Errorf("delete %s: %w", c.digest, err)
				case ok:
					deleted = append(deleted, c)
				}
				mu.Unlock()
			}
		}()
	}
	for _, c := range cands {
		next <- c
	}
	close(next)
	wg.Wait()
	return deleted, firstErr
}
