package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"tongban/api/apitest"
	"tongban/gateway/bundle"
)

const (
	applicantName = "上海青嘉贸易有限公司"
	applicantID   = "91310118MA1G00011T"
)

// rezip rewrites a bundle in the canonical layout (stored, CRC and sizes in
// the local headers), passing each file through edit (nil drops it), then
// appending extra files.
func rezip(t *testing.T, body []byte, edit func(name string, data []byte) []byte, extra map[string][]byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	put := func(name string, data []byte) {
		fh := &zip.FileHeader{Name: name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(data),
			CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(data))}
		for _, r := range name {
			if r >= 0x80 {
				fh.Flags |= 0x800
				break
			}
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
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
		if data = edit(f.Name, data); data != nil {
			put(f.Name, data)
		}
	}
	for name, data := range extra {
		put(name, data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func keep(_ string, data []byte) []byte { return data }

func verifyOffline(t *testing.T, e *apitest.Env, b []byte, id string) *bundle.Report {
	t.Helper()
	code, key := e.Do("GET", "/v1/ledger/key", "", nil, "")
	if code != 200 {
		t.Fatalf("key: %d", code)
	}
	return bundle.Verify(bytes.NewReader(b), int64(len(b)), bundle.Options{Key: strings.TrimSpace(string(key)), Packet: id})
}

// wantVerdict checks the verdict and that a failed check names target.
func wantVerdict(t *testing.T, what string, rep *bundle.Report, verdict, target string) {
	t.Helper()
	if rep.Verdict != verdict {
		t.Fatalf("%s: verdict %s, want %s: %+v", what, rep.Verdict, verdict, rep.Failures())
	}
	if target == "" {
		return
	}
	for _, c := range rep.Failures() {
		if c.Target == target {
			return
		}
	}
	t.Fatalf("%s: no failed check names %s: %+v", what, target, rep.Failures())
}

// TestAuditorBundleWithholdsApplicant: the applicant's name and ID live in
// their own object, which the manifest names by a salted digest. A
// reviewer's bundle carries it as applicant.json; an auditor's bundle
// carries no byte of it and still verifies INTACT.
func TestAuditorBundleWithholdsApplicant(t *testing.T) {
	e, _ := s3Env(t)
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	const reviewer, auditor = "qingpu-amr:reviewer", "yrd-audit:auditor"

	code, rb := e.Do("GET", "/v1/packets/"+id+"/bundle", reviewer, nil, "")
	if code != 200 {
		t.Fatalf("reviewer bundle: %d %s", code, rb)
	}
	rep := verifyOffline(t, e, rb, id)
	wantVerdict(t, "reviewer bundle", rep, bundle.Intact, "")
	if rep.Summary.Applicant != "in applicant.json" {
		t.Fatalf("reviewer summary says %q of the applicant", rep.Summary.Applicant)
	}
	var app []byte
	rezip(t, rb, func(name string, data []byte) []byte {
		switch name {
		case bundle.Applicant:
			app = data
		case bundle.Manifest:
			if bytes.Contains(data, []byte(applicantID)) || bytes.Contains(data, []byte(applicantName)) {
				t.Fatalf("the manifest holds the applicant in clear:\n%s", data)
			}
		}
		return data
	}, nil)
	var rec struct{ Type, Name, ID, Salt string }
	if err := json.Unmarshal(app, &rec); err != nil || rec.Name != applicantName || rec.ID != applicantID || len(rec.Salt) != 64 {
		t.Fatalf("applicant.json = %s (%v)", app, err)
	}

	code, ab := e.Do("GET", "/v1/packets/"+id+"/bundle", auditor, nil, "")
	if code != 200 {
		t.Fatalf("auditor bundle: %d %s", code, ab)
	}
	for _, secret := range []string{applicantName, applicantID, strings.ToLower(applicantID)} {
		if bytes.Contains(ab, []byte(secret)) {
			t.Fatalf("the auditor's bundle holds %q", secret)
		}
	}
	rep = verifyOffline(t, e, ab, id)
	wantVerdict(t, "auditor bundle", rep, bundle.Intact, "")
	if rep.Summary.Applicant != "applicant details withheld (auditor bundle)" {
		t.Fatalf("auditor summary says %q of the applicant", rep.Summary.Applicant)
	}

	// Tampering with the applicant object, or slipping one in.
	altered := bytes.Replace(app, []byte(applicantName), []byte("上海青嘉贸易无限公司"), 1)
	wantVerdict(t, "reviewer bundle, applicant.json altered",
		verifyOffline(t, e, rezip(t, rb, func(name string, data []byte) []byte {
			if name == bundle.Applicant {
				return altered
			}
			return data
		}, nil), id), bundle.Altered, bundle.Applicant)
	wantVerdict(t, "reviewer bundle, applicant.json dropped",
		verifyOffline(t, e, rezip(t, rb, func(name string, data []byte) []byte {
			if name == bundle.Applicant {
				return nil
			}
			return data
		}, nil), id), bundle.Incomplete, bundle.Applicant)
	wantVerdict(t, "auditor bundle, forged applicant.json added",
		verifyOffline(t, e, rezip(t, ab, keep, map[string][]byte{bundle.Applicant: altered}), id), bundle.Altered, bundle.Applicant)
	wantVerdict(t, "auditor bundle, the genuine applicant.json added",
		verifyOffline(t, e, rezip(t, ab, keep, map[string][]byte{bundle.Applicant: app}), id), bundle.Altered, bundle.Applicant)
	wantVerdict(t, "auditor bundle, rezipped as is",
		verifyOffline(t, e, rezip(t, ab, keep, nil), id), bundle.Intact, "")

	// The API: origin and destination see the applicant, auditors do not.
	for who, want := range map[string]bool{"jiashan-window:submitter": true, reviewer: true, auditor: false} {
		code, body := e.Do("GET", "/v1/packets/"+id, who, nil, "")
		if code != 200 {
			t.Fatalf("%s: GET packet: %d %s", who, code, body)
		}
		var p struct {
			Applicant *struct{ Type, Name, ID string } `json:"applicant"`
		}
		json.Unmarshal(body, &p)
		got := p.Applicant != nil && p.Applicant.Name == applicantName && p.Applicant.ID == applicantID
		if got != want || (!want && (bytes.Contains(body, []byte(applicantName)) || bytes.Contains(body, []byte(applicantID)))) {
			t.Fatalf("%s: applicant shown %v, want %v: %s", who, got, want, body)
		}
	}

	// The collector keeps the applicant object, which only the manifest names.
	if _, err := e.Gateway.CollectGarbage(context.Background(), 0, false); err != nil {
		t.Fatal(err)
	}
	code, body := e.Do("GET", "/v1/packets/"+id, reviewer, nil, "")
	if code != 200 || !bytes.Contains(body, []byte(applicantName)) {
		t.Fatalf("after garbage collection: %d %s", code, body)
	}
	code, rb = e.Do("GET", "/v1/packets/"+id+"/bundle", reviewer, nil, "")
	if code != 200 {
		t.Fatalf("reviewer bundle after garbage collection: %d %s", code, rb)
	}
	wantVerdict(t, "reviewer bundle after garbage collection", verifyOffline(t, e, rb, id), bundle.Intact, "")
}
