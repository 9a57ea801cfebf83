package api

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
	"testing/iotest"

	"tongban/gateway"
)

// TestPartHeaderGuard reads multipart bodies through the guard, whole and
// one byte at a time (delimiters split across reads): headers up to the
// caps pass untouched, one byte more fails with ErrTooLarge.
func TestPartHeaderGuard(t *testing.T) {
	build := func(pad int) ([]byte, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for i, data := range []string{"first", "", "--not a delimiter\r\n\r\n", "last"} {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="p"`)
			if i == 1 {
				h.Set("X-Pad", strings.Repeat("a", pad))
			}
			w, _ := mw.CreatePart(h)
			io.WriteString(w, data)
		}
		mw.Close()
		return buf.Bytes(), mw.Boundary()
	}
	read := func(body []byte, boundary string, max, total int64, oneByte bool) error {
		var r io.Reader = bytes.NewReader(body)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		g := newPartHeaderGuard(r, boundary, max, total)
		mr := multipart.NewReader(g, boundary)
		for n := 0; ; n++ {
			p, err := mr.NextPart()
			if err == io.EOF {
				if n != 4 {
					t.Errorf("%d parts, want 4", n)
				}
				return nil
			}
			if err != nil {
				return g.cause(err)
			}
			if _, err := io.Copy(io.Discard, p); err != nil {
				return g.cause(err)
			}
		}
	}
	body, boundary := build(1000)
	// The padded part's header: the delimiter line's CRLF, two header lines
	// and the empty line.
	header := int64(len("\r\nContent-Disposition: form-data; name=\"p\"\r\nX-Pad: \r\n\r\n") + 1000)
	for _, oneByte := range []bool{false, true} {
		if err := read(body, boundary, header, 1<<20, oneByte); err != nil {
			t.Fatalf("at the cap (one byte a read: %v): %v", oneByte, err)
		}
		if err := read(body, boundary, header-1, 1<<20, oneByte); !errors.Is(err, gateway.ErrTooLarge) {
			t.Fatalf("one byte over the part cap (one byte a read: %v): %v", oneByte, err)
		}
		if err := read(body, boundary, 1<<20, header, oneByte); !errors.Is(err, gateway.ErrTooLarge) {
			t.Fatalf("over the total cap (one byte a read: %v): %v", oneByte, err)
		}
		// After the closing delimiter comes an epilogue (RFC 2046), which
		// is no part's header, however long and without an empty line.
		epilogue := append(bytes.Clone(body), strings.Repeat("e", 3*int(header))...)
		if err := read(epilogue, boundary, header, header+200, oneByte); err != nil {
			t.Fatalf("with a long epilogue (one byte a read: %v): %v", oneByte, err)
		}
	}
}
