package api

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// limiters hands out one token bucket per principal (or, for anonymous
// requests, per client address).
type limiters struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	m     map[string]*rate.Limiter
}

func (l *limiters) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*rate.Limiter{}
	}
	if len(l.m) > 10_000 {
		// Many anonymous addresses must not grow the map forever, nor
		// reset the buckets of the principals.
		for k := range l.m {
			if strings.HasPrefix(k, "addr:") {
				delete(l.m, k)
			}
		}
	}
	lim := l.m[key]
	if lim == nil {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[key] = lim
	}
	return lim
}

// rateLimit answers 429 with Retry-After once a principal exceeds its rate.
func (s *server) rateLimit(c *gin.Context) {
	if s.limits.rate <= 0 {
		c.Next()
		return
	}
	key := "principal:" + principal(c).Agency + ":" + principal(c).Role
	if principal(c).Agency == "" {
		key = addrKey(c)
	}
	if s.allow(c, key) {
		c.Next()
	}
}

// addrKey is the rate-limit key of an anonymous request: its client address.
func addrKey(c *gin.Context) string {
	host, _, _ := net.SplitHostPort(c.Request.RemoteAddr)
	return "addr:" + host
}

// allow takes a token from key's bucket, or answers 429 and returns false.
func (s *server) allow(c *gin.Context, key string) bool {
	if s.limits.rate <= 0 {
		return true
	}
	r := s.limits.get(key).Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		c.Header("Retry-After", fmt.Sprint(int(math.Ceil(d.Seconds()))))
		failCode(c, http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("more than %g requests a second; retry later", float64(s.limits.rate)), nil)
		return false
	}
	return true
}

// slowClients gives the body of every request, and every write of the
// answer, a deadline that moves with progress: a client that stops
// sending or reading for IdleTimeout is cut off, while a large upload that
// keeps moving may take as long as it needs.
func (s *server) slowClients(c *gin.Context) {
	if s.cfg.IdleTimeout <= 0 {
		c.Next()
		return
	}
	rc := http.NewResponseController(c.Writer)
	c.Request.Body = &deadlineReader{r: c.Request.Body, rc: rc, idle: s.cfg.IdleTimeout}
	c.Writer = &deadlineWriter{ResponseWriter: c.Writer, rc: rc, idle: s.cfg.IdleTimeout}
	c.Next()
}

type deadlineReader struct {
	r    io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	d.rc.SetReadDeadline(time.Now().Add(d.idle))
	return d.r.Read(p)
}

func (d *deadlineReader) Close() error { return d.r.Close() }

type deadlineWriter struct {
	gin.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.rc.SetWriteDeadline(time.Now().Add(d.idle))
	return d.ResponseWriter.Write(p)
}
