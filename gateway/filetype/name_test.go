package filetype

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string // want "" means rejected
	}{
		{"申请书.pdf", "申请书.pdf"},
		{"营业执照（副本）扫描件.ofd", "营业执照（副本）扫描件.ofd"},
		{"scan 01.jpg", "scan 01.jpg"},
		{"  padded.png  ", "padded.png"},
		{"../../etc/passwd", "passwd"},
		{`..\..\boot.ini`, "boot.ini"},
		{"/abs/x.pdf", "x.pdf"},
		{`C:\x\y.pdf`, "y.pdf"},
		{`\\server\share\z.pdf`, "z.pdf"},
		{"mixed/dir\\name.pdf", "name.pdf"},
		{"a\x00b.pdf", "ab.pdf"},
		{"line\nbreak\r.pdf", "linebreak.pdf"},
		{"tab\there.pdf", "tabhere.pdf"},
		{"del\x7f.pdf", "del.pdf"},
		{"c1\u0085.pdf", "c1.pdf"},
		{"invoice\u202efdp.exe", "invoicefdp.exe"}, // right-to-left override
		{"zero\u200bwidth.pdf", "zerowidth.pdf"},
		{"\ufeffbom.pdf", "bom.pdf"},
		{"..\x00/evil.pdf", "evil.pdf"},
		{"x.pdf/\x00", ""},
		{"", ""},
		{"   ", ""},
		{".", ""},
		{"..", ""},
		{"...", ""},
		{"dir/..", ""},
		{"dir/", ""},
		{`dir\`, ""},
		{"\x00", ""},
		{"bad\xffutf8.pdf", ""},
		{"\xe7\x94", ""}, // truncated 申
		{strings.Repeat("a", 255), strings.Repeat("a", 255)},
		{strings.Repeat("a", 256), ""},
		{strings.Repeat("申", 85), strings.Repeat("申", 85)}, // 255 bytes
		{strings.Repeat("申", 86), ""},                      // 258 bytes
		{"dir/" + strings.Repeat("a", 255), strings.Repeat("a", 255)},
		{".hidden", ".hidden"},
	}
	for _, tt := range tests {
		got, err := CleanName(tt.in)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("CleanName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("CleanName(%q): error %v does not wrap ErrBadName", tt.in, err)
		}
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{
		"申请书.pdf", "../../etc/passwd", `..\..\boot.ini`, "/abs/x.pdf", "a\x00b.pdf",
		`C:\x\y.pdf`, "invoice\u202efdp.exe", "..", "bad\xff.pdf", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanName(in)
		if err != nil {
			if out != "" || !errors.Is(err, ErrBadName) {
				t.Fatalf("%q: %q, %v", in, out, err)
			}
			return
		}
		if out == "" || out == "." || out == ".." || len(out) > 255 || !utf8.ValidString(out) ||
			strings.ContainsAny(out, `/\`) || strings.TrimSpace(out) != out {
			t.Fatalf("%q -> unsafe %q", in, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("%q -> %q keeps %U", in, out, r)
			}
		}
		if again, err := CleanName(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}
