package console_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"tongban/api"
	"tongban/gateway"
	"tongban/ledger"
	fsstore "tongban/storage/fs"
)

// serveAgencies runs the API (and so the console) over a gateway
// configured with agencies, and returns its URL and a token per
// "agency:role".
func serveAgencies(t *testing.T, agencies []gateway.Agency) (*httptest.Server, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := fsstore.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ledger.Options{Dir: filepath.Join(dir, "ledger"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	g, err := gateway.New(context.Background(), gateway.Config{Catalog: gateway.DefaultCatalog(), Agencies: agencies, Store: st, Ledger: l,
		StateDir: filepath.Join(dir, "state"), ApplicantKey: key, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	var creds []api.Credential
	for _, a := range agencies {
		for _, role := range a.Roles {
			tok, sum := api.NewToken()
			tokens[a.ID+":"+role] = tok
			creds = append(creds, api.Credential{Agency: a.ID, Role: role, TokenSHA256: sum})
		}
	}
	h, err := api.New(api.Config{Gateway: g, Credentials: creds, Logger: log, Ledger: l})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		g.Close()
		l.Close()
	})
	return srv, tokens
}

// TestConfiguredAgencyNames: the console names agencies as the gateway's
// configuration does, not as the demo does.
func TestConfiguredAgencyNames(t *testing.T) {
	agencies := gateway.DemoAgencies()
	for i := range agencies {
		agencies[i].Name = "配置" + agencies[i].ID
	}
	srv, tokens := serveAgencies(t, agencies)
	pages := map[string]string{
		"jiashan-window:submitter": "/console/new?item=ENT-SETUP", // the destinations to choose from
		"yrd-audit:auditor":        "/console/search",             // the origin and destination filters
	}
	for who, path := range pages {
		c := signIn(t, srv.URL, srv.Client(), tokens[who])
		code, body := c.get(path)
		if code != 200 {
			t.Fatalf("%s GET %s: %d", who, path, code)
		}
		if !strings.Contains(body, "配置qingpu-amr") {
			t.Errorf("%s GET %s: the configured name of qingpu-amr is not shown", who, path)
		}
		for _, a := range gateway.DemoAgencies() {
			if strings.Contains(body, a.Name) {
				t.Errorf("%s GET %s shows the demo name %q", who, path, a.Name)
			}
		}
	}
}
