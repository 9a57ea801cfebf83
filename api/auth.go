package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"tongban/gateway"
)

// Credential is one bearer token, stored only as its SHA-256, and the
// principal it authenticates.
type Credential struct {
	Agency      string `json:"agency"`
	Role        string `json:"role"`
	TokenSHA256 string `json:"token_sha256"` // lowercase hex
	// Expires, if set, is when the token stops working.
	Expires time.Time `json:"expires,omitzero"`
}

// NewToken returns a fresh random bearer token and its SHA-256 as stored.
func NewToken() (token, sum string) {
	var b [32]byte
	rand.Read(b[:])
	token = "tb_" + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token)
}

// HashToken returns the SHA-256 of a token, lowercase hex.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

type credential struct {
	sum     [32]byte
	who     gateway.Principal
	expires time.Time
}

func parseCredentials(creds []Credential) ([]credential, error) {
	out := make([]credential, 0, len(creds))
	for _, c := range creds {
		b, err := hex.DecodeString(c.TokenSHA256)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("api: credential for %s:%s: token_sha256 must be 64 hex digits", c.Agency, c.Role)
		}
		var x credential
		copy(x.sum[:], b)
		x.who = gateway.Principal{Agency: c.Agency, Role: c.Role}
		x.expires = c.Expires
		out = append(out, x)
	}
	return out, nil
}

var errNoToken = errors.New("no bearer token")

// authenticate finds the principal of the request's bearer token. Every
// stored hash is compared in constant time, so timing says nothing about
// which token came close.
func (s *server) authenticate(r *http.Request) (gateway.Principal, error) {
	cert, hasCert, err := s.certPrincipal(r)
	if err != nil {
		return gateway.Principal{}, err
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		if hasCert {
			return cert, nil
		}
		return gateway.Principal{}, errNoToken
	}
	tok, err := s.tokenPrincipal(h)
	if err == nil && hasCert && tok != cert {
		return gateway.Principal{}, errors.New("the bearer token and the client certificate name different principals")
	}
	return tok, err
}

// certPrincipal maps a verified TLS client certificate to its principal.
func (s *server) certPrincipal(r *http.Request) (gateway.Principal, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return gateway.Principal{}, false, nil
	}
	cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
	p, ok := s.cfg.ClientCerts[cn]
	if !ok {
		return gateway.Principal{}, false, fmt.Errorf("client certificate %q is not mapped to an agency", cn)
	}
	return p, true, nil
}

func (s *server) tokenPrincipal(h string) (gateway.Principal, error) {
	c, err := s.tokenCredential(h)
	return c.who, err
}

// tokenCredential finds the live credential of an Authorization header.
func (s *server) tokenCredential(h string) (credential, error) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > 512 {
		return credential{}, errors.New("the Authorization header must be \"Bearer <token>\"")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	var found credential
	match := 0
	for _, c := range s.creds {
		eq := subtle.ConstantTimeCompare(sum[:], c.sum[:])
		if eq == 1 {
			found = c
		}
		match |= eq
	}
	if match == 0 {
		return credential{}, errors.New("unknown or revoked token")
	}
	if !found.expires.IsZero() && time.Now().After(found.expires) {
		return credential{}, errors.New("the token has expired")
	}
	return found, nil
}

const principalKey = "tongban.principal"

// authn authenticates every request that carries a token; a request
// without one continues anonymously (public routes), and requireAuth
// turns it away on the others. A bad token is refused everywhere.
func (s *server) authn(c *gin.Context) {
	who, err := s.authenticate(c.Request)
	switch {
	case errors.Is(err, errNoToken):
	case err != nil:
		s.metrics.authFailures.Add(1)
		// A refused credential makes an anonymous request: it counts
		// against the client address's rate, so that guesses are limited
		// like any other anonymous traffic.
		if !s.allow(c, addrKey(c)) {
			return
		}
		c.Header("WWW-Authenticate", `Bearer realm="tongban", error="invalid_token"`)
		failCode(c, http.StatusUnauthorized, "unauthorized", err.Error(), nil)
		return
	default:
		c.Set(principalKey, who)
	}
	c.Next()
}

// requireAuth refuses anonymous requests.
func requireAuth(c *gin.Context) {
	if _, ok := c.Get(principalKey); !ok {
		c.Header("WWW-Authenticate", `Bearer realm="tongban"`)
		failCode(c, http.StatusUnauthorized, "unauthorized", "this route needs a bearer token", nil)
		return
	}
	c.Next()
}

func principal(c *gin.Context) gateway.Principal {
	v, _ := c.Get(principalKey)
	p, _ := v.(gateway.Principal)
	return p
}
