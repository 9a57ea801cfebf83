package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"tongban/gateway"
)

const (
	sessionCookie = "tongban_session"
	loginCookie   = "tongban_login" // CSRF token of the sign-in form, before a session exists
	langCookie    = "tongban_lang"
)

// session is one signed-in principal. Only the SHA-256 of its id is kept
// as the key, so a memory dump of the map does not hand out cookies.
type session struct {
	who        gateway.Principal
	csrf       string
	expires    time.Time
	lastVerify atomic.Pointer[verifyResult] // the last full verification, shown once the script asks
}

type sessions struct {
	mu  sync.Mutex
	m   map[[32]byte]*session
	ttl time.Duration
	now func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, ttl: ttl, now: now}
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for who, to end after the TTL or at until
// (the credential's own expiry, if not zero), whichever comes first, and
// returns its cookie value.
func (s *sessions) create(who gateway.Principal, until time.Time) (string, *session) {
	id := randomToken()
	ss := &session{who: who, csrf: randomToken(), expires: s.now().Add(s.ttl)}
	if !until.IsZero() && until.Before(ss.expires) {
		ss.expires = until
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.m { // drop expired sessions as new ones come
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[sha256.Sum256([]byte(id))] = ss
	return id, ss
}

// get returns the live session of a cookie value.
func (s *sessions) get(id string) (*session, bool) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if s.now().After(ss.expires) {
		delete(s.m, k)
		return nil, false
	}
	return ss, true
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(id)))
}

// setCookie sets (or, with value "", removes) a console cookie that
// lasts maxAge (0: until the browser closes). The server keeps its own
// expiry; the cookie's is a courtesy.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: Prefix, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
		MaxAge: int(maxAge / time.Second)}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// req is what a handler knows of a signed-in request.
type req struct {
	w    http.ResponseWriter
	r    *http.Request
	sid  string
	s    *session
	lang string
}

// authed runs h for a request with a live session; others are sent to
// the sign-in page (or refused, for anything but a page view).
func (c *Console) authed(h func(*req)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		var ss *session
		ok := false
		if err == nil {
			ss, ok = c.sessions.get(ck.Value)
		}
		if !ok {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "application/json" {
				http.Redirect(w, r, Prefix+"login?expired="+boolParam(err == nil), http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in or the session has expired", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(&req{w: w, r: r, sid: ck.Value, s: ss, lang: langOf(r)})
	}
}

func boolParam(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// checkCSRF compares a submitted token with the session's.
func (q *req) checkCSRF(token string) bool {
	if !equalTokens(token, q.s.csrf) {
		http.Error(q.w, "missing or wrong CSRF token", http.StatusForbidden)
		return false
	}
	return true
}
