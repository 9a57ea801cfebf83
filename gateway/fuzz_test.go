package gateway

// Fuzz targets of the gateway's request parsing. A plain `go test` runs
// only their seeds (the f.Add calls and testdata/fuzz/<Name>/), so CI stays
// fast and never fuzzes. To fuzz every target in the repository for a
// minute each (one target per `go test -fuzz`), from the module root:
//
//	for pkg in ./gateway ./gateway/filetype ./gateway/bundle ./ledger; do
//		for name in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
//			go test -run '^$' -fuzz "^$name\$" -fuzztime 1m -fuzzminimizetime 5s "$pkg" || exit 1
//		done
//	done
//
// (-fuzzminimizetime: the default 60s would spend the whole minute
// shrinking the first new multipart body or bundle the fuzzer finds.)
//
// A failing input is saved as testdata/fuzz/<Name>/<hash> in the package;
// once the bug is fixed, keep the file (renamed to say what it is) as a
// regression seed.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"

	"tongban/gateway/filetype"
	"tongban/gateway/ident"
	"tongban/ledger"
	"tongban/storage"
	fsstore "tongban/storage/fs"
)

// fuzzBoundary is the multipart boundary of every fuzzed body.
const fuzzBoundary = "tongban-fuzz-7d1c2e9a"

// newFuzzGateway opens a gateway on a real object store and ledger in a
// temporary directory, once per fuzz process (not per input).
func newFuzzGateway(tb testing.TB) *Gateway {
	tb.Helper()
	dir := tb.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := fsstore.Open(filepath.Join(dir, "objects"))
	if err != nil {
		tb.Fatal(err)
	}
	l, err := ledger.Open(ledger.Options{Dir: filepath.Join(dir, "ledger"), Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	g, err := New(context.Background(), Config{
		Catalog: DefaultCatalog(), Agencies: DemoAgencies(), Store: st, Ledger: l,
		StateDir: filepath.Join(dir, "state"), ApplicantKey: bytes.Repeat([]byte{7}, 32), Logger: logger,
	})
	if err != nil {
		l.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		g.Close()
		l.Close()
	})
	return g
}

// fuzzPart is one part of a multipart body; a file part if filename is set.
type fuzzPart struct {
	name, filename string
	data           []byte
}

// fuzzBody encodes parts as a multipart/form-data body with fuzzBoundary.
func fuzzBody(tb testing.TB, parts ...fuzzPart) []byte {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.SetBoundary(fuzzBoundary); err != nil {
		tb.Fatal(err)
	}
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename == "" {
			w, err = mw.CreateFormField(p.name)
		} else {
			w, err = mw.CreateFormFile(p.name, p.filename)
		}
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// The seed submission: a housing-fund certificate asked for at Jiashan,
// sent to Qingpu.
const (
	seedManifest = `{"item":"RES-HPF-PROOF","destination":"qingpu-window",` +
		`"applicant":{"type":"person","name":"张三","id":"310118199003070016"},` +
		`"materials":[{"kind":"consent_form","filename":"consent.pdf"},{"kind":"applicant_id","filename":"id.pdf"}]}`
	seedConsent = "%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n"
	seedID      = "%PDF-1.7\n% resident id card scan\n%%EOF\n"
)

func seedSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// manifestSeeds are manifest parts: accepted ones of each applicant type
// and declared digests, and a few near misses.
func manifestSeeds() [][]byte {
	return [][]byte{
		[]byte(seedManifest),
		[]byte(`{"item":"ENT-REISSUE","destination":"qingpu-amr","applicant":{"type":"Company","name":"上海青浦某某有限公司","id":"91310118ma1g00011t"},` +
			`"materials":[{"kind":"consent_form","filename":"同意书.pdf"},{"kind":"applicant_id","filename":"licence.ofd"},{"kind":"application_form","filename":"form.pdf","sha256":"` + seedSHA(seedConsent) + `"}]}`),
		[]byte(`{"item":"RES-HPF-PROOF","destination":"wujiang-window","applicant":{"type":" citizen ","name":" 李四 ","id":" 110105491231002 "},` +
			`"materials":[{"kind":"consent_form","filename":"../../c.pdf","sha256":"` + seedSHA(seedID) + `"},{"kind":"applicant_id","filename":"C:\\scans\\id.pdf"}]}`),
		[]byte(`{"item":"RES-HPF-PROOF","destination":"jiashan-window","applicant":{"type":"person","name":"王五","id":"310118199003070017"},` +
			`"materials":[{"kind":"consent_form","filename":"a.pdf"},{"kind":"consent_form","filename":"b.pdf"},{"kind":"power_of_attorney","filename":".."}]}`),
		[]byte(`{"item":"RES-HPF-PROOF"} {"trailing":true}`),
	}
}

// submitters are the agencies that may send packets.
func submitters() []string {
	var out []string
	for _, a := range DemoAgencies() {
		if a.Can(RoleSubmitter) {
			out = append(out, a.ID)
		}
	}
	return out
}

// FuzzManifest feeds arbitrary bytes as the manifest part through the
// parsing and validation of a submission. An error is always a client
// error; an accepted manifest names a known item, a reviewing destination
// other than the origin that handles the item, a valid applicant, and
// every required material once under a safe file name.
func FuzzManifest(f *testing.F) {
	for _, s := range manifestSeeds() {
		f.Add(s, uint8(0))
	}
	f.Add([]byte(seedManifest), uint8(2)) // from qingpu-window to itself
	g := newFuzzGateway(f)
	origins := submitters()
	f.Fuzz(func(t *testing.T, data []byte, from uint8) {
		who := Principal{Agency: origins[int(from)%len(origins)], Role: RoleSubmitter}
		mr := multipart.NewReader(bytes.NewReader(fuzzBody(t, fuzzPart{name: "manifest", data: data})), fuzzBoundary)
		var in manifestInput
		if err := g.readManifestPart(nil, multipartParts{mr}, &in); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("readManifestPart: not a client error: %v", err)
			}
			return
		}
		item, want, app, err := g.checkManifest(who, &in)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 || !errors.Is(err, ErrInvalid) {
				t.Fatalf("checkManifest: not a field-by-field validation error: %#v", err)
			}
			return
		}
		if it, ok := g.cfg.Catalog.Item(in.Item); !ok || it != item {
			t.Fatalf("accepted item %q, which the catalogue does not have", in.Item)
		}
		dest, ok := g.agencies[in.Destination]
		switch {
		case !ok:
			t.Fatalf("accepted unknown destination %q", in.Destination)
		case !dest.Can(RoleReviewer):
			t.Fatalf("accepted destination %q, which does not review", dest.ID)
		case dest.ID == who.Agency:
			t.Fatalf("accepted a packet from %s to itself", who.Agency)
		case !item.AllowsDestination(dest.ID):
			t.Fatalf("accepted %s for %s, which does not handle it", item.Code, dest.ID)
		}
		switch app.Type {
		case ApplicantPerson:
			if n, err := ident.NormalizeCitizenID(app.ID); err != nil || n != app.ID {
				t.Fatalf("accepted resident ID %q (normal form %q, %v)", app.ID, n, err)
			}
		case ApplicantEnterprise:
			if !ident.ValidCreditCode(app.ID) {
				t.Fatalf("accepted credit code %q", app.ID)
			}
		default:
			t.Fatalf("accepted applicant type %q", in.Applicant.Type)
		}
		if app.Name == "" || len(app.Name) > 4*200 {
			t.Fatalf("accepted applicant name %q", in.Applicant.Name)
		}
		if len(in.Materials) == 0 || len(in.Materials) > g.cfg.Limits.MaxMaterials || len(want) != len(in.Materials) {
			t.Fatalf("accepted %d materials as %d expected files", len(in.Materials), len(want))
		}
		for kind, w := range want {
			if w.mat == nil || w.mat.Kind != kind {
				t.Fatalf("material %q expected as %+v", kind, w.mat)
			}
			if name, err := filetype.CleanName(w.filename); err != nil || name != w.filename {
				t.Fatalf("material %q: unsafe file name %q", kind, w.filename)
			}
			if w.sha256 != "" && !storage.ValidSHA256(w.sha256) {
				t.Fatalf("material %q: accepted declared digest %q, which the store refuses", kind, w.sha256)
			}
		}
		for _, m := range item.Materials {
			if _, ok := want[m.Kind]; m.Required && !ok {
				t.Fatalf("accepted without required material %q", m.Kind)
			}
		}
	})
}

// submissionSeeds are whole bodies: the seed submission, truncated, with
// the manifest second, with a duplicated part, and with an OFD identity
// document and declared digests.
func submissionSeeds(tb testing.TB) [][]byte {
	manifest := fuzzPart{name: "manifest", data: []byte(seedManifest)}
	consent := fuzzPart{name: "consent_form", filename: "consent.pdf", data: []byte(seedConsent)}
	id := fuzzPart{name: "applicant_id", filename: "id.pdf", data: []byte(seedID)}
	valid := fuzzBody(tb, manifest, consent, id)
	ofd := minimalOFD(tb)
	declared := fmt.Sprintf(`{"item":"RES-HPF-PROOF","destination":"wujiang-window",`+
		`"applicant":{"type":"person","name":"张三","id":"310118199003070016"},`+
		`"materials":[{"kind":"consent_form","filename":"consent.pdf","sha256":%q},{"kind":"applicant_id","filename":"id.ofd","sha256":%q}]}`,
		seedSHA(seedConsent), seedSHA(string(ofd)))
	return [][]byte{
		valid,
		valid[:len(valid)*2/3],
		fuzzBody(tb, consent, manifest, id),
		fuzzBody(tb, manifest, consent, consent, id),
		fuzzBody(tb, fuzzPart{name: "manifest", data: []byte(declared)}, consent, fuzzPart{name: "applicant_id", filename: "id.ofd", data: ofd}),
	}
}

// FuzzMultipart sends arbitrary bodies as submissions to a real gateway.
// A refused body is a client error and leaves the ledger as it was; an
// accepted one has its packet.submitted entry, its manifest and every
// material in the store under the digests the entry records, and the
// idempotency fingerprint FingerprintMultipart computes for the body.
func FuzzMultipart(f *testing.F) {
	for _, b := range submissionSeeds(f) {
		f.Add(b)
	}
	g := newFuzzGateway(f)
	who := Principal{Agency: "jiashan-window", Role: RoleSubmitter}
	n := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		n++
		ctx := context.Background()
		idem := &Idempotency{Scope: fmt.Sprintf("fuzz-%d", n)}
		before := g.cfg.Ledger.Size()
		p, err := g.Submit(ctx, who, idem, partsOf(bytes.NewReader(body), fuzzBoundary))
		after := g.cfg.Ledger.Size()
		if err != nil {
			if after != before {
				t.Fatalf("refused (%v), yet the ledger grew from %d to %d", err, before, after)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("a bad body must be a client error, got %v", err)
			}
			return
		}
		if after != before+1 {
			t.Fatalf("accepted, and the ledger went from %d to %d entries", before, after)
		}
		checkSubmitted(t, g, p, body, idem)
	})
}

// checkSubmitted checks an accepted submission against the ledger and the store.
func checkSubmitted(t *testing.T, g *Gateway, p *Packet, body []byte, idem *Idempotency) {
	t.Helper()
	ctx := context.Background()
	if p.Status != StatusSubmitted || p.Origin != "jiashan-window" || p.Destination == p.Origin || !validPacketID(p.ID) {
		t.Fatalf("accepted packet %+v", p)
	}
	rec, err := g.cfg.Ledger.Get(p.SubmittedSeq)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Type != EntrySubmitted || rec.Packet != p.ID {
		t.Fatalf("entry %d is %s of %s, not the submission of %s", rec.Seq, rec.Type, rec.Packet, p.ID)
	}
	var pl struct {
		submittedPayload
		Idem *idemPayload `json:"idem"`
	}
	if err := json.Unmarshal(rec.Payload, &pl); err != nil {
		t.Fatal(err)
	}
	if pl.Manifest != p.Manifest || len(pl.Materials) != len(p.Materials) || len(p.Materials) == 0 {
		t.Fatalf("entry records manifest %s and %d materials, the packet has %s and %d", pl.Manifest, len(pl.Materials), p.Manifest, len(p.Materials))
	}
	m, err := g.readManifest(ctx, Principal{Agency: p.Origin, Role: RoleSubmitter}, p.ID, p.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	item, ok := g.cfg.Catalog.Item(m.Item)
	if !ok || m.Packet != p.ID || len(m.Materials) != len(p.Materials) {
		t.Fatalf("stored manifest %+v does not describe packet %+v", m, p)
	}
	for i, ref := range p.Materials {
		if d := pl.Materials[i]; d.Kind != ref.Kind || d.SHA256 != ref.SHA256 || d.Size != ref.Size || d.ContentType != ref.ContentType {
			t.Fatalf("material %d: entry records %+v, the packet has %+v", i, d, ref)
		}
		if mr := m.Materials[i]; mr != ref {
			t.Fatalf("material %d: manifest has %+v, the packet has %+v", i, mr, ref)
		}
		b := readObject(t, g, ref.SHA256)
		if int64(len(b)) != ref.Size || hexSHA256(b) != ref.SHA256 {
			t.Fatalf("material %s: stored %d bytes hashing to %s, recorded %d bytes %s", ref.Kind, len(b), hexSHA256(b), ref.Size, ref.SHA256)
		}
		typ, err := filetype.DetectHead(b[:min(len(b), 512)])
		if typ == filetype.ZIP {
			typ, err = TypeOFD, checkOFD(b)
		}
		mat, ok := item.Material(ref.Kind)
		if err != nil || typ != ref.ContentType || !ok || !mat.Accepts(typ) {
			t.Fatalf("material %s: stored as %s, its bytes are %s (%v)", ref.Kind, ref.ContentType, typ, err)
		}
	}
	want, err := FingerprintParts(partsOf(bytes.NewReader(body), fuzzBoundary))
	if err != nil {
		t.Fatalf("Submit accepted a body FingerprintMultipart refuses: %v", err)
	}
	if pl.Idem == nil || pl.Idem.Key != idem.Scope || pl.Idem.Body != want {
		t.Fatalf("entry records idempotency %+v, the body fingerprints as %s", pl.Idem, want)
	}
}

func readObject(t *testing.T, g *Gateway, digest string) []byte {
	t.Helper()
	rc, _, err := g.cfg.Store.Open(context.Background(), digest)
	if err != nil {
		t.Fatalf("object %s: %v", digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("object %s: %v", digest, err)
	}
	return b
}

// FuzzFingerprintMultipart: FingerprintMultipart never panics, refuses
// only with ErrMalformed, and gives the same fingerprint for the same
// parts sent with another boundary.
func FuzzFingerprintMultipart(f *testing.F) {
	for _, b := range submissionSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte("--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"a\"; filename=\"../x\"\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n=E5=90=8C=\r\nx\r\n--" + fuzzBoundary + "--\r\n"))
	f.Add([]byte("--" + fuzzBoundary + "\r\nContent-Disposition: attachment; name*=UTF-8''%E5%90%8C\r\n\r\n\r\n--" + fuzzBoundary + "--"))
	f.Fuzz(func(t *testing.T, body []byte) {
		sum, err := FingerprintParts(partsOf(bytes.NewReader(body), fuzzBoundary))
		if err != nil {
			if sum != "" || !errors.Is(err, ErrMalformed) {
				t.Fatalf("%q, %v", sum, err)
			}
			return
		}
		if len(sum) != 64 || !storage.ValidSHA256(sum) {
			t.Fatalf("fingerprint %q", sum)
		}
		// The same parts under a new boundary fingerprint alike.
		const other = "Ot8er-b0undary-5f3a91c4e2d7"
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.SetBoundary(other)
		mr := multipart.NewReader(bytes.NewReader(body), fuzzBoundary)
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("second read: %v", err)
			}
			params := map[string]string{"name": part.FormName()}
			if fn := part.FileName(); fn != "" {
				params["filename"] = fn
			}
			disp := mime.FormatMediaType("form-data", params)
			data, err := io.ReadAll(part)
			if err != nil {
				t.Fatalf("second read: %v", err)
			}
			if disp == "" || bytes.Contains(data, []byte(other)) {
				return // not representable under the new boundary
			}
			w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {disp}})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
		}
		mw.Close()
		again, err := FingerprintParts(partsOf(&buf, other))
		if err != nil || again != sum {
			t.Fatalf("re-encoded with another boundary: %q, %v; first %q\n%q", again, err, sum, strings.ReplaceAll(buf.String(), other, "B"))
		}
	})
}

// checkOFD runs a whole file through an OFD checker.
func checkOFD(b []byte) error {
	c := filetype.NewOFDChecker()
	c.Write(b)
	return c.Close()
}

// minimalOFD is a ZIP holding only an OFD.xml.
func minimalOFD(tb testing.TB) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("OFD.xml")
	if err == nil {
		_, err = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0"/>`))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
