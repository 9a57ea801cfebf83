package console_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"tongban/api"
	"tongban/api/apitest"
	"tongban/api/console"
	"tongban/gateway"
)

// client is a browser-less console user with its own cookies.
type client struct {
	t       *testing.T
	base    string
	c       *http.Client
	csrf    string
	session *http.Cookie // as set at sign-in
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newClient(t *testing.T, base string, hc *http.Client) *client {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: hc.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &client{t: t, base: base, c: c}
}

func (c *client) do(method, path string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	c.t.Helper()
	r, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := c.c.Do(r)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	resp, body := c.do("GET", path, nil, nil)
	return resp.StatusCode, body
}

func (c *client) post(path string, v url.Values, hdr map[string]string) (int, string) {
	c.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, x := range hdr {
		h[k] = x
	}
	resp, body := c.do("POST", path, strings.NewReader(v.Encode()), h)
	return resp.StatusCode, body
}

// signIn signs in with a token and returns the client, checking the cookie.
func signIn(t *testing.T, base string, hc *http.Client, token string) *client {
	t.Helper()
	c := newClient(t, base, hc)
	if code, _ := c.get("/console/login"); code != 200 {
		t.Fatalf("login page: %d", code)
	}
	resp, body := c.do("POST", "/console/login", strings.NewReader(url.Values{"csrf": {c.csrf}, "token": {token}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "tongban_session" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/console/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/", sess)
	}
	if strings.HasPrefix(base, "https:") != sess.Secure {
		t.Fatalf("session cookie Secure=%v on %s", sess.Secure, base)
	}
	c.get("/console/key") // picks up the session's CSRF token
	c.session = sess
	return c
}

func TestRedirectAndSignIn(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	c := newClient(t, e.URL, e.Client)
	resp, _ := c.do("GET", "/", nil, nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("GET /: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = c.do("GET", "/console/", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("GET /console/ signed out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A wrong token is refused; no session cookie.
	c.get("/console/login")
	code, body := c.post("/console/login", url.Values{"csrf": {c.csrf}, "token": {"tb_wrong"}}, nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "令牌无效") {
		t.Fatalf("wrong token: %d", code)
	}
	// The sign-in form itself needs its CSRF token.
	code, _ = c.post("/console/login", url.Values{"token": {e.Tokens["jiashan-window:submitter"]}}, nil)
	if code != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF token: %d, want 403", code)
	}
	// Every demo principal can sign in and lands on its page.
	want := map[string]string{"submitter": "/console/outbox", "reviewer": "/console/inbox", "auditor": "/console/search"}
	for who, tok := range e.Tokens {
		u := signIn(t, e.URL, e.Client, tok)
		resp, _ := u.do("GET", "/console/", nil, nil)
		role := who[strings.Index(who, ":")+1:]
		if loc := resp.Header.Get("Location"); loc != want[role] {
			t.Errorf("%s lands on %q, want %q", who, loc, want[role])
		}
		if code, body := u.get(want[role]); code != 200 || !strings.Contains(body, `id="who"`) {
			t.Errorf("%s: %s answers %d", who, want[role], code)
		}
	}
}

// TestStatusThroughAPIServer: answers that do not set a status explicitly
// (static files, downloads) are 200 as mounted in the API server.
func TestStatusThroughAPIServer(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	c := signIn(t, e.URL, e.Client, e.Tokens["yrd-audit:auditor"])
	for _, path := range []string{"/console/static/verifier.wasm", "/console/static/console.js", "/console/search.csv"} {
		if code, _ := c.get(path); code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	resp, _ := c.do("GET", "/console/static/verifier.wasm", nil, nil)
	if resp.Header.Get("Content-Type") != "application/wasm" || resp.Header.Get("ETag") == "" {
		t.Errorf("verifier served as %q with ETag %q", resp.Header.Get("Content-Type"), resp.Header.Get("ETag"))
	}
	if again, _ := c.do("GET", "/console/static/verifier.wasm", nil, map[string]string{"If-None-Match": resp.Header.Get("ETag")}); again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d", again.StatusCode)
	}
	if code, body := c.get("/console/nope"); code != http.StatusNotFound || strings.Contains(body, "no such route") {
		t.Errorf("an unknown console page: %d %s", code, body)
	}
	if code, body := c.get("/v1/nope"); code != http.StatusNotFound || !strings.Contains(body, "no such route") {
		t.Errorf("an unknown API route: %d %s", code, body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	c := signIn(t, e.URL, e.Client, e.Tokens["qingpu-amr:reviewer"])
	for _, path := range []string{"/console/login", "/console/inbox", "/console/key"} {
		resp, _ := c.do("GET", path, nil, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", path, resp.Header.Get("X-Frame-Options"))
		}
	}
}

func TestSecureCookieUnderTLS(t *testing.T) {
	e := apitest.New(t, apitest.Options{Server: func(s *httptest.Server) { s.TLS = &tls.Config{} }})
	signIn(t, e.URL, e.Client, e.Tokens["yrd-audit:auditor"]) // checks Secure
}

// TestCSRF: an action needs the session's token and this origin.
func TestCSRF(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	c := signIn(t, e.URL, e.Client, e.Tokens["qingpu-amr:reviewer"])
	path := "/console/packets/" + id + "/act"
	for name, tc := range map[string]struct {
		v   url.Values
		hdr map[string]string
	}{
		"no token":         {url.Values{"action": {"receive"}}, nil},
		"wrong token":      {url.Values{"action": {"receive"}, "csrf": {"x" + c.csrf}}, nil},
		"other origin":     {url.Values{"action": {"receive"}, "csrf": {c.csrf}}, map[string]string{"Origin": "http://evil.example"}},
		"cross-site fetch": {url.Values{"action": {"receive"}, "csrf": {c.csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		if code, _ := c.post(path, tc.v, tc.hdr); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	if p := get(t, e, id); p.Status != gateway.StatusSubmitted {
		t.Fatalf("refused posts changed the packet: %s", p.Status)
	}
	code, _ := c.post(path, url.Values{"action": {"receive"}, "csrf": {c.csrf}}, map[string]string{"Origin": e.URL})
	if code != http.StatusSeeOther || get(t, e, id).Status != gateway.StatusReceived {
		t.Fatalf("a proper post: %d, status %s", code, get(t, e, id).Status)
	}
	// Another session's token does not work in this one.
	other := signIn(t, e.URL, e.Client, e.Tokens["qingpu-amr:reviewer"])
	if code, _ := c.post(path, url.Values{"action": {"approve"}, "csrf": {other.csrf}}, nil); code != http.StatusForbidden {
		t.Fatalf("another session's token: %d", code)
	}
}

func get(t *testing.T, e *apitest.Env, id string) gateway.Packet {
	t.Helper()
	code, b := e.Do("GET", "/v1/packets/"+id, "yrd-audit:auditor", nil, "")
	var p gateway.Packet
	if code != 200 || json.Unmarshal(b, &p) != nil {
		t.Fatalf("GET packet: %d %s", code, b)
	}
	return p
}

const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`

// TestEscaping: an applicant name and a reason with markup render as text.
func TestEscaping(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	m.Applicant["name"] = "青嘉" + hostile
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	e.Act("qingpu-amr:reviewer", id, "receive", "", 200)
	e.Act("qingpu-amr:reviewer", id, "return", "请补正"+hostile, 200)
	for _, who := range []string{"jiashan-window:submitter", "qingpu-amr:reviewer"} {
		c := signIn(t, e.URL, e.Client, e.Tokens[who])
		code, body := c.get("/console/packets/" + id)
		if code != 200 {
			t.Fatalf("%s: %d", who, code)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Fatalf("%s: markup from data reached the page unescaped", who)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;") {
			t.Fatalf("%s: the hostile text is not shown escaped", who)
		}
	}
}

// TestIsolation: one agency's session cannot see another's packets.
func TestIsolation(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	for _, who := range []string{"wujiang-medicare:reviewer", "wujiang-window:submitter", "qingpu-window:reviewer"} {
		c := signIn(t, e.URL, e.Client, e.Tokens[who])
		for _, path := range []string{"/console/packets/" + id, "/console/packets/" + id + "/bundle", "/console/packets/" + id + "/materials/articles"} {
			if code, body := c.get(path); code != http.StatusForbidden || strings.Contains(body, "青嘉") {
				t.Errorf("%s GET %s: %d", who, path, code)
			}
		}
		for _, box := range []string{"/console/inbox", "/console/outbox"} {
			if _, body := c.get(box); strings.Contains(body, id) {
				t.Errorf("%s sees %s in %s", who, id, box)
			}
		}
		if code, _ := c.post("/console/packets/"+id+"/act", url.Values{"action": {"receive"}, "csrf": {c.csrf}}, nil); code != http.StatusForbidden {
			t.Errorf("%s acts on another's packet: %d", who, code)
		}
		// The auditor pages are for auditors.
		if code, _ := c.get("/console/search"); code != http.StatusForbidden {
			t.Errorf("%s searches: %d", who, code)
		}
	}
	if get(t, e, id).Status != gateway.StatusSubmitted {
		t.Fatal("the packet changed")
	}
}

func TestSignOut(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	c := signIn(t, e.URL, e.Client, e.Tokens["jiashan-window:submitter"])
	u, _ := url.Parse(e.URL + "/console/")
	old := c.c.Jar.Cookies(u)
	if code, _ := c.post("/console/logout", url.Values{"csrf": {c.csrf}}, nil); code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", code)
	}
	if code, _ := c.get("/console/outbox"); code != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", code)
	}
	// The old cookie, replayed, is dead on the server too.
	c.c.Jar.SetCookies(u, old)
	resp, _ := c.do("GET", "/console/outbox", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login") {
		t.Fatalf("replayed cookie after sign-out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestSessionExpiry runs the console on its own with a clock the test moves.
func TestSessionExpiry(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cons, err := console.New(console.Config{Gateway: e.Gateway, SessionTTL: time.Hour, Now: func() time.Time { return now },
		SignIn: func(tok string) (gateway.Principal, time.Time, error) {
			if tok == "good" {
				return gateway.Principal{Agency: "jiashan-window", Role: gateway.RoleSubmitter}, time.Time{}, nil
			}
			return gateway.Principal{}, time.Time{}, gateway.ErrForbidden
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cons)
	defer srv.Close()
	c := signIn(t, srv.URL, srv.Client(), "good")
	if code, _ := c.get("/console/outbox"); code != 200 {
		t.Fatalf("fresh session: %d", code)
	}
	now = now.Add(59 * time.Minute)
	if code, _ := c.get("/console/outbox"); code != 200 {
		t.Fatalf("session within its hour: %d", code)
	}
	now = now.Add(2 * time.Minute)
	resp, _ := c.do("GET", "/console/outbox", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login?expired=1" {
		t.Fatalf("expired session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := c.post("/console/logout", url.Values{"csrf": {c.csrf}}, nil); code != http.StatusUnauthorized {
		t.Fatalf("post with an expired session: %d", code)
	}
}

// TestSessionEndsWithToken: a session made from a token that expires
// before the console's TTL ends with the token.
func TestSessionEndsWithToken(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cons, err := console.New(console.Config{Gateway: e.Gateway, SessionTTL: 8 * time.Hour, Now: func() time.Time { return now },
		SignIn: func(tok string) (gateway.Principal, time.Time, error) {
			return gateway.Principal{Agency: "jiashan-window", Role: gateway.RoleSubmitter}, now.Add(10 * time.Minute), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cons)
	defer srv.Close()
	c := signIn(t, srv.URL, srv.Client(), "short-lived")
	if c.session.MaxAge != 600 {
		t.Errorf("the session cookie lasts %d s, want the token's 600", c.session.MaxAge)
	}
	now = now.Add(9 * time.Minute)
	if code, _ := c.get("/console/outbox"); code != 200 {
		t.Fatalf("session before the token expires: %d", code)
	}
	now = now.Add(2 * time.Minute)
	resp, _ := c.do("GET", "/console/outbox", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login?expired=1" {
		t.Fatalf("session after the token expired: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestSessionTTLFromTokenOverAPI: the API hands the console its tokens'
// expiry, so a short-lived token makes a short session and a token
// without expiry one of the console's TTL.
func TestSessionTTLFromTokenOverAPI(t *testing.T) {
	tok, sum := api.NewToken()
	e := apitest.New(t, apitest.Options{Credentials: []api.Credential{{Agency: "qingpu-amr", Role: gateway.RoleReviewer, TokenSHA256: sum,
		Expires: time.Now().Add(10 * time.Minute)}}})
	short := signIn(t, e.URL, e.Client, tok)
	if age := short.session.MaxAge; age <= 0 || age > 600 {
		t.Errorf("a session of a token that expires in 10 minutes: cookie Max-Age %d s", age)
	}
	if code, _ := short.get("/console/inbox"); code != 200 {
		t.Fatalf("the short session: %d", code)
	}
	long := signIn(t, e.URL, e.Client, e.Tokens["qingpu-amr:reviewer"])
	if age := long.session.MaxAge; age < 8*3600-60 || age > 8*3600 {
		t.Errorf("a session of a token without expiry: cookie Max-Age %d s, want 8 hours", age)
	}
}
