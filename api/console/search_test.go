package console_test

import (
	"encoding/csv"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"tongban/api/apitest"
	"tongban/api/console"
	"tongban/gateway"
	"tongban/gateway/packetcsv"
	"tongban/gateway/workday"
)

var (
	rowRE  = regexp.MustCompile(`<tr class="[^"]*" data-id="([^"]+)"`)
	nextRE = regexp.MustCompile(`id="next-page" href="([^"]+)"`)
	csvRE  = regexp.MustCompile(`id="csv" href="([^"]+)"`)
)

// searchAll follows a search's "next page" links from path and returns
// the packet ids of every page, and how many pages there were.
func searchAll(t *testing.T, c *client, path string) ([]string, int) {
	t.Helper()
	var ids []string
	for pages := 1; ; pages++ {
		code, body := c.get(path)
		if code != 200 {
			t.Fatalf("GET %s: %d %.300s", path, code, body)
		}
		for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		m := nextRE.FindStringSubmatch(body)
		if m == nil {
			return ids, pages
		}
		if pages == 100 {
			t.Fatalf("GET %s: more than 100 pages", path)
		}
		path = html.UnescapeString(m[1])
	}
}

// csvIDs returns the ids of a CSV export, checking its header.
func csvIDs(t *testing.T, body string) []string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
	if err != nil || len(rows) == 0 || !slices.Equal(rows[0], packetcsv.Header) {
		t.Fatalf("CSV export: %v\n%s", err, body)
	}
	var ids []string
	for _, r := range rows[1:] {
		ids = append(ids, r[0])
	}
	return ids
}

// TestSearchPages: the auditor's search reads the gateway's listing with
// its filters, a page at a time with a link to the next page; the CSV
// export has every matching packet, read in pages, and its link keeps
// the filter.
func TestSearchPages(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	var all, received []string
	for i := range 5 {
		id := e.MustSubmit("jiashan-window:submitter", m, files)
		all = append(all, id)
		if i%2 == 1 {
			e.Act("qingpu-amr:reviewer", id, "receive", "", 200)
			received = append(received, id)
		}
	}
	submitted := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return slices.Contains(received, id) })
	cons, err := console.New(console.Config{Gateway: e.Gateway, PageSize: 2,
		SignIn: func(string) (gateway.Principal, time.Time, error) {
			return gateway.Principal{Agency: "yrd-audit", Role: gateway.RoleAuditor}, time.Time{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cons)
	defer srv.Close()
	c := signIn(t, srv.URL, srv.Client(), "auditor")

	today := time.Now().In(workday.Shanghai).Format("2006-01-02")
	yesterday := time.Now().In(workday.Shanghai).AddDate(0, 0, -1).Format("2006-01-02")
	for _, tc := range []struct {
		query string
		want  []string
		pages int
	}{
		{"", all, 3},
		{"status=submitted", submitted, 2},
		{"status=received&item=ENT-SETUP&origin=jiashan-window&destination=qingpu-amr", received, 1},
		{"origin=wujiang-window", nil, 1},
		{"destination=wujiang-medicare", nil, 1},
		{"from=" + today + "&to=" + today, all, 3},
		{"to=" + yesterday, nil, 1},
		{"from=" + yesterday + "&status=submitted", submitted, 2},
		{"overdue=1", nil, 1},
	} {
		ids, pages := searchAll(t, c, "/console/search?"+tc.query)
		if !slices.Equal(ids, tc.want) || pages != tc.pages {
			t.Errorf("search %q: %d pages of %v, want %d pages of %v", tc.query, pages, ids, tc.pages, tc.want)
		}
		_, body := c.get("/console/search?" + tc.query)
		link := csvRE.FindStringSubmatch(body)
		if link == nil {
			t.Fatalf("search %q: no CSV link", tc.query)
		}
		code, out := c.get(html.UnescapeString(link[1]))
		if got := csvIDs(t, out); code != 200 || !slices.Equal(got, tc.want) {
			t.Errorf("CSV of %q: %d %v, want %v", tc.query, code, got, tc.want)
		}
	}
	// A later page offers the way back to the first.
	_, body := c.get("/console/search")
	_, second := c.get(html.UnescapeString(nextRE.FindStringSubmatch(body)[1]))
	if !strings.Contains(second, `id="first-page" href="/console/search?"`) || strings.Contains(body, `id="first-page"`) {
		t.Error("the second page has no link to the first, or the first has one")
	}
	// Bad input is refused with the field named, not ignored.
	for query, field := range map[string]string{"from=2026-13-01": "from", "to=yesterday": "to", "status=lost": "status",
		"from=" + today + "&to=" + yesterday: "from"} {
		for _, path := range []string{"/console/search?", "/console/search.csv?"} {
			if code, body := c.get(path + query); code != http.StatusBadRequest || !strings.Contains(body, field) {
				t.Errorf("GET %s%s: %d, want 400 naming %s", path, query, code, field)
			}
		}
	}
	if code, body := c.get("/console/search?cursor=!!"); code != http.StatusBadRequest || !strings.Contains(body, "cursor") {
		t.Errorf("a bad cursor: %d, want 400 naming the cursor", code)
	}
}
