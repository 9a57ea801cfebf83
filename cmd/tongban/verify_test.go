package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"tongban/api/apitest"
	"tongban/gateway/bundle"
	"tongban/ledger"
	"tongban/storage/s3"
	"tongban/storage/s3test"
)

// zrec is one record of a hand-assembled zip: what the central directory
// says and, where a case wants them to differ, what the local header says.
type zrec struct {
	name, localName string
	data            []byte
	deflate         bool
	localCRC        *uint32
	noCentral       bool // the record is in the file but not in the central directory
	extra           []byte
}

// rawZip assembles a zip byte by byte: prefix, the local records, the
// central directory (stored or deflated, CRC and sizes in the local
// headers), comment.
func rawZip(prefix []byte, recs []zrec, comment string) []byte {
	var b bytes.Buffer
	b.Write(prefix)
	var cd bytes.Buffer
	n := 0
	for _, r := range recs {
		body, method := r.data, uint16(0)
		if r.deflate {
			var c bytes.Buffer
			w, _ := flate.NewWriter(&c, flate.BestCompression)
			w.Write(r.data)
			w.Close()
			body, method = c.Bytes(), 8
		}
		crc := crc32.ChecksumIEEE(r.data)
		lcrc := crc
		if r.localCRC != nil {
			lcrc = *r.localCRC
		}
		lname := r.name
		if r.localName != "" {
			lname = r.localName
		}
		var flags uint16
		if !isASCIIName(r.name) {
			flags = 0x800
		}
		off := b.Len()
		le := binary.LittleEndian
		h := make([]byte, 30)
		le.PutUint32(h, 0x04034b50)
		le.PutUint16(h[4:], 20)
		le.PutUint16(h[6:], flags)
		le.PutUint16(h[8:], method)
		le.PutUint32(h[14:], lcrc)
		le.PutUint32(h[18:], uint32(len(body)))
		le.PutUint32(h[22:], uint32(len(r.data)))
		le.PutUint16(h[26:], uint16(len(lname)))
		le.PutUint16(h[28:], uint16(len(r.extra)))
		b.Write(h)
		b.WriteString(lname)
		b.Write(r.extra)
		b.Write(body)
		if r.noCentral {
			continue
		}
		n++
		c := make([]byte, 46)
		le.PutUint32(c, 0x02014b50)
		le.PutUint16(c[4:], 20)
		le.PutUint16(c[6:], 20)
		le.PutUint16(c[8:], flags)
		le.PutUint16(c[10:], method)
		le.PutUint32(c[16:], crc)
		le.PutUint32(c[20:], uint32(len(body)))
		le.PutUint32(c[24:], uint32(len(r.data)))
		le.PutUint16(c[28:], uint16(len(r.name)))
		le.PutUint16(c[30:], uint16(len(r.extra)))
		le.PutUint32(c[42:], uint32(off))
		cd.Write(c)
		cd.WriteString(r.name)
		cd.Write(r.extra)
	}
	cdOff := b.Len()
	b.Write(cd.Bytes())
	e := make([]byte, 22)
	le := binary.LittleEndian
	le.PutUint32(e, 0x06054b50)
	le.PutUint16(e[8:], uint16(n))
	le.PutUint16(e[10:], uint16(n))
	le.PutUint32(e[12:], uint32(cd.Len()))
	le.PutUint32(e[16:], uint32(cdOff))
	le.PutUint16(e[20:], uint16(len(comment)))
	b.Write(e)
	b.WriteString(comment)
	return b.Bytes()
}

func isASCIIName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// zipRecs reads a zip's files in order, as records to recombine.
func zipRecs(t *testing.T, b []byte) []zrec {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out []zrec
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, zrec{name: f.Name, data: data})
	}
	return out
}

func recsWithout(recs []zrec, drop func(string) bool) []zrec {
	var out []zrec
	for _, r := range recs {
		if !drop(r.name) {
			out = append(out, r)
		}
	}
	return out
}

func recsWith(recs []zrec, name string, change func(*zrec)) []zrec {
	out := append([]zrec(nil), recs...)
	for i := range out {
		if out[i].name == name {
			change(&out[i])
		}
	}
	return out
}

func lastEntry(recs []zrec) (seq int64, name string) {
	seq = -1
	for _, r := range recs {
		if s, ok := strings.CutPrefix(r.name, bundle.Entries); ok {
			var n int64
			fmt.Sscanf(s, "%d.json", &n)
			if n > seq {
				seq, name = n, s
			}
		}
	}
	return seq, name
}

func entryOfType(t *testing.T, recs []zrec, typ string) string {
	t.Helper()
	for _, r := range recs {
		if strings.HasPrefix(r.name, bundle.Entries) && strings.Contains(string(r.data), `"type":"`+typ+`"`) {
			return strings.TrimPrefix(r.name, bundle.Entries)
		}
	}
	t.Fatalf("no %s entry", typ)
	return ""
}

// realBundles runs the seed story over HTTP against VersityGW and returns
// two genuine bundles of one packet (before and after its delivery), one
// of another packet, and the log's verifier key.
type realBundles struct {
	older, latest, other []byte
	packet, otherPacket  string
	vkey                 string
}

func makeRealBundles(t *testing.T) realBundles {
	t.Helper()
	srv := s3test.Start(t)
	st, err := s3.Open(context.Background(), s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Secure: srv.Secure, Region: srv.Region, Bucket: srv.NewBucket(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := apitest.New(t, apitest.Options{Store: st})
	const origin, dest = "jiashan-window:submitter", "qingpu-amr:reviewer"
	m, files := apitest.CompanySetup()
	id := e.MustSubmit(origin, m, files)
	other := e.MustSubmit(origin, m, files)
	e.Act(dest, id, "receive", "", 200)
	e.Act(dest, id, "approve", "材料齐全", 200)
	mp, ct := apitest.Multipart([]apitest.Part{{Name: "license", Filename: "营业执照.ofd", Data: apitest.OFD()}})
	if code, body := e.Do("POST", "/v1/packets/"+id+"/license", dest, mp, ct); code != 200 {
		t.Fatalf("licence: %d %s", code, body)
	}
	get := func(id string) []byte {
		code, body := e.Do("GET", "/v1/packets/"+id+"/bundle", dest, nil, "")
		if code != 200 {
			t.Fatalf("bundle: %d %s", code, body)
		}
		return body
	}
	rb := realBundles{packet: id, otherPacket: other, vkey: e.Ledger.VerifierKey()}
	rb.older = get(id)
	e.Act(origin, id, "deliver", "", 200)
	rb.other = get(other)
	rb.latest = get(id)
	return rb
}

// bundleCase is one crafted bundle and the verdict it must get.
type bundleCase struct {
	name    string
	zip     []byte
	args    []string // beyond BUNDLE --log-key
	code    int
	culprit string // must appear in the output
}

func craftedBundles(t *testing.T, rb realBundles) []bundleCase {
	latest := zipRecs(t, rb.latest)
	canon := rawZip(nil, latest, "")
	lastSeq, lastName := lastEntry(latest)
	licName := ""
	for _, r := range latest {
		if strings.HasPrefix(r.name, bundle.License) {
			licName = r.name
		}
	}
	if licName != bundle.License+"license.ofd" {
		t.Fatalf("licence named %q in the bundle", licName)
	}
	material := ""
	for _, r := range latest {
		if strings.HasPrefix(r.name, bundle.Materials) && isASCIIName(r.name) {
			material = r.name
		}
	}
	licSeq := entryOfType(t, latest, "license.issued")
	delivered := entryOfType(t, latest, "packet.delivered")
	olderCP := zipRecs(t, rb.older)
	var olderProofs []zrec
	for _, r := range olderCP {
		if strings.HasPrefix(r.name, bundle.Proofs) || r.name == bundle.Checkpoint {
			olderProofs = append(olderProofs, r)
		}
	}
	// Rollback: the latest entries and files, the older checkpoint and proofs.
	rolled := recsWithout(latest, func(n string) bool {
		return n == bundle.Checkpoint || strings.HasPrefix(n, bundle.Proofs) && olderHas(olderProofs, n)
	})
	rolled = append(rolled, olderProofs...)
	badCRC := uint32(0xdeadbeef)
	nfd := norm.NFD.String("materials/articles/é.pdf")
	var asOfLatest time.Time
	if rep := bundle.Verify(bytes.NewReader(rb.latest), int64(len(rb.latest)), bundle.Options{Key: rb.vkey}); rep.Summary != nil {
		asOfLatest = rep.Summary.AsOf
	}
	add := func(recs []zrec, r zrec) []zrec { return append(append([]zrec(nil), recs...), r) }

	cases := []bundleCase{
		{"intact, as served", rb.latest, nil, 0, "INTACT"},
		{"intact, reassembled canonically", canon, []string{"--packet", rb.packet}, 0, rb.packet},
		{"older genuine bundle, as a statement of its moment", rb.older, []string{"--packet", rb.packet}, 0, "COMPLETE AS OF"},
		{"older genuine bundle, fresher demanded by size", rb.older, []string{"--min-size", fmt.Sprint(lastSeq + 1)}, 1, "freshness"},
		{"older genuine bundle, fresher demanded by time", rb.older, []string{"--not-before", asOfLatest.Format(time.RFC3339Nano)}, 1, "freshness"},
		{"truncated: the download entry cut off", rawZip(nil, recsWithout(latest, func(n string) bool { return strings.HasSuffix(n, "/"+lastName) }), ""), nil, 1, "cut off"},
		{"truncated: delivery and download cut off", rawZip(nil, recsWithout(latest, func(n string) bool {
			return strings.HasSuffix(n, "/"+lastName) || strings.HasSuffix(n, "/"+delivered)
		}), ""), nil, 1, "not taken at the download entry"}, // an earlier download is last now
		{"truncated: licence and everything after cut off", rawZip(nil, recsWithout(latest, func(n string) bool {
			var seq, lic int64
			fmt.Sscanf(n[strings.LastIndex(n, "/")+1:], "%d.json", &seq)
			fmt.Sscanf(licSeq, "%d.json", &lic)
			return n == licName || strings.HasPrefix(n, "evidence/") && n != bundle.Checkpoint && seq >= lic
		}), ""), nil, 1, "cut off"},
		{"rollback: older checkpoint and proofs with the latest entries", rawZip(nil, rolled, ""), nil, 1, "entry " + strings.TrimSuffix(lastName, ".json")},
		{"another packet's genuine bundle", rb.other, []string{"--packet", rb.packet}, 1, rb.otherPacket},
		{"local header names another file", rawZip(nil, recsWith(latest, material, func(r *zrec) {
			r.localName = strings.Replace(r.name, "materials/", "materialz/", 1)
		}), ""), nil, 1, material},
		{"local header carries another CRC", rawZip(nil, recsWith(latest, material, func(r *zrec) { r.localCRC = &badCRC }), ""), nil, 1, material},
		{"unreferenced record hidden before the central directory", rawZip(nil, add(latest, zrec{name: "materials/articles/evil.pdf", data: []byte("%PDF-1.7 evil"), noCentral: true}), ""), nil, 1, "zip"},
		{"unreferenced record hidden between records", rawZip(nil, append([]zrec{{name: "evil.txt", data: []byte("evil"), noCentral: true}}, latest...), ""), nil, 1, bundle.Manifest},
		{"bytes before the first record", rawZip([]byte("MZ\x90\x00 evil stub"), latest, ""), nil, 1, "bytes before"},
		{"zip comment after the end record", rawZip(nil, latest, "evil"), nil, 1, "zip"},
		{"duplicate name", rawZip(nil, add(latest, zrec{name: material, data: []byte("%PDF-1.7 forged")}), ""), nil, 1, "appears twice"},
		{"seq with a leading zero", rawZip(nil, add(latest, zrec{name: bundle.Entries + "0" + lastName, data: []byte("{}")}), ""), nil, 1, bundle.Entries + "0" + lastName},
		{"seq with a sign", rawZip(nil, add(latest, zrec{name: bundle.Proofs + "+" + lastName, data: []byte("{}")}), ""), nil, 1, bundle.Proofs + "+" + lastName},
		{"case-folded alias of the manifest", rawZip(nil, add(latest, zrec{name: "Manifest.json", data: []byte("{}")}), ""), nil, 1, "only by case"},
		{"case-folded alias of a material", rawZip(nil, add(latest, zrec{name: strings.ToUpper(material), data: []byte("x")}), ""), nil, 1, "only by case"},
		{"name not in NFC", rawZip(nil, add(latest, zrec{name: nfd, data: []byte("x")}), ""), nil, 1, "normal form C"},
		{"backslash name", rawZip(nil, add(latest, zrec{name: `materials\articles\x.pdf`, data: []byte("x")}), ""), nil, 1, "backslash"},
		{"absolute name", rawZip(nil, add(latest, zrec{name: "/etc/cron.d/x", data: []byte("x")}), ""), nil, 1, "absolute"},
		{"unlisted material", rawZip(nil, add(latest, zrec{name: "materials/extra/x.pdf", data: []byte("%PDF-1.7")}), ""), nil, 1, "materials/extra/x.pdf"},
		{"missing licence", rawZip(nil, recsWithout(latest, func(n string) bool { return n == licName }), ""), nil, 1, licName + ": missing"},
		{"licence renamed", rawZip(nil, recsWith(latest, licName, func(r *zrec) { r.name = bundle.License + "营业执照.ofd" }), ""), nil, 1, bundle.License + "营业执照.ofd"},
		{"Unicode path extra field naming another file", rawZip(nil, recsWith(latest, material, func(r *zrec) {
			alt := "../../evil.pdf"
			x := []byte{0x75, 0x70, 0, 0, 1, 0, 0, 0, 0}
			binary.LittleEndian.PutUint16(x[2:], uint16(5+len(alt)))
			binary.LittleEndian.PutUint32(x[5:], crc32.ChecksumIEEE([]byte(r.name)))
			r.extra = append(x, alt...)
		}), ""), nil, 1, material},
		{"directory record with data", rawZip(nil, add(latest, zrec{name: "materials/", data: []byte("x")}), ""), nil, 1, "materials/"},
		{"deflated, canonical otherwise", rawZip(nil, recsWith(latest, bundle.Manifest, func(r *zrec) { r.deflate = true }), ""), nil, 0, "INTACT"},
		{"wrong key", rb.latest, []string{"--log-key", otherKey(t)}, 3, "not by the key given"},
		{"not a zip", []byte("%PDF-1.7 this is no bundle"), nil, 3, "not a bundle"},
		{"a zip that is no bundle", rawZip(nil, []zrec{{name: "readme.txt", data: []byte("hello")}}, ""), nil, 3, "not a Tongban bundle"},
		{"written with data descriptors", goZip(t, latest, false), nil, 1, "data descriptor"},
		{"re-zipped by archive/zip with directory records, deflated", goZip(t, latest, true), nil, 0, "INTACT"},
		{"re-zipped with zip -r", zipR(t, latest), nil, 0, "INTACT"},
	}
	for _, prefix := range []string{"", "materials/", "materials/articles/", "license/", "evidence/", "evidence/entries/", "evidence/proofs/"} {
		for _, dots := range []string{"..", "."} {
			name := prefix + dots + "/x.pdf"
			cases = append(cases, bundleCase{"traversal " + name, rawZip(nil, add(latest, zrec{name: name, data: []byte("x")}), ""), nil, 1, name})
		}
	}
	return cases
}

func olderHas(recs []zrec, name string) bool {
	for _, r := range recs {
		if r.name == name {
			return true
		}
	}
	return false
}

func otherKey(t *testing.T) string {
	_, vkey, err := ledger.GenerateKey(ledger.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// goZip writes the files with archive/zip's ordinary writer: data
// descriptors; with dirs, deflated and with directory records too.
func goZip(t *testing.T, recs []zrec, dirs bool) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	seen := map[string]bool{}
	for _, r := range recs {
		method := zip.Store
		if dirs {
			method = zip.Deflate
			for i := range r.name {
				if d := r.name[:i+1]; r.name[i] == '/' && !seen[d] {
					seen[d] = true
					zw.CreateHeader(&zip.FileHeader{Name: d, Method: zip.Store})
				}
			}
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: r.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(r.data)
	}
	zw.Close()
	if dirs {
		// archive/zip writes descriptors for every file; a re-zip by a
		// tool that seeks has none. Rewrite as such: same records and
		// directory entries, CRC and sizes in the local headers.
		var out []zrec
		for _, r := range zipRecs(t, b.Bytes()) {
			r.deflate = !strings.HasSuffix(r.name, "/")
			out = append(out, r)
		}
		return rawZip(nil, out, "")
	}
	return b.Bytes()
}

// zipR writes the files into a directory and zips it with the real zip -r.
func zipR(t *testing.T, recs []zrec) []byte {
	zipBin, err := exec.LookPath("zip")
	if err != nil {
		t.Fatalf("the re-zip case needs Info-ZIP's zip (apt-get install zip): %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, r := range recs {
		p := filepath.Join(src, filepath.FromSlash(r.name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, r.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(zipBin, "-q", "-r", filepath.Join(dir, "re.zip"), ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zip -r: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "re.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if zr, _ := zip.NewReader(bytes.NewReader(b), int64(len(b))); zr == nil || !hasDirRecord(zr) {
		t.Fatalf("zip -r wrote no directory records")
	}
	return b
}

func hasDirRecord(zr *zip.Reader) bool {
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			return true
		}
	}
	return false
}

// TestVerifyCraftedBundles runs the real binary over every crafted bundle:
// the exit code, the culprit named, and --extract writing the verified
// files or nothing at all. For every bundle that verifies, what --extract
// wrote equals what archive/zip and a streaming local-header reader write.
func TestVerifyCraftedBundles(t *testing.T) {
	rb := makeRealBundles(t)
	cases := craftedBundles(t, rb)
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bundle.zip")
			if err := os.WriteFile(path, tc.zip, 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			args := []string{"verify", path, "--log-key", rb.vkey, "--extract", out}
			code, stdout, stderr := tongban(t, nil, append(args, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tc.culprit) {
				t.Fatalf("the verdict does not name %q:\n%s%s", tc.culprit, stdout, stderr)
			}
			verdict := map[int]string{0: "INTACT", 3: "UNVERIFIABLE"}[code]
			if verdict != "" && !strings.Contains(stdout, verdict) {
				t.Fatalf("no %s in:\n%s", verdict, stdout)
			}
			left, _ := os.ReadDir(dir)
			if code != 0 {
				if len(left) != 1 {
					t.Fatalf("a failed bundle left files behind: %v", left)
				}
				return
			}
			got := readTree(t, out)
			if want := archiveZipFiles(t, tc.zip); !sameFiles(got, want) {
				t.Fatalf("--extract wrote %v; archive/zip writes %v", keys(got), keys(want))
			}
			if want := streamFiles(t, tc.zip); !sameFiles(got, want) {
				t.Fatalf("--extract wrote %v; a local-header reader writes %v", keys(got), keys(want))
			}
			// Never overwriting: a second extraction into the same place is refused.
			if code, _, _ := tongban(t, nil, append(args, tc.args...)...); code == 0 {
				t.Fatalf("extracted over an existing directory")
			}
		})
	}

	// --json carries the verdict; fetch --verify binds to the packet asked for.
	path := filepath.Join(t.TempDir(), "other.zip")
	os.WriteFile(path, rb.other, 0o600)
	code, stdout, _ := tongban(t, nil, "verify", path, "--log-key", rb.vkey, "--packet", rb.packet, "--json")
	var rep struct{ Verdict string }
	if json.Unmarshal([]byte(stdout), &rep); code != 1 || rep.Verdict != "ALTERED" {
		t.Fatalf("--json of another packet's bundle: exit %d, %s", code, stdout)
	}
	// A server that hands out another packet's genuine bundle.
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(rb.other) }))
	defer liar.Close()
	code, stdout, stderr := tongban(t, []string{"TONGBAN_TOKEN=x"}, "fetch", rb.packet, "--server", liar.URL,
		"-o", filepath.Join(t.TempDir(), "b.zip"), "--verify", "--log-key", rb.vkey)
	if code != 1 || !strings.Contains(stdout+stderr, rb.otherPacket) {
		t.Fatalf("fetch --verify accepted another packet's bundle: exit %d\n%s%s", code, stdout, stderr)
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// archiveZipFiles is what archive/zip's reader extracts: every file, by
// the central directory.
func archiveZipFiles(t *testing.T, b []byte) map[string][]byte {
	out := map[string][]byte{}
	for _, r := range zipRecs(t, b) {
		if !strings.HasSuffix(r.name, "/") {
			out[r.name] = r.data
		}
	}
	return out
}

// streamFiles is what a streaming extractor writes: local headers read one
// after another from the first byte, without the central directory.
func streamFiles(t *testing.T, b []byte) map[string][]byte {
	out := map[string][]byte{}
	le := binary.LittleEndian
	for p := 0; p+30 <= len(b) && le.Uint32(b[p:]) == 0x04034b50; {
		method, csize := le.Uint16(b[p+8:]), int(le.Uint32(b[p+18:]))
		nl, xl := int(le.Uint16(b[p+26:])), int(le.Uint16(b[p+28:]))
		name := string(b[p+30 : p+30+nl])
		data := b[p+30+nl+xl : p+30+nl+xl+csize]
		if method == 8 {
			d, err := io.ReadAll(flate.NewReader(bytes.NewReader(data)))
			if err != nil {
				t.Fatalf("stream %s: %v", name, err)
			}
			data = d
		}
		if !strings.HasSuffix(name, "/") {
			out[name] = data
		}
		p += 30 + nl + xl + csize
	}
	return out
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
