package api_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"tongban/api"
	"tongban/api/apitest"
	"tongban/gateway"
)

// secResult is what a security row observed. code 0 means the connection
// ended (or the TLS handshake failed) without an HTTP answer.
type secResult struct {
	code   int
	body   []byte
	header http.Header
}

// secEnvs are the gateways of the security table.
type secEnvs struct {
	// plain: HTTP, a catalogue whose RES-HPF-PROOF takes a consent form
	// only as PDF and the applicant's ID only as an image, an expired and
	// a live extra credential, the slow-client limits of serve.go (scaled
	// down: 1 s for headers and for a stalled body) and its 64 KiB header cap.
	plain *apitest.Env
	// limited: 5 requests a second per principal, bursts of 5.
	limited *apitest.Env
	// tls: HTTPS with optional client certificates of ca; CN "qingpu-amr"
	// is Qingpu's market-regulation bureau as reviewer.
	tls *apitest.Env
	// other: another gateway, whose tokens mean nothing to these.
	other *apitest.Env

	ca, rogue          *secCA
	expired, unexpired string // extra tokens of qingpu-amr:reviewer
}

func (s *secEnvs) env(name string) *apitest.Env {
	return map[string]*apitest.Env{"": s.plain, "limited": s.limited, "tls": s.tls}[name]
}

// secCA is a test certificate authority.
type secCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newSecCA(t *testing.T, name string) *secCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &secCA{cert: cert, key: key, pool: pool}
}

// issue returns a client certificate for cn that is valid until notAfter.
func (ca *secCA) issue(t *testing.T, cn string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// secCatalog is the built-in catalogue with RES-HPF-PROOF's consent form
// accepted only as PDF and the applicant's ID only as JPEG or PNG.
func secCatalog() *gateway.Catalog {
	c := gateway.DefaultCatalog()
	it, _ := c.Item("RES-HPF-PROOF")
	m, _ := it.Material("consent_form")
	m.Types = []string{gateway.TypePDF}
	m, _ = it.Material("applicant_id")
	m.Types = []string{gateway.TypeJPEG, gateway.TypePNG}
	return c
}

func newSecEnvs(t *testing.T) *secEnvs {
	s := &secEnvs{ca: newSecCA(t, "Tongban test client CA"), rogue: newSecCA(t, "Someone else's CA")}
	var expiredSum, unexpiredSum string
	s.expired, expiredSum = api.NewToken()
	s.unexpired, unexpiredSum = api.NewToken()
	s.plain = apitest.New(t, apitest.Options{
		Catalog:     secCatalog(),
		IdleTimeout: time.Second,
		Credentials: []api.Credential{
			{Agency: "qingpu-amr", Role: gateway.RoleReviewer, TokenSHA256: expiredSum, Expires: time.Now().Add(-time.Minute)},
			{Agency: "qingpu-amr", Role: gateway.RoleReviewer, TokenSHA256: unexpiredSum, Expires: time.Now().Add(time.Hour)},
		},
		Server: func(srv *httptest.Server) {
			srv.Config.ReadHeaderTimeout = time.Second // serve.go: 10 s
			srv.Config.MaxHeaderBytes = 64 << 10       // as serve.go
		},
	})
	s.limited = apitest.New(t, apitest.Options{RateLimit: 5, RateBurst: 5})
	s.tls = apitest.New(t, apitest.Options{
		ClientCerts: map[string]gateway.Principal{"qingpu-amr": {Agency: "qingpu-amr", Role: gateway.RoleReviewer}},
		Server: func(srv *httptest.Server) {
			srv.TLS = &tls.Config{ClientCAs: s.ca.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
		},
	})
	s.other = apitest.New(t, apitest.Options{})
	return s
}

// secClient returns a client of the TLS gateway that presents certs,
// whether or not their issuer is among the CAs the server asks for.
func secClient(t *testing.T, e *apitest.Env, certs ...tls.Certificate) *http.Client {
	tr := e.Client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if len(certs) == 0 {
			return &tls.Certificate{}, nil
		}
		return &certs[0], nil
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// secDo sends a request with client (nil: e's) as who: a principal
// ("agency:role") with its token, "" for none, or else the literal
// Authorization value. A transport error is code 0 with the error as body.
func secDo(e *apitest.Env, client *http.Client, method, path, who string, body io.Reader, ct string, hdr http.Header) secResult {
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		return secResult{body: []byte(err.Error())}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if tok, ok := e.Tokens[who]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if who != "" {
		req.Header.Set("Authorization", who)
	}
	if client == nil {
		client = e.Client
	}
	resp, err := client.Do(req)
	if err != nil {
		return secResult{body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return secResult{code: resp.StatusCode, body: b, header: resp.Header}
}

type secReq func(t *testing.T, s *secEnvs, id string) secResult

// secGet requests path ({id}: the row's packet) as who.
func secGet(method, path, who string) secReq {
	return func(t *testing.T, s *secEnvs, id string) secResult {
		return secDo(s.plain, nil, method, strings.ReplaceAll(path, "{id}", id), who, nil, "", nil)
	}
}

// secPost posts a body made by body to path as who.
func secPost(path, who string, body func() (io.Reader, string)) secReq {
	return func(t *testing.T, s *secEnvs, id string) secResult {
		r, ct := body()
		return secDo(s.plain, nil, "POST", strings.ReplaceAll(path, "{id}", id), who, r, ct, nil)
	}
}

// secHPF submits a housing-fund certificate request (RES-HPF-PROOF, to
// Qingpu's window) whose consent form and applicant ID are the given bytes.
func secHPF(consent, id []byte) secReq {
	return func(t *testing.T, s *secEnvs, _ string) secResult {
		files := []apitest.File{
			{Kind: "consent_form", Filename: "同意书.pdf", Data: consent},
			{Kind: "applicant_id", Filename: "身份证.jpg", Data: id},
		}
		m := apitest.Manifest{Item: "RES-HPF-PROOF", Destination: "qingpu-window",
			Applicant: map[string]any{"type": "person", "name": "张三", "id": "11010519491231002X"}}
		for _, f := range files {
			m.Materials = append(m.Materials, apitest.MaterialSpec{Kind: f.Kind, Filename: f.Filename, SHA256: apitest.SHA256(f.Data)})
		}
		body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
		return secDo(s.plain, nil, "POST", "/v1/packets", azOrigin, body, ct, nil)
	}
}

// secContentTypes checks the materials' recorded content types of an
// accepted packet and that its destination downloads them as such.
func secContentTypes(want map[string]string) func(t *testing.T, s *secEnvs, r secResult) {
	return func(t *testing.T, s *secEnvs, r secResult) {
		p := decode[packetResp](t, r.body)
		for _, m := range p.Materials {
			if w, ok := want[m.Kind]; ok && m.ContentType != w {
				t.Errorf("%s recorded as %s, want %s", m.Kind, m.ContentType, w)
			}
		}
		for kind, w := range want {
			d := secDo(s.plain, nil, "GET", "/v1/packets/"+p.ID+"/materials/"+kind, "qingpu-window:reviewer", nil, "", nil)
			if d.code != http.StatusOK || d.header.Get("Content-Type") != w || !strings.HasPrefix(d.header.Get("Content-Disposition"), "attachment") {
				t.Errorf("download of %s: %d, Content-Type %q, Content-Disposition %q", kind, d.code, d.header.Get("Content-Type"), d.header.Get("Content-Disposition"))
			}
		}
	}
}

// secRaw dials the plain gateway, lets send write to the connection (it
// runs concurrently and should stop once a write fails) and reads the
// answer, if any, within limit. It reports whether the server closed the
// connection, and when.
func secRaw(t *testing.T, e *apitest.Env, limit time.Duration, send func(c net.Conn)) (secResult, time.Duration, bool) {
	t.Helper()
	c, err := net.Dial("tcp", e.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		send(c)
	}()
	defer func() { c.Close(); <-done }()
	c.SetReadDeadline(start.Add(limit))
	var res secResult
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res = secResult{code: resp.StatusCode, body: b, header: resp.Header}
	}
	// After the answer (or none), the server must hang up.
	_, err = io.Copy(io.Discard, br)
	closed := err == nil || !isTimeout(err)
	return res, time.Since(start), closed
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// secSlowHeaders sends a request's headers one byte every 100 ms, 10 s in
// all if the server lets it. net/http cuts it off after ReadHeaderTimeout
// with a plain-text 400 and hangs up.
func secSlowHeaders(t *testing.T, s *secEnvs, _ string) secResult {
	const head = "GET /v1/catalog HTTP/1.1\r\nHost: tongban\r\nX-Slow: 0123456789012345678901234567890123456789012345678901234567\r\n\r\n"
	res, took, closed := secRaw(t, s.plain, 8*time.Second, func(c net.Conn) {
		for i := range len(head) {
			if _, err := c.Write([]byte{head[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if !closed || took > 4*time.Second || took < 900*time.Millisecond {
		t.Errorf("slow headers: closed=%v after %v; want cut off after about ReadHeaderTimeout (1 s)", closed, took)
	}
	return res
}

// secStalledBody sends the headers and half the body of a valid
// submission, then nothing: the gateway must give up after its idle
// timeout (1 s) and hang up, recording nothing.
func secStalledBody(t *testing.T, s *secEnvs, _ string) secResult {
	m, files := apitest.CompanySetup()
	body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	b := body.Bytes()
	res, took, closed := secRaw(t, s.plain, 8*time.Second, func(c net.Conn) {
		fmt.Fprintf(c, "POST /v1/packets HTTP/1.1\r\nHost: tongban\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			s.plain.Tokens[azOrigin], ct, len(b))
		c.Write(b[:len(b)/2])
		// ... and stall until the server hangs up (secRaw closes c then).
	})
	if !closed || took > 4*time.Second || took < 900*time.Millisecond {
		t.Errorf("stalled body: closed=%v after %v; want cut off after about the idle timeout (1 s)", closed, took)
	}
	return res
}

// secBigHeader sends n bytes of extra header in headers of size each.
func secBigHeader(path, who string, n, size int) secReq {
	return func(t *testing.T, s *secEnvs, _ string) secResult {
		h := http.Header{}
		for i := 0; i*size < n; i++ {
			h.Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("a", size))
		}
		return secDo(s.plain, nil, "GET", path, who, nil, "", h)
	}
}

// secRateLimited sends a burst of 20 requests as dest to the 5/s gateway:
// some must be refused with 429, while another principal, in the same
// moment, is served. It returns the first refusal.
func secRateLimited(t *testing.T, s *secEnvs, _ string) secResult {
	var first secResult
	codes := map[int]int{}
	for range 20 {
		r := secDo(s.limited, nil, "GET", "/v1/packets?box=inbox", azDest, nil, "", nil)
		codes[r.code]++
		if r.code == http.StatusTooManyRequests && first.code == 0 {
			first = r
		}
	}
	if codes[http.StatusOK] < 5 || codes[http.StatusTooManyRequests] < 5 || codes[http.StatusOK]+codes[http.StatusTooManyRequests] != 20 {
		t.Errorf("a burst of 20 at 5/s (burst 5): %v", codes)
	}
	for _, who := range []string{azOrigin, azAuditor} {
		path := map[string]string{azOrigin: "/v1/packets?box=outbox", azAuditor: "/v1/ledger/entries?limit=1"}[who]
		if r := secDo(s.limited, nil, "GET", path, who, nil, "", nil); r.code != http.StatusOK {
			t.Errorf("%s during another principal's burst: %d %s", who, r.code, r.body)
		}
	}
	if secs, err := strconv.Atoi(first.header.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After %q", first.header.Get("Retry-After"))
	}
	time.Sleep(time.Second) // let the bucket refill for the next row
	return first
}

// secForgedFlood sends 20 forged tokens from one address: the guesses
// count against the address's rate like any anonymous request.
func secForgedFlood(t *testing.T, s *secEnvs, _ string) secResult {
	var first secResult
	codes := map[int]int{}
	time.Sleep(time.Second) // the address's bucket may be spent by earlier rows
	for i := range 20 {
		r := secDo(s.limited, nil, "GET", "/v1/packets", fmt.Sprintf("Bearer tb_guess%d", i), nil, "", nil)
		codes[r.code]++
		if r.code == http.StatusTooManyRequests && first.code == 0 {
			first = r
		}
	}
	if codes[http.StatusTooManyRequests] < 5 || codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests] != 20 {
		t.Errorf("20 forged tokens at 5/s (burst 5): %v", codes)
	}
	if r := secDo(s.limited, nil, "GET", "/v1/packets?box=inbox", azDest, nil, "", nil); r.code != http.StatusOK {
		t.Errorf("a principal during a flood of forged tokens: %d %s", r.code, r.body)
	}
	time.Sleep(time.Second)
	return first
}

// secCert requests path ({id}: the row's packet) on the TLS gateway
// presenting certs, as who.
func secCert(path, who string, certs func(s *secEnvs, t *testing.T) []tls.Certificate) secReq {
	return func(t *testing.T, s *secEnvs, id string) secResult {
		return secDo(s.tls, secClient(t, s.tls, certs(s, t)...), "GET", strings.ReplaceAll(path, "{id}", id), who, nil, "", nil)
	}
}

func secValid(cn string) func(s *secEnvs, t *testing.T) []tls.Certificate {
	return func(s *secEnvs, t *testing.T) []tls.Certificate {
		return []tls.Certificate{s.ca.issue(t, cn, time.Now().Add(time.Hour))}
	}
}

// secPolyglot returns head followed by tail.
func secPolyglot(head []byte, tail ...[]byte) []byte {
	return bytes.Join(append([][]byte{head}, tail...), nil)
}

type secCase struct {
	name  string
	env   string // "" (plain), "limited" or "tls": the gateway whose ledger must not grow on a refusal
	state string // a fresh packet from azOrigin to dest on env in this state; its id is passed to req
	dest  string // default qingpu-amr
	req   secReq
	want  int    // 0: the connection ends without an answer
	code  string // error.code, if not the status's usual one
	plain bool   // net/http answers itself, in plain text
	check func(t *testing.T, s *secEnvs, r secResult)
}

func secCases() []secCase {
	html := []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>")
	pdf := apitest.PDF(3000)
	bombPDF := func() []byte { deflated, _ := biBombs(); return secPolyglot([]byte("%PDF-1.7\n"), biBomb(1), deflated) }
	expired := func(t *testing.T, s *secEnvs, _ string) secResult {
		return secDo(s.plain, nil, "GET", "/v1/packets", "Bearer "+s.expired, nil, "", nil)
	}
	otherForeign := "wujiang-window:submitter" // neither origin nor destination
	otherWindow := "qingpu-window:reviewer"
	bigSupplementManifest := func() (io.Reader, string) {
		data := apitest.PDF(3000)
		return apitest.Multipart(apitest.SubmissionParts(
			map[string]any{"note": strings.Repeat("x", 80<<10), "materials": []apitest.MaterialSpec{{Kind: "articles", Filename: "章程.pdf"}}},
			[]apitest.File{{Kind: "articles", Filename: "章程.pdf", Data: data}}))
	}
	bomb := func(path, part, name string, b func() []byte) func() (io.Reader, string) {
		return func() (io.Reader, string) {
			if part == "license" {
				return apitest.Multipart([]apitest.Part{{Name: part, Filename: name, Data: b()}})
			}
			return apitest.Multipart(apitest.SubmissionParts(map[string]any{"materials": []apitest.MaterialSpec{{Kind: part, Filename: name}}},
				[]apitest.File{{Kind: part, Filename: name, Data: b()}}))
		}
	}
	return []secCase{
		// Forged and expired credentials.
		{name: "random token", req: secGet("GET", "/v1/packets", "Bearer tb_"+strings.Repeat("A", 43)), want: 401},
		{name: "right prefix, wrong bytes", req: func(t *testing.T, s *secEnvs, _ string) secResult {
			tok := []byte(s.plain.Tokens[azDest])
			tok[len(tok)-1] = map[bool]byte{true: 'B', false: 'A'}[tok[len(tok)-1] == 'A']
			return secDo(s.plain, nil, "GET", "/v1/packets", "Bearer "+string(tok), nil, "", nil)
		}, want: 401},
		{name: "token of another gateway", req: func(t *testing.T, s *secEnvs, _ string) secResult {
			return secDo(s.plain, nil, "GET", "/v1/packets", "Bearer "+s.other.Tokens[azDest], nil, "", nil)
		}, want: 401},
		{name: "the token's stored hash as the token", req: func(t *testing.T, s *secEnvs, _ string) secResult {
			return secDo(s.plain, nil, "GET", "/v1/packets", "Bearer "+api.HashToken(s.plain.Tokens[azDest]), nil, "", nil)
		}, want: 401},
		{name: "expired token", req: expired, want: 401, check: func(t *testing.T, _ *secEnvs, r secResult) {
			if !strings.Contains(string(r.body), "expired") {
				t.Errorf("the refusal does not say the token expired: %s", r.body)
			}
		}},
		{name: "expired token on a public route", req: func(t *testing.T, s *secEnvs, _ string) secResult {
			return secDo(s.plain, nil, "GET", "/v1/catalog", "Bearer "+s.expired, nil, "", nil)
		}, want: 401},
		{name: "token that expires later", req: func(t *testing.T, s *secEnvs, _ string) secResult {
			return secDo(s.plain, nil, "GET", "/v1/packets?box=inbox", "Bearer "+s.unexpired, nil, "", nil)
		}, want: 200},

		// Another agency's packet ids (authz_test has the full matrix).
		{name: "foreign submitter reads a packet", state: "submitted", req: secGet("GET", "/v1/packets/{id}", otherForeign), want: 403},
		{name: "foreign window downloads a material", state: "submitted", req: secGet("GET", "/v1/packets/{id}/materials/consent_form", otherWindow), want: 403},
		{name: "foreign window downloads the bundle", state: "received", req: secGet("GET", "/v1/packets/{id}/bundle", otherWindow), want: 403},
		{name: "foreign window receives", state: "submitted", req: secPost("/v1/packets/{id}/actions", otherWindow, azActionBody("receive", "")), want: 403},
		{name: "foreign submitter supplements", state: "correction_requested", req: secPost("/v1/packets/{id}/supplements", otherForeign, azSupplementBody), want: 403},
		{name: "foreign window issues the licence", state: "approved", req: secPost("/v1/packets/{id}/license", otherWindow, azLicenseBody), want: 403},
		{name: "foreign submitter reads the ledger of a packet", state: "submitted", req: secGet("GET", "/v1/ledger/entries?packet={id}", otherForeign), want: 403},

		// Path tricks: never a 500, never a file from outside storage.
		{name: "encoded traversal as packet id", req: secGet("GET", "/v1/packets/..%2F..%2Fetc%2Fpasswd", azDest), want: 404},
		{name: "dotted packet id and kind", req: secGet("GET", "/v1/packets/pk-../materials/..", azDest), want: 404},
		{name: "literal traversal after the packet", req: secGet("GET", "/v1/packets/../../../../etc/passwd", azDest), want: 404},
		{name: "encoded traversal as kind", state: "submitted", req: secGet("GET", "/v1/packets/{id}/materials/..%2F..%2F..%2Fledger", azDest), want: 404},
		{name: "encoded dots as kind", state: "submitted", req: secGet("GET", "/v1/packets/{id}/materials/%2e%2e", azDest), want: 404},
		{name: "kind ../../x", state: "submitted", req: secGet("GET", "/v1/packets/{id}/materials/../../x", azDest), want: 404},
		{name: "NUL in the packet id", req: secGet("GET", "/v1/packets/pk-%00", azDest), want: 404},
		{name: "object digest as kind", state: "submitted", req: func(t *testing.T, s *secEnvs, id string) secResult {
			code, b := s.plain.Do("GET", "/v1/packets/"+id, azDest, nil, "")
			if code != 200 {
				t.Fatalf("get: %d %s", code, b)
			}
			digest := decode[packetResp](t, b).Materials[0].SHA256
			return secDo(s.plain, nil, "GET", "/v1/packets/"+id+"/materials/"+digest, azDest, nil, "", nil)
		}, want: 404},
		{name: "traversal in an action's packet id", req: secPost("/v1/packets/..%2Fpk-x/actions", azDest, azActionBody("receive", "")), want: 404},
		{name: "traversal in the ledger's packet filter", req: secGet("GET", "/v1/ledger/entries?packet=pk-..%2F..%2Fstate", azAuditor), want: 400},

		// Zip bombs and polyglots: the head decides the type, the catalogue whether it is welcome.
		{name: "PDF with a ZIP appended where PDF is allowed", req: secHPF(secPolyglot(pdf, apitest.OFD()), apitest.JPEG(2000)), want: 201,
			check: secContentTypes(map[string]string{"consent_form": gateway.TypePDF})},
		{name: "PDF with HTML appended where PDF is allowed", req: secHPF(secPolyglot(pdf, html), apitest.JPEG(2000)), want: 201,
			check: secContentTypes(map[string]string{"consent_form": gateway.TypePDF})},
		{name: "PDF header on a 100 MiB zip bomb where PDF is allowed", req: secHPF(bombPDF(), apitest.JPEG(2000)), want: 201,
			check: secContentTypes(map[string]string{"consent_form": gateway.TypePDF})},
		{name: "JPEG with HTML appended where images are allowed", req: secHPF(pdf, secPolyglot(apitest.JPEG(2000), html)), want: 201,
			check: secContentTypes(map[string]string{"applicant_id": gateway.TypeJPEG})},
		{name: "PDF with a ZIP appended where only images are", req: secHPF(pdf, secPolyglot(pdf, apitest.OFD())), want: 415},
		{name: "PDF with HTML appended where only images are", req: secHPF(pdf, secPolyglot(pdf, html)), want: 415},
		{name: "JPEG with a PDF appended where only PDF is", req: secHPF(secPolyglot(apitest.JPEG(2000), pdf), apitest.JPEG(2000)), want: 415},
		{name: "HTML followed by a PDF", req: secHPF(secPolyglot(html, pdf), apitest.JPEG(2000)), want: 415},
		{name: "OFD where only images are", req: secHPF(pdf, apitest.OFD()), want: 415},
		{name: "zip bomb where only images are", req: secHPF(pdf, biBomb(1)), want: 415},
		{name: "zip bomb as a supplement", state: "correction_requested",
			req: secPost("/v1/packets/{id}/supplements", azOrigin, bomb("", "articles", "章程.ofd", func() []byte { return biBomb(0) })), want: 422},
		{name: "zip bomb as a licence", state: "approved",
			req: secPost("/v1/packets/{id}/license", azDest, bomb("", "license", "执照.ofd", func() []byte { return biBomb(2) })), want: 422},

		// Oversized headers and manifests.
		{name: "80 KiB of headers", req: secBigHeader("/v1/catalog", "", 80<<10, 4<<10), want: 431, plain: true},
		{name: "one header of 80 KiB", req: secBigHeader("/v1/packets", azDest, 80<<10, 80<<10), want: 431, plain: true},
		{name: "32 KiB of headers", req: secBigHeader("/v1/packets", azDest, 32<<10, 4<<10), want: 200},
		{name: "supplement manifest of 80 KiB", state: "correction_requested", req: secPost("/v1/packets/{id}/supplements", azOrigin, bigSupplementManifest), want: 413},
		{name: "chunked manifest of 8 MiB", req: func(t *testing.T, s *secEnvs, _ string) secResult {
			m, files := apitest.CompanySetup()
			m.Applicant["name"] = strings.Repeat("名", 8<<20/3)
			body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
			return secDo(s.plain, nil, "POST", "/v1/packets", azOrigin, biOpaque{body}, ct, nil)
		}, want: 413},

		// Rate limits.
		{name: "burst of 20 at 5/s", env: "limited", req: secRateLimited, want: 429, code: "rate_limited"},
		{name: "forged tokens from one address", env: "limited", req: secForgedFlood, want: 429, code: "rate_limited"},

		// Slow clients.
		{name: "slowloris headers", req: secSlowHeaders, want: 400, plain: true},
		{name: "body that stalls", req: secStalledBody, want: 408},

		// TLS client certificates.
		{name: "certificate alone", env: "tls", state: "submitted", req: secCert("/v1/packets/{id}/materials/consent_form", "", secValid("qingpu-amr")), want: 200},
		{name: "certificate alone, another agency's packet", env: "tls", state: "submitted", dest: "wujiang-window", req: secCert("/v1/packets/{id}/materials/consent_form", "", secValid("qingpu-amr")), want: 403},
		{name: "certificate and the same principal's token", env: "tls", req: secCert("/v1/packets?box=inbox", azDest, secValid("qingpu-amr")), want: 200},
		{name: "certificate and another principal's token", env: "tls", req: secCert("/v1/packets", azOrigin, secValid("qingpu-amr")), want: 401},
		{name: "certificate of an unmapped name", env: "tls", req: secCert("/v1/packets", "", secValid("qingpu-window")), want: 401},
		{name: "certificate of an unmapped name with a token", env: "tls", req: secCert("/v1/packets", azDest, secValid("wujiang-window")), want: 401},
		{name: "certificate of another CA", env: "tls", req: secCert("/v1/packets", "", func(s *secEnvs, t *testing.T) []tls.Certificate {
			return []tls.Certificate{s.rogue.issue(t, "qingpu-amr", time.Now().Add(time.Hour))}
		}), want: 0},
		{name: "expired certificate", env: "tls", req: secCert("/v1/packets", "", func(s *secEnvs, t *testing.T) []tls.Certificate {
			return []tls.Certificate{s.ca.issue(t, "qingpu-amr", time.Now().Add(-time.Hour))}
		}), want: 0},
		{name: "no certificate, a token", env: "tls", req: secCert("/v1/packets?box=outbox", azOrigin, func(*secEnvs, *testing.T) []tls.Certificate { return nil }), want: 200},
		{name: "no certificate, no token", env: "tls", req: secCert("/v1/packets", "", func(*secEnvs, *testing.T) []tls.Certificate { return nil }), want: 401},
	}
}

// TestSecurityTable sends hostile requests: forged, foreign and expired
// credentials, path tricks, bombs and polyglots, oversized headers and
// manifests, floods, slow clients and client certificates. Each row checks
// its status; every refusal must be in the JSON error format (except those
// net/http answers itself) and leave the ledger as it was; no row may get
// a 5xx or a file from outside storage.
func TestSecurityTable(t *testing.T) {
	s := newSecEnvs(t)
	azPacket(s.plain, "qingpu-amr", "received") // something in the ledger
	cases := secCases()
	t.Logf("%d rows", len(cases))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := azFor(t, s.env(c.env))
			var id string
			if c.state != "" {
				dest := c.dest
				if dest == "" {
					dest = "qingpu-amr"
				}
				id = azPacket(e, dest, c.state)
			}
			size := e.Ledger.Size()
			r := c.req(t, s, id)
			if r.code != c.want {
				t.Fatalf("status %d, want %d: %.300q", r.code, c.want, r.body)
			}
			if r.code >= 500 {
				t.Fatalf("server error")
			}
			if bytes.Contains(r.body, []byte("root:")) || bytes.Contains(r.body, []byte(s.plain.Dir)) || bytes.Contains(r.body, []byte(e.Dir)) {
				t.Errorf("the answer leaks a file or a path: %.300q", r.body)
			}
			if c.check != nil {
				c.check(t, s, r)
			}
			if r.code != 0 && r.code < 400 {
				return
			}
			if got := e.Ledger.Size(); got != size {
				t.Errorf("a refused request appended %d ledger entries", got-size)
			}
			if r.code == 0 || c.plain {
				return // net/http's own answers
			}
			want := c.code
			if want == "" {
				want = map[int]string{400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "not_found", 408: "request_timeout", 413: "too_large", 415: "unsupported_type", 422: "invalid"}[r.code]
			}
			if got := azErrorCode(r.body); got != want {
				t.Errorf("error code %q, want %q: %.300s", got, want, r.body)
			}
		})
	}
	// Nothing above broke the ledger.
	for name, e := range map[string]*apitest.Env{"plain": s.plain, "limited": s.limited, "tls": s.tls} {
		code, b := e.Do("POST", "/v1/ledger/verify", azAuditor, nil, "")
		var rep struct{ OK bool }
		if code != http.StatusOK || json.Unmarshal(b, &rep) != nil || !rep.OK {
			t.Errorf("%s: ledger verify: %d %s", name, code, b)
		}
	}
}
