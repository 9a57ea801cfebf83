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
	"io"
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
// proof per entry, the manifest, two materials and a licence.
func buildBundle(tb testing.TB) *handMade {
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
		{"license.issued", packet, "reviewer", fmt.Sprintf(`{"packet_prev":3,"kind":"license","sha256":%q,"size":%d}`, h.licence, len(licence))},
		{"packet.downloaded", packet, "reviewer", `{"packet_prev":4,"what":"bundle"}`},
	}
	var hashes memHashes
	var prev format.Hash
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i, s := range steps {
		agency := map[string]string{"submitter": "jiashan-window", "reviewer": "qingpu-window"}[s.role]
		e := format.Entry{Seq: int64(i), Time: t0.Add(time.Duration(i) * time.Minute), Type: s.typ,
			Actor: format.Actor{Agency: agency, Role: s.role}, Packet: s.packet, Prev: prev, Payload: json.RawMessage(s.payload)}
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
	return h
}

// zipFiles writes files as a zip of stored entries with a fixed time, so
// the same files always make the same bytes.
func zipFiles(tb testing.TB, files []zfile) []byte {
	return writeZip(tb, files, true)
}

// zipFilesNoCRC is zipFiles with the CRC-32 fields left zero, which
// archive/zip then does not check: the fuzzer's changes to the files'
// bytes reach Verify instead of failing as checksum errors.
func zipFilesNoCRC(tb testing.TB, files []zfile) []byte {
	return writeZip(tb, files, false)
}

func writeZip(tb testing.TB, files []zfile, crc bool) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		fh := &zip.FileHeader{Name: f.name, Method: zip.Store, Modified: time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)}
		var w io.Writer
		var err error
		if crc {
			w, err = zw.CreateHeader(fh)
		} else {
			fh.CompressedSize64, fh.UncompressedSize64 = uint64(len(f.data)), uint64(len(f.data))
			w, err = zw.CreateRaw(fh)
		}
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
	return Verify(bytes.NewReader(b), int64(len(b)), vkey)
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
	// Dropping the last entries and the licence leaves an older, still
	// consistent view of the packet.
	older := without(h.files, Entries+"4.json", Proofs+"4.json", Entries+"5.json", Proofs+"5.json", License+"certificate.pdf")
	if rep, err := verifyBytes(zipFiles(t, older), h.vkey); err != nil || !rep.OK {
		t.Fatalf("bundle as of entry 3: %v %+v", err, rep)
	}
	if rep, err := verifyBytes(zipFilesNoCRC(t, h.files), h.vkey); err != nil || !rep.OK {
		t.Fatalf("bundle without CRCs: %v %+v", err, rep)
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
	if rep, err := verifyBytes(zipFiles(t, h.files), otherKey); err == nil && rep.OK {
		t.Errorf("verified OK under another log's key")
	}
}

// bundleSeeds are the valid bundle with and without CRCs, its older valid view, a truncated
// copy, an altered copy and a zip that is no bundle.
func bundleSeeds(tb testing.TB, h *handMade) [][]byte {
	valid := zipFiles(tb, h.files)
	return [][]byte{
		valid,
		zipFilesNoCRC(tb, h.files),
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
		if rep.Packet != h.packet {
			t.Fatalf("verified a bundle of packet %q; only %q was signed", rep.Packet, h.packet)
		}
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("verified OK, but not a readable zip: %v", err)
		}
		sawManifest, sawCheckpoint := false, false
		for _, zf := range zr.File {
			rc, err := zf.Open()
			if err != nil {
				t.Fatalf("verified OK, but %s is unreadable: %v", zf.Name, err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("verified OK, but %s is unreadable: %v", zf.Name, err)
			}
			name := zf.Name
			switch {
			case name == Manifest:
				sawManifest = true
				if hexSum(b) != h.manifest {
					t.Fatalf("verified OK with a manifest hashing to %s; the signed entry says %s", hexSum(b), h.manifest)
				}
			case name == Checkpoint:
				sawCheckpoint = true
				v, _ := note.NewVerifier(h.vkey)
				if _, err := note.Open(b, note.VerifierList(v)); err != nil {
					t.Fatalf("verified OK with a checkpoint the key did not sign: %v", err)
				}
			case strings.HasPrefix(name, Materials):
				want, ok := h.digests[name]
				if !ok || hexSum(b) != want {
					t.Fatalf("verified OK with %s hashing to %s; the signed entries say %q", name, hexSum(b), want)
				}
			case strings.HasPrefix(name, License):
				if hexSum(b) != h.licence {
					t.Fatalf("verified OK with licence %s hashing to %s; the signed entry says %s", name, hexSum(b), h.licence)
				}
			case strings.HasPrefix(name, Entries):
				var e format.Entry
				if json.Unmarshal(b, &e) != nil || !bytes.Equal(b, h.entries[e.Seq]) || e.Packet != h.packet {
					t.Fatalf("verified OK with entry file %s that is no signed entry of the packet:\n%s", name, b)
				}
			case strings.HasPrefix(name, Proofs):
			default:
				t.Fatalf("verified OK with a file %q that a bundle does not hold", name)
			}
		}
		if !sawManifest || !sawCheckpoint {
			t.Fatalf("verified OK without manifest (%v) or checkpoint (%v)", sawManifest, sawCheckpoint)
		}
	})
}
