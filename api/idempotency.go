package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"tongban/gateway"
	"tongban/ledger/format"
)

// idempotent makes POSTs with an Idempotency-Key safe to retry: a retry
// with the same key and body gets the original outcome and appends
// nothing; the same key with another body is a 422. Keys are scoped to the
// principal and the route, and remembered for gateway.IdempotencyTTL. A
// retry racing its original waits for it.
func (s *server) idempotent(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		c.Next()
		return
	}
	if len(key) > 255 || !printable(key) {
		failCode(c, http.StatusBadRequest, "malformed", "Idempotency-Key must be 1 to 255 printable ASCII characters", nil)
		return
	}
	who := principal(c)
	sum := sha256.Sum256([]byte(who.Agency + "\x00" + who.Role + "\x00" + c.Request.Method + "\x00" + c.Request.URL.Path + "\x00" + key))
	scope := hex.EncodeToString(sum[:])
	defer s.idemLocks.lock(scope)()

	idem := &gateway.Idempotency{Scope: scope}
	isJSON := false
	if mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); mt == "application/json" {
		isJSON = true
		b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxJSONBytes))
		if err != nil {
			fail(c, fmt.Errorf("%w: reading the body: %w", gateway.ErrMalformed, err))
			return
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(b))
		if idem.JSON, err = format.Canonicalize(b); err != nil {
			idem.JSON = b // malformed: the handler says so, and nothing is remembered
		}
	}
	if r, ok := s.g.Remembered(scope); ok {
		fp := idem.Fingerprint()
		if !isJSON {
			parts, guard, ok := s.multipartBody(c)
			if !ok {
				return
			}
			var err error
			if fp, err = gateway.FingerprintParts(parts); err != nil {
				fail(c, guard.cause(err))
				return
			}
		}
		if fp != r.Fingerprint {
			fail(c, gateway.ErrIdempotencyMismatch)
			return
		}
		p, err := s.g.Get(c.Request.Context(), who, r.Packet)
		if err != nil {
			fail(c, err)
			return
		}
		c.Header("Idempotency-Replayed", "true")
		c.AbortWithStatusJSON(r.Status, s.answerWrite(c, p, r.Seq))
		return
	}
	c.Set(idemKey, idem)
	c.Next()
}

const idemKey = "tongban.idempotency"

// idemOf returns the request's idempotency description, set by idempotent;
// nil without an Idempotency-Key. The handler passes it to the gateway.
func idemOf(c *gin.Context) *gateway.Idempotency {
	idem, _ := c.Value(idemKey).(*gateway.Idempotency)
	return idem
}

// keyLocks serialises requests by key, without growing forever.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

func (k *keyLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
