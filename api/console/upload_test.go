package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"tongban/api/apitest"
	"tongban/gateway"
)

// TestSubmitAnswerListsEveryProblem: the gateway's answer to a bad
// submission through the console names every field it refuses, and
// nothing is recorded.
func TestSubmitAnswerListsEveryProblem(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	c := signIn(t, e.URL, e.Client, e.Tokens["jiashan-window:submitter"])
	manifest := `{"item":"ENT-SETUP","destination":"nowhere","applicant":{"type":"enterprise","name":"青嘉","id":"123"},"materials":[{"kind":"consent_form","filename":"a.pdf"}]}`
	body, ct := apitest.Multipart([]apitest.Part{{Name: "csrf", Data: []byte(c.csrf)}, {Name: "manifest", Data: []byte(manifest)},
		{Name: "consent_form", Filename: "a.pdf", Data: apitest.PDF(100)}})
	resp, out := c.do("POST", "/console/submit", body, map[string]string{"Content-Type": ct, "Accept": "application/json"})
	var ans struct {
		Error struct {
			Code   string
			Fields map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &ans); err != nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("answer %d %s", resp.StatusCode, out)
	}
	for _, f := range []string{"destination", "applicant.id", "materials"} {
		if ans.Error.Fields[f] == "" {
			t.Errorf("the answer does not name %s: %v", f, ans.Error.Fields)
		}
	}
	if n := e.Ledger.Size(); n != 0 {
		t.Fatalf("a refused submission left %d ledger entries", n)
	}
	// Without the CSRF token first, the body is not read at all.
	body, ct = apitest.Multipart([]apitest.Part{{Name: "manifest", Data: []byte(manifest)}, {Name: "csrf", Data: []byte(c.csrf)}})
	if resp, _ := c.do("POST", "/console/submit", body, map[string]string{"Content-Type": ct}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CSRF token not first: %d", resp.StatusCode)
	}
}

// TestPlainFormSupplement: a supplement posted by a plain form (no
// script) with file inputs left empty reaches the gateway with only the
// chosen files.
func TestPlainFormSupplement(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	e.Act("qingpu-amr:reviewer", id, "receive", "", 200)
	e.Act("qingpu-amr:reviewer", id, "return", "缺签字页", 200)
	c := signIn(t, e.URL, e.Client, e.Tokens["jiashan-window:submitter"])
	signed := apitest.PDF(5000)
	body, ct := apitest.Multipart([]apitest.Part{{Name: "csrf", Data: []byte(c.csrf)},
		{Name: "consent_form", Filename: "", ContentType: "application/octet-stream"},
		{Name: "articles", Filename: "章程（签字）.pdf", ContentType: "application/pdf", Data: signed},
		{Name: "appointments", Filename: "", ContentType: "application/octet-stream"}})
	resp, out := c.do("POST", "/console/packets/"+id+"/supplement", body, map[string]string{"Content-Type": ct})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/packets/"+id {
		t.Fatalf("supplement: %d %s", resp.StatusCode, out)
	}
	p := get(t, e, id)
	if p.Status != gateway.StatusSubmitted {
		t.Fatalf("status %s", p.Status)
	}
	for _, mat := range p.Materials {
		if mat.Kind == "articles" && mat.SHA256 != apitest.SHA256(signed) {
			t.Fatalf("articles not replaced: %+v", mat)
		}
	}
}

// TestMaterialPreview: images may be shown inline, sandboxed; other types
// are always downloaded.
func TestMaterialPreview(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	c := signIn(t, e.URL, e.Client, e.Tokens["qingpu-amr:reviewer"])
	for kind, want := range map[string]string{"applicant_id": "inline", "articles": "attachment", "consent_form": "attachment"} {
		resp, _ := c.do("GET", "/console/packets/"+id+"/materials/"+kind+"?inline=1", nil, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), want+";") ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %q %q", kind, resp.StatusCode, resp.Header.Get("Content-Disposition"), resp.Header.Get("Content-Security-Policy"))
		}
	}
	// The origin window sees the packet but may not download its files.
	o := signIn(t, e.URL, e.Client, e.Tokens["jiashan-window:submitter"])
	if code, _ := o.get("/console/packets/" + id + "/materials/articles"); code != http.StatusForbidden {
		t.Fatalf("origin downloads a material: %d", code)
	}
}

// TestVerifyProgress: the full verification streams progress for both
// stages, then says where the result is; a plain form gets the page.
func TestVerifyProgress(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	e.MustSubmit("jiashan-window:submitter", m, files)
	c := signIn(t, e.URL, e.Client, e.Tokens["yrd-audit:auditor"])
	resp, out := c.do("POST", "/console/ledger/verify", strings.NewReader("csrf="+c.csrf),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/x-ndjson"})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if resp.StatusCode != 200 || !strings.Contains(out, `"stage":"ledger"`) || !strings.Contains(out, `"stage":"objects"`) ||
		lines[len(lines)-1] != `{"next":"/console/ledger?result=1"}` {
		t.Fatalf("progress stream %d:\n%s", resp.StatusCode, out)
	}
	if code, body := c.get("/console/ledger?result=1"); code != 200 || !strings.Contains(body, `id="verify-ok"`) {
		t.Fatalf("result page %d", code)
	}
	if code, body := c.post("/console/ledger/verify", url.Values{"csrf": {c.csrf}}, nil); code != 200 || !strings.Contains(body, `id="verify-ok"`) {
		t.Fatalf("plain form: %d", code)
	}
}
