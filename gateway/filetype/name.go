package filetype

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadName is wrapped by every CleanName and Name rejection.
var ErrBadName = errors.New("invalid file name")

// maxFilenameBytes is the usual file-system limit for one path element.
const maxFilenameBytes = 255

// extensions are the file extensions of each type, the usual one first.
var extensions = map[string][]string{
	PDF:  {".pdf"},
	OFD:  {".ofd"},
	JPEG: {".jpg", ".jpeg"},
	PNG:  {".png"},
}

// lookAlikeDots are characters drawn like a full stop: in a name they make
// "invoice\u2024pdf.exe" (U+2024, one dot leader) look like a PDF. They become "_".
var lookAlikeDots = map[rune]bool{
	'\u2024':     true, // one dot leader
	'\uFE52':     true, // small full stop
	'\uFF0E':     true, // fullwidth full stop
	'\u3002':     true, // ideographic full stop
	'\uFF61':     true, // halfwidth ideographic full stop
	'\u0701':     true, // Syriac supralinear full stop
	'\u0702':     true, // Syriac sublinear full stop
	'\u06D4':     true, // Arabic full stop
	'\uA4F8':     true, // Lisu letter tone mya ti
	'\uA60E':     true, // Vai full stop
	'\u2E3C':     true, // stenographic full stop
	'\U00010A50': true, // Kharoshthi punctuation dot
}

// reserved are characters Windows refuses in names; ':' also opens an
// alternate data stream ("a.pdf::$DATA"). They become "_".
const reserved = `<>:"|?*`

// devices are the names Windows opens as devices whatever the extension
// ("CON.pdf", "nul .txt").
var devices = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true, "CLOCK$": true,
	"COM0": true, "COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT0": true, "LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
	"COM¹": true, "COM²": true, "COM³": true, "LPT¹": true, "LPT²": true, "LPT³": true,
}

// CleanName reduces a client-supplied file name to a base name that is
// safe to store, show and put into a bundle, on Unix and on Windows:
//   - the last element after any / or \ ("../../x", "C:\x\y.pdf" and
//     "/abs/x.pdf" lose their paths);
//   - no control or invisible formatting characters (NUL, newlines,
//     right-to-left overrides that disguise an extension);
//   - look-alike dots and the characters Windows reserves (< > : " | ? *,
//     so also alternate data streams) replaced by "_";
//   - no surrounding space and no trailing dots (Windows drops those, so
//     "id.exe." would open as id.exe);
//   - a device name (CON, NUL, COM1, LPT1, ... with any extension) gets a
//     leading "_".
//
// Chinese and other scripts are kept. It rejects invalid UTF-8, names that
// end up empty or made of dots only, and names longer than 255 bytes.
// CleanName does not look at the extension: Name does, once the type is
// known.
func CleanName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrBadName)
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return -1
		case lookAlikeDots[r] || strings.ContainsRune(reserved, r):
			return '_'
		}
		return r
	}, name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = trimName(name)
	switch {
	case name == "": // also a name of dots only: trailing dots are gone
		return "", fmt.Errorf("%w: empty or only dots", ErrBadName)
	case len(name) > maxFilenameBytes:
		return "", fmt.Errorf("%w: longer than 255 bytes", ErrBadName)
	}
	name = notDevice(name)
	if len(name) > maxFilenameBytes {
		return "", fmt.Errorf("%w: longer than 255 bytes", ErrBadName)
	}
	return name, nil
}

// trimName removes surrounding space and trailing dots.
func trimName(s string) string {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	return strings.TrimRightFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
}

// notDevice prefixes "_" to a name Windows would open as a device.
func notDevice(name string) string {
	first, _, _ := strings.Cut(name, ".")
	if devices[strings.ToUpper(strings.TrimRightFunc(first, unicode.IsSpace))] {
		return "_" + name
	}
	return name
}

// Name is the name a file is stored and served under: the client's name,
// cleaned (CleanName), with the extension of its detected content type. The
// base name is kept; an extension that does not belong to the type is
// replaced ("申请书.hta" holding a PDF is "申请书.pdf"), and dropped if the
// type's extension is right before it ("任命.pdf.bat" is "任命.pdf"). So
// whatever opens the saved file picks the program by what the bytes are.
// The result is idempotent: Name(Name(n, t), t) == Name(n, t).
func Name(name, contentType string) (string, error) {
	exts := extensions[contentType]
	if len(exts) == 0 {
		return "", fmt.Errorf("%w: no extension for content type %q", ErrBadName, contentType)
	}
	clean, err := CleanName(name)
	if err != nil {
		return "", err
	}
	stem, ext := splitExt(strings.TrimLeft(clean, "."))
	if !isExt(exts, ext) {
		if s, e := splitExt(stem); isExt(exts, e) {
			stem, ext = s, e
		} else {
			ext = exts[0]
		}
	}
	if stem = trimName(stem); stem == "" {
		stem = "file"
	}
	stem = notDevice(stem)
	maxStem := maxFilenameBytes - len(ext)
	for len(stem) > maxStem {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = trimName(stem[:len(stem)-size])
	}
	return stem + ext, nil
}

// splitExt splits "a.b.pdf" into "a.b" and ".pdf"; a name without a dot
// has no extension.
func splitExt(name string) (stem, ext string) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name, ""
	}
	return name[:i], name[i:]
}

func isExt(exts []string, ext string) bool {
	for _, e := range exts {
		if strings.EqualFold(e, ext) {
			return true
		}
	}
	return false
}
