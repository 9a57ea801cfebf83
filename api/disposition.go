package api

import (
	"strings"
	"unicode/utf8"
)

// contentDisposition is the Content-Disposition of a download named name
// (RFC 6266): an ASCII filename for old clients, with anything outside
// printable ASCII, quotes, backslashes and percent signs as "_", and the
// exact UTF-8 name in filename* (RFC 5987), which current browsers use.
func contentDisposition(name string) string {
	var ascii, ext strings.Builder
	for _, r := range name {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '%' {
			r = '_'
		}
		ascii.WriteRune(r)
	}
	for _, b := range []byte(name) {
		if isAttrChar(b) {
			ext.WriteByte(b)
			continue
		}
		const hex = "0123456789ABCDEF"
		ext.Write([]byte{'%', hex[b>>4], hex[b&15]})
	}
	if !utf8.ValidString(name) {
		// Stored names are valid UTF-8; a broken one gets no filename*.
		return `attachment; filename="` + ascii.String() + `"`
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}

// isAttrChar reports whether b may stand unescaped in an RFC 5987 value.
func isAttrChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", b) >= 0
}
