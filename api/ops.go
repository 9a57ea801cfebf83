package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	if err := s.g.Ready(ctx); err != nil {
		c.Header("Retry-After", "5")
		s.log.Warn("not ready", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// metrics are kept by hand in the Prometheus text format: a handful of
// counters and a latency histogram do not need a client library.
type metrics struct {
	mu             sync.Mutex
	requests       map[[2]string]int64   // route, status
	latency        map[string]*histogram // route
	storedBytes    atomic.Int64
	authFailures   atomic.Int64
	verifyFailures atomic.Int64
}

var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type histogram struct {
	counts []int64 // per bucket, cumulative when written
	sum    float64
	n      int64
}

func newMetrics() *metrics {
	return &metrics{requests: map[[2]string]int64{}, latency: map[string]*histogram{}}
}

// count measures a route's requests by status and latency.
func (s *server) count(route string) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		took := time.Since(start).Seconds()
		m := s.metrics
		m.mu.Lock()
		defer m.mu.Unlock()
		m.requests[[2]string{route, fmt.Sprint(c.Writer.Status())}]++
		h := m.latency[route]
		if h == nil {
			h = &histogram{counts: make([]int64, len(buckets))}
			m.latency[route] = h
		}
		for i, b := range buckets {
			if took <= b {
				h.counts[i]++
			}
		}
		h.sum += took
		h.n++
	}
}

func (s *server) metricsHandler(c *gin.Context) {
	var b strings.Builder
	m := s.metrics
	m.mu.Lock()
	fmt.Fprintln(&b, "# HELP tongban_http_requests_total HTTP requests by route and status.")
	fmt.Fprintln(&b, "# TYPE tongban_http_requests_total counter")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
	for _, k := range keys {
		fmt.Fprintf(&b, "tongban_http_requests_total{route=%q,status=%q} %d\n", k[0], k[1], m.requests[k])
	}
	fmt.Fprintln(&b, "# HELP tongban_http_request_duration_seconds HTTP request latency by route.")
	fmt.Fprintln(&b, "# TYPE tongban_http_request_duration_seconds histogram")
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	for _, r := range routes {
		h := m.latency[r]
		for i, le := range buckets {
			fmt.Fprintf(&b, "tongban_http_request_duration_seconds_bucket{route=%q,le=\"%g\"} %d\n", r, le, h.counts[i])
		}
		fmt.Fprintf(&b, "tongban_http_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", r, h.n)
		fmt.Fprintf(&b, "tongban_http_request_duration_seconds_sum{route=%q} %g\n", r, h.sum)
		fmt.Fprintf(&b, "tongban_http_request_duration_seconds_count{route=%q} %d\n", r, h.n)
	}
	m.mu.Unlock()
	fmt.Fprintln(&b, "# HELP tongban_stored_bytes_total Bytes of materials accepted.")
	fmt.Fprintln(&b, "# TYPE tongban_stored_bytes_total counter")
	fmt.Fprintf(&b, "tongban_stored_bytes_total %d\n", m.storedBytes.Load())
	fmt.Fprintln(&b, "# HELP tongban_auth_failures_total Requests refused for a bad token.")
	fmt.Fprintln(&b, "# TYPE tongban_auth_failures_total counter")
	fmt.Fprintf(&b, "tongban_auth_failures_total %d\n", m.authFailures.Load())
	fmt.Fprintln(&b, "# HELP tongban_ledger_verify_failures_total Ledger verifications that found a fault.")
	fmt.Fprintln(&b, "# TYPE tongban_ledger_verify_failures_total counter")
	fmt.Fprintf(&b, "tongban_ledger_verify_failures_total %d\n", m.verifyFailures.Load())
	st := s.g.Stats()
	fmt.Fprintln(&b, "# HELP tongban_ledger_entries Entries in the ledger.")
	fmt.Fprintln(&b, "# TYPE tongban_ledger_entries gauge")
	fmt.Fprintf(&b, "tongban_ledger_entries %d\n", st.LedgerSize)
	fmt.Fprintln(&b, "# HELP tongban_ledger_append_seconds Latency of durable ledger appends (group-committed).")
	fmt.Fprintln(&b, "# TYPE tongban_ledger_append_seconds summary")
	fmt.Fprintf(&b, "tongban_ledger_append_seconds_sum %g\n", st.AppendTime.Seconds())
	fmt.Fprintf(&b, "tongban_ledger_append_seconds_count %d\n", st.Appends)
	fmt.Fprintln(&b, "# HELP tongban_checkpoint_age_seconds Time since the latest checkpoint was signed (signing is lazy).")
	fmt.Fprintln(&b, "# TYPE tongban_checkpoint_age_seconds gauge")
	fmt.Fprintf(&b, "tongban_checkpoint_age_seconds %g\n", st.CheckpointAge.Seconds())
	fmt.Fprintln(&b, "# HELP tongban_checkpoint_lag_entries Entries appended since the latest signed checkpoint.")
	fmt.Fprintln(&b, "# TYPE tongban_checkpoint_lag_entries gauge")
	fmt.Fprintf(&b, "tongban_checkpoint_lag_entries %d\n", st.LedgerSize-st.CheckpointSize)
	c.Data(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", []byte(b.String()))
}

// openapi serves an OpenAPI 3 document built from the route table.
func (s *server) openapi(c *gin.Context) {
	paths := map[string]map[string]any{}
	for _, rt := range s.table() {
		p := openapiPath(rt.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{"summary": rt.summary, "responses": map[string]any{
			"default": map[string]any{"description": "JSON error: {\"error\": {\"code\", \"message\", \"fields\"}}"},
			"200":     map[string]any{"description": "OK"},
		}}
		var params []map[string]any
		for _, seg := range strings.Split(rt.path, "/") {
			if strings.HasPrefix(seg, ":") {
				params = append(params, map[string]any{"name": seg[1:], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.auth {
			op["security"] = []map[string]any{{"bearer": []string{}}}
		}
		paths[p][strings.ToLower(rt.method)] = op
	}
	c.JSON(http.StatusOK, map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "Tongban gateway", "version": "1"},
		"paths":   paths,
		"components": map[string]any{"securitySchemes": map[string]any{
			"bearer": map[string]any{"type": "http", "scheme": "bearer"},
		}},
	})
}

// openapiPath turns gin's :param into OpenAPI's {param}.
func openapiPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}
