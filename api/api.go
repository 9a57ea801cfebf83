// Package api is Tongban's HTTP interface: gin routes under /v1, bearer
// tokens, the JSON error format and request limits. It knows the gateway's
// operations and errors, and nothing of Badger or S3.
//
// Every route and its handler are listed in routes, below.
package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"tongban/api/console"
	"tongban/gateway"
	"tongban/ledger"
	"tongban/ledger/cosign"
)

// Config configures New.
type Config struct {
	Gateway     *gateway.Gateway
	Credentials []Credential
	// MaxUploadBytes caps a request body of files; default: the largest
	// packet the catalogue allows, plus 1 MiB for the manifest and framing.
	MaxUploadBytes int64
	// MaxJSONBytes caps other request bodies (default 64 KiB).
	MaxJSONBytes int64
	// RateLimit is the requests per second each principal (or anonymous
	// client address) may make, with bursts of RateBurst; 0 means no limit.
	RateLimit float64
	RateBurst int
	// IdleTimeout cuts off a client that sends or reads nothing for this
	// long in the middle of a request (default 1 minute; negative: never).
	IdleTimeout time.Duration
	// MinUploadRate is the slowest a request body may arrive, in bytes a
	// second, after RateGrace (defaults 4 KiB/s and 10 s; negative: no
	// minimum). Time the gateway spends not reading does not count.
	MinUploadRate int64
	RateGrace     time.Duration
	// MaxUploads caps the uploads (submissions, supplements, licences) in
	// progress, and MaxUploadsPerPrincipal those of one agency and role;
	// beyond them the answer is 503 with Retry-After (defaults 64 and 16;
	// negative: no cap).
	MaxUploads             int
	MaxUploadsPerPrincipal int
	// MaxPartHeaderBytes caps the headers of one multipart part, and
	// MaxPartHeadersTotal those of all parts of a request (defaults 16 KiB
	// and 256 KiB).
	MaxPartHeaderBytes  int64
	MaxPartHeadersTotal int64
	// ClientCerts maps the common name of a verified TLS client certificate
	// to the principal it authenticates (see the serve command's --client-ca).
	ClientCerts map[string]gateway.Principal
	// ExportPageSize is how many packets a CSV export (GET
	// /v1/packets?format=csv) reads at a time: its memory bound (default
	// and at most gateway.MaxLimit).
	ExportPageSize int
	// ConsoleSessionTTL is how long a web console session lasts (default 8 hours).
	ConsoleSessionTTL time.Duration
	Logger            *slog.Logger
	// Ledger, if set, is served as C2SP tlog-tiles under /v1/ledger/tlog/,
	// to every authenticated principal (the ledger holds no personal
	// data), or to anyone with PublicTiles.
	Ledger      *ledger.Ledger
	PublicTiles bool
	// Witnesses, if set, gathers cosignatures: the checkpoints served
	// carry them, readiness needs their quorum, and writes are refused
	// once entries have waited past its grace.
	Witnesses *cosign.Gatherer
}

type server struct {
	cfg       Config
	g         *gateway.Gateway
	creds     []credential
	log       *slog.Logger
	metrics   *metrics
	idemLocks keyLocks
	limits    limiters
	uploads   uploadSlots
}

// New returns the HTTP handler.
func New(cfg Config) (http.Handler, error) {
	creds, err := parseCredentials(cfg.Credentials)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = largestPacket(cfg.Gateway.Catalog()) + 1<<20
	}
	if cfg.MaxJSONBytes <= 0 {
		cfg.MaxJSONBytes = 64 << 10
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.MinUploadRate == 0 {
		cfg.MinUploadRate = 4 << 10
	}
	if cfg.RateGrace <= 0 {
		cfg.RateGrace = 10 * time.Second
	}
	if cfg.MaxUploads == 0 {
		cfg.MaxUploads = 64
	}
	if cfg.MaxUploadsPerPrincipal == 0 {
		cfg.MaxUploadsPerPrincipal = 16
	}
	if cfg.MaxPartHeaderBytes <= 0 {
		cfg.MaxPartHeaderBytes = 16 << 10
	}
	if cfg.MaxPartHeadersTotal <= 0 {
		cfg.MaxPartHeadersTotal = 256 << 10
	}
	if cfg.ExportPageSize <= 0 || cfg.ExportPageSize > gateway.MaxLimit {
		cfg.ExportPageSize = gateway.MaxLimit
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = max(1, int(2*cfg.RateLimit))
	}
	s := &server{cfg: cfg, g: cfg.Gateway, creds: creds, log: cfg.Logger, metrics: newMetrics(cfg.Gateway, cfg.Witnesses),
		limits: limiters{rate: rate.Limit(cfg.RateLimit), burst: cfg.RateBurst}}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(s.requestID, s.recover, s.logRequests, s.slowClients, s.authn, s.rateLimit, s.refuseUnwitnessed)
	r.NoMethod(func(c *gin.Context) {
		failCode(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route", nil)
	})
	s.routes(r)
	// The web console signs in with the same token lookup as the API and
	// acts through the same gateway methods, so both share one set of rules.
	// It is served for what no API route takes, so the route table (and the
	// OpenAPI document built from it) stays the API's alone.
	cons, err := console.New(console.Config{Gateway: cfg.Gateway, Agencies: cfg.Gateway.Agencies(), MaxUploadBytes: cfg.MaxUploadBytes, Uploads: s.consoleUploads(), SessionTTL: cfg.ConsoleSessionTTL, Logger: cfg.Logger,
		SignIn: func(token string) (gateway.Principal, time.Time, error) {
			c, err := s.tokenCredential("Bearer " + token)
			return c.who, c.expires, err
		}})
	if err != nil {
		return nil, err
	}
	r.NoRoute(func(c *gin.Context) {
		switch p := c.Request.URL.Path; {
		case strings.HasPrefix(p, console.Prefix):
			c.Status(http.StatusOK) // gin presets 404 for unrouted requests
			cons.ServeHTTP(c.Writer, c.Request)
		case (p == "/" || p+"/" == console.Prefix) && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead):
			c.Redirect(http.StatusFound, console.Prefix)
		default:
			failCode(c, http.StatusNotFound, "not_found", "no such route", nil)
		}
	})
	return r, nil
}

// route is one documented endpoint; the OpenAPI document is built from
// the same table, so the two cannot drift apart.
type route struct {
	method, path string
	auth         bool // needs a bearer token
	idempotent   bool // honours Idempotency-Key
	summary      string
	handler      gin.HandlerFunc
}

func (s *server) table() []route {
	return []route{
		{"GET", "/v1/catalog", false, false, "service items and their materials", s.catalog},
		{"POST", "/v1/packets", true, true, "submit a packet (multipart: manifest, then files)", s.submit},
		{"GET", "/v1/packets", true, false, "list the caller's inbox or outbox (auditors: all packets), a page at a time; format=csv: all of them as CSV", s.list},
		{"GET", "/v1/packets/counts", true, false, "packets per status in a box", s.counts},
		{"GET", "/v1/packets/:id", true, false, "one packet with its materials and latest history", s.get},
		{"GET", "/v1/packets/:id/history", true, false, "a packet's history, a page at a time, newest pages first", s.history},
		{"GET", "/v1/packets/:id/materials/:kind", true, false, "download one verified material", s.material},
		{"GET", "/v1/packets/:id/bundle", true, false, "download the packet with its ledger evidence (zip)", s.bundle},
		{"GET", "/v1/packets/:id/receipts/:seq", true, false, "the receipt (C2SP tlog-proof) of one of the packet's entries", s.receipt},
		{"POST", "/v1/packets/:id/actions", true, true, "receive, return, approve, reject or deliver", s.act},
		{"POST", "/v1/packets/:id/supplements", true, true, "supplement a packet after a correction request", s.supplement},
		{"POST", "/v1/packets/:id/license", true, true, "upload the issued licence", s.license},
		{"GET", "/v1/ledger/key", false, false, "the log's note verifier key", s.ledgerKey},
		{"GET", "/v1/ledger/checkpoint", false, false, "a signed checkpoint covering every acknowledged entry, with the witnesses' cosignatures gathered so far", s.checkpoint},
		{"GET", "/v1/ledger/tlog/checkpoint", !s.cfg.PublicTiles, false, "tlog-tiles: the checkpoint, as /v1/ledger/checkpoint", s.tlogCheckpoint},
		{"GET", "/v1/ledger/tlog/tile/*tile", !s.cfg.PublicTiles, false, "tlog-tiles: a hash tile (<L>/<N>[.p/<W>]) or entry bundle (entries/<N>[.p/<W>])", s.tile},
		{"GET", "/v1/ledger/entries/:seq", true, false, "one ledger entry", s.entry},
		{"GET", "/v1/ledger/entries", true, false, "ledger entries of a packet, or a range", s.entries},
		{"GET", "/v1/ledger/proofs/inclusion", true, false, "inclusion proof of an entry", s.inclusion},
		{"GET", "/v1/ledger/proofs/consistency", true, false, "consistency proof between two tree sizes", s.consistency},
		{"POST", "/v1/ledger/verify", true, false, "full ledger verification", s.verify},
		{"GET", "/healthz", false, false, "liveness", s.healthz},
		{"GET", "/readyz", false, false, "readiness: storage and ledger available", s.readyz},
		{"GET", "/metrics", false, false, "Prometheus metrics", s.metricsHandler},
		{"GET", "/openapi.json", false, false, "this API's OpenAPI 3 document", s.openapi},
	}
}

func (s *server) routes(r *gin.Engine) {
	for _, rt := range s.table() {
		hs := []gin.HandlerFunc{s.count(rt.path)}
		if rt.auth {
			hs = append(hs, requireAuth)
		}
		if uploadRoutes[rt.method+" "+rt.path] {
			hs = append(hs, s.uploadSlot)
		}
		if rt.idempotent {
			hs = append(hs, s.idempotent)
		}
		r.Handle(rt.method, rt.path, append(hs, rt.handler)...)
	}
}

// largestPacket is the most bytes of files one packet of the catalogue can hold.
func largestPacket(cat *gateway.Catalog) int64 {
	var most int64
	for _, it := range cat.Items {
		var n int64
		for _, m := range it.Materials {
			n += m.MaxBytes
		}
		most = max(most, n)
	}
	return most
}

const requestIDKey = "tongban.request_id"

// requestID gives every request an id, echoed in X-Request-Id and in errors.
func (s *server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if len(id) == 0 || len(id) > 64 || !printable(id) {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(requestIDKey, id)
	c.Set(loggerKey, s.log)
	c.Header("X-Request-Id", id)
	c.Header("X-Content-Type-Options", "nosniff") // materials are served as their sniffed type, never re-sniffed
	c.Next()
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func requestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// recover turns a panic into a 500, except the deliberate abort of a
// response whose body turned out bad mid-stream.
func (s *server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "request_id", requestID(c), "panic", v)
			failCode(c, http.StatusInternalServerError, "internal", "internal error; see the gateway's log under this request id", nil)
		}
	}()
	c.Next()
}

// logRequests writes one line per request: never the token, query values
// or bodies, which may hold personal data.
func (s *server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	who := principal(c)
	s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
		slog.String("request_id", requestID(c)),
		slog.String("method", c.Request.Method),
		slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()),
		slog.Int("bytes_out", c.Writer.Size()),
		slog.Duration("took", time.Since(start)),
		slog.String("agency", who.Agency),
		slog.String("role", who.Role),
	)
}
