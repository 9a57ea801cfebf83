package gateway

import (
	"fmt"
	"strings"
	"unicode"
)

// Free-text fields reach the append-only ledger (reasons) or the manifest
// whose digest it holds (applicant names), so what is stored must read the
// same to everyone who displays it. docs/text-fields.md gives the rule for
// each field.

// badRune returns the first character of s that no text field may hold:
// control characters (C0, DEL, C1: NUL, escape, CR, ...), invisible
// formatting characters (bidirectional overrides and isolates such as
// U+202E, zero-width spaces and joiners, the byte-order mark) and the
// Unicode line and paragraph separators; allow lists exceptions. ok is
// false if there is none.
func badRune(s string, allow string) (r rune, ok bool) {
	for _, r := range s {
		if strings.ContainsRune(allow, r) {
			continue
		}
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return r, true
		}
	}
	return 0, false
}

func describeRune(r rune) string {
	switch {
	case r == '\r' || r == '\n':
		return fmt.Sprintf("a line break (%U)", r)
	case unicode.IsControl(r):
		return fmt.Sprintf("a control character (%U)", r)
	case unicode.In(r, unicode.Zl, unicode.Zp):
		return fmt.Sprintf("a line or paragraph separator (%U)", r)
	}
	return fmt.Sprintf("an invisible or bidirectional formatting character (%U)", r)
}

// applicantNameProblem says what is wrong with an applicant's name, or ""
// if nothing is: a name is one line of visible text, refused (never
// altered) otherwise, since the window must correct what it typed.
func applicantNameProblem(name string) string {
	if r, bad := badRune(name, ""); bad {
		return "contains " + describeRune(r) + "; a name is one line of visible text"
	}
	return ""
}

// cleanReason normalises a reviewer's reason: line breaks become "\n"
// (CR LF and a lone CR alike) and surrounding space is trimmed; tabs and
// line breaks are kept. Any other control or formatting character is
// refused, naming it.
func cleanReason(reason string) (string, error) {
	reason = strings.ReplaceAll(reason, "\r\n", "\n")
	reason = strings.ReplaceAll(reason, "\r", "\n")
	reason = strings.TrimSpace(reason)
	if r, bad := badRune(reason, "\n\t"); bad {
		return "", fieldError(ErrInvalid, "reason", "contains %s; only visible text, tabs and line breaks are kept", describeRune(r))
	}
	return reason, nil
}
