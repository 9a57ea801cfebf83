package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tongban/gateway"
	"tongban/ledger/cosign"
)

func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers anyone with ready or not. Why it is not ready (file paths,
// S3 hosts) goes to the log, and to an operator or auditor who asks with a
// valid token: anonymous callers learn nothing about the deployment.
func (s *server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	err := s.g.Ready(ctx)
	if err == nil && s.cfg.Witnesses != nil {
		err = s.cfg.Witnesses.Ready()
	}
	if err != nil {
		c.Header("Retry-After", "5")
		s.log.Warn("not ready", "request_id", requestID(c), "err", err)
		body := gin.H{"status": "unavailable"}
		if mayReadDetails(principal(c)) {
			body["error"] = err.Error()
		}
		c.JSON(http.StatusServiceUnavailable, body)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// mayReadDetails says who may see internal error text on the operations
// routes: auditors, and operators if the deployment defines that role.
func mayReadDetails(p gateway.Principal) bool {
	return p.Role == "auditor" || p.Role == "operator"
}

// metrics live in a registry owned by the server, so two servers in one
// process (as in tests) never share or collide on series.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec   // route, status
	latency        *prometheus.HistogramVec // route
	storedBytes    atomic.Int64
	authFailures   atomic.Int64
	verifyFailures atomic.Int64
}

func newMetrics(g *gateway.Gateway, w *cosign.Gatherer) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tongban_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tongban_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route"})
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency,
		counter("tongban_stored_bytes_total", "Bytes of materials accepted.", &m.storedBytes),
		counter("tongban_auth_failures_total", "Requests refused for a bad token.", &m.authFailures),
		counter("tongban_ledger_verify_failures_total", "Ledger verifications that found a fault.", &m.verifyFailures),
		ledgerCollector{g},
	)
	if w != nil {
		m.reg.MustRegister(witnessCollector{w})
	}
	return m
}

// count measures a route's requests by status and latency.
func (s *server) count(route string) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}

func (s *server) metricsHandler(c *gin.Context) {
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}}).ServeHTTP(c.Writer, c.Request)
}

// slogPrinter sends promhttp's gathering errors to the server's log.
type slogPrinter struct{ s *server }

func (p slogPrinter) Println(v ...any) { p.s.log.Error("metrics", "err", fmt.Sprint(v...)) }

// ledgerCollector reads the gateway's figures once per scrape.
type ledgerCollector struct{ g *gateway.Gateway }

var (
	descEntries  = prometheus.NewDesc("tongban_ledger_entries", "Entries in the ledger.", nil, nil)
	descAppend   = prometheus.NewDesc("tongban_ledger_append_seconds", "Latency of durable ledger appends (group-committed).", nil, nil)
	descCPAge    = prometheus.NewDesc("tongban_checkpoint_age_seconds", "Time since the latest checkpoint was signed (signing is lazy).", nil, nil)
	descCPLagged = prometheus.NewDesc("tongban_checkpoint_lag_entries", "Entries appended since the latest signed checkpoint.", nil, nil)
)

func (ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEntries
	ch <- descAppend
	ch <- descCPAge
	ch <- descCPLagged
}

func (l ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	st := l.g.Stats()
	ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(st.LedgerSize))
	ch <- prometheus.MustNewConstSummary(descAppend, uint64(st.Appends), st.AppendTime.Seconds(), nil)
	ch <- prometheus.MustNewConstMetric(descCPAge, prometheus.GaugeValue, st.CheckpointAge.Seconds())
	ch <- prometheus.MustNewConstMetric(descCPLagged, prometheus.GaugeValue, float64(st.LedgerSize-st.CheckpointSize))
}
