package filetype

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Content types a material may have, as detected from its bytes.
const (
	PDF  = "application/pdf"
	OFD  = "application/ofd"
	JPEG = "image/jpeg"
	PNG  = "image/png"
)

// ZIP is what DetectHead reports for a ZIP archive. It is never an
// accepted material type by itself: run the file through an OFDChecker and
// call it OFD only if Close returns nil.
const ZIP = "application/zip"

// Sniffing errors; match with errors.Is.
var (
	// ErrUnsupported: the content is none of PDF, OFD, JPEG or PNG.
	ErrUnsupported = errors.New("unsupported file type")
	// ErrNotOFD: the content is a ZIP (or claims to be) but not a valid OFD,
	// e.g. a DOCX, a truncated or encrypted archive.
	ErrNotOFD = errors.New("not an OFD document")
	// ErrZipBomb: the archive expands beyond the checker's caps.
	ErrZipBomb = errors.New("zip bomb: archive expands too much")
)

var (
	magicPDF  = []byte("%PDF-")
	magicJPEG = []byte{0xFF, 0xD8, 0xFF}
	magicPNG  = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}
	magicZIP  = []byte("PK\x03\x04")
)

// DetectHead returns the content type of a file from its first bytes
// (callers pass up to 512): PDF, JPEG, PNG or ZIP. The head
// alone decides, so a PDF with a ZIP appended is a PDF. Anything else is an
// error wrapping ErrUnsupported that says what the bytes look like.
func DetectHead(head []byte) (string, error) {
	switch {
	case bytes.HasPrefix(head, magicPDF):
		return PDF, nil
	case bytes.HasPrefix(head, magicJPEG):
		return JPEG, nil
	case bytes.HasPrefix(head, magicPNG):
		return PNG, nil
	case bytes.HasPrefix(head, magicZIP):
		return ZIP, nil
	case len(head) == 0:
		return "", fmt.Errorf("%w: empty file", ErrUnsupported)
	}
	seen, _, _ := strings.Cut(http.DetectContentType(head), ";")
	if seen == "application/octet-stream" {
		return "", fmt.Errorf("%w: unrecognised binary data", ErrUnsupported)
	}
	return "", fmt.Errorf("%w: looks like %s", ErrUnsupported, seen)
}
