package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tongban/api/apitest"
	"tongban/ledger"
	"tongban/storage/s3"
	"tongban/storage/s3test"
)

// TestS3OutageUnderLoad stops the real S3 server while eight clients keep
// submitting, then starts it again. Every answer is a 201 or a 503 with
// Retry-After; every acknowledged packet is whole afterwards; the gateway
// recovers by itself.
func TestS3OutageUnderLoad(t *testing.T) {
	srv := s3test.StartVersityGW(t)
	st, err := s3.Open(context.Background(), s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: srv.NewBucket(t), MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := apitest.New(t, apitest.Options{Store: st})

	var ok, unavailable atomic.Int64
	var acked sync.Map // packet id -> struct{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m, files := apitest.CompanySetup()
				body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
				req, _ := http.NewRequest("POST", e.URL+"/v1/packets", body)
				req.Header.Set("Content-Type", ct)
				req.Header.Set("Authorization", "Bearer "+e.Tokens[[]string{"jiashan-window:submitter", "wujiang-window:submitter"}[w%2]])
				resp, err := e.Client.Do(req)
				if err != nil {
					t.Errorf("client %d: %v", w, err)
					return
				}
				var p struct{ ID string }
				json.NewDecoder(resp.Body).Decode(&p)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 201:
					ok.Add(1)
					acked.Store(p.ID, struct{}{})
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "":
					unavailable.Add(1)
					time.Sleep(50 * time.Millisecond)
				default:
					t.Errorf("client %d: status %d during the outage", w, resp.StatusCode)
					return
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	srv.Stop()
	time.Sleep(1500 * time.Millisecond)
	if code, _ := e.Do("GET", "/readyz", "", nil, ""); code != 503 {
		t.Errorf("readyz during the outage: %d", code)
	}
	srv.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := e.Do("GET", "/readyz", "", nil, ""); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not recover after S3 came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := ok.Load()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	if unavailable.Load() == 0 || ok.Load() == before {
		t.Fatalf("%d accepted (%d after recovery), %d refused with 503: the outage or the recovery was not exercised", ok.Load(), ok.Load()-before, unavailable.Load())
	}
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		if code, body := e.Do("GET", "/v1/packets/"+k.(string)+"/bundle", "qingpu-amr:reviewer", nil, ""); code != 200 {
			t.Errorf("acknowledged packet %s: bundle %d %.200s", k, code, body)
		}
		return true
	})
	code, body := e.JSON("POST", "/v1/ledger/verify", "yrd-audit:auditor", map[string]bool{"scrub": true})
	if code != 200 || !strings.Contains(string(body), `"ok":true`) {
		t.Fatalf("verify after the outage: %d %s", code, body)
	}
	t.Logf("%d submissions accepted, %d refused with 503 during the outage; %d packets checked whole", ok.Load(), unavailable.Load(), n)
}

// TestLedgerFailureIsClean: when the ledger cannot commit (a full or
// failing disk), a submission answers 503, no packet appears, and
// readiness says so until a commit succeeds again.
func TestLedgerFailureIsClean(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	e.MustSubmit("jiashan-window:submitter", m, files)
	size := e.Ledger.Size()
	// Closing the ledger under the running gateway is the failure we can
	// cause for real: every append now fails.
	if err := e.Ledger.Close(); err != nil {
		t.Fatal(err)
	}
	code, body := e.Submit("jiashan-window:submitter", m, files)
	if code != 503 {
		t.Fatalf("submit with the ledger down: %d %s", code, body)
	}
	if code, _ := e.Do("GET", "/readyz", "", nil, ""); code != 503 {
		t.Fatalf("readyz with the ledger down: %d", code)
	}
	_, list := e.Do("GET", "/v1/packets?box=outbox", "jiashan-window:submitter", nil, "")
	if strings.Count(string(list), `"id":`) != 1 || e.Ledger.Size() != size {
		t.Fatalf("a half-recorded packet: %s", list)
	}
	if err := e.Ledger.Err(); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("ledger error %v", err)
	}
}
