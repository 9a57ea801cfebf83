package filetype

import (
	"errors"
	"fmt"
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
		// Windows: trailing dots and spaces, streams, reserved characters, devices.
		{"id.exe.", "id.exe"},
		{"id.exe. . ", "id.exe"},
		{"a.pdf::$DATA", "a.pdf__$DATA"},
		{"a.pdf:evil.exe", "a.pdf_evil.exe"},
		{`what?<>|*".pdf`, "what______.pdf"},
		{"CON", "_CON"},
		{"con.pdf", "_con.pdf"},
		{"NUL .txt", "_NUL .txt"},
		{"com1.pdf", "_com1.pdf"},
		{"LPT9", "_LPT9"},
		{"COM¹.pdf", "_COM¹.pdf"},
		{"CONSOLE.pdf", "CONSOLE.pdf"},
		{"x.CON", "x.CON"},
		// Look-alike dots.
		{"invoice\u2024pdf.exe", "invoice_pdf.exe"},
		{"invoice\uff0epdf.exe", "invoice_pdf.exe"},
		{"通知\u3002pdf", "通知_pdf"},
		{"a\ufe52pdf", "a_pdf"},
		{"\u3000全角空格.pdf\u3000", "全角空格.pdf"},
		{"..\u2024", ".._"},
		{strings.Repeat("a", 255) + ".", strings.Repeat("a", 255)},
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
		if why := unsafeName(out); why != "" {
			t.Fatalf("%q -> unsafe %q: %s", in, out, why)
		}
		if again, err := CleanName(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}

// unsafeName says what breaks the rules CleanName promises, "" if none.
func unsafeName(s string) string {
	first, _, _ := strings.Cut(s, ".")
	switch {
	case s == "" || strings.Trim(s, ".") == "":
		return "empty or dots"
	case len(s) > 255:
		return "too long"
	case !utf8.ValidString(s):
		return "not UTF-8"
	case strings.ContainsAny(s, `/\<>:"|?*`):
		return "separator or reserved character"
	case strings.TrimLeftFunc(s, unicode.IsSpace) != s:
		return "leading space"
	case strings.TrimRightFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) }) != s:
		return "trailing dot or space"
	case devices[strings.ToUpper(strings.TrimRightFunc(first, unicode.IsSpace))]:
		return "device name"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || lookAlikeDots[r] {
			return fmt.Sprintf("keeps %U", r)
		}
	}
	return ""
}

// executable extensions a saved file must never end in.
var executable = []string{".exe", ".bat", ".cmd", ".com", ".hta", ".js", ".jse", ".vbs", ".vbe", ".wsf", ".scr", ".pif", ".msi", ".lnk", ".ps1", ".reg", ".cpl", ".jar", ".sh"}

func TestName(t *testing.T) {
	tests := []struct {
		in, typ, want string // want "" means rejected
	}{
		// The examples, each holding a PDF.
		{"申请书.hta", PDF, "申请书.pdf"},
		{"任命.pdf.bat", PDF, "任命.pdf"},
		{"id.exe.", PDF, "id.pdf"},
		{"CON", PDF, "_CON.pdf"},
		{"a.pdf::$DATA", PDF, "a.pdf"},
		{"invoice\u2024pdf.exe", PDF, "invoice_pdf.pdf"},
		// More of the same.
		{"申请书.pdf", PDF, "申请书.pdf"},
		{"SCAN.PDF", PDF, "SCAN.PDF"},
		{"营业执照（副本）.ofd", OFD, "营业执照（副本）.ofd"},
		{"photo.jpeg", JPEG, "photo.jpeg"},
		{"photo.JPG", JPEG, "photo.JPG"},
		{"photo.png", JPEG, "photo.jpg"},
		{"scan", PNG, "scan.png"},
		{"report.exe.pdf", PDF, "report.exe.pdf"},
		{"invoice\uff0epdf.exe", PDF, "invoice_pdf.pdf"},
		{"invoice\u3002pdf.exe", PDF, "invoice_pdf.pdf"},
		{"invoice\u202efdp.exe", PDF, "invoicefdp.pdf"},
		{"a.pdf:evil.exe", PDF, "a.pdf_evil.pdf"},
		{"nul.pdf.exe", PDF, "_nul.pdf"},
		{".pdf", PDF, "pdf.pdf"},
		{"..", PDF, ""},
		{".CON.pdf", PDF, "_CON.pdf"},
		{".hidden", PDF, "hidden.pdf"},
		{"a .pdf", PDF, "a.pdf"},
		{"a . .exe", PDF, "a.pdf"},
		{"../../../../tmp/x.sh", PDF, "x.pdf"},
		{`C:\Windows\System32\calc.exe`, PNG, "calc.png"},
		{strings.Repeat("申", 85), PDF, strings.Repeat("申", 83) + ".pdf"},
		{strings.Repeat("a", 255), JPEG, strings.Repeat("a", 251) + ".jpg"},
		{"", PDF, ""},
		{"...", PDF, ""},
		{"x.pdf", "application/zip", ""},
		{"x.pdf", "", ""},
	}
	for _, tt := range tests {
		got, err := Name(tt.in, tt.typ)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("Name(%q, %s) = %q, %v; want %q", tt.in, tt.typ, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("Name(%q): error %v does not wrap ErrBadName", tt.in, err)
		}
	}
}

var nameTypes = []string{PDF, OFD, JPEG, PNG}

// FuzzName: whatever the client sends, the stored name is safe by
// CleanName's rules, ends in an extension of the type and in no executable
// one, and naming it again changes nothing.
func FuzzName(f *testing.F) {
	for _, s := range []string{
		"申请书.hta", "任命.pdf.bat", "id.exe.", "CON", "a.pdf::$DATA", "invoice\u2024pdf.exe",
		"invoice\uff0epdf.exe", ".CON.pdf", "../../x.sh", strings.Repeat("申", 90), "bad\xff.pdf", "",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, in string, typ uint8) {
		ct := nameTypes[int(typ)%len(nameTypes)]
		out, err := Name(in, ct)
		if err != nil {
			if out != "" || !errors.Is(err, ErrBadName) {
				t.Fatalf("%q: %q, %v", in, out, err)
			}
			if _, cerr := CleanName(in); cerr == nil {
				t.Fatalf("%q: Name refuses (%v) what CleanName takes", in, err)
			}
			return
		}
		if why := unsafeName(out); why != "" {
			t.Fatalf("%q -> unsafe %q: %s", in, out, why)
		}
		if c, err := CleanName(out); err != nil || c != out {
			t.Fatalf("%q -> %q, which CleanName makes %q, %v", in, out, c, err)
		}
		_, ext := splitExt(out)
		if !isExt(extensions[ct], ext) {
			t.Fatalf("%q -> %q: extension is not one of %s", in, out, ct)
		}
		for _, x := range executable {
			if strings.HasSuffix(strings.ToLower(out), x) {
				t.Fatalf("%q -> %q ends in %s", in, out, x)
			}
		}
		if again, err := Name(out, ct); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}
