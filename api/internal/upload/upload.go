// Package upload opens the multipart body of an upload, the same way for
// the HTTP API and the web console: the checks before a byte is read, the
// cap on its size, the guard of its part headers and the buffer beneath
// mime/multipart.
package upload

import (
	"bufio"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
)

// ReadBuffer is the buffer an upload's body is read through. mime/multipart
// reads through a 4 KiB buffer of its own: without a larger one beneath it,
// a large file costs a read syscall (and a read-deadline reset) per 4 KiB.
const ReadBuffer = 64 << 10

// Refusal is why a request's body was not opened, for the caller to answer
// in its own form.
type Refusal struct {
	Status  int
	Code    string
	Message string
}

// Open checks that r carries multipart/form-data with a usable boundary
// and declares at most max bytes, and returns its parts: the body capped at
// max, passed through guard (if not nil, given the body and the boundary),
// buffered. Nothing of the body is read before it returns.
func Open(w http.ResponseWriter, r *http.Request, max int64, guard func(body io.Reader, boundary string) io.Reader) (*multipart.Reader, *Refusal) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	boundary := params["boundary"]
	if err != nil || mt != "multipart/form-data" || boundary == "" || len(boundary) > 70 {
		return nil, &Refusal{http.StatusUnsupportedMediaType, "unsupported_type",
			"the body must be multipart/form-data with a boundary of at most 70 characters"}
	}
	if r.ContentLength > max {
		return nil, &Refusal{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", max)}
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, max)
	if guard != nil {
		body = guard(body, boundary)
	}
	return multipart.NewReader(bufio.NewReaderSize(body, ReadBuffer), boundary), nil
}
