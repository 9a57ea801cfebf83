// Package bundle defines the packet bundle a destination or an auditor
// downloads, and verifies one offline: with the log's verifier key and
// nothing else, no gateway, no Badger, no network.
//
// A bundle is a zip:
//
//	manifest.json               the packet's manifest (applicant, materials, digests)
//	materials/<kind>/<name>     the files
//	license/<name>              the issued licence, once there is one
//	evidence/entries/<seq>.json the packet's ledger entries, canonical bytes
//	evidence/proofs/<seq>.json  an inclusion proof of each into the checkpoint
//	evidence/checkpoint         the signed checkpoint (C2SP signed note)
package bundle

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"tongban/ledger/format"
)

// Paths inside a bundle.
const (
	Manifest   = "manifest.json"
	Materials  = "materials/"
	License    = "license/"
	Entries    = "evidence/entries/"
	Proofs     = "evidence/proofs/"
	Checkpoint = "evidence/checkpoint"
)

// InclusionProof is an RFC 6962 audit path, as served and bundled.
type InclusionProof struct {
	Seq    int64         `json:"seq"`
	Size   int64         `json:"size"`
	Hashes []format.Hash `json:"hashes"`
}

// Check is one verified statement about a bundle.
type Check struct {
	OK     bool   `json:"ok"`
	Target string `json:"target"` // the file, entry or signature checked
	Detail string `json:"detail"`
}

// Report is the outcome of Verify: every check made, in order.
type Report struct {
	OK         bool              `json:"ok"`
	Packet     string            `json:"packet,omitempty"`
	Checkpoint format.Checkpoint `json:"checkpoint"`
	Checks     []Check           `json:"checks"`
}

func (r *Report) pass(target, format string, a ...any) {
	r.Checks = append(r.Checks, Check{OK: true, Target: target, Detail: fmt.Sprintf(format, a...)})
}

func (r *Report) fail(target, format string, a ...any) {
	r.OK = false
	r.Checks = append(r.Checks, Check{OK: false, Target: target, Detail: fmt.Sprintf(format, a...)})
}

// Failures returns the failed checks.
func (r *Report) Failures() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Limits on what a bundle may hold, against hostile archives.
const (
	maxFiles     = 100_000
	maxSmallFile = 1 << 20 // entries, proofs, checkpoint, manifest
)

type entryFile struct {
	raw   []byte
	entry *format.Entry
	leaf  format.Hash
}

// Verify checks a bundle against the log key vkey: the checkpoint's
// signature; every entry's canonical form and inclusion proof into the
// checkpoint; the chain links between consecutive entries and the packet's
// own chain (packet_prev) through the bundle; the manifest against the
// ledger's latest manifest digest; and every material and the licence
// against both. It returns an error only when the bundle cannot be read at
// all; otherwise the report says what holds and what does not.
func Verify(r io.ReaderAt, size int64, vkey string) (*Report, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("bundle: not a readable zip: %w", err)
	}
	if len(zr.File) > maxFiles {
		return nil, fmt.Errorf("bundle: %d files is too many", len(zr.File))
	}
	rep := &Report{OK: true}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup {
			rep.fail(f.Name, "appears twice in the bundle")
		}
		files[f.Name] = f
	}

	// 1. The checkpoint and its signature.
	signed, err := readSmall(files[Checkpoint])
	if err != nil {
		rep.fail(Checkpoint, "%v", err)
		return rep, nil
	}
	cp, err := format.OpenCheckpoint(signed, vkey)
	if err != nil {
		rep.fail("signature", "the checkpoint is not validly signed by the log key: %v", err)
		return rep, nil
	}
	rep.Checkpoint = cp
	rep.pass("signature", "checkpoint of %s, size %d, signed by the log key", cp.Origin, cp.Size)

	// 2. Entries, each proven into the checkpoint.
	entries := map[int64]*entryFile{}
	for name, f := range files {
		if !strings.HasPrefix(name, Entries) {
			continue
		}
		target := "entry " + strings.TrimSuffix(strings.TrimPrefix(name, Entries), ".json")
		seq, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, Entries), ".json"), 10, 64)
		if err != nil || !strings.HasSuffix(name, ".json") {
			rep.fail(name, "not an entry file name")
			continue
		}
		raw, err := readSmall(f)
		if err != nil {
			rep.fail(target, "%v", err)
			continue
		}
		e, err := format.ParseEntry(raw)
		if err != nil {
			rep.fail(target, "%v", err)
			continue
		}
		if e.Seq != seq {
			rep.fail(target, "the file holds entry %d", e.Seq)
			continue
		}
		ef := &entryFile{raw: raw, entry: e, leaf: format.LeafHash(raw)}
		if checkProof(rep, files, target, seq, cp, ef.leaf) {
			entries[seq] = ef
		}
	}
	for name := range files {
		if strings.HasPrefix(name, Proofs) && files[Entries+strings.TrimPrefix(name, Proofs)] == nil {
			rep.fail(name, "a proof without its entry: the entry was dropped from the bundle")
		}
	}
	seqs := make([]int64, 0, len(entries))
	for s := range entries {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	if len(seqs) == 0 {
		rep.fail("entries", "the bundle holds no ledger entry")
		return rep, nil
	}

	// 3. Links: the log's hash chain where entries are consecutive, and the
	// packet's own chain through packet_prev everywhere.
	first := entries[seqs[0]].entry
	rep.Packet = first.Packet
	if first.Type != "packet.submitted" {
		rep.fail(fmt.Sprintf("entry %d", seqs[0]), "the first entry is %s, not packet.submitted: entries were dropped", first.Type)
	}
	for i, s := range seqs {
		e := entries[s].entry
		target := fmt.Sprintf("entry %d", s)
		if e.Packet != rep.Packet {
			rep.fail(target, "belongs to packet %q, not %q", e.Packet, rep.Packet)
		}
		if i == 0 {
			continue
		}
		if prev, ok := entries[s-1]; ok && e.Prev != prev.leaf {
			rep.fail(target, "its prev hash does not match entry %d", s-1)
		}
		var link struct {
			PacketPrev *int64 `json:"packet_prev"`
		}
		json.Unmarshal(e.Payload, &link)
		switch {
		case link.PacketPrev == nil:
			rep.fail(target, "does not name the packet's previous entry")
		case *link.PacketPrev != seqs[i-1]:
			rep.fail(target, "follows entry %d of the packet, which is missing from the bundle", *link.PacketPrev)
		}
	}
	if rep.OK {
		rep.pass("entries", "%d entries of packet %s, each proven into the checkpoint, linked without gaps", len(seqs), rep.Packet)
	}

	// 4. The manifest against the ledger, the files against both.
	ledgerManifest, ledgerFiles, licence := digestsFromEntries(entries, seqs)
	checkFiles(rep, files, ledgerManifest, ledgerFiles, licence)
	return rep, nil
}

func checkProof(rep *Report, files map[string]*zip.File, target string, seq int64, cp format.Checkpoint, leaf format.Hash) bool {
	name := Proofs + strconv.FormatInt(seq, 10) + ".json"
	b, err := readSmall(files[name])
	if err != nil {
		rep.fail(target, "inclusion proof: %v", err)
		return false
	}
	var p InclusionProof
	if err := json.Unmarshal(b, &p); err != nil {
		rep.fail(target, "inclusion proof is malformed: %v", err)
		return false
	}
	if p.Seq != seq || p.Size != cp.Size {
		rep.fail(target, "inclusion proof is for entry %d in a tree of size %d, not entry %d in the checkpoint's %d", p.Seq, p.Size, seq, cp.Size)
		return false
	}
	if err := format.CheckInclusion(p.Hashes, cp.Size, cp.Root, seq, leaf); err != nil {
		rep.fail(target, "not included in the signed tree: the entry or its proof was altered (%v)", err)
		return false
	}
	return true
}

// digestsFromEntries returns what the ledger says the packet holds: the
// latest manifest digest, each material's latest digest, and the licence's.
func digestsFromEntries(entries map[int64]*entryFile, seqs []int64) (manifest string, files map[string]string, licence string) {
	files = map[string]string{}
	for _, s := range seqs {
		e := entries[s].entry
		var pl struct {
			Manifest  string `json:"manifest"`
			SHA256    string `json:"sha256"`
			Materials []struct {
				Kind   string `json:"kind"`
				SHA256 string `json:"sha256"`
			} `json:"materials"`
		}
		if json.Unmarshal(e.Payload, &pl) != nil {
			continue
		}
		switch e.Type {
		case "packet.submitted", "packet.supplemented":
			manifest = pl.Manifest
			for _, m := range pl.Materials {
				files[m.Kind] = m.SHA256
			}
		case "license.issued":
			licence = pl.SHA256
		}
	}
	return manifest, files, licence
}

func checkFiles(rep *Report, files map[string]*zip.File, ledgerManifest string, ledgerFiles map[string]string, licence string) {
	mb, err := readSmall(files[Manifest])
	if err != nil {
		rep.fail(Manifest, "%v", err)
		return
	}
	if got := hexSHA256(mb); got != ledgerManifest {
		rep.fail(Manifest, "has been altered: sha256 %s, the ledger recorded %s", got, ledgerManifest)
	} else {
		rep.pass(Manifest, "matches the ledger's digest %s", got)
	}
	var m struct {
		Materials []struct {
			Kind     string `json:"kind"`
			Filename string `json:"filename"`
			SHA256   string `json:"sha256"`
		} `json:"materials"`
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		rep.fail(Manifest, "unreadable: %v", err)
		return
	}
	seen := map[string]bool{Manifest: true, Checkpoint: true}
	for _, mat := range m.Materials {
		name := Materials + mat.Kind + "/" + mat.Filename
		seen[name] = true
		want := ledgerFiles[mat.Kind]
		if want != mat.SHA256 {
			rep.fail(name, "the manifest says sha256 %s, the ledger recorded %s", mat.SHA256, want)
			continue
		}
		checkFile(rep, files[name], name, want)
	}
	for name := range files {
		if strings.HasPrefix(name, License) {
			seen[name] = true
			if licence == "" {
				rep.fail(name, "a licence file, but the ledger records no licence")
				continue
			}
			checkFile(rep, files[name], name, licence)
		}
	}
	for name := range files {
		if !seen[name] && !strings.HasPrefix(name, Entries) && !strings.HasPrefix(name, Proofs) {
			rep.fail(name, "a file the manifest does not list")
		}
	}
}

// checkFile streams one file and compares its digest.
func checkFile(rep *Report, f *zip.File, name, want string) {
	if f == nil {
		rep.fail(name, "missing from the bundle")
		return
	}
	rc, err := f.Open()
	if err != nil {
		rep.fail(name, "unreadable: %v", err)
		return
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		rep.fail(name, "unreadable: %v", err)
		return
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		rep.fail(name, "has been altered: sha256 %s, the ledger recorded %s", got, want)
		return
	}
	rep.pass(name, "sha256 %s matches the ledger", want)
}

func readSmall(f *zip.File) ([]byte, error) {
	if f == nil {
		return nil, errors.New("missing from the bundle")
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSmallFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSmallFile {
		return nil, fmt.Errorf("larger than %d bytes", maxSmallFile)
	}
	return b, nil
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
