package api

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"tongban/api/console"
	"tongban/gateway"
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
// sending or reading for IdleTimeout is cut off. The body also has a
// whole-request budget: RateGrace plus the bytes received so far at
// MinUploadRate, counted only while the server waits for them, so a large
// upload that keeps moving may take as long as it needs while one byte
// every few seconds does not hold a connection forever.
func (s *server) slowClients(c *gin.Context) {
	if s.cfg.IdleTimeout <= 0 && s.cfg.MinUploadRate <= 0 {
		c.Next()
		return
	}
	rc := http.NewResponseController(c.Writer)
	body := c.Request.Body
	dr := &deadlineReader{r: body, rc: rc, idle: s.cfg.IdleTimeout,
		rate: float64(max(s.cfg.MinUploadRate, 0)), grace: s.cfg.RateGrace}
	c.Request.Body = dr
	if s.cfg.IdleTimeout > 0 {
		c.Writer = &deadlineWriter{ResponseWriter: c.Writer, rc: rc, idle: s.cfg.IdleTimeout}
	}
	c.Next()
	// net/http may read the rest of the body after the handler; that must
	// not wait on a slow client either, and not at all on one that already
	// failed. It must also see its own body, to know whether a
	// 100-continue was sent (if not, it reads nothing).
	c.Request.Body = body
	dl := dr.deadline(time.Now())
	if dr.failed {
		dl = time.Now()
	}
	rc.SetReadDeadline(dl)
}

type deadlineReader struct {
	r      io.ReadCloser
	rc     *http.ResponseController
	idle   time.Duration // 0: none
	rate   float64       // minimum bytes a second; 0: none
	grace  time.Duration
	n      int64         // bytes received
	wait   time.Duration // time spent waiting for them
	failed bool          // a read failed other than at the end
}

// deadline is when the next read must have returned: after the idle
// timeout, or once what is left of the rate budget is spent (at once if
// nothing is left); zero for none.
func (d *deadlineReader) deadline(now time.Time) time.Time {
	var dl time.Time
	if d.idle > 0 {
		dl = now.Add(d.idle)
	}
	if d.rate > 0 {
		left := d.grace + time.Duration(float64(d.n+1)/d.rate*float64(time.Second)) - d.wait
		if dl.IsZero() || now.Add(left).Before(dl) {
			dl = now.Add(left)
		}
	}
	return dl
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	now := time.Now()
	d.rc.SetReadDeadline(d.deadline(now))
	n, err := d.r.Read(p)
	d.n += int64(n)
	d.wait += time.Since(now)
	if err != nil && err != io.EOF {
		d.failed = true
	}
	return n, err
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

// uploadRoutes are the routes whose bodies are files; they take an upload
// slot for as long as they run.
var uploadRoutes = map[string]bool{
	"POST /v1/packets":                 true,
	"POST /v1/packets/:id/supplements": true,
	"POST /v1/packets/:id/license":     true,
}

// uploadSlots counts the uploads in progress, in all and per principal.
type uploadSlots struct {
	mu    sync.Mutex
	total int
	by    map[string]int
}

func (u *uploadSlots) acquire(key string, total, each int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if (total > 0 && u.total >= total) || (each > 0 && u.by[key] >= each) {
		return false
	}
	if u.by == nil {
		u.by = map[string]int{}
	}
	u.total++
	u.by[key]++
	return true
}

func (u *uploadSlots) release(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.total--
	if u.by[key]--; u.by[key] <= 0 {
		delete(u.by, key)
	}
}

// uploadRetryAfter is what an upload refused for want of a slot is told.
const uploadRetryAfter = 2 * time.Second

// acquireUpload takes one of MaxUploads slots, and one of who's
// MaxUploadsPerPrincipal, for an upload of the API or the console.
func (s *server) acquireUpload(who gateway.Principal) (release func(), ok bool) {
	key := who.Agency + ":" + who.Role
	if !s.uploads.acquire(key, s.cfg.MaxUploads, s.cfg.MaxUploadsPerPrincipal) {
		return nil, false
	}
	return func() { s.uploads.release(key) }, true
}

// uploadSlot holds an upload slot while an upload runs; beyond the caps
// it answers 503 with Retry-After, before reading the body.
func (s *server) uploadSlot(c *gin.Context) {
	release, ok := s.acquireUpload(principal(c))
	if !ok {
		c.Header("Retry-After", strconv.Itoa(int(uploadRetryAfter/time.Second)))
		failCode(c, http.StatusServiceUnavailable, "busy", "too many uploads in progress; retry later", nil)
		return
	}
	defer release()
	c.Next()
}

// consoleUploads hands the console the same upload slots and part-header
// guard. The minimum body rate and idle timeout need no hand-over: the
// console is served behind slowClients like every route.
func (s *server) consoleUploads() console.UploadLimits {
	return console.UploadLimits{Acquire: s.acquireUpload, RetryAfter: uploadRetryAfter,
		Guard: func(body io.Reader, boundary string) (io.Reader, func() error) {
			g := newPartHeaderGuard(body, boundary, s.cfg.MaxPartHeaderBytes, s.cfg.MaxPartHeadersTotal)
			return g, func() error { return g.err }
		}}
}

// partHeaderGuard fails a multipart body whose part headers grow beyond
// max bytes for one part or maxTotal for all: mime/multipart would read up
// to 10 MiB of headers per part into memory. It follows the framing
// itself: after a line that starts with "--" and the boundary, bytes count
// as header until an empty line. The boundary is chosen by the client not
// to occur in the files, so a false match only counts a little more.
type partHeaderGuard struct {
	r             io.Reader
	delim         []byte // "\n--" + boundary
	tail          []byte // the last len(delim)-1 bytes of body seen
	win           []byte // scratch: tail plus the start of a read
	inHeader      bool
	dashes        int   // "-" right after the last delimiter (2: it closed the body); -1 after another byte
	closed        bool  // past the closing delimiter: the epilogue is not headers
	line          int   // bytes in the current header line, CR excluded
	header, total int64 // header bytes of this part, of earlier parts
	max, maxTotal int64
	err           error
}

func newPartHeaderGuard(r io.Reader, boundary string, max, maxTotal int64) *partHeaderGuard {
	d := []byte("\n--" + boundary)
	g := &partHeaderGuard{r: r, delim: d, max: max, maxTotal: maxTotal,
		tail: make([]byte, 0, len(d)), win: make([]byte, 0, 2*len(d))}
	g.tail = append(g.tail, '\n') // the first boundary needs no line before it
	return g
}

func (g *partHeaderGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if g.err = g.scan(p[:n]); g.err != nil {
		return 0, g.err
	}
	return n, err
}

// cause returns the guard's error if it failed, else err: a reader above
// the guard may report the framing it saw cut short instead.
func (g *partHeaderGuard) cause(err error) error {
	if g.err != nil {
		return g.err
	}
	return err
}

func (g *partHeaderGuard) scan(b []byte) error {
	for len(b) > 0 && !g.closed {
		if g.inHeader && g.dashes >= 0 {
			// "--" after a delimiter closes the body (RFC 2046); what
			// follows is an epilogue that mime/multipart ignores.
			for len(b) > 0 && b[0] == '-' && g.dashes < 2 {
				b, g.dashes, g.header, g.line = b[1:], g.dashes+1, g.header+1, g.line+1
			}
			if g.dashes == 2 {
				g.closed = true
				return nil
			}
			if len(b) > 0 {
				g.dashes = -1
			}
			continue
		}
		if g.inHeader {
			i, done := g.scanHeader(b)
			if g.header > g.max || g.total+g.header > g.maxTotal {
				return fmt.Errorf("%w: multipart part headers longer than %d bytes (%d for all parts)", gateway.ErrTooLarge, g.max, g.maxTotal)
			}
			b = b[i:]
			if done {
				g.inHeader = false
				g.total += g.header
				g.header = 0
				g.tail = append(g.tail[:0], '\n') // the empty line may end right before a delimiter
			}
			continue
		}
		end := g.findDelim(b)
		if end < 0 {
			g.keepTail(b)
			return nil
		}
		b = b[end:]
		g.inHeader, g.dashes = true, 0
		g.line = 1 // the rest of the delimiter line is not the empty line
	}
	return nil
}

// scanHeader counts header bytes of b up to and including the empty line
// that ends the headers; it returns how many it consumed and whether it
// found that line.
func (g *partHeaderGuard) scanHeader(b []byte) (int, bool) {
	for i, c := range b {
		g.header++
		switch {
		case c == '\n' && g.line == 0:
			return i + 1, true
		case c == '\n':
			g.line = 0
		case c != '\r':
			g.line++
		}
		if g.header > g.max {
			return i + 1, false
		}
	}
	return len(b), false
}

// findDelim returns the offset in b just past the first delimiter, which
// may have begun in the tail of the previous read; -1 if there is none.
func (g *partHeaderGuard) findDelim(b []byte) int {
	g.win = append(append(g.win[:0], g.tail...), b[:min(len(b), len(g.delim)-1)]...)
	if i := bytes.Index(g.win, g.delim); i >= 0 {
		return i + len(g.delim) - len(g.tail)
	}
	if i := bytes.Index(b, g.delim); i >= 0 {
		return i + len(g.delim)
	}
	return -1
}

func (g *partHeaderGuard) keepTail(b []byte) {
	k := len(g.delim) - 1
	if len(b) >= k {
		g.tail = append(g.tail[:0], b[len(b)-k:]...)
		return
	}
	g.win = append(append(g.win[:0], g.tail...), b...)
	g.tail = append(g.tail[:0], g.win[max(0, len(g.win)-k):]...)
}
