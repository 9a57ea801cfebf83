package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"tongban/api/apitest"
	"tongban/storage/fs"
	"tongban/storage/s3"
	"tongban/storage/s3test"
)

// loadOpenAPI fetches /openapi.json and checks it with kin-openapi: it must
// load and validate as an OpenAPI 3 document.
func loadOpenAPI(t *testing.T, e *apitest.Env) *openapi3.T {
	t.Helper()
	code, body := e.Do("GET", "/openapi.json", "", nil, "")
	if code != 200 {
		t.Fatalf("openapi: %d", code)
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("/openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("/openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// TestOpenAPIMatchesRouter holds the router's routes against the
// document's operations (written apart from the route table) and checks
// that every operation says what it takes and what it answers.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	doc := loadOpenAPI(t, e)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			documented = append(documented, key)
			ok2xx := false
			for status, r := range op.Responses.Map() {
				if strings.HasPrefix(status, "2") {
					ok2xx = true
					if len(r.Value.Content) == 0 {
						t.Errorf("%s: answer %s has no content", key, status)
					}
					for mt, m := range r.Value.Content {
						if m.Schema == nil {
							t.Errorf("%s: answer %s %s has no schema", key, status, mt)
						}
					}
				}
			}
			if !ok2xx {
				t.Errorf("%s: no success answer", key)
			}
			// Every failure is the error object.
			if d := op.Responses.Default(); d == nil || d.Value.Content.Get("application/json") == nil ||
				d.Value.Content.Get("application/json").Schema.Value.Properties["error"] == nil {
				t.Errorf("%s: the default answer is not the error object", key)
			}
			if op.Summary == "" {
				t.Errorf("%s: no summary", key)
			}
			if method == "POST" && key != "POST /v1/ledger/verify" && (op.RequestBody == nil || len(op.RequestBody.Value.Content) == 0) {
				t.Errorf("%s: no request body", key)
			}
			for _, p := range op.Parameters {
				if p.Value.In == "path" && !strings.Contains(path, "{"+p.Value.Name+"}") {
					t.Errorf("%s: path parameter %s is not in the path", key, p.Value.Name)
				}
			}
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
	// The error object's fields, as failCode writes them.
	errSchema := doc.Components.Schemas["Error"].Value.Properties["error"].Value
	for _, f := range []string{"code", "message", "fields", "request_id"} {
		if errSchema.Properties[f] == nil {
			t.Errorf("the error object lacks %q", f)
		}
	}
}

// TestMetrics parses /metrics with Prometheus's own text parser and checks
// the series the gateway keeps, with their types and values, next to the Go
// runtime and process collectors.
func TestMetrics(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	e.MustSubmit("jiashan-window:submitter", m, files)
	e.Do("GET", "/v1/packets", "Bearer forged", nil, "")
	var stored int64
	for _, f := range files {
		stored += int64(len(f.Data))
	}
	code, body := e.Do("GET", "/metrics", "", nil, "")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse as the Prometheus text format: %v\n%s", err, body)
	}
	// series finds the one metric of a family whose labels include want.
	series := func(name string, typ dto.MetricType, want map[string]string) *dto.Metric {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no family %s", name)
		}
		if f.GetType() != typ {
			t.Fatalf("%s is a %v, want %v", name, f.GetType(), typ)
		}
	next:
		for _, m := range f.Metric {
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
		t.Fatalf("no %s series with labels %v", name, want)
		return nil
	}
	if v := series("tongban_http_requests_total", dto.MetricType_COUNTER, map[string]string{"route": "/v1/packets", "status": "201"}).GetCounter().GetValue(); v != 1 {
		t.Errorf("submissions counted %v, want 1", v)
	}
	h := series("tongban_http_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"route": "/v1/packets"}).GetHistogram()
	// 13 buckets and +Inf.
	if h.GetSampleCount() != 1 || len(h.Bucket) != 14 || h.GetSampleSum() <= 0 {
		t.Errorf("latency histogram of /v1/packets: %v", h)
	}
	for name, want := range map[string]float64{
		"tongban_auth_failures_total":          1,
		"tongban_stored_bytes_total":           float64(stored),
		"tongban_ledger_verify_failures_total": 0,
	} {
		if v := series(name, dto.MetricType_COUNTER, nil).GetCounter().GetValue(); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := series("tongban_ledger_entries", dto.MetricType_GAUGE, nil).GetGauge().GetValue(); v != 1 {
		t.Errorf("tongban_ledger_entries = %v, want 1", v)
	}
	if s := series("tongban_ledger_append_seconds", dto.MetricType_SUMMARY, nil).GetSummary(); s.GetSampleCount() != 1 {
		t.Errorf("ledger appends counted %d, want 1", s.GetSampleCount())
	}
	if v := series("tongban_checkpoint_age_seconds", dto.MetricType_GAUGE, nil).GetGauge().GetValue(); v < 0 {
		t.Errorf("checkpoint age %v", v)
	}
	series("tongban_checkpoint_lag_entries", dto.MetricType_GAUGE, nil)
	// The Go runtime and process collectors.
	if v := series("go_goroutines", dto.MetricType_GAUGE, nil).GetGauge().GetValue(); v < 1 {
		t.Errorf("go_goroutines = %v", v)
	}
	if v := series("process_resident_memory_bytes", dto.MetricType_GAUGE, nil).GetGauge().GetValue(); v <= 0 {
		t.Errorf("process_resident_memory_bytes = %v", v)
	}
	series("process_open_fds", dto.MetricType_GAUGE, nil)
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
	if code, body := e.Do("GET", "/readyz", "", nil, ""); code != http.StatusServiceUnavailable || strings.Contains(string(body), srv.Endpoint) {
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

// TestReadinessDetails breaks a filesystem store under a running gateway:
// anonymous callers and other principals learn only that it is not ready,
// while the log and an auditor get the reason, which names the path.
func TestReadinessDetails(t *testing.T) {
	dir := t.TempDir()
	st, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	e := apitest.New(t, apitest.Options{Store: st, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if code, body := e.Do("GET", "/readyz", "", nil, ""); code != 200 {
		t.Fatalf("readyz with the store in place: %d %s", code, body)
	}
	if err := os.RemoveAll(filepath.Join(dir, "objects")); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"", "jiashan-window:submitter", "qingpu-amr:reviewer"} {
		code, body := e.Do("GET", "/readyz", who, nil, "")
		if code != http.StatusServiceUnavailable {
			t.Fatalf("readyz as %q with the store gone: %d %s", who, code, body)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil || len(got) != 1 || got["status"] != "unavailable" {
			t.Errorf("readyz as %q says more than not ready: %s", who, body)
		}
		if strings.Contains(string(body), dir) || strings.Contains(string(body), "objects") {
			t.Errorf("readyz as %q names the store's path: %s", who, body)
		}
	}
	code, body := e.Do("GET", "/readyz", "yrd-audit:auditor", nil, "")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), filepath.Join(dir, "objects")) {
		t.Fatalf("an auditor is not told why: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), filepath.Join(dir, "objects")) {
		t.Fatalf("the log does not say why the gateway is not ready:\n%s", logs.String())
	}
	if code, body := e.Do("GET", "/readyz", "Bearer forged", nil, ""); code != http.StatusUnauthorized || strings.Contains(string(body), dir) {
		t.Fatalf("readyz with a forged token: %d %s", code, body)
	}
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
