// Package console is Tongban's web console for window clerks, reviewers
// and auditors: server-rendered pages (html/template) with embedded assets,
// mounted by the API server under /console/. It signs a principal in with
// its bearer token, keeps a server-side session, and performs every
// operation through the gateway's methods with that principal, so the
// console and the API share one set of authorisation rules.
//
// Security: the session cookie is HttpOnly, SameSite=Strict (and Secure
// under TLS); every state-changing request carries the session's CSRF
// token and must come from this origin; pages are served with a strict
// Content-Security-Policy that allows no inline script or style.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"time"

	"tongban/gateway"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/console/"

// Config configures New.
type Config struct {
	Gateway *gateway.Gateway
	// SignIn returns the principal a bearer token authenticates, and when
	// the token expires (zero: never): the API's own credential lookup. A
	// session ends when its token does, if that comes before SessionTTL.
	SignIn func(token string) (gateway.Principal, time.Time, error)
	// Agencies give display names to agency ids (default: the gateway's).
	Agencies []gateway.Agency
	// SessionTTL is how long a session lasts after sign-in (default 8 hours).
	SessionTTL time.Duration
	// MaxUploadBytes caps an upload's body (default 200 MiB).
	MaxUploadBytes int64
	// PageSize is how many packets a page of the auditor's search shows
	// (default 50) and the CSV export reads at a time (default 500).
	PageSize int
	// BoxSize is how many packets the inbox and the outbox show (default
	// and at most gateway.MaxLimit).
	BoxSize int
	// Uploads are the API's limits on uploads in progress and on part
	// headers, which console uploads share; zero: no such limits.
	Uploads UploadLimits
	Logger  *slog.Logger
	Now     func() time.Time
}

// UploadLimits let the console's uploads (submissions, supplements,
// licences) count against the API's own limits, not a copy of them.
type UploadLimits struct {
	// Acquire takes one of the upload slots, in all and of who, and
	// returns the function that gives it back; ok is false when none is
	// free, and the console answers 503 with Retry-After.
	Acquire    func(who gateway.Principal) (release func(), ok bool)
	RetryAfter time.Duration
	// Guard wraps a multipart body (with its boundary) in the guard of
	// its part headers; failed returns the guard's error once it has
	// refused the body, which is then the cause of what the reader says.
	Guard func(body io.Reader, boundary string) (guarded io.Reader, failed func() error)
}

// Console is the console's HTTP handler.
type Console struct {
	cfg      Config
	g        *gateway.Gateway
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*template.Template
	names    map[string]string // agency id -> name
	mux      *http.ServeMux
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 200 << 20
	}
	if cfg.PageSize < 0 || cfg.PageSize > gateway.MaxLimit {
		return nil, fmt.Errorf("console: PageSize must be between 1 and %d", gateway.MaxLimit)
	}
	if cfg.BoxSize == 0 {
		cfg.BoxSize = gateway.MaxLimit
	}
	if cfg.BoxSize < 0 || cfg.BoxSize > gateway.MaxLimit {
		return nil, fmt.Errorf("console: BoxSize must be between 1 and %d", gateway.MaxLimit)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Agencies == nil {
		cfg.Agencies = cfg.Gateway.Agencies()
	}
	c := &Console{cfg: cfg, g: cfg.Gateway, log: cfg.Logger, sessions: newSessions(cfg.SessionTTL, cfg.Now), names: map[string]string{}}
	for _, a := range cfg.Agencies {
		c.names[a.ID] = a.Name
	}
	var err error
	if c.pages, err = parsePages(c.funcs()); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", staticHandler(static)))
	m.HandleFunc("GET /console/{$}", c.home)
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	m.HandleFunc("POST /console/logout", c.authed(c.logout))
	m.HandleFunc("GET /console/lang/{lang}", c.setLang)
	m.HandleFunc("GET /console/inbox", c.authed(c.box("inbox")))
	m.HandleFunc("GET /console/outbox", c.authed(c.box("outbox")))
	m.HandleFunc("GET /console/new", c.authed(c.newPage))
	m.HandleFunc("POST /console/submit", c.authed(c.submit))
	m.HandleFunc("GET /console/packets/{id}", c.authed(c.packet))
	m.HandleFunc("POST /console/packets/{id}/act", c.authed(c.act))
	m.HandleFunc("POST /console/packets/{id}/supplement", c.authed(c.supplement))
	m.HandleFunc("POST /console/packets/{id}/license", c.authed(c.license))
	m.HandleFunc("GET /console/packets/{id}/materials/{kind}", c.authed(c.material))
	m.HandleFunc("GET /console/packets/{id}/bundle", c.authed(c.bundle))
	m.HandleFunc("GET /console/search", c.authed(c.search))
	m.HandleFunc("GET /console/search.csv", c.authed(c.searchCSV))
	m.HandleFunc("GET /console/ledger", c.authed(c.ledgerPage))
	m.HandleFunc("POST /console/ledger/verify", c.authed(c.verifyLedger))
	m.HandleFunc("GET /console/key", c.authed(c.keyPage))
	c.mux = m
}

// csp allows scripts, styles and connections from this origin only;
// 'wasm-unsafe-eval' lets the verifier compile, and nothing inline runs.
const csp = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer a browser sends "Origin: null"
	// on form posts, and the origin check below needs the real one.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// sameOrigin refuses requests a browser marks as coming from another site
// (Sec-Fetch-Site) or another origin (Origin). The CSRF token is checked
// as well; this catches what a stolen token alone would not.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser, or an old one: the CSRF token decides
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o == scheme+"://"+r.Host
}

// staticHandler serves the embedded assets from memory with an ETag, so a
// browser revalidates rather than downloads them again (and keeps its
// compiled verifier). The verifier is stored gzipped and sent as such:
// every browser that runs WebAssembly accepts gzip.
func staticHandler(fsys fs.FS) http.Handler {
	type file struct {
		body                  []byte
		etag, ctype, encoding string
	}
	files := map[string]file{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		f := file{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: mime.TypeByExtension(path.Ext(p))}
		if p == "verifier.wasm.gz" {
			p, f.ctype, f.encoding = "verifier.wasm", "application/wasm", "gzip"
		}
		files[p] = f
		return nil
	})
	if err != nil {
		panic(err) // embedded at build time: cannot fail at run time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", f.ctype)
		if f.encoding != "" {
			h.Set("Content-Encoding", f.encoding)
		}
		h.Set("Content-Length", strconv.Itoa(len(f.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(f.body)
		}
	})
}
