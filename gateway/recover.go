package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"tongban/ledger"
)

// Replay tuning. A batch is what one view transaction holds at most (the
// state retries a batch too big for Badger in halves); while one batch is
// applied the next one's manifests are read, replayReaders at once, since
// the store's reads wait on disks or round trips and one at a time they
// were most of a replay.
var (
	replayBatch   = 256 // a variable for tests
	replayReaders = 16
)

// replayBatchOf is one batch of entries and the file names of the
// manifests they name (nil for one that cannot be read).
type replayBatchOf struct {
	recs  []*ledger.Record
	names map[string]map[string]string
}

// catchUp replays entries [from, size) into the views in seq order, a
// batch at a time: memory stays bounded whatever the ledger's size (a few
// batches in flight, no map of every packet).
func (g *Gateway) catchUp(ctx context.Context, from, size int64) error {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	scanned := make(chan []*ledger.Record, 1)
	var scanErr error
	go func() {
		defer close(scanned)
		recs := make([]*ledger.Record, 0, replayBatch)
		scanErr = g.cfg.Ledger.Scan(ctx, from, func(rec *ledger.Record) error {
			if rec.Seq >= size {
				return nil
			}
			if recs = append(recs, rec); len(recs) == replayBatch {
				select {
				case scanned <- recs:
				case <-ctx.Done():
					return ctx.Err()
				}
				recs = make([]*ledger.Record, 0, replayBatch)
			}
			return nil
		})
		if scanErr == nil && len(recs) > 0 {
			select {
			case scanned <- recs:
			case <-ctx.Done():
			}
		}
	}()

	ready := make(chan replayBatchOf, 1)
	go func() {
		defer close(ready)
		for recs := range scanned {
			b := replayBatchOf{recs: recs, names: g.prefetchNames(ctx, recs)}
			select {
			case ready <- b:
			case <-ctx.Done():
				return
			}
		}
	}()

	var err error
	for b := range ready {
		// A batch read after the caller gave up may lack names (its
		// reads failed): it must not be applied.
		if err = ctx.Err(); err != nil {
			break
		}
		names := func(digest string) map[string]string {
			if n, ok := b.names[digest]; ok {
				return n
			}
			return g.manifestNames(ctx)(digest)
		}
		if err = g.state.replay(b.recs, names); err != nil {
			break
		}
		g.recovered.Store(b.recs[len(b.recs)-1].Seq + 1 - from)
	}
	cancel()
	for range ready { // the readers end
	}
	if err == nil {
		// ready is closed only after the scan returned.
		err = scanErr
	}
	if err != nil {
		return fmt.Errorf("gateway: replay entries into the views: %w", err)
	}
	g.recovering.Store(false)
	g.log.Info("packet views brought up to the ledger", "from", from, "entries", size-from, "took", time.Since(start))
	return nil
}

// prefetchNames reads the manifests recs name, replayReaders at once.
func (g *Gateway) prefetchNames(ctx context.Context, recs []*ledger.Record) map[string]map[string]string {
	var digests []string
	seen := map[string]bool{}
	for _, rec := range recs {
		if rec.Type != EntrySubmitted && rec.Type != EntrySupplemented {
			continue
		}
		var pl struct {
			Manifest string `json:"manifest"`
		}
		if json.Unmarshal(rec.Payload, &pl) != nil || pl.Manifest == "" || seen[pl.Manifest] {
			continue
		}
		seen[pl.Manifest] = true
		digests = append(digests, pl.Manifest)
	}
	out := make(map[string]map[string]string, len(digests))
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan string)
	load := g.manifestNames(ctx)
	for range min(replayReaders, len(digests)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				n := load(d)
				mu.Lock()
				out[d] = n
				mu.Unlock()
			}
		}()
	}
	for _, d := range digests {
		next <- d
	}
	close(next)
	wg.Wait()
	return out
}
