package gateway

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"time"

	"tongban/gateway/bundle"
	"tongban/ledger"
	"tongban/ledger/format"
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
	// The cause names paths or hosts: it goes to the log and the ledger
	// entry, not to the client.
	return fmt.Errorf("%w: %s (sha256 %s) of packet %s is missing or altered", ErrIntegrity, kind, digest, packet)
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

// WriteBundle writes a packet's bundle for its destination or an auditor,
// in the canonical form of docs/formats.md: manifest.json, applicant.json
// (for the destination's reviewer only), the materials,
// the licence if issued, and evidence/ with the packet's ledger entries,
// an inclusion proof of each and a checkpoint signed at exactly the
// download entry. The download is recorded under the packet's lock and the
// bundle is built from the view at that entry, so it shows the packet's
// whole history up to its download and nothing can follow inside the
// signed tree. Every object is verified before the first byte is written.
func (g *Gateway) WriteBundle(ctx context.Context, who Principal, id string, w io.Writer) error {
	p, err := g.packetFor(who, id)
	if err != nil {
		return err
	}
	if (who.Agency != p.Destination || who.Role != RoleReviewer) && who.Role != RoleAuditor {
		return fmt.Errorf("%w: bundles are for the destination's reviewer and auditors", ErrForbidden)
	}
	var snap *bundleSnapshot
	for attempt := 0; snap == nil; attempt++ {
		// Objects are read through outside the lock (they may be large,
		// and a bad one is recorded under it); the snapshot is taken only
		// if the packet still names the same objects.
		crcs, err := g.verifyObjects(ctx, who, p)
		if err != nil {
			return err
		}
		applicant, err := g.bundleApplicant(ctx, who, p, crcs)
		if err != nil {
			return err
		}
		unlock := g.lock(id)
		cur, err := g.state.get(id)
		if err == nil && sameObjects(cur, p) {
			snap, err = g.snapshotBundle(ctx, who, cur, crcs)
		}
		if snap != nil {
			snap.applicant = applicant
		}
		unlock()
		if err != nil {
			return err
		}
		if snap == nil {
			if attempt == 2 {
				return fmt.Errorf("%w: packet %s keeps changing while its bundle is prepared; try again", ErrConflict, id)
			}
			p = cur
		}
	}
	if g.cfg.Cosigned != nil {
		// Outside the lock: the witnesses may take a moment to cosign the
		// tree that holds the download entry. Without them the bundle is
		// still complete, only not witnessed, and verifiers say so.
		size := snap.entries[len(snap.entries)-1].Seq + 1
		wctx, cancel := context.WithTimeout(ctx, cosignWait)
		signed, proof, err := g.cfg.Cosigned(wctx, size)
		cancel()
		if err != nil {
			g.log.Warn("bundle without a cosigned checkpoint", "packet", id, "size", size, "err", err)
		} else {
			var to int64
			if cp, err := format.ParseCheckpoint(checkpointText(signed)); err == nil {
				to = cp.Size
			}
			snap.cosigned = signed
			snap.consistency = mustJSON(ConsistencyProof{From: size, To: to, Hashes: proof})
		}
	}
	return g.streamBundle(ctx, snap, w)
}

// bundleApplicant returns the applicant object the reviewer's bundle holds
// as applicant.json, verified and with its CRC in crcs; "" for an auditor,
// whose bundle proves the packet without it, and for a manifest from before
// the applicant had its own object.
func (g *Gateway) bundleApplicant(ctx context.Context, who Principal, p *Packet, crcs map[string]uint32) (string, error) {
	if who.Role == RoleAuditor {
		return "", nil
	}
	m, err := g.readManifest(ctx, who, p.ID, p.Manifest)
	if err != nil {
		return "", err
	}
	d := m.Applicant.SHA256
	if d == "" {
		return "", nil
	}
	crc, err := g.crcOf(ctx, d)
	if err != nil {
		return "", g.objectErr(ctx, who, p.ID, "applicant", d, err)
	}
	crcs[d] = crc
	return d, nil
}

// cosignWait bounds how long a bundle download waits for the witnesses.
const cosignWait = 10 * time.Second

// checkpointText is the text of a signed note, up to its blank line.
func checkpointText(signed []byte) []byte {
	if i := bytes.Index(signed, []byte("\n\n")); i >= 0 {
		return signed[:i+1]
	}
	return signed
}

// bundleSnapshot is a packet's bundle as of its download entry: everything
// but the objects' bytes.
type bundleSnapshot struct {
	packet    *Packet
	applicant string            // the applicant object's digest; "" to leave it out
	crcs      map[string]uint32 // digest -> CRC-32, for the zip headers
	entries   []*ledger.Record
	proofs    [][]byte
	signed    []byte
	// cosigned and consistency, when the log has witnesses: the newest
	// checkpoint with a quorum of cosignatures covering the download entry,
	// and a proof that the exact-size checkpoint is a prefix of it.
	cosigned, consistency []byte
}

func objectsOf(p *Packet) []MaterialRef {
	objs := append([]MaterialRef{{Kind: "manifest", SHA256: p.Manifest}}, p.Materials...)
	if p.License != nil {
		objs = append(objs, *p.License)
	}
	return objs
}

func sameObjects(a, b *Packet) bool {
	x, y := objectsOf(a), objectsOf(b)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// verifyObjects reads every object of p through (the store checks each
// digest) and returns their CRC-32s. A bad object is recorded.
func (g *Gateway) verifyObjects(ctx context.Context, who Principal, p *Packet) (map[string]uint32, error) {
	crcs := map[string]uint32{}
	for _, o := range objectsOf(p) {
		crc, err := g.crcOf(ctx, o.SHA256)
		if err != nil {
			return nil, g.objectErr(ctx, who, p.ID, o.Kind, o.SHA256, err)
		}
		crcs[o.SHA256] = crc
	}
	return crcs, nil
}

func (g *Gateway) crcOf(ctx context.Context, digest string) (uint32, error) {
	rc, _, err := g.cfg.Store.Open(ctx, digest)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, rc); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}

// snapshotBundle records the download and gathers the evidence as of it.
// The caller holds the packet's lock, so no entry of the packet can come
// between the download entry and the view p.
func (g *Gateway) snapshotBundle(ctx context.Context, who Principal, p *Packet, crcs map[string]uint32) (*bundleSnapshot, error) {
	next, dl, err := g.record(ctx, who, nil, p, EntryDownloaded, p.ID, &downloadedPayload{What: "bundle"}, namesOf(p.Materials))
	if err != nil {
		return nil, err
	}
	size := dl.Seq + 1
	signed, err := g.cfg.Ledger.CheckpointAt(size)
	if err != nil {
		return nil, fmt.Errorf("gateway: checkpoint at %d: %w", size, err)
	}
	recs, err := g.cfg.Ledger.ByPacket(p.ID)
	if err != nil {
		return nil, err
	}
	s := &bundleSnapshot{packet: next, crcs: crcs, signed: signed}
	for _, rec := range recs {
		if rec.Seq >= size {
			break // cannot happen under the lock; kept out of the tree regardless
		}
		hashes, err := g.cfg.Ledger.ProveInclusion(rec.Seq, size)
		if err != nil {
			return nil, err
		}
		s.entries = append(s.entries, rec)
		s.proofs = append(s.proofs, mustJSON(InclusionProof{Seq: rec.Seq, Size: size, Hashes: hashes}))
	}
	if n := len(s.entries); n == 0 || s.entries[n-1].Seq != dl.Seq {
		return nil, fmt.Errorf("gateway: the packet's entries do not end at its download entry %d", dl.Seq)
	}
	return s, nil
}

// streamBundle writes the canonical zip: stored files with their CRC and
// sizes in the local headers (no data descriptors), names in NFC, in the
// documented order.
func (g *Gateway) streamBundle(ctx context.Context, s *bundleSnapshot, w io.Writer) error {
	zw := zip.NewWriter(w)
	now := g.cfg.Now()
	add := func(name string, size int64, crc uint32, r io.Reader) error {
		fh := &zip.FileHeader{Name: name, Method: zip.Store, Modified: now, CRC32: crc,
			CompressedSize64: uint64(size), UncompressedSize64: uint64(size)}
		if !isASCII(name) {
			fh.Flags |= 0x800 // UTF-8 name
		}
		fw, err := zw.CreateRaw(fh)
		if err != nil {
			return err
		}
		n, err := io.Copy(fw, r)
		if err == nil && n != size {
			err = fmt.Errorf("gateway: %s: %d bytes, expected %d", name, n, size)
		}
		return err
	}
	addBytes := func(name string, b []byte) error {
		return add(name, int64(len(b)), crc32.ChecksumIEEE(b), bytes.NewReader(b))
	}
	copyObject := func(name, digest string) error {
		rc, info, err := g.cfg.Store.Open(ctx, digest)
		if err != nil {
			return storageErr(err)
		}
		defer rc.Close()
		return add(name, info.Size, s.crcs[digest], rc)
	}
	p := s.packet
	if err := copyObject(bundle.Manifest, p.Manifest); err != nil {
		return err
	}
	if s.applicant != "" {
		if err := copyObject(bundle.Applicant, s.applicant); err != nil {
			return err
		}
	}
	for _, m := range p.Materials {
		if err := copyObject(bundle.MaterialName(m.Kind, m.Filename), m.SHA256); err != nil {
			return err
		}
	}
	if p.License != nil {
		if err := copyObject(bundle.License+p.License.Filename, p.License.SHA256); err != nil {
			return err
		}
	}
	for i, rec := range s.entries {
		name := strconv.FormatInt(rec.Seq, 10) + ".json"
		if err := addBytes(bundle.Entries+name, rec.Raw); err != nil {
			return err
		}
		if err := addBytes(bundle.Proofs+name, s.proofs[i]); err != nil {
			return err
		}
	}
	if err := addBytes(bundle.Checkpoint, s.signed); err != nil {
		return err
	}
	if s.cosigned != nil {
		if err := addBytes(bundle.Cosigned, s.cosigned); err != nil {
			return err
		}
		if err := addBytes(bundle.Consistency, s.consistency); err != nil {
			return err
		}
	}
	return zw.Close()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
