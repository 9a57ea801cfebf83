package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"tongban/api/apitest"
	"tongban/storage/s3"
	"tongban/storage/s3test"
)

// TestOpenAPIMatchesRouter checks that every route the router serves is
// documented and nothing documented is missing from the router.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	code, body := e.Do("GET", "/openapi.json", "", nil, "")
	if code != 200 {
		t.Fatalf("openapi: %d", code)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not an OpenAPI 3 document: %v %s", err, body[:min(len(body), 200)])
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var served []string
	for _, r := range e.Server.Config.Handler.(*gin.Engine).Routes() {
		served = append(served, r.Method+" "+regexp.MustCompile(`:(\w+)`).ReplaceAllString(r.Path, "{$1}"))
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("documented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
	if len(served) < 20 {
		t.Fatalf("only %d routes", len(served))
	}
}

func TestMetrics(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	e.MustSubmit("jiashan-window:submitter", m, files)
	e.Do("GET", "/v1/packets", "Bearer forged", nil, "")
	code, body := e.Do("GET", "/metrics", "", nil, "")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`tongban_http_requests_total{route="/v1/packets",status="201"} 1`,
		`tongban_http_request_duration_seconds_count{route="/v1/packets"} 1`,
		`tongban_auth_failures_total 1`,
		`tongban_ledger_entries 1`,
		`tongban_stored_bytes_total `,
		`tongban_ledger_append_seconds_count `,
		`tongban_checkpoint_age_seconds `,
		`tongban_ledger_verify_failures_total 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestReadiness stops the S3 server under a running gateway: /readyz
// fails, writes answer 503 with Retry-After, and both recover when S3 is back.
func TestReadiness(t *testing.T) {
	srv := s3test.StartVersityGW(t)
	st, err := s3.Open(context.Background(), s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: srv.NewBucket(t), MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := apitest.New(t, apitest.Options{Store: st})
	if code, body := e.Do("GET", "/readyz", "", nil, ""); code != 200 {
		t.Fatalf("readyz with S3 up: %d %s", code, body)
	}
	srv.Stop()
	if code, body := e.Do("GET", "/readyz", "", nil, ""); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with S3 down: %d %s", code, body)
	}
	if code, _ := e.Do("GET", "/healthz", "", nil, ""); code != 200 {
		t.Fatalf("healthz with S3 down: %d", code)
	}
	m, files := apitest.CompanySetup()
	size := e.Ledger.Size()
	body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	req, _ := http.NewRequest("POST", e.URL+"/v1/packets", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+e.Tokens["jiashan-window:submitter"])
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("submit with S3 down: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e.Ledger.Size() != size {
		t.Fatal("a failed submission reached the ledger")
	}
	srv.Restart()
	if code, body := e.Do("GET", "/readyz", "", nil, ""); code != 200 {
		t.Fatalf("readyz after S3 came back: %d %s", code, body)
	}
	e.MustSubmit("jiashan-window:submitter", m, files)
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsHoldNoSecrets runs requests that carry tokens, names and ID
// numbers, good and bad, and checks that none of them reaches the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	var logs syncBuffer
	e := apitest.New(t, apitest.Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	person := apitest.Manifest{Item: "RES-HUKOU-CERT", Destination: "qingpu-window",
		Applicant: map[string]any{"type": "person", "name": "王小明", "id": "33042120000229023X"},
		Materials: []apitest.MaterialSpec{{Kind: "consent_form", Filename: "同意书.pdf"}, {Kind: "applicant_id", Filename: "王小明身份证.pdf"}}}
	pfiles := []apitest.File{{Kind: "consent_form", Filename: "同意书.pdf", Data: apitest.PDF(100)}, {Kind: "applicant_id", Filename: "王小明身份证.pdf", Data: apitest.PDF(100)}}
	e.MustSubmit("jiashan-window:submitter", person, pfiles)
	bad := person
	bad.Applicant = map[string]any{"type": "person", "name": "李四", "id": "330421199902300012"}
	if code, _ := e.Submit("jiashan-window:submitter", bad, pfiles); code != 422 {
		t.Fatalf("bad ID accepted: %d", code)
	}
	e.Do("GET", "/v1/packets/"+id+"?name=王小明", "qingpu-amr:reviewer", nil, "")
	e.Do("GET", "/v1/packets", "Bearer tb_forged-token-value", nil, "")
	e.Act("qingpu-amr:reviewer", id, "receive", "", 200)

	out := logs.String()
	if !strings.Contains(out, `"msg":"request"`) {
		t.Fatalf("no request logged:\n%s", out)
	}
	secrets := []string{"上海青嘉贸易有限公司", "91310118MA1G00011T", "王小明", "33042120000229023X", "李四", "330421199902300012", "tb_forged-token-value"}
	for _, tok := range e.Tokens {
		secrets = append(secrets, tok)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q", s)
		}
	}
}
