package console_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"tongban/api/apitest"
	"tongban/api/console"
	"tongban/gateway"
)

// TestBoxesPastTheirSize: a box holding more packets than it shows shows
// the ones that matter and says that there are more: the outbox its newest
// packets, the inbox its open packets by deadline, then the closed ones
// with the latest deadlines. (They used to show the first packets of the
// gateway's index: the outbox its oldest, the inbox its oldest closed.)
func TestBoxesPastTheirSize(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	var ids []string
	for range 5 {
		ids = append(ids, e.MustSubmit("jiashan-window:submitter", m, files))
	}
	reject := func(id string) {
		e.Act("qingpu-amr:reviewer", id, "receive", "", 200)
		e.Act("qingpu-amr:reviewer", id, "reject", "材料不全", 200)
	}
	reject(ids[0])
	reject(ids[1])
	who := map[string]gateway.Principal{
		"submitter": {Agency: "jiashan-window", Role: gateway.RoleSubmitter},
		"reviewer":  {Agency: "qingpu-amr", Role: gateway.RoleReviewer},
	}
	cons, err := console.New(console.Config{Gateway: e.Gateway, BoxSize: 3,
		SignIn: func(token string) (gateway.Principal, time.Time, error) { return who[token], time.Time{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cons)
	defer srv.Close()
	rows := func(c *client, path string) ([]string, bool) {
		t.Helper()
		code, body := c.get(path)
		if code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		var got []string
		for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		return got, strings.Contains(body, `id="more"`)
	}
	check := func(c *client, path string, want []string, more bool) {
		t.Helper()
		if got, gotMore := rows(c, path); !slices.Equal(got, want) || gotMore != more {
			t.Errorf("%s shows %v (more: %v), want %v (more: %v)", path, got, gotMore, want, more)
		}
	}
	sub := signIn(t, srv.URL, srv.Client(), "submitter")
	rev := signIn(t, srv.URL, srv.Client(), "reviewer")

	check(sub, "/console/outbox", []string{ids[4], ids[3], ids[2]}, true)
	check(sub, "/console/outbox?status=rejected", []string{ids[1], ids[0]}, false)
	check(rev, "/console/inbox", []string{ids[2], ids[3], ids[4]}, true) // three open fill it
	reject(ids[2])
	check(rev, "/console/inbox", []string{ids[3], ids[4], ids[2]}, true) // room for the latest closed one
	check(rev, "/console/inbox?status=rejected", []string{ids[0], ids[1], ids[2]}, false)
	reject(ids[3])
	check(rev, "/console/inbox", []string{ids[4], ids[2], ids[3]}, true)
	check(rev, "/console/inbox?status=rejected", []string{ids[1], ids[2], ids[3]}, true) // the latest three
	if code, body := rev.get("/console/inbox?status=lost"); code != 400 || !strings.Contains(body, "status") {
		t.Errorf("an unknown status: %d, want 400 naming the status", code)
	}
	if _, err := console.New(console.Config{Gateway: e.Gateway, BoxSize: gateway.MaxLimit + 1}); err == nil {
		t.Error("a BoxSize past the gateway's page limit was accepted")
	}
}
