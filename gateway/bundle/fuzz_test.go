package bundle

// FuzzVerifyBundle is run for a minute with
//
//	go test -run '^$' -fuzz '^FuzzVerifyBundle$' -fuzztime 1m -fuzzminimizetime 5s ./gateway/bundle
//
// (gateway/fuzz_test.go has the loop over every fuzz target). Plain
// `go test` runs only its seeds.

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"tongban/ledger/format"
)

// testSignerKey signs the hand-made bundle's checkpoint. It was made once
// with format.GenerateKey("tongban.test/fuzz-bundle") and is fixed so that
// the valid bundle in testdata/fuzz/FuzzVerifyBundle stays valid. It is a
// test key and signs nothing else.
const testSignerKey = "PRIVATE+KEY+tongban.test/fuzz-bundle+7b6b9eee+AddS7GQWpNcrRDHjsmu9UcbPiz9N3vNCfo2WjrHBrjvX"

// zfile is one file of a bundle, in zip order.
type zfile struct {
	name string
	data []byte
}

// handMade is a packet's bundle built without a gateway or a ledger, and
// what its signed entries say about it.
type handMade struct {
	vkey     string
	packet   string
	files    []zfile
	entries  map[int64][]byte  // seq -> canonical bytes, the packet's and the others'
	manifest string            // the manifest digest in packet.submitted
	digests  map[string]string // zip name of each material -> digest in packet.submitted
	licence  string            // the digest in license.issued
	want     map[string][]byte // every file of the bundle: the bytes the signed entries vouch for
}

// memHashes is an in-memory tlog.HashReader.
type memHashes []tlog.Hash

func (h memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(h)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = h[x]
	}
	return out, nil
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// buildBundle makes a bundle the way gateway.WriteBundle does: a log of
// six entries, four of them (seq 1, 3, 4, 5) of the packet, the others of
// another packet in between, a signed checkpoint of size 6, an inclusion
// proof per entry, the manifest, two materials and a licence. Each edit
// may change an entry's payload (by type) before it is logged.
func buildBundle(tb testing.TB, edits ...func(typ, payload string) string) *handMade {
	tb.Helper()
	signer, err := note.NewSigner(testSignerKey)
	if err != nil {
		tb.Fatal(err)
	}
	vkey, err := format.VerifierKey(testSignerKey)
	if err != nil {
		tb.Fatal(err)
	}
	const packet, other = "pk-aaaaaaaaaaaaaaaaaaaaaaaaaa", "pk-bbbbbbbbbbbbbbbbbbbbbbbbbb"
	consent := []byte("%PDF-1.7\n% signed consent form\n%%EOF\n")
	id := []byte("%PDF-1.7\n% resident identity card\n%%EOF\n")
	licence := []byte("%PDF-1.7\n% housing-fund certificate\n%%EOF\n")
	manifest := fmt.Appendf(nil, `{
  "packet": %q,
  "version": 1,
  "item": "RES-HPF-PROOF",
  "origin": "jiashan-window",
  "destination": "qingpu-window",
  "applicant": {"type": "person", "name": "张三", "id": "310118199003070016"},
  "materials": [
    {"kind": "consent_form", "filename": "consent.pdf", "size": %d, "sha256": %q, "content_type": "application/pdf"},
    {"kind": "applicant_id", "filename": "身份证.pdf", "size": %d, "sha256": %q, "content_type": "application/pdf"}
  ],
  "created": "2026-11-27T01:00:00Z"
}`, packet, len(consent), hexSum(consent), len(id), hexSum(id))
	h := &handMade{
		vkey: vkey, packet: packet, entries: map[int64][]byte{}, manifest: hexSum(manifest), licence: hexSum(licence),
		digests: map[string]string{
			Materials + "consent_form/consent.pdf": hexSum(consent),
			Materials + "applicant_id/身份证.pdf":     hexSum(id),
		},
	}
	type step struct {
		typ, packet, role, payload string
	}
	steps := []step{
		{"packet.submitted", other, "submitter", `{"item":"ENT-REISSUE","manifest":"` + strings.Repeat("0", 64) + `","materials":[]}`},
		{"packet.submitted", packet, "submitter", fmt.Sprintf(`{"item":"RES-HPF-PROOF","origin":"jiashan-window","destination":"qingpu-window","manifest":%q,`+
			`"materials":[{"kind":"consent_form","sha256":%q,"size":%d},{"kind":"applicant_id","sha256":%q,"size":%d}]}`,
			h.manifest, hexSum(consent), len(consent), hexSum(id), len(id))},
		{"packet.received", other, "reviewer", `{"packet_prev":0}`},
		{"packet.received", packet, "reviewer", fmt.Sprintf(`{"packet_prev":1,"manifest":%q}`, h.manifest)},
		{"license.issued", packet, "reviewer", fmt.Sprintf(`{"packet_prev":3,"kind":"license","sha256":%q,"size":%d,"filename":"certificate.pdf"}`, h.licence, len(licence))},
		{"packet.downloaded", packet, "reviewer", `{"packet_prev":4,"what":"bundle"}`},
	}
	var hashes memHashes
	var prev format.Hash
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i, s := range steps {
		agency := map[string]string{"submitter": "jiashan-window", "reviewer": "qingpu-window"}[s.role]
		for _, edit := range edits {
			s.payload = edit(s.typ, s.payload)
		}
		payload, err := format.Canonicalize([]byte(s.payload)) // as the gateway writes it
		if err != nil {
			tb.Fatal(err)
		}
		e := format.Entry{Seq: int64(i), Time: t0.Add(time.Duration(i) * time.Minute), Type: s.typ,
			Actor: format.Actor{Agency: agency, Role: s.role}, Packet: s.packet, Prev: prev, Payload: json.RawMessage(payload)}
		raw, err := e.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		stored, err := tlog.StoredHashes(int64(i), raw, hashes)
		if err != nil {
			tb.Fatal(err)
		}
		hashes = append(hashes, stored...)
		h.entries[int64(i)] = raw
		prev = format.LeafHash(raw)
	}
	size := int64(len(steps))
	root, err := tlog.TreeHash(size, hashes)
	if err != nil {
		tb.Fatal(err)
	}
	origin := strings.SplitN(testSignerKey, "+", 4)[2]
	signed, err := note.Sign(&note.Note{Text: string(format.FormatCheckpoint(format.Checkpoint{Origin: origin, Size: size, Root: root}))}, signer)
	if err != nil {
		tb.Fatal(err)
	}

	h.files = []zfile{
		{Manifest, manifest},
		{Materials + "consent_form/consent.pdf", consent},
		{Materials + "applicant_id/身份证.pdf", id},
		{License + "certificate.pdf", licence},
	}
	for seq := int64(0); seq < size; seq++ {
		var e format.Entry
		if err := json.Unmarshal(h.entries[seq], &e); err != nil {
			tb.Fatal(err)
		}
		if e.Packet != packet {
			continue
		}
		proof, err := tlog.ProveRecord(size, seq, hashes)
		if err != nil {
			tb.Fatal(err)
		}
		p, err := json.Marshal(InclusionProof{Seq: seq, Size: size, Hashes: proof})
		if err != nil {
			tb.Fatal(err)
		}
		name := strconv.FormatInt(seq, 10) + ".json"
		h.files = append(h.files, zfile{Entries + name, h.entries[seq]}, zfile{Proofs + name, p})
	}
	h.files = append(h.files, zfile{Checkpoint, signed})
	h.want = map[string][]byte{}
	for _, f := range h.files {
		h.want[f.name] = f.data
	}
	return h
}

// zipFiles writes files as the gateway does: stored, CRC and sizes in the
// local headers (no data descriptors), a fixed time, so the same files
// always make the same bytes.
func zipFiles(tb testing.TB, files []zfile) []byte {
	return zipFilesDirs(tb, files, false)
}

// zipFilesDirs is zipFiles, with a directory record before each file's
// parent (as zip -r writes them) when dirs is set.
func zipFilesDirs(tb testing.TB, files []zfile, dirs bool) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	seen := map[string]bool{}
	for _, f := range files {
		if d := f.name[:strings.LastIndex(f.name, "/")+1]; dirs && d != "" && !seen[d] {
			seen[d] = true
			if _, err := zw.CreateHeader(&zip.FileHeader{Name: d, Method: zip.Store}); err != nil {
				tb.Fatal(err)
			}
		}
		fh := &zip.FileHeader{Name: f.name, Method: zip.Store, Modified: time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC),
			CRC32: crc32.ChecksumIEEE(f.data), CompressedSize64: uint64(len(f.data)), UncompressedSize64: uint64(len(f.data))}
		if !isASCII(f.name) {
			fh.Flags |= 0x800
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// without returns files minus those named.
func without(files []zfile, names ...string) []zfile {
	var out []zfile
	for _, f := range files {
		drop := false
		for _, n := range names {
			drop = drop || f.name == n
		}
		if !drop {
			out = append(out, f)
		}
	}
	return out
}

// replaced returns files with one file's content replaced.
func replaced(files []zfile, name string, data []byte) []zfile {
	out := append([]zfile(nil), files...)
	for i := range out {
		if out[i].name == name {
			out[i].data = data
		}
	}
	return out
}

func verifyBytes(b []byte, vkey string) (*Report, error) {
	return Verify(bytes.NewReader(b), int64(len(b)), Options{Key: vkey}), nil
}

// TestVerifyHandMadeBundle: the hand-made bundle verifies, so it is a
// meaningful seed, and the verifier is not a yes-sayer on its neighbours.
func TestVerifyHandMadeBundle(t *testing.T) {
	h := buildBundle(t)
	rep, err := verifyBytes(zipFiles(t, h.files), h.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Packet != h.packet || rep.Checkpoint.Size != 6 {
		t.Fatalf("hand-made bundle: OK %v, packet %q, checkpoint %+v, failures %+v", rep.OK, rep.Packet, rep.Checkpoint, rep.Failures())
	}
	// Dropping the last entries and the licence left an older, consistent
	// view that verified; the checkpoint is taken at the download entry
	// now, so that is a cut-off bundle.
	older := without(h.files, Entries+"4.json", Proofs+"4.json", Entries+"5.json", Proofs+"5.json", License+"certificate.pdf")
	if rep, _ := verifyBytes(zipFilesDirs(t, h.files, true), h.vkey); !rep.OK {
		t.Fatalf("with directory records: %s %+v", rep.Verdict, rep.Failures())
	}
	if rep, _ := verifyBytes(zipFiles(t, older), h.vkey); rep.Verdict != Incomplete {
		t.Fatalf("bundle cut after entry 3: %s %+v", rep.Verdict, rep.Failures())
	}

	_, otherKey, err := format.GenerateKey("tongban.test/fuzz-bundle")
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string][]zfile{
		"altered material": replaced(h.files, Materials+"consent_form/consent.pdf", []byte("%PDF-1.7\nforged")),
		"altered manifest": replaced(h.files, Manifest, bytes.Replace(h.files[0].data, []byte("张三"), []byte("李四"), 1)),
		"altered licence":  replaced(h.files, License+"certificate.pdf", []byte("%PDF-1.7\nforged")),
		"altered entry":    replaced(h.files, Entries+"3.json", bytes.Replace(h.entries[3], []byte("qingpu"), []byte("wujing"), 1)),
		"dropped entry":    without(h.files, Entries+"3.json"),
		"dropped proof":    without(h.files, Proofs+"4.json"),
		"dropped material": without(h.files, Materials+"applicant_id/身份证.pdf"),
		"extra file":       append(append([]zfile(nil), h.files...), zfile{Materials + "extra/x.pdf", []byte("%PDF-1.7\n")}),
		"duplicate file":   append(append([]zfile(nil), h.files...), zfile{Materials + "consent_form/consent.pdf", []byte("%PDF-1.7\nforged")}),
		"no checkpoint":    without(h.files, Checkpoint),
	} {
		if rep, err := verifyBytes(zipFiles(t, files), h.vkey); err == nil && rep.OK {
			t.Errorf("%s: verified OK", name)
		}
	}
	if rep, _ := verifyBytes(zipFiles(t, h.files), otherKey); rep.Verdict != Unverifiable {
		t.Errorf("under another log's key: %s", rep.Verdict)
	}
}

// bundleSeeds are the valid bundle with and without directory records, a cut-off one, a truncated copy, an
// altered copy and a zip that is no bundle.
func bundleSeeds(tb testing.TB, h *handMade) [][]byte {
	valid := zipFiles(tb, h.files)
	return [][]byte{
		valid,
		zipFilesDirs(tb, h.files, true),
		zipFiles(tb, without(h.files, Entries+"5.json", Proofs+"5.json")),
		valid[:len(valid)/2],
		zipFiles(tb, replaced(h.files, Materials+"consent_form/consent.pdf", []byte("%PDF-1.7\nforged"))),
		zipFiles(tb, []zfile{{Manifest, []byte("{}")}, {Checkpoint, []byte("x\n")}}),
	}
}

// FuzzVerifyBundle reads arbitrary bytes as a bundle. Verify never panics,
// its OK agrees with its checks, and it reports OK only for the packet
// whose entries the test signed: the manifest, every material and the
// licence in the zip then hash to what those signed entries say, and every
// entry file is one of them (checked here without Verify's code).
func FuzzVerifyBundle(f *testing.F) {
	h := buildBundle(f)
	for _, b := range bundleSeeds(f, h) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := verifyBytes(data, h.vkey)
		if err != nil {
			if rep != nil {
				t.Fatalf("both a report and an error: %v", err)
			}
			return
		}
		if rep.OK != (len(rep.Failures()) == 0) {
			t.Fatalf("OK is %v with failures %+v", rep.OK, rep.Failures())
		}
		if !rep.OK {
			return
		}
		if rep.Packet != h.packet || rep.Verdict != Intact {
			t.Fatalf("verified a bundle of packet %q (%s); only %q was signed", rep.Packet, rep.Verdict, h.packet)
		}
		// Every byte extracted is a byte the signed entries vouch for,
		// and nothing they vouch for is left out.
		dir := filepath.Join(t.TempDir(), "out")
		if err := rep.Extract(bytes.NewReader(data), dir); err != nil {
			t.Fatalf("INTACT, but not extracted: %v", err)
		}
		n := 0
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			want, ok := h.want[filepath.ToSlash(rel)]
			if !ok || !bytes.Equal(b, want) {
				return fmt.Errorf("extracted %s (%d bytes) is not a file the signed entries vouch for", rel, len(b))
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != len(h.want) {
			t.Fatalf("extracted %d files of %d", n, len(h.want))
		}
	})
}
