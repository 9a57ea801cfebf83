// Package apitest runs a complete gateway (real ledger in a temp dir, a real
// object store, the real HTTP handler on a loopback listener) for tests,
// with helpers to build packets and call the API.
package apitest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tongban/api"
	"tongban/gateway"
	"tongban/ledger"
	"tongban/storage"
	fsstore "tongban/storage/fs"
)

// Env is a running gateway.
type Env struct {
	T       testing.TB
	URL     string
	Server  *httptest.Server
	Ledger  *ledger.Ledger
	Store   storage.Store
	Gateway *gateway.Gateway
	Tokens  map[string]string // "agency:role" -> bearer token
	Client  *http.Client
	Dir     string // the temp dir holding ledger, views and (by default) objects/
}

// Options adjust New.
type Options struct {
	Store   storage.Store    // default: a filesystem store in a temp dir
	Catalog *gateway.Catalog // default: the built-in catalogue
	Logger  *slog.Logger     // default: discard
	// MaxUploadBytes is passed to the API (0: its default).
	MaxUploadBytes int64
	// RateLimit, RateBurst, IdleTimeout and ClientCerts are passed to the
	// API (zero values: its defaults, no rate limit).
	RateLimit   float64
	RateBurst   int
	IdleTimeout time.Duration
	ClientCerts map[string]gateway.Principal
	// Credentials are accepted besides the demo principals' tokens (for
	// example expired ones).
	Credentials []api.Credential
	// API, if set, adjusts the API's configuration before it is built.
	API func(*api.Config)
	// Server, if set, adjusts the test server before it starts: its
	// Config (timeouts, MaxHeaderBytes) or TLS. A non-nil TLS serves HTTPS.
	Server func(*httptest.Server)
	// Ledger, if set, adjusts the ledger's options before it opens (for
	// example to give it a failing disk).
	Ledger func(ledger.Options) ledger.Options
}

// New starts a gateway with the demo agencies and one token per agency and role.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	dir := t.TempDir()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Store == nil {
		st, err := fsstore.Open(filepath.Join(dir, "objects"))
		if err != nil {
			t.Fatal(err)
		}
		o.Store = st
	}
	if o.Catalog == nil {
		o.Catalog = gateway.DefaultCatalog()
	}
	lo := ledger.Options{Dir: filepath.Join(dir, "ledger"), Logger: o.Logger}
	if o.Ledger != nil {
		lo = o.Ledger(lo)
	}
	l, err := ledger.Open(lo)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	g, err := gateway.New(context.Background(), gateway.Config{
		Catalog: o.Catalog, Agencies: gateway.DemoAgencies(), Store: o.Store, Ledger: l,
		StateDir: filepath.Join(dir, "state"), ApplicantKey: key, Logger: o.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Ledger: l, Store: o.Store, Gateway: g, Tokens: map[string]string{}, Dir: dir}
	var creds []api.Credential
	for _, a := range gateway.DemoAgencies() {
		for _, role := range a.Roles {
			tok, sum := api.NewToken()
			e.Tokens[a.ID+":"+role] = tok
			creds = append(creds, api.Credential{Agency: a.ID, Role: role, TokenSHA256: sum})
		}
	}
	cfg := api.Config{Gateway: g, Credentials: append(creds, o.Credentials...), Logger: o.Logger,
		MaxUploadBytes: o.MaxUploadBytes, RateLimit: o.RateLimit, RateBurst: o.RateBurst,
		IdleTimeout: o.IdleTimeout, ClientCerts: o.ClientCerts, Ledger: l}
	if o.API != nil {
		o.API(&cfg)
	}
	h, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Server = httptest.NewUnstartedServer(h)
	if o.Server != nil {
		o.Server(e.Server)
	}
	if e.Server.TLS != nil {
		e.Server.StartTLS()
	} else {
		e.Server.Start()
	}
	e.URL = e.Server.URL
	e.Client = e.Server.Client()
	t.Cleanup(func() {
		e.Server.Close()
		g.Close()
		l.Close()
	})
	return e
}

// File is one material of a test packet.
type File struct {
	Kind, Filename string
	Data           []byte
}

// PDF returns a small PDF-looking file of n bytes with random content.
func PDF(n int) []byte {
	b := make([]byte, max(n, 16))
	rand.Read(b)
	copy(b, "%PDF-1.7\n")
	return b
}

// JPEG returns n bytes that start like a JPEG.
func JPEG(n int) []byte {
	b := make([]byte, max(n, 8))
	rand.Read(b)
	copy(b, []byte{0xFF, 0xD8, 0xFF, 0xE0})
	return b
}

// OFD returns a minimal OFD document: a ZIP with OFD.xml at its root.
func OFD() []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("OFD.xml")
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" DocType="OFD"><ofd:DocBody/></ofd:OFD>`)
	w, _ = zw.Create("Doc_0/Document.xml")
	io.WriteString(w, `<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"/>`)
	zw.Close()
	return buf.Bytes()
}

// SHA256 returns the lowercase hex digest of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Manifest is the manifest part of a submission.
type Manifest struct {
	Item        string         `json:"item"`
	Destination string         `json:"destination"`
	Applicant   map[string]any `json:"applicant"`
	Materials   []MaterialSpec `json:"materials"`
}

// MaterialSpec lists one file in a manifest.
type MaterialSpec struct {
	Kind     string `json:"kind"`
	Filename string `json:"filename"`
	SHA256   string `json:"sha256,omitempty"`
}

// CompanySetup returns a valid ENT-SETUP packet from Jiashan to Qingpu's
// market-regulation bureau: the seed's story.
func CompanySetup() (Manifest, []File) {
	kinds := []string{"consent_form", "application_form", "applicant_id", "address_proof", "articles", "appointments"}
	m := Manifest{Item: "ENT-SETUP", Destination: "qingpu-amr",
		Applicant: map[string]any{"type": "enterprise", "name": "上海青嘉贸易有限公司", "id": "91310118MA1G00011T"}}
	var files []File
	for i, k := range kinds {
		f := File{Kind: k, Filename: k + ".pdf", Data: PDF(2000 + i*100)}
		if k == "applicant_id" {
			f = File{Kind: k, Filename: "营业执照副本.jpg", Data: JPEG(3000)}
		}
		if k == "articles" {
			f = File{Kind: k, Filename: "articles.ofd", Data: OFD()}
		}
		files = append(files, f)
		m.Materials = append(m.Materials, MaterialSpec{Kind: f.Kind, Filename: f.Filename, SHA256: SHA256(f.Data)})
	}
	return m, files
}

// Part is one raw multipart part.
type Part struct {
	Name, Filename, ContentType string
	Data                        []byte
}

// Multipart encodes parts into a body and its content type.
func Multipart(parts []Part) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name=%q`, p.Name)
		if p.Filename != "" {
			cd += fmt.Sprintf(`; filename=%q`, p.Filename)
		}
		h.Set("Content-Disposition", cd)
		if p.ContentType != "" {
			h.Set("Content-Type", p.ContentType)
		}
		w, _ := mw.CreatePart(h)
		w.Write(p.Data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

// SubmissionParts returns the parts of a submission: manifest, then files.
func SubmissionParts(m any, files []File) []Part {
	mj, _ := json.Marshal(m)
	parts := []Part{{Name: "manifest", ContentType: "application/json", Data: mj}}
	for _, f := range files {
		parts = append(parts, Part{Name: f.Kind, Filename: f.Filename, ContentType: "application/octet-stream", Data: f.Data})
	}
	return parts
}

// Do sends a request with the token of who ("agency:role"; "" for none,
// or a literal "Bearer ..." header value) and returns status and body.
func (e *Env) Do(method, path, who string, body io.Reader, contentType string) (int, []byte) {
	e.T.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		e.T.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case strings.HasPrefix(who, "Bearer "):
		req.Header.Set("Authorization", who)
	case who != "":
		tok, ok := e.Tokens[who]
		if !ok {
			e.T.Fatalf("no token for %q", who)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -resp.StatusCode, b // the body broke off: negative status says so
	}
	return resp.StatusCode, b
}

// JSON sends v as a JSON body.
func (e *Env) JSON(method, path, who string, v any) (int, []byte) {
	e.T.Helper()
	b, _ := json.Marshal(v)
	return e.Do(method, path, who, bytes.NewReader(b), "application/json")
}

// Submit sends a packet as who and returns status and body.
func (e *Env) Submit(who string, m any, files []File) (int, []byte) {
	e.T.Helper()
	body, ct := Multipart(SubmissionParts(m, files))
	return e.Do("POST", "/v1/packets", who, body, ct)
}

// MustSubmit submits and returns the new packet's id.
func (e *Env) MustSubmit(who string, m any, files []File) string {
	e.T.Helper()
	code, body := e.Submit(who, m, files)
	if code != http.StatusCreated {
		e.T.Fatalf("submit: %d %s", code, body)
	}
	var p struct{ ID string }
	json.Unmarshal(body, &p)
	return p.ID
}

// Act performs a workflow action and fails the test unless it answers want.
func (e *Env) Act(who, id, action, reason string, want int) []byte {
	e.T.Helper()
	code, body := e.JSON("POST", "/v1/packets/"+id+"/actions", who, map[string]string{"action": action, "reason": reason})
	if code != want {
		e.T.Fatalf("%s %s by %s: %d %s, want %d", action, id, who, code, body, want)
	}
	return body
}
