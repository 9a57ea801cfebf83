package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"tongban/api/apitest"
	"tongban/ledger"
	"tongban/storage/s3"
	"tongban/storage/s3test"
)

// s3Env starts a gateway whose objects are on a real S3 server (VersityGW).
func s3Env(t *testing.T) (*apitest.Env, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	st, err := s3.Open(context.Background(), s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Secure: srv.Secure, Region: srv.Region, Bucket: srv.NewBucket(t)})
	if err != nil {
		t.Fatal(err)
	}
	return apitest.New(t, apitest.Options{Store: st}), srv
}

type packetResp struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Seq       int64  `json:"seq"`
	Overdue   bool   `json:"overdue"`
	Materials []struct {
		Kind        string `json:"kind"`
		Filename    string `json:"filename"`
		SHA256      string `json:"sha256"`
		ContentType string `json:"content_type"`
		Size        int64  `json:"size"`
	} `json:"materials"`
	History []struct {
		Seq  int64
		Type string
	} `json:"history"`
	Applicant *struct{ Type, Name, ID string } `json:"applicant"`
}

// openapiTransport checks every request the test sends and every answer
// the gateway gives against /openapi.json, with kin-openapi's validator.
type openapiTransport struct {
	t      *testing.T
	next   http.RoundTripper
	router routers.Router
	mu     sync.Mutex
	seen   map[string]bool // "METHOD /path status" validated
}

func init() {
	// Materials and bundles are opaque bytes to the validator.
	for _, ct := range []string{"application/zip", "application/pdf", "application/ofd", "image/jpeg", "image/png"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
}

// checkOpenAPI makes every request of e's client go through the validator.
func checkOpenAPI(t *testing.T, e *apitest.Env) *openapiTransport {
	t.Helper()
	doc := loadOpenAPI(t, e)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	next := e.Client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	v := &openapiTransport{t: t, next: next, router: router, seen: map[string]bool{}}
	e.Client.Transport = v
	t.Cleanup(func() { e.Client.Transport = next })
	return v
}

func (v *openapiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		v.t.Errorf("%s %s: not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return v.next.RoundTrip(req)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req.Clone(req.Context()), PathParams: params, Route: route, Options: opts}
	in.Request.Body = io.NopCloser(bytes.NewReader(reqBody))
	reqErr := openapi3filter.ValidateRequest(req.Context(), in)
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	// A request the gateway accepts must be one the document allows; a
	// refused one may break it on purpose (the tests send bad input).
	if reqErr != nil && resp.StatusCode < 300 {
		v.t.Errorf("request %s %s was accepted but does not match the document: %v", req.Method, req.URL.Path, reqErr)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := openapi3filter.ValidateResponse(req.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: opts,
	}); err != nil {
		v.t.Errorf("answer %d to %s %s does not match the document: %v\n%.300s", resp.StatusCode, req.Method, req.URL.Path, err, body)
	}
	v.mu.Lock()
	v.seen[fmt.Sprintf("%s %s %d", req.Method, route.Path, resp.StatusCode)] = true
	v.mu.Unlock()
	return resp, nil
}

// covered fails the test unless each of want was validated.
func (v *openapiTransport) covered(want ...string) {
	v.t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, w := range want {
		if !v.seen[w] {
			var seen []string
			for s := range v.seen {
				seen = append(seen, s)
			}
			slices.Sort(seen)
			v.t.Errorf("no validated answer %q; validated:\n%s", w, strings.Join(seen, "\n"))
		}
	}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// TestSeedStory walks the report the project grew from: Jiashan's window
// accepts a Qingpu company application, Qingpu's market-regulation bureau
// receives it, asks for a correction, gets the supplement, approves,
// issues the licence, and Jiashan delivers it. The bundle's evidence is
// checked with independent code: transparency-dev/merkle and note.Open.
func TestSeedStory(t *testing.T) {
	e, _ := s3Env(t)
	oa := checkOpenAPI(t, e)
	const origin, dest = "jiashan-window:submitter", "qingpu-amr:reviewer"

	m, files := apitest.CompanySetup()
	code, body := e.Submit(origin, m, files)
	if code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, body)
	}
	p := decode[packetResp](t, body)
	if p.Status != "submitted" || !strings.HasPrefix(p.ID, "pk-") || len(p.Materials) != len(files) {
		t.Fatalf("submitted packet %s", body)
	}
	for i, f := range files {
		if p.Materials[i].SHA256 != apitest.SHA256(f.Data) || p.Materials[i].Size != int64(len(f.Data)) {
			t.Fatalf("material %s recorded as %+v", f.Kind, p.Materials[i])
		}
	}
	if p.Materials[4].ContentType != "application/ofd" || p.Materials[2].ContentType != "image/jpeg" {
		t.Fatalf("content types detected: %+v", p.Materials)
	}

	// Qingpu's inbox holds it; Jiashan's outbox too; Wujiang sees nothing.
	code, body = e.Do("GET", "/v1/packets?box=inbox", dest, nil, "")
	if code != 200 || !strings.Contains(string(body), p.ID) {
		t.Fatalf("inbox: %d %s", code, body)
	}
	code, body = e.Do("GET", "/v1/packets?box=outbox&status=submitted", origin, nil, "")
	if code != 200 || !strings.Contains(string(body), p.ID) {
		t.Fatalf("outbox: %d %s", code, body)
	}
	code, body = e.Do("GET", "/v1/packets?box=inbox", "wujiang-window:reviewer", nil, "")
	if code != 200 || strings.Contains(string(body), p.ID) {
		t.Fatalf("another agency's inbox: %d %s", code, body)
	}

	// The destination downloads a material, verified, and receives the packet.
	code, body = e.Do("GET", "/v1/packets/"+p.ID+"/materials/application_form", dest, nil, "")
	if code != 200 || !bytes.Equal(body, files[1].Data) {
		t.Fatalf("download material: %d (%d bytes)", code, len(body))
	}
	e.Act(dest, p.ID, "receive", "", 200)
	e.Act(dest, p.ID, "receive", "", http.StatusConflict) // once only
	e.Act(dest, p.ID, "return", "公司章程缺少股东签字页，请补正", 200)
	code, body = e.Do("GET", "/v1/packets/"+p.ID, origin, nil, "")
	if got := decode[packetResp](t, body); code != 200 || got.Status != "correction_requested" || got.Overdue {
		t.Fatalf("after return: %d %s", code, body)
	}

	// Jiashan supplements the articles; the packet goes back to Qingpu.
	articles := apitest.PDF(5000)
	parts := apitest.SubmissionParts(map[string]any{"materials": []apitest.MaterialSpec{{Kind: "articles", Filename: "章程-补正.pdf", SHA256: apitest.SHA256(articles)}}},
		[]apitest.File{{Kind: "articles", Filename: "章程-补正.pdf", Data: articles}})
	mp, ct := apitest.Multipart(parts)
	code, body = e.Do("POST", "/v1/packets/"+p.ID+"/supplements", origin, mp, ct)
	if code != 200 || decode[packetResp](t, body).Status != "submitted" {
		t.Fatalf("supplement: %d %s", code, body)
	}
	e.Act(dest, p.ID, "receive", "", 200)
	e.Act(origin, p.ID, "approve", "", http.StatusForbidden) // only the destination decides
	e.Act(dest, p.ID, "approve", "材料齐全，准予设立登记", 200)

	licence := apitest.OFD()
	mp, ct = apitest.Multipart([]apitest.Part{{Name: "license", Filename: "营业执照.ofd", Data: licence}})
	code, body = e.Do("POST", "/v1/packets/"+p.ID+"/license", dest, mp, ct)
	if code != 200 || decode[packetResp](t, body).Status != "license_issued" {
		t.Fatalf("licence: %d %s", code, body)
	}
	e.Act(origin, p.ID, "deliver", "", 200)

	code, body = e.Do("GET", "/v1/packets/"+p.ID, dest, nil, "")
	final := decode[packetResp](t, body)
	if code != 200 || final.Status != "delivered" || final.Applicant == nil || final.Applicant.ID != "91310118MA1G00011T" {
		t.Fatalf("final packet: %d %s", code, body)
	}
	wantTypes := []string{"packet.submitted", "packet.downloaded", "packet.received", "packet.returned", "packet.supplemented", "packet.received", "packet.approved", "license.issued", "packet.delivered"}
	var gotTypes []string
	for _, h := range final.History {
		gotTypes = append(gotTypes, h.Type)
	}
	if strings.Join(gotTypes, " ") != strings.Join(wantTypes, " ") {
		t.Fatalf("history %v, want %v", gotTypes, wantTypes)
	}
	for _, f := range final.Materials {
		if f.Kind == "articles" && f.SHA256 != apitest.SHA256(articles) {
			t.Fatalf("supplemented articles not in the packet: %+v", f)
		}
	}

	// The bundle: materials, manifest, entries with proofs, a checkpoint.
	code, body = e.Do("GET", "/v1/packets/"+p.ID+"/bundle", dest, nil, "")
	if code != 200 {
		t.Fatalf("bundle: %d %s", code, body)
	}
	checkBundle(t, e, body, p.ID, articles, licence)

	// The ledger verifies, and names no personal data.
	code, body = e.JSON("POST", "/v1/ledger/verify", "yrd-audit:auditor", nil)
	if code != 200 || !strings.Contains(string(body), `"ok":true`) {
		t.Fatalf("ledger verify: %d %s", code, body)
	}
	code, body = e.Do("GET", "/v1/ledger/entries?packet="+p.ID, "yrd-audit:auditor", nil, "")
	if code != 200 {
		t.Fatalf("entries: %d %s", code, body)
	}
	for _, secret := range []string{"91310118MA1G00011T", "上海青嘉贸易有限公司", "营业执照副本"} {
		if strings.Contains(string(body), secret) {
			t.Fatalf("ledger entries contain personal data %q", secret)
		}
	}

	// The rest of the API, and some failures, through the same validator.
	for _, r := range []struct {
		method, path, who string
		want              int
	}{
		{"GET", "/v1/catalog", "", 200},
		{"GET", "/v1/ledger/checkpoint", "", 200},
		{"GET", "/v1/ledger/entries/0", "yrd-audit:auditor", 200},
		{"GET", "/v1/ledger/entries?from=0&limit=3", "yrd-audit:auditor", 200},
		{"GET", "/v1/ledger/proofs/inclusion?seq=1&size=4", "yrd-audit:auditor", 200},
		{"GET", "/v1/ledger/proofs/consistency?from=2&to=5", "yrd-audit:auditor", 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/v1/packets/pk-nosuchpacket", dest, 404},
		{"GET", "/v1/packets/" + p.ID, "", 401},
		{"GET", "/v1/packets/" + p.ID, "wujiang-window:reviewer", 403},
		{"GET", "/v1/ledger/entries/x", "yrd-audit:auditor", 400},
	} {
		if code, body := e.Do(r.method, r.path, r.who, nil, ""); code != r.want {
			t.Errorf("%s %s: %d %s, want %d", r.method, r.path, code, body, r.want)
		}
	}
	code, body = e.JSON("POST", "/v1/ledger/verify", "yrd-audit:auditor", map[string]any{"scrub": true})
	if code != 200 || !strings.Contains(string(body), `"ok":true`) {
		t.Fatalf("ledger verify with scrub: %d %s", code, body)
	}
	oa.covered(
		"POST /v1/packets 201", "GET /v1/packets 200", "GET /v1/packets/{id} 200",
		"GET /v1/packets/{id}/materials/{kind} 200", "GET /v1/packets/{id}/bundle 200",
		"POST /v1/packets/{id}/actions 200", "POST /v1/packets/{id}/actions 409", "POST /v1/packets/{id}/actions 403",
		"POST /v1/packets/{id}/supplements 200", "POST /v1/packets/{id}/license 200",
		"GET /v1/ledger/key 200", "GET /v1/ledger/checkpoint 200", "GET /v1/ledger/entries/{seq} 200", "GET /v1/ledger/entries 200",
		"GET /v1/ledger/proofs/inclusion 200", "GET /v1/ledger/proofs/consistency 200", "POST /v1/ledger/verify 200",
		"GET /v1/catalog 200", "GET /healthz 200", "GET /readyz 200", "GET /metrics 200",
		"GET /v1/packets/{id} 404", "GET /v1/packets/{id} 401", "GET /v1/packets/{id} 403", "GET /v1/ledger/entries/{seq} 400",
	)
}

func checkBundle(t *testing.T, e *apitest.Env, zipped []byte, id string, articles, licence []byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		files[f.Name] = b.Bytes()
	}
	if !bytes.Equal(files["materials/articles/章程-补正.pdf"], articles) || !bytes.Equal(files["license/license.ofd"], licence) {
		names := []string{}
		for n := range files {
			names = append(names, n)
		}
		t.Fatalf("bundle lacks the supplemented articles or the licence: %v", names)
	}
	var manifest struct {
		Materials []struct{ Kind, SHA256 string }
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	for _, m := range manifest.Materials {
		found := false
		for name, b := range files {
			if strings.HasPrefix(name, "materials/"+m.Kind+"/") && apitest.SHA256(b) == m.SHA256 {
				found = true
			}
		}
		if !found {
			t.Fatalf("material %s of the manifest is not in the bundle", m.Kind)
		}
	}

	// Checkpoint signed by the log's published key.
	code, key := e.Do("GET", "/v1/ledger/key", "", nil, "")
	if code != 200 {
		t.Fatal("key", code)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(files["evidence/checkpoint"], note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint signature: %v", err)
	}
	cp, err := ledger.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	lastManifest := ""
	for name, raw := range files {
		if !strings.HasPrefix(name, "evidence/entries/") {
			continue
		}
		entries++
		var pr struct {
			Seq, Size int64
			Hashes    [][]byte
		}
		if err := json.Unmarshal(files["evidence/proofs/"+strings.TrimPrefix(name, "evidence/entries/")], &pr); err != nil {
			t.Fatalf("proof of %s: %v", name, err)
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(raw)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(pr.Seq), uint64(cp.Size), leaf, pr.Hashes, cp.Root[:]); err != nil {
			t.Fatalf("inclusion of %s: %v", name, err)
		}
		ent, err := ledger.ParseEntry(raw)
		if err != nil || ent.Packet != id {
			t.Fatalf("entry %s: %v", name, err)
		}
		if ent.Type == "packet.supplemented" {
			var pl struct{ Manifest string }
			json.Unmarshal(ent.Payload, &pl)
			lastManifest = pl.Manifest
		}
	}
	if entries < 10 {
		t.Fatalf("bundle has %d entries", entries)
	}
	if lastManifest != apitest.SHA256(files["manifest.json"]) {
		t.Fatalf("manifest.json does not hash to the supplemented manifest's digest in the ledger")
	}
}
