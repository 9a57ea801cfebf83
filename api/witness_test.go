package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"tongban/api"
	"tongban/api/apitest"
	"tongban/ledger/cosign"
	"tongban/ledger/witness"
)

// TestWitnessCheckpointAndWriteGrace: the served checkpoint carries the
// witnesses' cosignatures; below the quorum readiness fails, writes go on
// during the grace and are refused after it with 503 and Retry-After.
func TestWitnessCheckpointAndWriteGrace(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mu sync.Mutex
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var g *cosign.Gatherer
	var servers []*httptest.Server
	var keys []string
	e := apitest.New(t, apitest.Options{API: func(c *api.Config) {
		var ws []cosign.Witness
		for i := range 2 {
			w, err := witness.Open(witness.Options{Dir: t.TempDir(), Name: fmt.Sprintf("w%d.test", i), Logs: []string{c.Ledger.VerifierKey()}, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(w)
			t.Cleanup(func() { srv.Close(); w.Close() })
			servers = append(servers, srv)
			keys = append(keys, w.VerifierKey())
			ws = append(ws, cosign.Witness{Name: fmt.Sprintf("w%d", i), URL: srv.URL, Key: w.VerifierKey()})
		}
		var err error
		g, err = cosign.Open(cosign.Options{Witnesses: ws, Quorum: 2, Dir: t.TempDir(), Poll: 10 * time.Millisecond,
			MaxBackoff: 20 * time.Millisecond, Grace: time.Minute, Logger: quiet, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		g.SetLog(c.Ledger)
		c.Witnesses = g
	}})
	ctx, cancel := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Go(func() { g.Run(ctx) })
	t.Cleanup(func() { cancel(); run.Wait() })
	policy, err := witness.NewPolicy(keys, 2)
	if err != nil {
		t.Fatal(err)
	}
	m, files := apitest.CompanySetup()
	e.MustSubmit("jiashan-window:submitter", m, files)

	for _, path := range []string{"/v1/ledger/checkpoint", "/v1/ledger/tlog/checkpoint"} {
		deadline := time.Now().Add(time.Minute)
		for {
			code, body := e.Do("GET", path, "yrd-audit:auditor", nil, "")
			if code != 200 {
				t.Fatalf("%s: %d %s", path, code, body)
			}
			r, err := policy.Check(body)
			if err == nil && bytes.Contains(body, []byte(fmt.Sprintf("\n%d\n", e.Ledger.Size()))) {
				if len(r.Valid) != 2 {
					t.Fatalf("%s: %d cosignatures", path, len(r.Valid))
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never carried the quorum: %v\n%s", path, err, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if code, body := e.Do("GET", "/readyz", "", nil, ""); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}

	servers[1].Close()
	e.MustSubmit("jiashan-window:submitter", m, files) // within the grace
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := e.Do("GET", "/readyz", "yrd-audit:auditor", nil, "")
		if code == 503 && bytes.Contains(body, []byte("quorum")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz below the quorum: %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	req, _ := http.NewRequest("POST", e.URL+"/v1/packets", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+e.Tokens["jiashan-window:submitter"])
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb struct{ Error struct{ Code string } }
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || eb.Error.Code != "witnesses_unavailable" {
		t.Fatalf("write after the grace: %d Retry-After %q code %q", resp.StatusCode, resp.Header.Get("Retry-After"), eb.Error.Code)
	}
	// Reads go on.
	if code, _ := e.Do("GET", "/v1/ledger/checkpoint", "", nil, ""); code != 200 {
		t.Fatalf("checkpoint while writes are refused: %d", code)
	}
	// w0 catches up with the last accepted write; w1 stays down.
	wants := []string{`tongban_witness_up{witness="w1"} 0`, `tongban_witness_up{witness="w0"} 1`, `tongban_witness_lag_entries{witness="w0"} 0`,
		`tongban_witness_failures_total{witness="w0"} 0`}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		_, metrics := e.Do("GET", "/metrics", "", nil, "")
		missing := ""
		for _, want := range wants {
			if !bytes.Contains(metrics, []byte(want)) {
				missing = want
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s", missing)
		}
	}
}
