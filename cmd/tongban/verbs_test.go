package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"tongban/api/apitest"
)

// recordingProxy sits between the CLI and a real gateway: it records every
// request and can break the first answer to a chosen request.
type recordingProxy struct {
	target *url.URL
	// fault, if set, decides per request what goes wrong: "drop" forwards
	// the request, lets the gateway finish it, then closes the connection
	// without an answer; "503" answers 503 with Retry-After: 1 without
	// forwarding. It is asked once per request.
	fault func(r *http.Request) string

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, path, key, fault string
}

func newProxy(t *testing.T, gw *gatewayProc, fault func(*http.Request) string) (*recordingProxy, string) {
	t.Helper()
	u, err := url.Parse(gw.url)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{target: u, fault: fault}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *recordingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fault := ""
	p.mu.Lock()
	if p.fault != nil {
		fault = p.fault(r)
	}
	p.seen = append(p.seen, seenRequest{r.Method, r.URL.Path, r.Header.Get("Idempotency-Key"), fault})
	p.mu.Unlock()
	if fault == "503" {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":{"code":"unavailable","message":"storage unavailable"}}`, http.StatusServiceUnavailable)
		return
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.Host, out.RequestURI = p.target.Scheme, p.target.Host, p.target.Host, ""
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if fault == "drop" {
		// The gateway has handled the request; its answer is lost.
		io.Copy(io.Discard, resp.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *recordingProxy) requests() []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenRequest(nil), p.seen...)
}

// firstOnly returns a fault function that breaks the first request
// matching method and path, and no other.
func firstOnly(method, path, fault string) func(*http.Request) string {
	done := false
	return func(r *http.Request) string {
		if !done && r.Method == method && r.URL.Path == path {
			done = true
			return fault
		}
		return ""
	}
}

func companyArgs(t *testing.T, dir string) ([]string, []apitest.File) {
	m, files := apitest.CompanySetup()
	args := []string{"submit", "--item", m.Item, "--destination", m.Destination,
		"--applicant-type", "enterprise", "--applicant-name", "上海青嘉贸易有限公司", "--applicant-id", "91310118MA1G00011T"}
	return append(args, writeFiles(t, dir, files)...), files
}

func tokenEnv(gw *gatewayProc, who string) []string {
	return []string{"TONGBAN_TOKEN=" + gw.tokens[who], "TZ=Asia/Shanghai"}
}

func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	code, out, errOut := tongban(t, env, args...)
	if code != 0 {
		t.Fatalf("tongban %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

var packetID = regexp.MustCompile(`submitted (pk-\S+):`)

// TestCLIWorkflow runs the seed story with the new verbs only: submit,
// inbox, show, act (with and without a reason), supplement, licence and
// deliver, printing times in the caller's zone.
func TestCLIWorkflow(t *testing.T) {
	dir := t.TempDir()
	gw := serve(t, filepath.Join(dir, "data"))
	jiashan, qingpu := tokenEnv(gw, "jiashan-window:submitter"), tokenEnv(gw, "qingpu-amr:reviewer")
	args, _ := companyArgs(t, dir)
	out := mustRun(t, jiashan, append(args, "--server", gw.url)...)
	m := packetID.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no packet id in %q", out)
	}
	id := m[1]
	// Deadlines are printed in the local zone with its offset.
	if !regexp.MustCompile(`deadline \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00 CST`).MatchString(out) {
		t.Errorf("submit does not print the deadline in local time: %q", out)
	}

	// The reviewer's inbox lists it, flags after the verb or not at all.
	out = mustRun(t, qingpu, "inbox", "--server", gw.url)
	if !regexp.MustCompile(id + `\s+submitted\s+ENT-SETUP\s+jiashan-window\s+qingpu-amr\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00 CST`).MatchString(out) {
		t.Fatalf("inbox does not list %s with local times:\n%s", id, out)
	}
	out = mustRun(t, qingpu, "inbox", "--server", gw.url, "--status", "received")
	if strings.Contains(out, id) {
		t.Fatalf("inbox --status received lists a submitted packet:\n%s", out)
	}
	var inbox struct{ Packets []struct{ ID, Status string } }
	if err := json.Unmarshal([]byte(mustRun(t, qingpu, "inbox", "--json", "--server", gw.url)), &inbox); err != nil || len(inbox.Packets) != 1 || inbox.Packets[0].ID != id {
		t.Fatalf("inbox --json: %v %+v", err, inbox)
	}

	// Without a reason; then a return without one is refused by the gateway.
	if out = mustRun(t, qingpu, "act", id, "receive", "--server", gw.url); !strings.Contains(out, id+": received") {
		t.Fatalf("act receive: %q", out)
	}
	code, out, errOut := tongban(t, qingpu, "act", id, "return", "--server", gw.url)
	if code != 1 || !strings.Contains(errOut, "422") || !strings.Contains(errOut, "reason") {
		t.Fatalf("return without a reason: exit %d\n%s\n%s", code, out, errOut)
	}
	reason := "公司章程缺少股东签字页"
	if out = mustRun(t, qingpu, "act", "--server", gw.url, id, "return", "--reason", reason); !strings.Contains(out, id+": correction_requested") {
		t.Fatalf("act return --reason: %q", out)
	}

	// The origin sees the reason, in its outbox and on the packet.
	out = mustRun(t, jiashan, "inbox", "--outbox", "--server", gw.url)
	if !regexp.MustCompile(id + `\s+correction_requested`).MatchString(out) {
		t.Fatalf("outbox:\n%s", out)
	}
	out = mustRun(t, append(jiashan[:1:1], "TZ=America/New_York"), "show", id, "--server", gw.url)
	for _, want := range []string{
		"status     correction_requested", "reason     " + reason, "applicant  上海青嘉贸易有限公司 (enterprise 91310118MA1G00011T)",
		"clock stopped since", "packet.returned", reason,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	// Winter in New York: the same instants, shown at -05:00.
	if !regexp.MustCompile(`submitted\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d -05:00 EST`).MatchString(out) {
		t.Errorf("show does not use the caller's zone:\n%s", out)
	}

	// A supplement with a kind the item lacks and a file of no accepted
	// type is refused before anything is sent.
	proxy, purl := newProxy(t, gw, nil)
	notes := filepath.Join(dir, "notes.txt")
	os.WriteFile(notes, []byte("signature page to follow\n"), 0o600)
	code, _, errOut = tongban(t, jiashan, "supplement", id, "articles="+notes, "food_safety_rules="+notes, "--server", purl)
	if code != 1 || !strings.Contains(errOut, "nothing uploaded; 2 problem(s)") || !strings.Contains(errOut, "articles: "+notes+": unsupported file type") ||
		!strings.Contains(errOut, "food_safety_rules: ENT-SETUP has no such material") {
		t.Fatalf("bad supplement: exit %d\n%s", code, errOut)
	}
	for _, r := range proxy.requests() {
		if r.method != "GET" {
			t.Fatalf("a refused supplement sent %s %s", r.method, r.path)
		}
	}

	signed := filepath.Join(dir, "articles-signed.pdf")
	os.WriteFile(signed, apitest.PDF(4000), 0o600)
	if out = mustRun(t, jiashan, "supplement", id, "articles="+signed, "--server", gw.url); !strings.Contains(out, id+": submitted") {
		t.Fatalf("supplement: %q", out)
	}
	mustRun(t, qingpu, "act", id, "receive", "--server", gw.url)
	// approve goes through a proxy that answers 503 once: the CLI waits
	// as told and retries with the same key.
	proxy, purl = newProxy(t, gw, firstOnly("POST", "/v1/packets/"+id+"/actions", "503"))
	code, out, errOut = tongban(t, qingpu, "act", id, "approve", "--reason", "材料齐全，准予设立登记", "--server", purl)
	if code != 0 || !strings.Contains(out, id+": approved") || !strings.Contains(errOut, "retrying in 1s") {
		t.Fatalf("approve through a 503: exit %d\n%s\n%s", code, out, errOut)
	}
	if rs := proxy.requests(); len(rs) != 2 || rs[0].key == "" || rs[0].key != rs[1].key {
		t.Fatalf("the retry does not repeat the Idempotency-Key: %+v", rs)
	}

	licence := filepath.Join(dir, "营业执照.ofd")
	ofd := apitest.OFD()
	os.WriteFile(licence, ofd, 0o600)
	out = mustRun(t, qingpu, "licence", id, licence, "--server", gw.url)
	if !strings.Contains(out, id+": license_issued") || !strings.Contains(out, "sha256 "+apitest.SHA256(ofd)) {
		t.Fatalf("licence: %q", out)
	}
	if out = mustRun(t, jiashan, "act", id, "deliver", "--server", gw.url); !strings.Contains(out, id+": delivered") {
		t.Fatalf("deliver: %q", out)
	}
	out = mustRun(t, jiashan, "show", id, "--server", gw.url)
	for _, want := range []string{"status     delivered", "license  ", "application/ofd", "packet.supplemented", "license.issued", "packet.delivered"} {
		if !strings.Contains(out, want) {
			t.Errorf("show after delivery lacks %q:\n%s", want, out)
		}
	}

	// A licence that is not a licence type is refused before upload.
	bad := filepath.Join(dir, "licence.txt")
	os.WriteFile(bad, []byte("not a document\n"), 0o600)
	if code, _, errOut := tongban(t, qingpu, "licence", id, bad, "--server", gw.url); code != 1 || !strings.Contains(errOut, "nothing uploaded") || !strings.Contains(errOut, "looks like text/plain") {
		t.Fatalf("licence of text: exit %d\n%s", code, errOut)
	}
}

// TestCLISubmitRetriedOnce loses the answer to a submission after the
// gateway stored it: the CLI retries with the same Idempotency-Key and the
// gateway replays the packet instead of making a second one.
func TestCLISubmitRetriedOnce(t *testing.T) {
	dir := t.TempDir()
	gw := serve(t, filepath.Join(dir, "data"))
	proxy, purl := newProxy(t, gw, firstOnly("POST", "/v1/packets", "drop"))
	args, _ := companyArgs(t, dir)
	code, out, errOut := tongban(t, tokenEnv(gw, "jiashan-window:submitter"), append(args, "--server", purl)...)
	if code != 0 {
		t.Fatalf("submit through a lossy proxy: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "retrying in") {
		t.Errorf("no word of the retry on stderr: %q", errOut)
	}
	var posts []seenRequest
	for _, r := range proxy.requests() {
		if r.method == "POST" {
			posts = append(posts, r)
		}
	}
	if len(posts) != 2 || posts[0].fault != "drop" || posts[0].key == "" || posts[1].key != posts[0].key {
		t.Fatalf("want the dropped POST and one retry with the same key: %+v", posts)
	}
	id := packetID.FindStringSubmatch(out)[1]
	var list struct{ Packets []struct{ ID string } }
	json.Unmarshal(gw.call(t, "GET", "/v1/packets?box=outbox", "jiashan-window:submitter", nil), &list)
	if len(list.Packets) != 1 || list.Packets[0].ID != id {
		t.Fatalf("want exactly packet %s in the outbox, got %+v", id, list.Packets)
	}

	// --idempotency-key pins the key across runs: a second run replays.
	key := "jiashan-2026-0042"
	out1 := mustRun(t, tokenEnv(gw, "jiashan-window:submitter"), append(args, "--server", gw.url, "--idempotency-key", key)...)
	out2 := mustRun(t, tokenEnv(gw, "jiashan-window:submitter"), append(args, "--server", gw.url, "--idempotency-key", key)...)
	id1, id2 := packetID.FindStringSubmatch(out1)[1], packetID.FindStringSubmatch(out2)[1]
	if id1 != id2 || id1 == id {
		t.Fatalf("the pinned key made %s then %s (first run's packet %s)", id1, id2, id)
	}
	json.Unmarshal(gw.call(t, "GET", "/v1/packets?box=outbox", "jiashan-window:submitter", nil), &list)
	if len(list.Packets) != 2 {
		t.Fatalf("want 2 packets in the outbox, got %d", len(list.Packets))
	}
}

// TestCLISubmitRefusedBeforeUpload: files that break the catalogue's rules
// are all reported at once, and nothing is sent to POST /v1/packets.
func TestCLISubmitRefusedBeforeUpload(t *testing.T) {
	dir := t.TempDir()
	gw := serve(t, filepath.Join(dir, "data"))
	proxy, purl := newProxy(t, gw, nil)

	// Too big: 21 MiB where 20 MiB are allowed (sparse, but a PDF by its head).
	big := filepath.Join(dir, "consent.pdf")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(apitest.PDF(100))
	f.Truncate(21 << 20)
	f.Close()
	// Wrong type: text; and a ZIP that is not an OFD (a DOCX, say).
	text := filepath.Join(dir, "id.pdf")
	os.WriteFile(text, []byte("this is a scan, honest\n"), 0o600)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("word/document.xml")
	io.WriteString(w, "<w:document/>")
	zw.Close()
	docx := filepath.Join(dir, "articles.ofd")
	os.WriteFile(docx, buf.Bytes(), 0o600)
	pdf := filepath.Join(dir, "rules.pdf")
	os.WriteFile(pdf, apitest.PDF(500), 0o600)

	code, out, errOut := tongban(t, tokenEnv(gw, "jiashan-window:submitter"), "submit", "--server", purl,
		"--item", "ENT-SETUP", "--destination", "qingpu-amr", "--applicant-type", "enterprise",
		"--applicant-name", "上海青嘉贸易有限公司", "--applicant-id", "91310118MA1G00011T",
		"consent_form="+big, "applicant_id="+text, "articles="+docx, "food_safety_rules="+pdf)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"nothing uploaded; 7 problem(s)",
		"consent_form: " + big + " is 22020096 bytes; at most 20971520 (20 MiB) allowed",
		"applicant_id: " + text + ": unsupported file type: looks like text/plain",
		"articles: " + docx + ": not an OFD document: no OFD.xml",
		"food_safety_rules: ENT-SETUP has no such material",
		"application_form: required", "address_proof: required", "appointments: required",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, errOut)
		}
	}
	var paths []string
	for _, r := range proxy.requests() {
		paths = append(paths, r.method+" "+r.path)
	}
	if strings.Join(paths, ",") != "GET /v1/catalog" {
		t.Fatalf("want only the catalogue read, the gateway saw %v", paths)
	}
}

// TestCLIServerListsAllMissing: the gateway's own 422 names every missing
// material too, and the CLI prints each field.
func TestCLIServerListsAllMissing(t *testing.T) {
	dir := t.TempDir()
	gw := serve(t, filepath.Join(dir, "data"))
	consent := filepath.Join(dir, "consent.pdf")
	os.WriteFile(consent, apitest.PDF(300), 0o600)
	// The item comes in a manifest the CLI does not look into for checks
	// when it names none; the gateway checks it all.
	manifest := filepath.Join(dir, "manifest.json")
	os.WriteFile(manifest, []byte(`{"destination":"qingpu-amr","applicant":{"type":"enterprise","name":"上海青嘉贸易有限公司","id":"91310118MA1G00011X"}}`), 0o600)
	code, out, errOut := tongban(t, tokenEnv(gw, "jiashan-window:submitter"), "submit", "--server", gw.url,
		"--manifest", manifest, "consent_form="+consent)
	if code != 1 || !strings.Contains(errOut, "422") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "item: is required") || !strings.Contains(errOut, "applicant.id: ") {
		t.Fatalf("the 422 does not list every field:\n%s", errOut)
	}

	// With the item, the gateway's 422 lists all four missing materials.
	b, ct := apitest.Multipart(apitest.SubmissionParts(apitest.Manifest{Item: "ENT-SETUP", Destination: "qingpu-amr",
		Applicant: map[string]any{"type": "enterprise", "name": "上海青嘉贸易有限公司", "id": "91310118MA1G00011T"},
		Materials: []apitest.MaterialSpec{{Kind: "consent_form", Filename: "consent.pdf"}, {Kind: "applicant_id", Filename: "id.pdf"}}},
		[]apitest.File{{Kind: "consent_form", Filename: "consent.pdf", Data: apitest.PDF(300)}, {Kind: "applicant_id", Filename: "id.pdf", Data: apitest.PDF(300)}}))
	req, _ := http.NewRequest("POST", gw.url+"/v1/packets", b)
	req.Header.Set("Authorization", "Bearer "+gw.tokens["jiashan-window:submitter"])
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Fields map[string]string }
	}
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 422 {
		t.Fatalf("status %d, want 422", resp.StatusCode)
	}
	for _, k := range []string{"application_form", "address_proof", "articles", "appointments"} {
		if !strings.Contains(e.Error.Fields["materials"], `"`+k+`"`) {
			t.Errorf("the 422 does not name the missing %s: %v", k, e.Error.Fields)
		}
	}
}

// TestCLIVerbHelp: every client verb's --help shows its arguments and an
// example, on stdout, with exit 0.
func TestCLIVerbHelp(t *testing.T) {
	for verb, args := range map[string]string{
		"submit": "KIND=FILE...", "supplement": "ID KIND=FILE...", "licence": "ID FILE",
		"act": "ID ACTION [--reason REASON]", "show": "ID", "inbox": "[--outbox]", "version": "",
		"packets": "[--status STATUS] [--item CODE]",
	} {
		code, out, errOut := tongban(t, nil, verb, "--help")
		if code != 0 || !strings.Contains(out, "usage: tongban "+verb+" ") && verb != "version" {
			t.Errorf("%s --help: exit %d\n%s%s", verb, code, out, errOut)
			continue
		}
		if !strings.Contains(out, args) || (verb != "version" && !strings.Contains(out, "example:\n  tongban "+verb+" ")) {
			t.Errorf("%s --help lacks its arguments %q or an example:\n%s", verb, args, out)
		}
	}
	if code, _, errOut := tongban(t, nil, "act", "pk-x", "frobnicate"); code != 2 || !strings.Contains(errOut, "receive, return, approve, reject, deliver") {
		t.Errorf("unknown action: exit %d %s", code, errOut)
	}
	if code, _, errOut := tongban(t, []string{"TONGBAN_TOKEN=x"}, "supplement", "pk-x", "articles"); code != 2 || !strings.Contains(errOut, "KIND=FILE") {
		t.Errorf("supplement without KIND=: exit %d %s", code, errOut)
	}
}

// TestCLIVersion: `tongban version` reports what `go version -m` reads
// from the same binary.
func TestCLIVersion(t *testing.T) {
	bin := tongbanBin(t)
	out := mustRun(t, nil, "version")
	if !strings.Contains(out, "(module tongban, "+runtime.Version()+")") {
		t.Errorf("version lacks the module and Go version %s:\n%s", runtime.Version(), out)
	}
	meta, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	rev := regexp.MustCompile(`\bvcs\.revision=(\S+)`).FindSubmatch(meta)
	switch {
	case rev != nil && !strings.Contains(out, "revision "+string(rev[1])):
		t.Errorf("the binary was built from %s, version says:\n%s", rev[1], out)
	case rev == nil && !strings.Contains(out, "revision unknown"):
		t.Errorf("the binary has no revision stamped, version says:\n%s", out)
	}
	modVersion := regexp.MustCompile(`(?m)^\tmod\ttongban\t(\S+)`).FindSubmatch(meta)
	if modVersion == nil || !strings.HasPrefix(out, "tongban "+string(modVersion[1])+" ") {
		t.Errorf("module version %q not first in:\n%s", modVersion, out)
	}
}
