package gateway

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"tongban/gateway/bundle"
	"tongban/ledger"
	"tongban/storage"
)

// InclusionProof is an RFC 6962 audit path, as served and bundled.
type InclusionProof = bundle.InclusionProof

// ConsistencyProof proves the tree of size From is a prefix of size To.
type ConsistencyProof struct {
	From   int64         `json:"from"`
	To     int64         `json:"to"`
	Hashes []ledger.Hash `json:"hashes"`
}

// verifyObject reads a stored object through and reports whether it is
// intact; on corruption or loss it records integrity.violation. It runs
// before any byte is sent, so a client never gets a 200 for altered bytes.
func (g *Gateway) verifyObject(ctx context.Context, who Principal, packet, kind, digest string) error {
	if _, err := g.readThrough(ctx, digest); err != nil {
		return g.objectErr(ctx, who, packet, kind, digest, err)
	}
	return nil
}

// objectErr translates an error reading a stored object of packet. A
// missing or altered object is recorded as integrity.violation; the
// caller must not hold the packet's lock.
func (g *Gateway) objectErr(ctx context.Context, who Principal, packet, kind, digest string, err error) error {
	if !errors.Is(err, storage.ErrCorrupt) && !errors.Is(err, storage.ErrNotFound) {
		return storageErr(err)
	}
	g.recordViolation(ctx, who, packet, kind, digest, err)
	return fmt.Errorf("%w: %s of packet %s: %v", ErrIntegrity, kind, packet, err)
}

// recordViolation appends integrity.violation for a bad stored object.
func (g *Gateway) recordViolation(ctx context.Context, who Principal, packet, kind, digest string, cause error) {
	v := violationPayload{Kind: kind, SHA256: digest, Detail: "missing"}
	var ce *storage.CorruptError
	if errors.As(cause, &ce) {
		v.Got, v.Detail = ce.Got, "altered"
	}
	defer g.lock(packet)()
	p, _ := g.state.get(packet) // nil for an unknown packet
	// The violation is recorded even if the caller went away meanwhile.
	ctx = context.WithoutCancel(ctx)
	var err error
	if p != nil {
		_, _, err = g.record(ctx, who, p, EntryViolation, packet, v, namesOf(p.Materials))
	} else {
		_, err = g.cfg.Ledger.Append(ctx, ledger.Entry{Type: EntryViolation, Actor: ledger.Actor{Agency: who.Agency, Role: who.Role}, Packet: packet, Payload: mustJSON(v)})
	}
	if err != nil {
		g.log.Error("integrity violation not recorded", "packet", packet, "sha256", digest, "err", err)
	}
	g.log.Warn("integrity violation", "packet", packet, "kind", kind, "sha256", digest, "detail", v.Detail)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// OpenMaterial returns one material of a packet, for its destination. The
// object is verified in full before the reader is returned, and the reader
// verifies again while streaming.
func (g *Gateway) OpenMaterial(ctx context.Context, who Principal, id, kind string) (io.ReadCloser, *MaterialRef, error) {
	p, err := g.packetFor(who, id)
	if err != nil {
		return nil, nil, err
	}
	if who.Agency != p.Destination || who.Role != RoleReviewer {
		return nil, nil, fmt.Errorf("%w: materials are downloaded by the destination's reviewer", ErrForbidden)
	}
	var ref *MaterialRef
	for i := range p.Materials {
		if p.Materials[i].Kind == kind {
			ref = &p.Materials[i]
		}
	}
	if kind == "license" && p.License != nil {
		ref = p.License
	}
	if ref == nil {
		return nil, nil, fmt.Errorf("%w: packet %s has no material %q", ErrNotFound, id, kind)
	}
	if err := g.verifyObject(ctx, who, id, kind, ref.SHA256); err != nil {
		return nil, nil, err
	}
	rc, _, err := g.cfg.Store.Open(ctx, ref.SHA256)
	if err != nil {
		return nil, nil, storageErr(err)
	}
	defer g.lock(id)()
	if cur, err := g.state.get(id); err == nil {
		if _, _, err := g.record(ctx, who, cur, EntryDownloaded, id, downloadedPayload{What: "material", Kind: kind}, namesOf(cur.Materials)); err != nil {
			rc.Close()
			return nil, nil, err
		}
	}
	return rc, ref, nil
}

// WriteBundle writes a packet's bundle for its destination or an auditor:
// manifest.json, the materials, the licence if issued, and evidence/ with
// the packet's ledger entries, an inclusion proof of each and the signed
// checkpoint they lead to. The download itself is recorded first, so the
// bundle proves it too. Every object is verified before the first byte is
// written.
func (g *Gateway) WriteBundle(ctx context.Context, who Principal, id string, w io.Writer) error {
	p, err := g.packetFor(who, id)
	if err != nil {
		return err
	}
	if (who.Agency != p.Destination || who.Role != RoleReviewer) && who.Role != RoleAuditor {
		return fmt.Errorf("%w: bundles are for the destination's reviewer and auditors", ErrForbidden)
	}
	objects := append([]MaterialRef{{Kind: "manifest", SHA256: p.Manifest}}, p.Materials...)
	if p.License != nil {
		objects = append(objects, *p.License)
	}
	for _, o := range objects {
		if err := g.verifyObject(ctx, who, id, o.Kind, o.SHA256); err != nil {
			return err
		}
	}
	unlock := g.lock(id)
	cur, err := g.state.get(id)
	if err == nil {
		_, _, err = g.record(ctx, who, cur, EntryDownloaded, id, downloadedPayload{What: "bundle"}, namesOf(cur.Materials))
	}
	unlock()
	if err != nil {
		return err
	}
	signed, err := g.cfg.Ledger.Checkpoint()
	if err != nil {
		return fmt.Errorf("gateway: checkpoint: %w", err)
	}
	cp, err := ledger.OpenCheckpoint(signed, g.cfg.Ledger.VerifierKey())
	if err != nil {
		return fmt.Errorf("gateway: own checkpoint: %w", err)
	}
	recs, err := g.cfg.Ledger.ByPacket(id)
	if err != nil {
		return err
	}

	zw := zip.NewWriter(w)
	now := g.cfg.Now()
	add := func(name string, r io.Reader) error {
		// Stored, not deflated: scans are already compressed.
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: now})
		if err != nil {
			return err
		}
		_, err = io.Copy(fw, r)
		return err
	}
	copyObject := func(name, digest string) error {
		rc, _, err := g.cfg.Store.Open(ctx, digest)
		if err != nil {
			return storageErr(err)
		}
		defer rc.Close()
		return add(name, rc)
	}
	if err := copyObject(bundle.Manifest, p.Manifest); err != nil {
		return err
	}
	for _, m := range p.Materials {
		if err := copyObject(bundle.Materials+m.Kind+"/"+m.Filename, m.SHA256); err != nil {
			return err
		}
	}
	if p.License != nil {
		if err := copyObject(bundle.License+p.License.Filename, p.License.SHA256); err != nil {
			return err
		}
	}
	for _, rec := range recs {
		if rec.Seq >= cp.Size {
			continue // appended after the checkpoint was taken
		}
		name := fmt.Sprintf("%d.json", rec.Seq)
		if err := add(bundle.Entries+name, bytes.NewReader(rec.Raw)); err != nil {
			return err
		}
		hashes, err := g.cfg.Ledger.ProveInclusion(rec.Seq, cp.Size)
		if err != nil {
			return err
		}
		if err := add(bundle.Proofs+name, bytes.NewReader(mustJSON(InclusionProof{Seq: rec.Seq, Size: cp.Size, Hashes: hashes}))); err != nil {
			return err
		}
	}
	if err := add(bundle.Checkpoint, bytes.NewReader(signed)); err != nil {
		return err
	}
	return zw.Close()
}

// LedgerKey returns the log's note verifier key.
func (g *Gateway) LedgerKey() string { return g.cfg.Ledger.VerifierKey() }

// Checkpoint returns a signed checkpoint covering every acknowledged entry.
func (g *Gateway) Checkpoint() ([]byte, error) { return g.cfg.Ledger.Checkpoint() }

func auditorOnly(who Principal) error {
	if who.Role != RoleAuditor {
		return fmt.Errorf("%w: ledger records are for auditors", ErrForbidden)
	}
	return nil
}

// Entry returns one ledger entry, for auditors.
func (g *Gateway) Entry(who Principal, seq int64) (*ledger.Record, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	rec, err := g.cfg.Ledger.Get(seq)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	return rec, err
}

// PacketEntries returns a packet's ledger entries, for auditors.
func (g *Gateway) PacketEntries(who Principal, packet string) ([]*ledger.Record, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	if !validPacketID(packet) {
		return nil, fieldError(ErrMalformed, "packet", "not a packet id")
	}
	return g.cfg.Ledger.ByPacket(packet)
}

// Inclusion proves entry seq in the tree of the given size, for auditors.
func (g *Gateway) Inclusion(who Principal, seq, size int64) (*InclusionProof, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	h, err := g.cfg.Ledger.ProveInclusion(seq, size)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return &InclusionProof{Seq: seq, Size: size, Hashes: h}, nil
}

// Consistency proves the tree of size from is a prefix of size to, for auditors.
func (g *Gateway) Consistency(who Principal, from, to int64) (*ConsistencyProof, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	h, err := g.cfg.Ledger.ProveConsistency(from, to)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return &ConsistencyProof{From: from, To: to, Hashes: h}, nil
}

// VerifyReport is the result of VerifyLedger.
type VerifyReport struct {
	OK          bool          `json:"ok"`
	Size        int64         `json:"size"`
	Root        ledger.Hash   `json:"root"`
	Checkpoints int           `json:"checkpoints"`
	FirstBadSeq *int64        `json:"first_bad_seq,omitempty"`
	Error       string        `json:"error,omitempty"`
	Took        time.Duration `json:"took_ns"`
}

// VerifyLedger runs the ledger's full check, for auditors.
func (g *Gateway) VerifyLedger(ctx context.Context, who Principal, progress func(done, total int64)) (*VerifyReport, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	start := time.Now()
	rep, err := g.cfg.Ledger.Verify(ctx, progress)
	out := &VerifyReport{OK: err == nil, Size: rep.Size, Root: rep.Root, Checkpoints: rep.Checkpoints, Took: time.Since(start)}
	var ve *ledger.VerifyError
	if errors.As(err, &ve) {
		out.FirstBadSeq, out.Error = &ve.Seq, ve.Error()
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LedgerSize returns the number of acknowledged ledger entries.
func (g *Gateway) LedgerSize() int64 { return g.cfg.Ledger.Size() }

// EntryRange returns up to limit entries from seq from on, for auditors.
func (g *Gateway) EntryRange(ctx context.Context, who Principal, from, limit int64) ([]*ledger.Record, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	var out []*ledger.Record
	errStop := errors.New("stop")
	err := g.cfg.Ledger.Scan(ctx, from, func(r *ledger.Record) error {
		out = append(out, r)
		if int64(len(out)) >= limit {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}
