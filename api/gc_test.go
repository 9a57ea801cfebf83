package api_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tongban/api/apitest"
)

func objectPath(e *apitest.Env, digest string) string {
	return filepath.Join(e.Dir, "objects", "objects", digest[:2], digest[2:4], digest)
}

// TestGarbageCollection: files of a refused submission are stored, then
// collected once past the grace period; nothing a ledger entry names is.
func TestGarbageCollection(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	ctx := context.Background()
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)

	// A submission whose last file fails its declared digest: the files
	// before it are stored, and no entry names them.
	bad, badFiles := apitest.CompanySetup()
	bad.Materials[len(bad.Materials)-1].SHA256 = strings.Repeat("0", 64)
	if code, body := e.Submit("jiashan-window:submitter", bad, badFiles); code != 422 {
		t.Fatalf("refused submission: %d %s", code, body)
	}
	rep, err := e.Gateway.CollectGarbage(ctx, time.Hour, false)
	if err != nil || rep.Deleted != 0 || rep.Young == 0 {
		t.Fatalf("young garbage collected: %+v %v", rep, err)
	}
	rep, err = e.Gateway.CollectGarbage(ctx, -time.Second, false) // everything is past the grace
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, f := range files {
		kept[apitest.SHA256(f.Data)] = true
	}
	garbage := 0
	for _, f := range badFiles[:len(badFiles)-1] {
		if !kept[apitest.SHA256(f.Data)] { // the same bytes as a kept file are one object
			garbage++
		}
	}
	if garbage == 0 || rep.Deleted != garbage || rep.Referenced != len(kept)+2 { // +2: the manifest and the applicant object
		t.Fatalf("collection %+v, want %d deleted and %d referenced", rep, garbage, len(kept)+2)
	}
	for _, f := range badFiles[:len(badFiles)-1] {
		_, err := os.Stat(objectPath(e, apitest.SHA256(f.Data)))
		if kept[apitest.SHA256(f.Data)] != (err == nil) {
			t.Errorf("%s: stored = %v after gc", f.Kind, err == nil)
		}
	}
	// The good packet is whole.
	if code, body := e.Do("GET", "/v1/packets/"+id+"/bundle", "qingpu-amr:reviewer", nil, ""); code != 200 {
		t.Fatalf("bundle after gc: %d %s", code, body)
	}
}

// TestScrub alters one stored material and deletes another behind the
// gateway's back (the scrub reads the materials, the manifest and the
// applicant object): the scrub names both and records integrity.violation for
// each; downloading the altered one fails and is recorded too.
func TestScrub(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	altered, lost := apitest.SHA256(files[1].Data), apitest.SHA256(files[5].Data)
	p := objectPath(e, altered)
	os.Chmod(p, 0o600)
	b, _ := os.ReadFile(p)
	b[100] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(objectPath(e, lost)); err != nil {
		t.Fatal(err)
	}

	code, body := e.JSON("POST", "/v1/ledger/verify", "yrd-audit:auditor", map[string]bool{"scrub": true})
	if code != 200 {
		t.Fatalf("verify with scrub: %d %s", code, body)
	}
	var rep struct {
		OK    bool `json:"ok"`
		Scrub struct {
			Objects int
			Missing []struct{ SHA256, Packet, Kind string }
			Corrupt []struct{ SHA256, Packet, Kind string }
		} `json:"scrub"`
	}
	json.Unmarshal(body, &rep)
	if rep.OK || rep.Scrub.Objects != len(files)+2 || len(rep.Scrub.Corrupt) != 1 || len(rep.Scrub.Missing) != 1 ||
		rep.Scrub.Corrupt[0].SHA256 != altered || rep.Scrub.Corrupt[0].Kind != files[1].Kind || rep.Scrub.Missing[0].SHA256 != lost || rep.Scrub.Missing[0].Packet != id {
		t.Fatalf("scrub report %s", body)
	}
	violations := func() int {
		_, body := e.Do("GET", "/v1/ledger/entries?packet="+id, "yrd-audit:auditor", nil, "")
		return strings.Count(string(body), `"type":"integrity.violation"`)
	}
	if n := violations(); n != 2 {
		t.Fatalf("%d integrity.violation entries, want 2", n)
	}
	// A reviewer asking for the altered file gets an error, never the bytes.
	code, body = e.Do("GET", "/v1/packets/"+id+"/materials/"+files[1].Kind, "qingpu-amr:reviewer", nil, "")
	if code != 500 || !strings.Contains(string(body), "integrity_violation") {
		t.Fatalf("download of an altered file: %d %.200s", code, body)
	}
	if n := violations(); n != 3 {
		t.Fatalf("the failed download was not recorded: %d violations", n)
	}
	// The ledger itself is intact: the fault is in storage.
	if _, err := e.Ledger.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}
