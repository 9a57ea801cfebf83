package console_test

import (
	"slices"
	"strings"
	"testing"

	"tongban/api/apitest"
)

// TestSearchCSVAgreesWithAPI: the console's export and the API's carry the
// same rows for the same packets (one encoder), formulas defused.
func TestSearchCSVAgreesWithAPI(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	a := e.MustSubmit("jiashan-window:submitter", m, files)
	e.MustSubmit("wujiang-window:submitter", m, files)
	e.Act("qingpu-amr:reviewer", a, "receive", "", 200)
	e.Act("qingpu-amr:reviewer", a, "return", "=1+1 请补正", 200)

	c := signIn(t, e.URL, e.Client, e.Tokens["yrd-audit:auditor"])
	code, console := c.get("/console/search.csv")
	if code != 200 {
		t.Fatalf("console export: %d %s", code, console)
	}
	code, body := e.Do("GET", "/v1/packets?box=all&format=csv", "yrd-audit:auditor", nil, "")
	if code != 200 {
		t.Fatalf("API export: %d %s", code, body)
	}
	lines := func(s string) []string {
		ls := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		slices.Sort(ls[1:]) // the console lists newest first
		return ls
	}
	cl, al := lines(console), lines(string(body))
	if !slices.Equal(cl, al) || len(cl) != 3 || !strings.HasPrefix(cl[0], "\xef\xbb\xbfid,item,") {
		t.Fatalf("console export\n%q\nAPI export\n%q", cl, al)
	}
	if !strings.Contains(console, ",'=1+1 请补正") {
		t.Errorf("the reason's formula is not defused:\n%s", console)
	}
}
