// Package bundle defines the packet bundle a destination or an auditor
// downloads, and verifies one offline: with the log's verifier key and
// nothing else, no gateway, no Badger, no network. The canonical form is
// described in docs/formats.md; Verify accepts that form and nothing that
// could make a zip tool write bytes it did not check.
//
//	manifest.json               the packet's manifest (materials, digests, the applicant's digest)
//	applicant.json              who applies, in clear: in a reviewer's bundle, never an auditor's
//	materials/<kind>/<name>     the files
//	license/<name>              the issued licence, once there is one
//	evidence/entries/<seq>.json the packet's ledger entries, canonical bytes
//	evidence/proofs/<seq>.json  an inclusion proof of each into the checkpoint
//	evidence/checkpoint         the signed checkpoint (C2SP signed note)
//	evidence/cosigned-checkpoint the newest checkpoint a quorum of witnesses
//	                            cosigned, when the log has witnesses
//	evidence/consistency.json   a proof that the first is a prefix of it
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/mod/sumdb/note"

	"tongban/ledger/format"
	"tongban/ledger/gmnote"
	"tongban/ledger/witness"
)

// Paths inside a bundle.
const (
	Manifest   = "manifest.json"
	Applicant  = "applicant.json"
	Materials  = "materials/"
	License    = "license/"
	Entries    = "evidence/entries/"
	Proofs     = "evidence/proofs/"
	Checkpoint = "evidence/checkpoint"
	// Cosigned and Consistency are present when the log has witnesses.
	Cosigned    = "evidence/cosigned-checkpoint"
	Consistency = "evidence/consistency.json"
)

// Verdicts, from best to worst.
const (
	Intact       = "INTACT"       // everything holds
	Incomplete   = "INCOMPLETE"   // something the bundle must hold is missing, or it is older than required
	Altered      = "ALTERED"      // something is not what the ledger vouches for
	Unverifiable = "UNVERIFIABLE" // cannot be judged with the trust given: no bundle, another key
)

// Kinds of fault a failed check reports; they decide the verdict.
const (
	faultIncomplete   = "incomplete"
	faultAltered      = "altered"
	faultUnverifiable = "unverifiable"
)

// InclusionProof is an RFC 6962 audit path, as served and bundled.
type InclusionProof struct {
	Seq    int64         `json:"seq"`
	Size   int64         `json:"size"`
	Hashes []format.Hash `json:"hashes"`
}

// ConsistencyProof proves the tree of size From is a prefix of the tree of
// size To, as served and bundled.
type ConsistencyProof struct {
	From   int64         `json:"from"`
	To     int64         `json:"to"`
	Hashes []format.Hash `json:"hashes"`
}

// Check is one verified statement about a bundle.
type Check struct {
	OK     bool   `json:"ok"`
	Target string `json:"target"` // the file, entry or signature checked
	Detail string `json:"detail"`
	Fault  string `json:"fault,omitempty"` // incomplete, altered or unverifiable
}

// Summary is what an intact bundle proves about its packet.
type Summary struct {
	Packet      string    `json:"packet"`
	Item        string    `json:"item"`
	Origin      string    `json:"origin"`
	Destination string    `json:"destination"`
	Status      string    `json:"status"`
	AsOfSeq     int64     `json:"as_of_seq"`  // the download entry: complete up to here
	AsOf        time.Time `json:"as_of"`      // its time, by the ledger's clock
	Downloader  string    `json:"downloader"` // agency:role that downloaded it
	Applicant   string    `json:"applicant"`  // what the bundle says of the applicant's details
}

// Report is the outcome of Verify: the verdict and every check made.
type Report struct {
	Verdict    string            `json:"verdict"`
	OK         bool              `json:"ok"`
	Packet     string            `json:"packet,omitempty"`
	Summary    *Summary          `json:"summary,omitempty"`
	Checkpoint format.Checkpoint `json:"checkpoint"`
	// Witnessed says what the witnesses vouch for (nil when the bundle
	// could not be read that far).
	Witnessed *Witnessed `json:"witnessed,omitempty"`
	Checks    []Check    `json:"checks"`

	files    []verified // what Extract may write, once the verdict is INTACT
	signed   []byte     // the exact-size checkpoint, as signed
	cosigned []byte     // the cosigned checkpoint, once it checked out
	proof    *ConsistencyProof
}

// Witnessed is what a bundle's cosigned checkpoint and the verifier's
// witness policy establish.
type Witnessed struct {
	// Checked is false when no witness policy was given: the cosignatures,
	// if any, were not checked.
	Checked bool `json:"checked"`
	// Checkpoint is the cosigned checkpoint the bundle's tree is proven
	// into (absent when the bundle carries none).
	Checkpoint *format.Checkpoint    `json:"checkpoint,omitempty"`
	Quorum     int                   `json:"quorum"`
	Valid      []witness.Cosignature `json:"cosignatures,omitempty"`
	// NoLaterThan is when a quorum of witnesses had seen the tree that
	// holds the download: the bundle's trusted "no later than" time.
	NoLaterThan *time.Time `json:"no_later_than,omitempty"`
}

// Signed returns the bundle's exact-size checkpoint and, if it carries one
// consistent with it, its cosigned checkpoint, as signed notes (nil when
// absent or not verified), with the proof that ties them.
func (r *Report) Signed() (exact, cosigned []byte, proof *ConsistencyProof) {
	return r.signed, r.cosigned, r.proof
}

// verified is a file whose bytes hash to what the ledger or the key vouch for.
type verified struct {
	rec    record
	sha256 string
}

func (r *Report) pass(target, format string, a ...any) {
	r.Checks = append(r.Checks, Check{OK: true, Target: target, Detail: fmt.Sprintf(format, a...)})
}

func (r *Report) failAs(fault, target, format string, a ...any) {
	r.OK = false
	r.Checks = append(r.Checks, Check{Target: target, Detail: fmt.Sprintf(format, a...), Fault: fault})
}

func (r *Report) fail(target, format string, a ...any) {
	r.failAs(faultAltered, target, format, a...)
}

func (r *Report) missing(target, format string, a ...any) {
	r.failAs(faultIncomplete, target, format, a...)
}

func (r *Report) unverifiable(target, format string, a ...any) *Report {
	r.failAs(faultUnverifiable, target, format, a...)
	return r.finish()
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

// finish sets the verdict from the worst fault.
func (r *Report) finish() *Report {
	r.Verdict = Intact
	for _, c := range r.Checks {
		switch {
		case c.OK:
		case c.Fault == faultUnverifiable:
			r.Verdict = Unverifiable
		case c.Fault == faultAltered && r.Verdict != Unverifiable:
			r.Verdict = Altered
		case r.Verdict == Intact:
			r.Verdict = Incomplete
		}
	}
	r.OK = r.Verdict == Intact
	if !r.OK {
		r.files = nil
	}
	return r
}

// Options say what to verify against.
type Options struct {
	Key       string    // the log's note verifier key (required)
	Packet    string    // if set, the bundle must be this packet's
	NotBefore time.Time // if set, the bundle must be complete as of this time or later
	MinSize   int64     // if set, its checkpoint must cover at least this many entries
	// SM2Key, if set, is the log's SM2 verifier key (gm profile,
	// ledger/gmnote): the checkpoint must also carry a valid SM2 line by
	// it, or the bundle is UNVERIFIABLE with the trust given.
	SM2Key string
	// Witnesses, if set, must have cosigned the tree that holds the
	// download: with fewer valid cosignatures than its quorum the bundle
	// is UNVERIFIABLE.
	Witnesses *witness.Policy
}

// Limits on what a bundle may hold, against hostile archives.
const (
	maxFiles     = 100_000
	maxSmallFile = 1 << 20 // entries, proofs, checkpoint, manifest, applicant
)

type entryFile struct {
	raw   []byte
	entry *format.Entry
	leaf  format.Hash
}

// Verify checks a bundle against o.Key. It never fails outright: a zip it
// cannot read or a checkpoint signed by another key is UNVERIFIABLE. The
// checks, in order: the zip's structure and names (readZip, checkNames);
// the checkpoint's signature; every entry's canonical form and inclusion
// proof; that the packet's entries form one chain from packet.submitted to
// the bundle's download entry, at which the checkpoint was taken; the
// binding to o.Packet and the freshness asked for; the manifest against
// the ledger's latest manifest digest; every material and the licence
// against both.
func Verify(r io.ReaderAt, size int64, o Options) *Report {
	rep := &Report{OK: true}
	recs, faults, err := readZip(r, size)
	if err != nil {
		return rep.unverifiable("zip", "not a bundle: %v", err)
	}
	for _, f := range faults {
		rep.fail(f.target, "%s", f.detail)
	}
	files := checkNames(rep, recs)
	if files[Manifest] == nil && files[Checkpoint] == nil && !hasPrefix(files, Entries) && len(faults) == 0 {
		return rep.unverifiable("zip", "not a Tongban bundle: no manifest.json, no evidence/")
	}

	// 1. The checkpoint and its signature.
	signed, err := readSmall(r, files[Checkpoint])
	if err != nil {
		rep.missing(Checkpoint, "%v", err)
		return rep.finish()
	}
	cp, fault, err := openCheckpoint(signed, o.Key, o.SM2Key)
	if err != nil {
		if fault == faultUnverifiable {
			return rep.unverifiable("signature", "%v", err)
		}
		rep.fail("signature", "%v", err)
		return rep.finish()
	}
	rep.Checkpoint = cp
	rep.signed = signed
	rep.pass("signature", "checkpoint of %s, size %d, signed by the log key", cp.Origin, cp.Size)
	if o.SM2Key != "" {
		rep.pass("signature (SM2)", "checkpoint also signed by the log's SM2 key")
	}
	rep.files = append(rep.files, verified{*files[Checkpoint], hexSHA256(signed)})
	if !checkWitnessed(rep, r, files, cp, signed, o) {
		return rep.finish()
	}

	// 2. Entries, each proven into the checkpoint.
	entries := map[int64]*entryFile{}
	for name, rec := range files {
		if rec.dir() {
			continue
		}
		if s, ok := strings.CutPrefix(name, Proofs); ok {
			if files[Entries+s] == nil {
				rep.missing(name, "a proof without its entry: the entry was dropped from the bundle")
			}
			continue
		}
		s, ok := strings.CutPrefix(name, Entries)
		if !ok {
			continue
		}
		seq, _ := seqOf(s)
		target := "entry " + strconv.FormatInt(seq, 10)
		raw, err := readSmall(r, rec)
		if err != nil {
			rep.fail(target, "%v", err)
			continue
		}
		e, err := format.ParseEntry(raw)
		if err == nil {
			// One meaning, one spelling: a payload in another form
			// could say the same to one reader and more to another.
			err = format.CheckPayload(e.Payload)
		}
		if err != nil {
			rep.fail(target, "%v", err)
			continue
		}
		if e.Seq != seq {
			rep.fail(target, "the file holds entry %d", e.Seq)
			continue
		}
		ef := &entryFile{raw: raw, entry: e, leaf: format.LeafHash(raw)}
		if checkProof(rep, r, files, target, seq, cp, ef.leaf) {
			entries[seq] = ef
			rep.files = append(rep.files, verified{*rec, hexSHA256(raw)})
		}
	}
	seqs := make([]int64, 0, len(entries))
	for s := range entries {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	if len(seqs) == 0 {
		rep.missing("entries", "the bundle holds no ledger entry that proves into the checkpoint")
		return rep.finish()
	}

	// 3. The packet's chain, from packet.submitted to the download entry
	// at which the checkpoint was taken.
	first := entries[seqs[0]].entry
	rep.Packet = first.Packet
	if first.Type != "packet.submitted" {
		rep.missing(fmt.Sprintf("entry %d", seqs[0]), "the first entry is %s, not packet.submitted: entries were dropped", first.Type)
	}
	chained := true
	for i, s := range seqs {
		e := entries[s].entry
		target := fmt.Sprintf("entry %d", s)
		if e.Packet != rep.Packet {
			chained = false
			rep.fail(target, "belongs to packet %q, not %q", e.Packet, rep.Packet)
		}
		if i == 0 {
			continue
		}
		if prev, ok := entries[s-1]; ok && e.Prev != prev.leaf {
			chained = false
			rep.fail(target, "its prev hash does not match entry %d", s-1)
		}
		var link struct {
			PacketPrev *int64 `json:"packet_prev"`
		}
		json.Unmarshal(e.Payload, &link)
		switch {
		case link.PacketPrev == nil:
			chained = false
			rep.fail(target, "does not name the packet's previous entry")
		case *link.PacketPrev != seqs[i-1]:
			chained = false
			rep.missing(fmt.Sprintf("entry %d", *link.PacketPrev), "entry %d follows it in the packet's chain, but it is missing from the bundle", s)
		}
	}
	last := entries[seqs[len(seqs)-1]].entry
	var dl struct {
		What string `json:"what"`
	}
	json.Unmarshal(last.Payload, &dl)
	switch {
	case last.Type != "packet.downloaded" || dl.What != "bundle":
		rep.missing(fmt.Sprintf("entry %d", last.Seq), "the last entry is %s, not the bundle's download: the entries after it were cut off", last.Type)
	case cp.Size != last.Seq+1:
		rep.missing("checkpoint", "size %d is not taken at the download entry %d (size %d): the bundle cannot show that nothing followed it", cp.Size, last.Seq, last.Seq+1)
	case chained && first.Type == "packet.submitted":
		rep.pass("entries", "%d entries of packet %s, linked without gaps from packet.submitted to the download at seq %d, the checkpoint's last entry", len(seqs), rep.Packet, last.Seq)
	}
	sum := summarize(entries, seqs)
	rep.Summary = sum

	// 4. The bundle asked for, and fresh enough.
	if o.Packet != "" && o.Packet != rep.Packet {
		rep.fail("packet", "this is the bundle of packet %s, not of %s", rep.Packet, o.Packet)
	}
	if !o.NotBefore.IsZero() && sum.AsOf.Before(o.NotBefore) {
		rep.missing("freshness", "complete only as of %s, earlier than the %s required", sum.AsOf.Format(time.RFC3339), o.NotBefore.UTC().Format(time.RFC3339))
	}
	if o.MinSize > 0 && cp.Size < o.MinSize {
		rep.missing("freshness", "the checkpoint covers %d entries, fewer than the %d required", cp.Size, o.MinSize)
	}

	// 5. The manifest against the ledger, the files against both.
	checkFiles(rep, r, files, entries, seqs, last.Actor.Role == "auditor")
	return rep.finish()
}

// OpenCheckpoint opens a signed checkpoint under the log key vkey and, if
// sm2key is not empty, requires a line by that SM2 key as well (gm
// profile). On failure, altered tells a checkpoint that was altered (a
// signature by a key given does not verify, or its text is malformed) from
// one that only cannot be judged with the keys given. Bundles and receipts
// (tongban receipt verify) open their checkpoints with it.
func OpenCheckpoint(signed []byte, vkey, sm2key string) (cp format.Checkpoint, altered bool, err error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return cp, false, fmt.Errorf("the log key is not a note verifier key: %v", err)
	}
	known := []note.Verifier{v}
	var gv *gmnote.Verifier
	if sm2key != "" {
		if gv, err = gmnote.NewVerifier(sm2key); err != nil {
			return cp, false, fmt.Errorf("the SM2 key given: %v", err)
		}
		known = append(known, gv)
	}
	n, err := note.Open(signed, note.VerifierList(known...))
	var unknown *note.UnverifiedNoteError
	switch {
	case errors.As(err, &unknown):
		var by []string
		for _, s := range unknown.Note.UnverifiedSigs {
			by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		return cp, false, fmt.Errorf("the checkpoint is signed by %s, not by the key given (%s+%08x)", strings.Join(by, ", "), v.Name(), v.KeyHash())
	case err != nil:
		return cp, true, fmt.Errorf("the checkpoint signature is not valid under the keys given: %v", err)
	}
	if !gmnote.Signed(n, v) {
		return cp, false, fmt.Errorf("the checkpoint carries no signature by the log key given (%s+%08x)", v.Name(), v.KeyHash())
	}
	// A line by another SM2 key is one of an unknown key, which note.Open
	// skips: the line of the key given must be there.
	if gv != nil && !gmnote.Signed(n, gv) {
		return cp, false, fmt.Errorf("the checkpoint carries no SM2 signature by the key given (%s+%08x)", gv.Name(), gv.KeyHash())
	}
	if cp, err = format.ParseCheckpoint([]byte(n.Text)); err != nil {
		return cp, true, fmt.Errorf("the signed checkpoint is malformed: %v", err)
	}
	if cp.Origin != v.Name() {
		return cp, false, fmt.Errorf("the checkpoint is of log %q, the key given is %q's", cp.Origin, v.Name())
	}
	if gv != nil && gv.Name() != cp.Origin {
		return cp, false, fmt.Errorf("the checkpoint is of log %q, the SM2 key given is %q's", cp.Origin, gv.Name())
	}
	return cp, false, nil
}

// openCheckpoint is OpenCheckpoint with the fault as a report names it.
func openCheckpoint(signed []byte, vkey, sm2key string) (format.Checkpoint, string, error) {
	cp, altered, err := OpenCheckpoint(signed, vkey, sm2key)
	switch {
	case err == nil:
		return cp, "", nil
	case altered:
		return cp, faultAltered, err
	}
	return cp, faultUnverifiable, err
}

func checkProof(rep *Report, r io.ReaderAt, files map[string]*record, target string, seq int64, cp format.Checkpoint, leaf format.Hash) bool {
	name := Proofs + strconv.FormatInt(seq, 10) + ".json"
	b, err := readSmall(r, files[name])
	if err != nil {
		rep.missing(target, "inclusion proof %s: %v", name, err)
		return false
	}
	var p InclusionProof
	if err := json.Unmarshal(b, &p); err != nil {
		rep.fail(name, "inclusion proof is malformed: %v", err)
		return false
	}
	if canon, _ := json.Marshal(p); !bytes.Equal(canon, b) {
		rep.fail(name, "inclusion proof is not in its canonical form")
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
	rep.files = append(rep.files, verified{*files[name], hexSHA256(b)})
	return true
}

// statusAfter is the packet status each entry type leaves.
var statusAfter = map[string]string{
	"packet.submitted": "submitted", "packet.supplemented": "submitted", "packet.received": "received",
	"packet.returned": "correction_requested", "packet.approved": "approved", "packet.rejected": "rejected",
	"license.issued": "license_issued", "packet.delivered": "delivered",
}

func summarize(entries map[int64]*entryFile, seqs []int64) *Summary {
	first, last := entries[seqs[0]].entry, entries[seqs[len(seqs)-1]].entry
	var sub struct{ Item, Origin, Destination string }
	json.Unmarshal(first.Payload, &sub)
	s := &Summary{Packet: first.Packet, Item: sub.Item, Origin: sub.Origin, Destination: sub.Destination,
		AsOfSeq: last.Seq, AsOf: last.Time, Downloader: last.Actor.Agency + ":" + last.Actor.Role}
	for _, seq := range seqs {
		if st, ok := statusAfter[entries[seq].entry.Type]; ok {
			s.Status = st
		}
	}
	return s
}

// ledgerView is what the packet's entries say it holds.
type ledgerView struct {
	manifest    string
	manifestSM3 string            // gm profile; "" otherwise
	files       map[string]string // kind -> digest
	filesSM3    map[string]string // kind -> SM3 digest, where recorded (gm profile)
	licence     *licenceRecord
}

type licenceRecord struct {
	seq         int64
	SHA256      string `json:"sha256"`
	SM3         string `json:"sm3"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
}

func viewOf(entries map[int64]*entryFile, seqs []int64) ledgerView {
	v := ledgerView{files: map[string]string{}, filesSM3: map[string]string{}}
	for _, s := range seqs {
		e := entries[s].entry
		switch e.Type {
		case "packet.submitted", "packet.supplemented":
			var pl struct {
				Manifest    string `json:"manifest"`
				ManifestSM3 string `json:"manifest_sm3"`
				Materials   []struct {
					Kind   string `json:"kind"`
					SHA256 string `json:"sha256"`
					SM3    string `json:"sm3"`
				} `json:"materials"`
			}
			json.Unmarshal(e.Payload, &pl)
			v.manifest, v.manifestSM3 = pl.Manifest, pl.ManifestSM3
			for _, m := range pl.Materials {
				v.files[m.Kind], v.filesSM3[m.Kind] = m.SHA256, m.SM3
			}
		case "license.issued":
			l := &licenceRecord{seq: s}
			json.Unmarshal(e.Payload, l)
			v.licence = l
		}
	}
	return v
}

// LicenseName is the name the gateway gives an issued licence in a bundle
// (recorded in license.issued since the name was added; derived from the
// content type for entries made before).
func LicenseName(contentType string) string {
	return "license" + map[string]string{
		"application/pdf": ".pdf", "application/ofd": ".ofd", "image/jpeg": ".jpg", "image/png": ".png",
	}[contentType]
}

func checkFiles(rep *Report, r io.ReaderAt, files map[string]*record, entries map[int64]*entryFile, seqs []int64, auditor bool) {
	v := viewOf(entries, seqs)
	mb, err := readSmall(r, files[Manifest])
	if err != nil {
		rep.missing(Manifest, "%v", err)
		return
	}
	if got := hexSHA256(mb); got != v.manifest {
		rep.fail(Manifest, "has been altered: sha256 %s, the ledger recorded %s%s", got, v.manifest, sm3Also(mb, v.manifestSM3))
		return
	}
	if v.manifestSM3 != "" {
		if got := hexSM3(mb); got != v.manifestSM3 {
			rep.fail(Manifest, "sm3 %s, the ledger recorded %s", got, v.manifestSM3)
			return
		}
		rep.pass(Manifest, "matches the ledger's digests: sha256 %s, sm3 %s", v.manifest, v.manifestSM3)
	} else {
		rep.pass(Manifest, "matches the ledger's digest %s", v.manifest)
	}
	rep.files = append(rep.files, verified{*files[Manifest], v.manifest})
	var m struct {
		Applicant struct {
			SHA256 string `json:"sha256"`
		} `json:"applicant"`
		Materials []struct {
			Kind     string `json:"kind"`
			Filename string `json:"filename"`
			SHA256   string `json:"sha256"`
			SM3      string `json:"sm3"`
		} `json:"materials"`
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		rep.fail(Manifest, "unreadable: %v", err)
		return
	}
	expected := map[string]bool{}
	checkApplicant(rep, r, files[Applicant], m.Applicant.SHA256, auditor)
	if !auditor && m.Applicant.SHA256 != "" {
		expected[Applicant] = true
	}
	for _, mat := range m.Materials {
		name := MaterialName(mat.Kind, mat.Filename)
		expected[name] = true
		if want := v.files[mat.Kind]; want != mat.SHA256 {
			rep.fail(name, "the manifest says sha256 %s, the ledger recorded %s", mat.SHA256, want)
			continue
		}
		if want := v.filesSM3[mat.Kind]; want != mat.SM3 {
			rep.fail(name, "the manifest says sm3 %q, the ledger recorded %q", mat.SM3, want)
			continue
		}
		checkFile(rep, r, files[name], name, mat.SHA256, mat.SM3)
	}
	if v.licence != nil {
		fn := v.licence.Filename
		if fn == "" {
			fn = LicenseName(v.licence.ContentType)
		}
		name := License + fn
		expected[name] = true
		checkFile(rep, r, files[name], name, v.licence.SHA256, v.licence.SM3)
	}
	for name, rec := range files {
		switch {
		case expected[name], name == Manifest, name == Checkpoint, name == Cosigned, name == Consistency, rec.dir(),
			strings.HasPrefix(name, Entries), strings.HasPrefix(name, Proofs):
		case name == Applicant: // checkApplicant has judged it
		case strings.HasPrefix(name, License) && v.licence == nil:
			rep.fail(name, "a licence file, but the ledger records no licence")
		case strings.HasPrefix(name, License):
			rep.fail(name, "a licence file under another name than the ledger records (%s)", License+v.licence.Filename)
		default:
			rep.fail(name, "a file the bundle does not list")
		}
	}
}

// checkApplicant checks applicant.json against the digest the manifest
// (and so the ledger) vouches for. A reviewer's bundle holds it; an
// auditor's (its download entry is an auditor's) must not: the manifest
// alone proves the packet, and the applicant's name and ID are not the
// auditor's to see. A manifest from before the split names no digest and
// carries the applicant itself.
func checkApplicant(rep *Report, r io.ReaderAt, rec *record, want string, auditor bool) {
	switch {
	case want == "" && rec != nil:
		rep.fail(Applicant, "the manifest names no applicant object")
	case want == "":
	case rec != nil:
		b, err := readSmall(r, rec)
		switch got := hexSHA256(b); {
		case err != nil:
			rep.fail(Applicant, "%v", err)
		case got != want:
			rep.fail(Applicant, "has been altered: sha256 %s, the manifest names %s", got, want)
		default:
			rep.pass(Applicant, "sha256 %s matches the manifest", want)
			rep.files = append(rep.files, verified{*rec, want})
		}
		if auditor {
			rep.fail(Applicant, "an auditor's bundle never holds the applicant's details")
		}
	case auditor:
		rep.pass(Applicant, "applicant details withheld (auditor bundle); the manifest vouches for them by sha256 %s", want)
	default:
		rep.missing(Applicant, "missing from the bundle: the manifest names applicant details by sha256 %s", want)
	}
	if rep.Summary == nil {
		return
	}
	switch {
	case want == "":
		rep.Summary.Applicant = "in the manifest"
	case auditor:
		rep.Summary.Applicant = "applicant details withheld (auditor bundle)"
	default:
		rep.Summary.Applicant = "in applicant.json"
	}
}

// MaterialName is a material's name in a bundle.
func MaterialName(kind, filename string) string {
	return Materials + kind + "/" + nfc(filename)
}

// checkFile streams one file and compares its digest, and its SM3 digest
// in the same pass when the ledger recorded one (gm profile).
func checkFile(rep *Report, r io.ReaderAt, rec *record, name, want, wantSM3 string) {
	if rec == nil {
		rep.missing(name, "missing from the bundle")
		return
	}
	h, h3 := sha256.New(), sm3.New()
	var w io.Writer = h
	if wantSM3 != "" {
		w = io.MultiWriter(h, h3)
	}
	if _, err := io.Copy(w, rec.open(r)); err != nil {
		rep.fail(name, "%v", err)
		return
	}
	got, got3 := hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(h3.Sum(nil))
	switch {
	case wantSM3 != "" && got != want && got3 != wantSM3:
		rep.fail(name, "has been altered, caught by both digests: sha256 %s, the ledger recorded %s; sm3 %s, the ledger recorded %s", got, want, got3, wantSM3)
		return
	case got != want:
		rep.fail(name, "has been altered: sha256 %s, the ledger recorded %s", got, want)
		return
	case wantSM3 != "" && got3 != wantSM3:
		rep.fail(name, "has been altered: sm3 %s, the ledger recorded %s", got3, wantSM3)
		return
	case wantSM3 != "":
		rep.pass(name, "sha256 %s and sm3 %s match the ledger", want, wantSM3)
	default:
		rep.pass(name, "sha256 %s matches the ledger", want)
	}
	rep.files = append(rep.files, verified{*rec, want})
}

func readSmall(r io.ReaderAt, rec *record) ([]byte, error) {
	if rec == nil {
		return nil, errors.New("missing from the bundle")
	}
	if rec.usize > maxSmallFile {
		return nil, fmt.Errorf("larger than %d bytes", maxSmallFile)
	}
	return io.ReadAll(rec.open(r))
}

func hasPrefix(files map[string]*record, prefix string) bool {
	for name := range files {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func hexSM3(b []byte) string {
	s := sm3.Sum(b)
	return hex.EncodeToString(s[:])
}

// sm3Also adds the SM3 verdict to a SHA-256 mismatch, when SM3 was recorded.
func sm3Also(b []byte, want string) string {
	if want == "" {
		return ""
	}
	if got := hexSM3(b); got != want {
		return fmt.Sprintf("; sm3 %s, the ledger recorded %s (caught by both digests)", got, want)
	}
	return "; its sm3 still matches"
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkWitnessed checks the cosigned checkpoint and the consistency proof
// from the bundle's exact-size checkpoint to it, then the witness policy.
// A proof that fails between two checkpoints the log signed is a fork
// (ALTERED, naming both); too few cosignatures is UNVERIFIABLE. It returns
// false when the rest of the bundle need not be checked.
func checkWitnessed(rep *Report, r io.ReaderAt, files map[string]*record, cp format.Checkpoint, signed []byte, o Options) bool {
	w := &Witnessed{Checked: o.Witnesses != nil}
	rep.Witnessed = w
	if o.Witnesses != nil {
		w.Quorum = o.Witnesses.Quorum()
	}
	note := signed // what the policy is checked on
	if files[Cosigned] == nil && files[Consistency] != nil {
		rep.missing(Consistency, "a consistency proof without the cosigned checkpoint it leads to")
	}
	if files[Cosigned] != nil {
		cs, err := readSmall(r, files[Cosigned])
		if err != nil {
			rep.fail(Cosigned, "%v", err)
			return true
		}
		ccp, fault, err := openCheckpoint(cs, o.Key, o.SM2Key)
		if err != nil {
			rep.failAs(fault, Cosigned, "%v", err)
			return true
		}
		pb, err := readSmall(r, files[Consistency])
		if err != nil {
			rep.missing(Consistency, "%v: the cosigned checkpoint cannot be tied to the bundle's", err)
			return true
		}
		var p ConsistencyProof
		if err := json.Unmarshal(pb, &p); err != nil {
			rep.fail(Consistency, "malformed: %v", err)
			return true
		}
		if canon, _ := json.Marshal(p); !bytes.Equal(canon, pb) {
			rep.fail(Consistency, "not in its canonical form")
			return true
		}
		if p.From != cp.Size || p.To != ccp.Size {
			rep.fail(Consistency, "proves size %d into %d, not the checkpoint's %d into the cosigned %d", p.From, p.To, cp.Size, ccp.Size)
			return true
		}
		if err := format.CheckConsistency(p.Hashes, cp.Size, cp.Root, ccp.Size, ccp.Root); err != nil {
			rep.fail("fork", "the log signed two checkpoints that are not consistent: size %d root %s (%s) and size %d root %s (%s): %v",
				cp.Size, cp.Root, Checkpoint, ccp.Size, ccp.Root, Cosigned, err)
			return false
		}
		rep.cosigned, rep.proof = cs, &p
		rep.files = append(rep.files, verified{*files[Cosigned], hexSHA256(cs)}, verified{*files[Consistency], hexSHA256(pb)})
		w.Checkpoint = &ccp
		rep.pass(Cosigned, "size %d, signed by the log key; the bundle's tree of size %d is a prefix of it", ccp.Size, cp.Size)
		note = cs
	}
	if o.Witnesses == nil {
		if files[Cosigned] == nil {
			rep.pass("witnesses", "not checked: no witness policy given, and the checkpoint is not cosigned")
		} else {
			rep.pass("witnesses", "not checked: no witness policy given (--witness), so the cosignatures were not verified")
		}
		return true
	}
	res, err := o.Witnesses.Check(note)
	w.Valid = res.Valid
	if err != nil {
		what := "the cosigned checkpoint"
		if files[Cosigned] == nil {
			what = "the bundle carries no cosigned checkpoint and its checkpoint"
		}
		rep.failAs(faultUnverifiable, "witnesses", "%s has %d valid cosignature(s) of the %d trusted witnesses, fewer than the quorum of %d", what, len(res.Valid), o.Witnesses.Witnesses(), o.Witnesses.Quorum())
		return true
	}
	if !res.NoLaterThan.IsZero() {
		t := res.NoLaterThan
		w.NoLaterThan = &t
	}
	rep.pass("witnesses", "%d of %d trusted witnesses cosigned (quorum %d); witnessed no later than %s", len(res.Valid), o.Witnesses.Witnesses(), o.Witnesses.Quorum(), res.NoLaterThan.Format(time.RFC3339))
	return true
}
