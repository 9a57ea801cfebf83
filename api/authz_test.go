package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"tongban/api/apitest"
)

// Principals of the authorisation tests.
const (
	azOrigin  = "jiashan-window:submitter" // sends the test packets
	azDest    = "qingpu-amr:reviewer"      // receives them
	azOther   = "wujiang-window:reviewer"  // another agency
	azAuditor = "yrd-audit:auditor"
	azForged  = "Bearer tb_xxx" // a well-formed but unknown token
)

// azCallers are the columns of the authorisation table.
var azCallers = []struct{ name, who string }{
	{"no-token", ""},
	{"bad-token", azForged},
	{"origin-submitter", azOrigin},
	{"dest-reviewer", azDest},
	{"other-agency-reviewer", azOther},
	{"auditor", azAuditor},
}

// azFor returns a copy of e whose helpers fail t, so that a subtest's
// Fatal stops the subtest and not its parent.
func azFor(t *testing.T, e *apitest.Env) *apitest.Env {
	c := *e
	c.T = t
	return &c
}

// azSteps are the requests that bring a fresh packet into a state.
var azSteps = map[string][]string{
	"submitted":            nil,
	"received":             {"receive"},
	"correction_requested": {"receive", "return"},
	"approved":             {"receive", "approve"},
	"rejected":             {"receive", "reject"},
	"license_issued":       {"receive", "approve", "license"},
	"delivered":            {"receive", "approve", "license", "deliver"},
}

// azPacket submits a fresh ENT-SETUP packet from Jiashan's window to
// destination (a reviewer agency) and moves it to state.
func azPacket(e *apitest.Env, destination, state string) string {
	e.T.Helper()
	steps, ok := azSteps[state]
	if !ok {
		e.T.Fatalf("no way to state %q", state)
	}
	m, files := apitest.CompanySetup()
	m.Destination = destination
	id := e.MustSubmit(azOrigin, m, files)
	reviewer := destination + ":reviewer"
	for _, s := range steps {
		switch s {
		case "license":
			body, ct := azLicenseBody()
			if code, b := e.Do("POST", "/v1/packets/"+id+"/license", reviewer, body, ct); code != http.StatusOK {
				e.T.Fatalf("licence: %d %s", code, b)
			}
		case "deliver":
			e.Act(azOrigin, id, s, "", http.StatusOK)
		default:
			e.Act(reviewer, id, s, "材料不全，请补正", http.StatusOK)
		}
	}
	return id
}

func azLicenseBody() (io.Reader, string) {
	return apitest.Multipart([]apitest.Part{{Name: "license", Filename: "营业执照.ofd", Data: apitest.OFD()}})
}

func azSupplementBody() (io.Reader, string) {
	data := apitest.PDF(3000)
	return apitest.Multipart(apitest.SubmissionParts(
		map[string]any{"materials": []apitest.MaterialSpec{{Kind: "articles", Filename: "章程.pdf", SHA256: apitest.SHA256(data)}}},
		[]apitest.File{{Kind: "articles", Filename: "章程.pdf", Data: data}}))
}

func azSubmitBody() (io.Reader, string) {
	m, files := apitest.CompanySetup()
	return apitest.Multipart(apitest.SubmissionParts(m, files))
}

func azActionBody(action, reason string) func() (io.Reader, string) {
	return func() (io.Reader, string) {
		b, _ := json.Marshal(map[string]string{"action": action, "reason": reason})
		return bytes.NewReader(b), "application/json"
	}
}

// azErrorCode returns error.code of a JSON error body, or "" if the body
// is not in the error format.
func azErrorCode(body []byte) string {
	var v struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error.Message == "" {
		return ""
	}
	return v.Error.Code
}

// azRoute is one row group of the table: a route, the packet state it
// needs (a fresh packet per row; "" for none) and the status expected for
// each of azCallers.
type azRoute struct {
	route  string // as in /openapi.json: "METHOD /path/{param}"
	label  string // tells rows of the same route apart
	method string
	path   string // {id} is replaced by the packet's id
	state  string
	body   func() (io.Reader, string)
	want   [6]int
}

const (
	ok200 = http.StatusOK
	ok201 = http.StatusCreated
	s401  = http.StatusUnauthorized
	s403  = http.StatusForbidden
)

var (
	public      = [6]int{ok200, s401, ok200, ok200, ok200, ok200}
	auditorOnly = [6]int{s401, s401, s403, s403, s403, ok200}
	destOnly    = [6]int{s401, s401, s403, ok200, s403, s403}
	originOnly  = [6]int{s401, s401, ok200, s403, s403, s403}
)

func azTable() []azRoute {
	act := func(action, reason, state string) azRoute {
		want := destOnly
		if action == "deliver" {
			want = originOnly
		}
		return azRoute{route: "POST /v1/packets/{id}/actions", label: action, method: "POST", path: "/v1/packets/{id}/actions",
			state: state, body: azActionBody(action, reason), want: want}
	}
	return []azRoute{
		{route: "GET /v1/catalog", method: "GET", path: "/v1/catalog", want: public},
		{route: "POST /v1/packets", method: "POST", path: "/v1/packets", body: azSubmitBody, want: [6]int{s401, s401, ok201, s403, s403, s403}},
		{route: "GET /v1/packets", label: "inbox", method: "GET", path: "/v1/packets?box=inbox", want: [6]int{s401, s401, ok200, ok200, ok200, s403}},
		{route: "GET /v1/packets", label: "outbox", method: "GET", path: "/v1/packets?box=outbox", want: [6]int{s401, s401, ok200, ok200, ok200, s403}},
		{route: "GET /v1/packets", label: "all", method: "GET", path: "/v1/packets?box=all", want: auditorOnly},
		{route: "GET /v1/packets/counts", label: "inbox", method: "GET", path: "/v1/packets/counts?box=inbox", want: [6]int{s401, s401, ok200, ok200, ok200, s403}},
		{route: "GET /v1/packets/counts", label: "all", method: "GET", path: "/v1/packets/counts?box=all", want: auditorOnly},
		{route: "GET /v1/packets/{id}", method: "GET", path: "/v1/packets/{id}", state: "submitted", want: [6]int{s401, s401, ok200, ok200, s403, ok200}},
		{route: "GET /v1/packets/{id}/history", method: "GET", path: "/v1/packets/{id}/history", state: "submitted", want: [6]int{s401, s401, ok200, ok200, s403, ok200}},
		{route: "GET /v1/packets/{id}/materials/{kind}", method: "GET", path: "/v1/packets/{id}/materials/application_form", state: "submitted", want: destOnly},
		{route: "GET /v1/packets/{id}/bundle", method: "GET", path: "/v1/packets/{id}/bundle", state: "received", want: [6]int{s401, s401, s403, ok200, s403, ok200}},
		{route: "GET /v1/packets/{id}/receipts/{seq}", method: "GET", path: "/v1/packets/{id}/receipts/{seq}", state: "received", want: [6]int{s401, s401, ok200, ok200, s403, ok200}},
		act("receive", "", "submitted"),
		act("return", "缺少股东签字页", "received"),
		act("approve", "", "received"),
		act("reject", "不符合设立条件", "received"),
		act("deliver", "", "license_issued"),
		{route: "POST /v1/packets/{id}/supplements", method: "POST", path: "/v1/packets/{id}/supplements", state: "correction_requested", body: azSupplementBody, want: originOnly},
		{route: "POST /v1/packets/{id}/license", method: "POST", path: "/v1/packets/{id}/license", state: "approved", body: azLicenseBody, want: destOnly},
		{route: "GET /v1/ledger/key", method: "GET", path: "/v1/ledger/key", want: public},
		{route: "GET /v1/ledger/checkpoint", method: "GET", path: "/v1/ledger/checkpoint", want: public},
		// The tiles: every authenticated principal (no personal data in the ledger).
		{route: "GET /v1/ledger/tlog/checkpoint", method: "GET", path: "/v1/ledger/tlog/checkpoint", want: [6]int{s401, s401, ok200, ok200, ok200, ok200}},
		{route: "GET /v1/ledger/tlog/tile/*tile", label: "hashes", method: "GET", path: "/v1/ledger/tlog/tile/0/000.p/2", want: [6]int{s401, s401, ok200, ok200, ok200, ok200}},
		{route: "GET /v1/ledger/tlog/tile/*tile", label: "entries", method: "GET", path: "/v1/ledger/tlog/tile/entries/000.p/2", want: [6]int{s401, s401, ok200, ok200, ok200, ok200}},
		{route: "GET /v1/ledger/entries/{seq}", method: "GET", path: "/v1/ledger/entries/0", want: auditorOnly},
		{route: "GET /v1/ledger/entries", label: "packet", method: "GET", path: "/v1/ledger/entries?packet={id}", state: "submitted", want: auditorOnly},
		{route: "GET /v1/ledger/entries", label: "range", method: "GET", path: "/v1/ledger/entries?from=0&limit=3", want: auditorOnly},
		{route: "GET /v1/ledger/proofs/inclusion", method: "GET", path: "/v1/ledger/proofs/inclusion?seq=0&size=2", want: auditorOnly},
		{route: "GET /v1/ledger/proofs/consistency", method: "GET", path: "/v1/ledger/proofs/consistency?from=1&to=2", want: auditorOnly},
		{route: "POST /v1/ledger/verify", method: "POST", path: "/v1/ledger/verify", want: auditorOnly},
		{route: "GET /healthz", method: "GET", path: "/healthz", want: public},
		{route: "GET /readyz", method: "GET", path: "/readyz", want: public},
		{route: "GET /metrics", method: "GET", path: "/metrics", want: public},
		{route: "GET /openapi.json", method: "GET", path: "/openapi.json", want: public},
	}
}

// azDo sends a request as who: a principal ("agency:role") with its
// token, "" for no Authorization header, or else the header's literal value.
func azDo(t *testing.T, e *apitest.Env, method, path, who string, body io.Reader, ct string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if tok, ok := e.Tokens[who]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if who != "" {
		req.Header.Set("Authorization", who)
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
	return resp.StatusCode, b
}

// azCheck sends one request as who and checks its status and, for a
// refusal, the error format and that the ledger did not grow.
func azCheck(t *testing.T, e *apitest.Env, method, path, who string, body func() (io.Reader, string), want int) {
	t.Helper()
	var r io.Reader
	var ct string
	if body != nil {
		r, ct = body()
	}
	before := e.Ledger.Size()
	code, b := azDo(t, e, method, path, who, r, ct)
	if code != want {
		t.Fatalf("%s %s as %q: %d %.300q, want %d", method, path, who, code, b, want)
	}
	if code < 400 {
		return
	}
	if after := e.Ledger.Size(); after != before {
		t.Errorf("a refused request (%d) appended %d ledger entries", code, after-before)
	}
	wantCode := map[int]string{401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}[code]
	if got := azErrorCode(b); got != wantCode {
		t.Errorf("error body %.300s: code %q, want %q", b, got, wantCode)
	}
}

// TestAuthzTable checks every route of the route table against every kind
// of caller: public routes answer anyone without a token, a bad token is
// refused everywhere, a protected route without a token is 401, the wrong
// agency or role is 403. Each row that needs a packet gets a fresh one in
// the right state, so a 2xx proves the caller was allowed to do it.
func TestAuthzTable(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	// Two entries at least, for the proofs and entries/0.
	azPacket(e, "qingpu-amr", "received")

	table := azTable()
	rows := 0
	for _, rt := range table {
		name := rt.method + " " + rt.path
		if rt.label != "" {
			name = rt.route + " " + rt.label
		}
		for i, c := range azCallers {
			rows++
			t.Run(name+"/"+c.name, func(t *testing.T) {
				se := azFor(t, e)
				path := rt.path
				if rt.state != "" {
					id := azPacket(se, "qingpu-amr", rt.state)
					path = strings.ReplaceAll(path, "{id}", id)
					if strings.Contains(path, "{seq}") { // the packet's submission
						_, b := se.Do("GET", "/v1/packets/"+id, "yrd-audit:auditor", nil, "")
						var p struct{ Seq int64 }
						json.Unmarshal(b, &p)
						path = strings.ReplaceAll(path, "{seq}", fmt.Sprint(p.Seq))
					}
				}
				azCheck(t, se, rt.method, path, c.who, rt.body, rt.want[i])
			})
		}
	}
	t.Logf("%d rows", rows)

	// The table covers the route table: /openapi.json is built from it.
	code, body := e.Do("GET", "/openapi.json", "", nil, "")
	if code != http.StatusOK {
		t.Fatalf("openapi: %d", code)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var served, tested []string
	for p, ops := range doc.Paths {
		for m := range ops {
			served = append(served, strings.ToUpper(m)+" "+p)
		}
	}
	for _, rt := range table {
		if !slices.Contains(tested, rt.route) {
			tested = append(tested, rt.route)
		}
	}
	slices.Sort(served)
	slices.Sort(tested)
	if !slices.Equal(served, tested) {
		t.Errorf("routes served:\n%s\nroutes in the authorisation table:\n%s", strings.Join(served, "\n"), strings.Join(tested, "\n"))
	}
}

// TestAuthzRoleAndPrecedence covers what the caller columns above cannot:
// the right agency in the wrong role, which check wins when several fail,
// and malformed Authorization headers.
func TestAuthzRoleAndPrecedence(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	const (
		windowSubmitter = "qingpu-window:submitter" // a destination window, but in the submitter role
		windowReviewer  = "qingpu-window:reviewer"
		originReviewer  = "jiashan-window:reviewer" // the origin agency, in the reviewer role
	)
	rows := []struct {
		name   string
		dest   string // destination agency of the packet
		state  string
		method string
		path   string
		who    string
		body   func() (io.Reader, string)
		want   int
	}{
		// The destination agency's submitter is not its reviewer.
		{"destination submitter downloads a material", "qingpu-window", "submitted", "GET", "/v1/packets/{id}/materials/consent_form", windowSubmitter, nil, s403},
		{"destination submitter downloads the bundle", "qingpu-window", "submitted", "GET", "/v1/packets/{id}/bundle", windowSubmitter, nil, s403},
		{"destination submitter receives", "qingpu-window", "submitted", "POST", "/v1/packets/{id}/actions", windowSubmitter, azActionBody("receive", ""), s403},
		{"destination submitter issues the licence", "qingpu-window", "approved", "POST", "/v1/packets/{id}/license", windowSubmitter, azLicenseBody, s403},
		{"destination window reviewer downloads a material", "qingpu-window", "submitted", "GET", "/v1/packets/{id}/materials/consent_form", windowReviewer, nil, ok200},
		{"destination window reviewer receives", "qingpu-window", "submitted", "POST", "/v1/packets/{id}/actions", windowReviewer, azActionBody("receive", ""), ok200},
		// The origin agency's reviewer is not its submitter.
		{"origin reviewer delivers", "qingpu-amr", "license_issued", "POST", "/v1/packets/{id}/actions", originReviewer, azActionBody("deliver", ""), s403},
		{"origin reviewer supplements", "qingpu-amr", "correction_requested", "POST", "/v1/packets/{id}/supplements", originReviewer, azSupplementBody, s403},
		{"origin reviewer submits", "qingpu-amr", "", "POST", "/v1/packets", originReviewer, azSubmitBody, s403},
		// Authorisation is decided before the state: a stranger learns nothing of it.
		{"other agency approves a submitted packet", "qingpu-amr", "submitted", "POST", "/v1/packets/{id}/actions", azOther, azActionBody("approve", ""), s403},
		{"other agency supplements a received packet", "qingpu-amr", "received", "POST", "/v1/packets/{id}/supplements", azOther, azSupplementBody, s403},
		{"auditor issues a licence on a received packet", "qingpu-amr", "received", "POST", "/v1/packets/{id}/license", azAuditor, azLicenseBody, s403},
		{"destination approves a submitted packet", "qingpu-amr", "submitted", "POST", "/v1/packets/{id}/actions", azDest, azActionBody("approve", ""), http.StatusConflict},
		{"origin delivers a submitted packet", "qingpu-amr", "submitted", "POST", "/v1/packets/{id}/actions", azOrigin, azActionBody("deliver", ""), http.StatusConflict},
		{"no token on an unknown packet", "qingpu-amr", "", "GET", "/v1/packets/pk-aaaaaaaaaaaaaaaaaaaaaaaaaa", "", nil, s401},
		{"bad token on an unknown packet", "qingpu-amr", "", "GET", "/v1/packets/pk-aaaaaaaaaaaaaaaaaaaaaaaaaa", azForged, nil, s401},
		{"reviewer on an unknown packet", "qingpu-amr", "", "GET", "/v1/packets/pk-aaaaaaaaaaaaaaaaaaaaaaaaaa", azDest, nil, http.StatusNotFound},
		{"bad token on an unknown route", "qingpu-amr", "", "GET", "/v1/nothing", azForged, nil, s401},
		// Malformed Authorization headers are bad tokens, even on public routes.
		{"basic scheme", "qingpu-amr", "", "GET", "/v1/catalog", "Basic YWRtaW46YWRtaW4=", nil, s401},
		{"bearer without a token", "qingpu-amr", "", "GET", "/v1/catalog", "Bearer ", nil, s401},
		{"bearer of spaces", "qingpu-amr", "", "GET", "/v1/packets", "Bearer    ", nil, s401},
		{"oversized token", "qingpu-amr", "", "GET", "/v1/catalog", "Bearer tb_" + strings.Repeat("x", 600), nil, s401},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			se := azFor(t, e)
			path := r.path
			if r.state != "" {
				path = strings.ReplaceAll(path, "{id}", azPacket(se, r.dest, r.state))
			}
			azCheck(t, se, r.method, path, r.who, r.body, r.want)
		})
	}

	// The scheme is case-insensitive (RFC 9110), the token is not.
	t.Run("lowercase bearer scheme", func(t *testing.T) {
		azCheck(t, azFor(t, e), "GET", "/v1/packets", "bearer "+e.Tokens[azOrigin], nil, ok200)
	})
	t.Run("token in another case", func(t *testing.T) {
		azCheck(t, azFor(t, e), "GET", "/v1/packets", "Bearer "+strings.ToUpper(e.Tokens[azOrigin]), nil, s401)
	})
	t.Run("refusals are counted", func(t *testing.T) {
		_, b := e.Do("GET", "/metrics", "", nil, "")
		if !strings.Contains(string(b), "tongban_auth_failures_total ") || strings.Contains(string(b), "tongban_auth_failures_total 0\n") {
			t.Errorf("auth failures not counted:\n%s", b)
		}
	})
}
