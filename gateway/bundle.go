package gateway

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"tongban/gateway/bundle"
	"tongban/ledger"
	"tongban/storage"
)

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
		_, _, err = g.record(ctx, who, nil, p, EntryViolation, packet, &v, namesOf(p.Materials))
	} else {
		var b []byte
		if b, err = encodePayload(&v); err == nil {
			var rec *ledger.Record
			if rec, err = g.cfg.Ledger.Append(ctx, ledger.Entry{Type: EntryViolation, Actor: ledger.Actor{Agency: who.Agency, Role: who.Role}, Packet: packet, Payload: b}); err == nil {
				_, err = g.state.record(rec, nil) // moves the views' watermark past it
			}
		}
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
		if _, _, err := g.record(ctx, who, nil, cur, EntryDownloaded, id, &downloadedPayload{What: "material", Kind: kind}, namesOf(cur.Materials)); err != nil {
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
		_, _, err = g.record(ctx, who, nil, cur, EntryDownloaded, id, &downloadedPayload{What: "bundle"}, namesOf(cur.Materials))
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
