package upload

import (
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOpen: a request that is not multipart with a usable boundary, or
// declares more than the cap, is refused before its body is read; an
// accepted one is read through the guard and capped.
func TestOpen(t *testing.T) {
	var body strings.Builder
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "a.txt")
	fw.Write([]byte(strings.Repeat("x", 1000)))
	mw.Close()
	req := func(ct string, length int64) *http.Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body.String()))
		r.Header.Set("Content-Type", ct)
		r.ContentLength = length
		return r
	}
	n := int64(body.Len())
	for _, c := range []struct {
		name   string
		r      *http.Request
		status int
	}{
		{"json", req("application/json", n), http.StatusUnsupportedMediaType},
		{"no boundary", req("multipart/form-data", n), http.StatusUnsupportedMediaType},
		{"long boundary", req("multipart/form-data; boundary="+strings.Repeat("b", 71), n), http.StatusUnsupportedMediaType},
		{"declared too large", req(mw.FormDataContentType(), 5000), http.StatusRequestEntityTooLarge},
	} {
		guarded := false
		_, refused := Open(httptest.NewRecorder(), c.r, 4000, func(b io.Reader, _ string) io.Reader { guarded = true; return b })
		if refused == nil || refused.Status != c.status || guarded {
			t.Errorf("%s: refused %+v (guard called: %v), want status %d", c.name, refused, guarded, c.status)
		}
	}

	var seen int
	mr, refused := Open(httptest.NewRecorder(), req(mw.FormDataContentType(), n), 4000, func(b io.Reader, boundary string) io.Reader {
		if boundary != mw.Boundary() {
			t.Errorf("guard given boundary %q, want %q", boundary, mw.Boundary())
		}
		return readerFunc(func(p []byte) (int, error) { k, err := b.Read(p); seen += k; return k, err })
	})
	if refused != nil {
		t.Fatalf("refused %+v", refused)
	}
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(p); err != nil || len(b) != 1000 {
		t.Fatalf("part: %d bytes, %v", len(b), err)
	}
	if seen == 0 {
		t.Error("the body was not read through the guard")
	}

	// A body longer than the cap, its length undeclared, fails as it is read.
	mr, _ = Open(httptest.NewRecorder(), req(mw.FormDataContentType(), -1), 500, nil)
	if p, err := mr.NextPart(); err == nil {
		if _, err = io.ReadAll(p); err == nil {
			t.Error("a body over the cap was read whole")
		}
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
