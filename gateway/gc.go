package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"tongban/ledger"
	"tongban/storage"
)

// Objects are content-addressed and shared: two packets holding the same
// scan hold one object. An object is garbage when no ledger entry names it
// (an upload that failed half-way, a packet refused after its files were
// stored) and it is older than a grace period. Requests claim the objects
// they store, before the store publishes them, until their entry is
// durable, so the collector never takes an object an entry is about to name.

// claims are the objects one request has stored and not yet recorded. The
// request passes them down to where it stores objects.
type claims struct {
	digests []string
}

// claimObjects starts the claims of a request that stores objects. Call
// the returned func when the request is over.
func (g *Gateway) claimObjects() (*claims, func()) {
	c := &claims{}
	return c, func() {
		g.inflightMu.Lock()
		defer g.inflightMu.Unlock()
		for _, d := range c.digests {
			if g.inflight[d]--; g.inflight[d] <= 0 {
				delete(g.inflight, d)
			}
		}
	}
}

// claim protects an object from the collector. It is the store's
// BeforePublish hook, so it runs before the store looks for an existing
// copy or publishes this one: a collector that deleted an identical old
// object just before is answered by the publication, and one that comes
// after sees the claim. No check of the store is needed afterwards.
func (g *Gateway) claim(c *claims, digest string) error {
	g.inflightMu.Lock()
	for {
		// A delete under way finishes first; the store then publishes anew.
		done, ok := g.gcDeleting[digest]
		if !ok {
			break
		}
		g.inflightMu.Unlock()
		<-done
		g.inflightMu.Lock()
	}
	g.inflight[digest]++
	if g.claimedDuringGC != nil {
		g.claimedDuringGC[digest] = true
	}
	g.inflightMu.Unlock()
	c.digests = append(c.digests, digest)
	// Noted before the store publishes the object, so the next collection
	// looks at it whatever becomes of the request.
	if err := (gcIndex{db: g.state.db}).noteNew(digest); err != nil {
		return fmt.Errorf("gateway: note new object: %w", err)
	}
	return nil
}

// hook is claim as a storage.PutOptions.BeforePublish for a request's claims.
func (c *claims) hook(g *Gateway) func(string) error {
	return func(digest string) error { return g.claim(c, digest) }
}

// objectRef is where the ledger names an object first.
type objectRef struct {
	packet, kind string
}

// named calls fn for every object named by the ledger's entries from seq
// from on, and returns the ledger size it read up to.
func (g *Gateway) named(ctx context.Context, from int64, fn func(digest string, ref objectRef) error) (int64, error) {
	next := from
	err := g.cfg.Ledger.Scan(ctx, from, func(rec *ledger.Record) error {
		next = rec.Seq + 1
		var pl struct {
			Manifest  string           `json:"manifest"`
			SHA256    string           `json:"sha256"`
			Materials []materialDigest `json:"materials"`
		}
		if json.Unmarshal(rec.Payload, &pl) != nil {
			return nil
		}
		add := func(d, kind string) error {
			if !storage.ValidSHA256(d) {
				return nil
			}
			return fn(d, objectRef{packet: rec.Packet, kind: kind})
		}
		switch rec.Type {
		case EntrySubmitted, EntrySupplemented:
			if err := add(pl.Manifest, "manifest"); err != nil {
				return err
			}
			if rec.Type == EntrySubmitted && storage.ValidSHA256(pl.Manifest) {
				// The applicant object is named by the manifest, not the
				// ledger (supplements keep the first one's); an
				// unreadable manifest stops the collection rather than
				// lose it.
				app, err := g.applicantOf(ctx, pl.Manifest)
				if err != nil {
					return fmt.Errorf("manifest %s of packet %s: %w", pl.Manifest, rec.Packet, err)
				}
				if err := add(app, "applicant"); err != nil {
					return err
				}
			}
			for _, m := range pl.Materials {
				if err := add(m.SHA256, m.Kind); err != nil {
					return err
				}
			}
		case EntryLicense:
			return add(pl.SHA256, "license")
		}
		return nil
	})
	return next, err
}

// applicantOf returns the applicant object a stored manifest names: "" for
// a manifest from before the split, or one that is gone (nothing left to
// keep; the scrub reports the manifest).
func (g *Gateway) applicantOf(ctx context.Context, manifest string) (string, error) {
	b, err := g.loadManifest(ctx, manifest)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrCorrupt) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var m struct {
		Applicant struct {
			SHA256 string `json:"sha256"`
		} `json:"applicant"`
	}
	json.Unmarshal(b, &m)
	return m.Applicant.SHA256, nil
}

// references adds to refs every object named by the ledger's entries from
// seq from on, and returns the ledger size it read up to.
func (g *Gateway) references(ctx context.Context, from int64, refs map[string]objectRef) (int64, error) {
	return g.named(ctx, from, func(d string, ref objectRef) error {
		if _, ok := refs[d]; !ok {
			refs[d] = ref
		}
		return nil
	})
}

// GCReport says what a collection found and did. A full collection counts
// every object in the store; an incremental one only those it looked at:
// the objects stored since the last collection and those that were too
// young then.
type GCReport struct {
	Objects    int   `json:"objects"`    // looked at
	Referenced int   `json:"referenced"` // named by the ledger
	Young      int   `json:"young"`      // unreferenced but within the grace period
	Deleted    int   `json:"deleted"`
	Bytes      int64 `json:"deleted_bytes"`
	DryRun     bool  `json:"dry_run"`
	Full       bool  `json:"full"` // the whole store was listed
}

// CollectGarbage deletes objects no ledger entry names that are older than
// grace (with dryRun, only counts them). Temporary files and incomplete
// uploads the store left behind are swept too.
//
// It costs what was stored and recorded since the last collection (see
// gcindex.go): only the first collection, or one after the index was lost,
// lists the whole store.
func (g *Gateway) CollectGarbage(ctx context.Context, grace time.Duration, dryRun bool) (*GCReport, error) {
	return g.collect(ctx, grace, dryRun, false)
}

// CollectAllGarbage is CollectGarbage that lists the whole store, for the
// objects the index cannot know of: stored behind the gateway's back, or
// whose note was lost with the state database in a power cut.
func (g *Gateway) CollectAllGarbage(ctx context.Context, grace time.Duration, dryRun bool) (*GCReport, error) {
	return g.collect(ctx, grace, dryRun, true)
}

func (g *Gateway) collect(ctx context.Context, grace time.Duration, dryRun, full bool) (*GCReport, error) {
	g.gcMu.Lock()
	defer g.gcMu.Unlock()
	// Every object claimed while this collection runs is kept, even if its
	// request finished (and released the claim) after our last look at the
	// ledger: its entry may be newer than what we read.
	g.inflightMu.Lock()
	g.claimedDuringGC = make(map[string]bool, len(g.inflight))
	for d := range g.inflight {
		g.claimedDuringGC[d] = true
	}
	g.inflightMu.Unlock()
	defer func() {
		g.inflightMu.Lock()
		g.claimedDuringGC = nil
		g.inflightMu.Unlock()
	}()
	ix := gcIndex{db: g.state.db}
	if _, err := g.indexReferences(ctx, ix); err != nil {
		return nil, fmt.Errorf("gateway: gc: read ledger: %w", err)
	}
	if !full {
		done, err := ix.fullDone()
		if err != nil {
			return nil, fmt.Errorf("gateway: gc: %w", err)
		}
		full = !done
	}
	rep := &GCReport{DryRun: dryRun, Full: full}
	cutoff := g.cfg.Now().Add(-grace)
	run := &gcRun{g: g, ix: ix, rep: rep, cutoff: cutoff, dryRun: dryRun, seen: map[string]bool{}}
	var err error
	if full {
		err = run.listAll(ctx)
	} else {
		err = run.drainNew(ctx)
	}
	if err == nil {
		err = run.drainYoung(ctx)
	}
	if err == nil && full {
		err = ix.setFullDone()
	}
	if err != nil {
		return rep, fmt.Errorf("gateway: gc: %w", err)
	}
	if sw, ok := g.cfg.Store.(storage.Sweeper); ok && !dryRun {
		if err := sw.Sweep(ctx, grace); err != nil {
			return rep, fmt.Errorf("gateway: gc: sweep: %w", err)
		}
	}
	g.log.Info("garbage collected", "objects", rep.Objects, "referenced", rep.Referenced, "young", rep.Young, "deleted", rep.Deleted, "bytes", rep.Bytes, "dry_run", dryRun, "full", full)
	return rep, nil
}

// deleteUnclaimed deletes an object unless a request has claimed it. A
// claim of the object waits for the delete to end, so deletes of different
// objects can run at once without one being taken from under a claim.
func (g *Gateway) deleteUnclaimed(ctx context.Context, digest string) (bool, error) {
	g.inflightMu.Lock()
	if g.claimed(digest) || g.gcDeleting[digest] != nil {
		g.inflightMu.Unlock()
		return false, nil
	}
	if g.gcDeleting == nil {
		g.gcDeleting = make(map[string]chan struct{})
	}
	done := make(chan struct{})
	g.gcDeleting[digest] = done
	g.inflightMu.Unlock()
	defer func() {
		g.inflightMu.Lock()
		delete(g.gcDeleting, digest)
		close(done)
		g.inflightMu.Unlock()
	}()
	err := g.cfg.Store.Delete(ctx, digest)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// claimed reports whether the collector must keep digest for a request.
// g.inflightMu is held.
func (g *Gateway) claimed(digest string) bool {
	return g.inflight[digest] > 0 || g.claimedDuringGC[digest]
}

// RunGC collects garbage every interval until ctx ends.
func (g *Gateway) RunGC(ctx context.Context, interval, grace time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := g.CollectGarbage(ctx, grace, false); err != nil && ctx.Err() == nil {
				g.log.Warn("garbage collection failed", "err", err)
			}
		}
	}
}

// ScrubReport lists the stored objects the ledger names that failed.
type ScrubReport struct {
	Objects int         `json:"objects"`
	Bytes   int64       `json:"bytes"`
	Missing []ScrubItem `json:"missing"`
	Corrupt []ScrubItem `json:"corrupt"`
}

// ScrubItem is one bad object.
type ScrubItem struct {
	SHA256 string `json:"sha256"`
	Packet string `json:"packet"`
	Kind   string `json:"kind"`
	Got    string `json:"got,omitempty"`
}

// Scrub re-reads every object the ledger names, verifying each digest, and
// records integrity.violation for each missing or altered one. For auditors.
func (g *Gateway) Scrub(ctx context.Context, who Principal, progress func(done, total int64)) (*ScrubReport, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	refs := map[string]objectRef{}
	if _, err := g.references(ctx, 0, refs); err != nil {
		return nil, err
	}
	rep := &ScrubReport{Missing: []ScrubItem{}, Corrupt: []ScrubItem{}}
	for d, ref := range refs {
		n, err := g.readThrough(ctx, d)
		rep.Objects++
		rep.Bytes += n
		item := ScrubItem{SHA256: d, Packet: ref.packet, Kind: ref.kind}
		var ce *storage.CorruptError
		switch {
		case err == nil:
		case errors.As(err, &ce):
			item.Got = ce.Got
			rep.Corrupt = append(rep.Corrupt, item)
			g.recordViolation(ctx, who, ref.packet, ref.kind, d, err)
		case errors.Is(err, storage.ErrNotFound):
			rep.Missing = append(rep.Missing, item)
			g.recordViolation(ctx, who, ref.packet, ref.kind, d, err)
		default:
			return rep, storageErr(err)
		}
		if progress != nil {
			progress(int64(rep.Objects), int64(len(refs)))
		}
	}
	return rep, nil
}

// readThrough reads an object to its end, verifying it.
func (g *Gateway) readThrough(ctx context.Context, digest string) (int64, error) {
	rc, _, err := g.cfg.Store.Open(ctx, digest)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}
