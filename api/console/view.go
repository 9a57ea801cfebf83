package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"tongban/gateway"
)

// view is what every template gets: the request's language and principal,
// and the page's own data.
type view struct {
	Lang  string
	Who   gateway.Principal
	CSRF  string
	Path  string
	Title string
	Data  any
	c     *Console
}

// T translates a message key.
func (v *view) T(key string) string { return tr(v.Lang, key) }

// Status translates a packet status.
func (v *view) Status(s string) string { return tr(v.Lang, "status_"+s) }

// Time formats a time in Beijing time.
func (v *view) Time(t time.Time) string { return shanghaiTime(t) }

// Agency names an agency.
func (v *view) Agency(id string) string {
	if n, ok := v.c.names[id]; ok {
		if v.Lang == "en" {
			return id
		}
		return n
	}
	return id
}

// ItemName names a service item.
func (v *view) ItemName(code string) string {
	it, ok := v.c.g.Catalog().Item(code)
	if !ok {
		return code
	}
	if v.Lang == "en" && it.NameEN != "" {
		return it.NameEN
	}
	return it.Name
}

// MaterialName names a material of an item.
func (v *view) MaterialName(item, kind string) string {
	if it, ok := v.c.g.Catalog().Item(item); ok {
		if m, ok := it.Material(kind); ok {
			if v.Lang == "en" && m.NameEN != "" {
				return m.NameEN
			}
			return m.Name
		}
	}
	return kind
}

// Size formats a byte count.
func (v *view) Size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Is reports whether the signed-in principal has role.
func (v *view) Is(role string) bool { return v.Who.Role == role }

func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", base, err)
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"join": strings.Join,
		"short": func(s string) string {
			if len(s) > 12 {
				return s[:12] + "…"
			}
			return s
		},
	}
}

// render writes a page; the whole page is rendered before a byte is sent,
// so a template error answers 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, title string, who gateway.Principal, csrf string, data any) {
	back := Prefix // where the language switch returns: this page, if it can be fetched again
	if r.Method == http.MethodGet {
		back = r.URL.RequestURI()
	}
	v := &view{Lang: langOf(r), Who: who, CSRF: csrf, Path: back, Title: title, Data: data, c: c}
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (q *req) render(c *Console, status int, page, title string, data any) {
	c.render(q.w, q.r, status, page, title, q.s.who, q.s.csrf, data)
}

// problem is an error shown to the user, with per-field messages.
type problem struct {
	Status  int               `json:"-"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// problemOf maps a gateway error to a status and what the user may read.
// Internal errors are logged, not shown.
func (c *Console) problemOf(err error) problem {
	p := problem{Message: err.Error()}
	var ve *gateway.ValidationError
	if errors.As(err, &ve) {
		p.Fields = ve.Fields
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, gateway.ErrTooLarge):
		p.Status, p.Code = http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, gateway.ErrMalformed):
		p.Status, p.Code = http.StatusBadRequest, "malformed"
	case errors.Is(err, gateway.ErrForbidden):
		p.Status, p.Code = http.StatusForbidden, "forbidden"
	case errors.Is(err, gateway.ErrNotFound):
		p.Status, p.Code = http.StatusNotFound, "not_found"
	case errors.Is(err, gateway.ErrConflict):
		p.Status, p.Code = http.StatusConflict, "conflict"
	case errors.Is(err, gateway.ErrUnsupportedType):
		p.Status, p.Code = http.StatusUnsupportedMediaType, "unsupported_type"
	case errors.Is(err, gateway.ErrInvalid):
		p.Status, p.Code = http.StatusUnprocessableEntity, "invalid"
	case errors.Is(err, gateway.ErrUnavailable):
		p.Status, p.Code, p.Message = http.StatusServiceUnavailable, "unavailable", "storage or ledger unavailable; retry later"
	case errors.Is(err, gateway.ErrIntegrity):
		p.Status, p.Code = http.StatusInternalServerError, "integrity_violation"
		c.log.Error("console: integrity", "err", err)
	default:
		p.Status, p.Code, p.Message = http.StatusInternalServerError, "internal", "internal error; see the gateway's log"
		c.log.Error("console: request failed", "err", err)
	}
	return p
}

func (q *req) fail(c *Console, err error) {
	p := c.problemOf(err)
	q.render(c, p.Status, "error", tr(q.lang, "error"), p)
}
