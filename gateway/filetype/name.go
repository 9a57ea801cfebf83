package filetype

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadName is wrapped by every CleanName rejection.
var ErrBadName = errors.New("invalid file name")

// maxFilenameBytes is the usual file-system limit for one path element.
const maxFilenameBytes = 255

// CleanName reduces a client-supplied file name to a base name that is
// safe to store, show and put into a bundle: the last element after any /
// or \ (so "../../x", "C:\x\y.pdf" and "/abs/x.pdf" lose their paths),
// without control or invisible formatting characters (NUL, newlines,
// right-to-left overrides that disguise an extension), trimmed of
// surrounding space. Chinese and other scripts are kept. It rejects invalid
// UTF-8, names that end up empty or made of dots only, and names longer
// than 255 bytes.
func CleanName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrBadName)
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	switch {
	case strings.Trim(name, ".") == "":
		return "", fmt.Errorf("%w: empty or only dots", ErrBadName)
	case len(name) > maxFilenameBytes:
		return "", fmt.Errorf("%w: longer than 255 bytes", ErrBadName)
	}
	return name, nil
}
