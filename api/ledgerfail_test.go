package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"tongban/api/apitest"
	"tongban/ledger"
	"tongban/ledger/ledgertest"
)

// TestLedgerDiskFailure gives the running gateway's ledger a disk that
// stops taking writes: submissions and actions answer 503 with
// Retry-After, no entry and no packet is left behind, readiness says so,
// and once the disk works again the same requests succeed and the ledger
// continues without a gap.
func TestLedgerDiskFailure(t *testing.T) {
	var disk *ledgertest.FailingDisk
	e := apitest.New(t, apitest.Options{Ledger: func(o ledger.Options) ledger.Options {
		disk = ledgertest.NewFailingDisk(filepath.Join(o.Dir, "vlog"))
		o.BadgerOptions = disk.BadgerOptions
		return o
	}})
	m, files := apitest.CompanySetup()
	first := e.MustSubmit("jiashan-window:submitter", m, files)
	size := e.Ledger.Size()

	if err := disk.Fail(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
		resp := doRaw(t, e, "POST", "/v1/packets", "jiashan-window:submitter", body.String(), ct)
		wantUnavailable(t, "submit", resp)
		resp = doRaw(t, e, "POST", "/v1/packets/"+first+"/actions", "qingpu-amr:reviewer", `{"action":"receive"}`, "application/json")
		wantUnavailable(t, "receive", resp)
	}
	if resp := doRaw(t, e, "GET", "/readyz", "", "", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz on a failing disk: %d", resp.StatusCode)
	}
	if e.Ledger.Size() != size {
		t.Fatalf("ledger size %d after refused requests, want %d", e.Ledger.Size(), size)
	}
	if ids := outboxIDs(t, e); len(ids) != 1 || ids[0] != first {
		t.Fatalf("outbox after refused submissions: %v", ids)
	}
	if st := packetStatus(t, e, first); st != "submitted" {
		t.Fatalf("packet status %q after a refused receive", st)
	}

	if err := disk.Heal(); err != nil {
		t.Fatal(err)
	}
	second := e.MustSubmit("jiashan-window:submitter", m, files)
	e.Act("qingpu-amr:reviewer", first, "receive", "", http.StatusOK)
	if st := packetStatus(t, e, first); st != "received" {
		t.Fatalf("packet status %q after receive", st)
	}
	if ids := outboxIDs(t, e); len(ids) != 2 || !strings.Contains(strings.Join(ids, " "), second) {
		t.Fatalf("outbox after recovery: %v", ids)
	}
	if resp := doRaw(t, e, "GET", "/readyz", "", "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz after recovery: %d", resp.StatusCode)
	}
	recs, err := e.Ledger.ByPacket(second)
	if err != nil || len(recs) != 1 || recs[0].Seq != size {
		t.Fatalf("entries of the packet submitted after recovery: %v (%d), want one at seq %d", err, len(recs), size)
	}
	code, body := e.JSON("POST", "/v1/ledger/verify", "yrd-audit:auditor", map[string]bool{"scrub": true})
	if code != http.StatusOK || !strings.Contains(string(body), `"ok":true`) {
		t.Fatalf("verify after recovery: %d %s", code, body)
	}
}

type rawResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

func doRaw(t *testing.T, e *apitest.Env, method, path, who, body, contentType string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+e.Tokens[who])
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return rawResponse{resp.StatusCode, resp.Header, b}
}

func wantUnavailable(t *testing.T, what string, r rawResponse) {
	t.Helper()
	var eb struct {
		Error struct{ Code string }
	}
	json.Unmarshal(r.Body, &eb)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || eb.Error.Code != "unavailable" {
		t.Fatalf("%s on a failing disk: %d, Retry-After %q, %s", what, r.StatusCode, r.Header.Get("Retry-After"), r.Body)
	}
}

func outboxIDs(t *testing.T, e *apitest.Env) []string {
	t.Helper()
	code, body := e.Do("GET", "/v1/packets?box=outbox", "jiashan-window:submitter", nil, "")
	var list struct{ Packets []struct{ ID string } }
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("outbox: %d %s", code, body)
	}
	var ids []string
	for _, p := range list.Packets {
		ids = append(ids, p.ID)
	}
	return ids
}

func packetStatus(t *testing.T, e *apitest.Env, id string) string {
	t.Helper()
	code, body := e.Do("GET", "/v1/packets/"+id, "jiashan-window:submitter", nil, "")
	var p struct{ Status string }
	if code != http.StatusOK || json.Unmarshal(body, &p) != nil {
		t.Fatalf("get %s: %d %s", id, code, body)
	}
	return p.Status
}
