package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The canonical JSON form of payloads (docs/formats.md, "Canonical JSON"):
// object keys sorted bytewise and never repeated, no insignificant
// whitespace, integers only (-?(0|[1-9][0-9]*), no -0, within int64),
// strings with only '"', '\' and control characters escaped (\b \f \n \r
// \t short, the rest \u00xx in lowercase hex), valid UTF-8 throughout.
// One meaning has one spelling, so one payload has one leaf hash.

// ErrPayloadNotCanonical is wrapped by Canonical's errors.
var ErrPayloadNotCanonical = errors.New("format: payload is not canonical JSON")

// maxDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxDepth = 64

// Canonical reports whether b is a JSON value in canonical form, naming the
// first offence.
func Canonical(b []byte) error {
	c, err := Canonicalize(b)
	if err != nil {
		return err
	}
	if !bytes.Equal(c, b) {
		i := 0
		for i < len(b) && i < len(c) && b[i] == c[i] {
			i++
		}
		return fmt.Errorf("%w: differs from its canonical form at byte %d", ErrPayloadNotCanonical, i)
	}
	return nil
}

// CheckPayload checks an entry payload: empty, or a JSON object in
// canonical form.
func CheckPayload(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if p[0] != '{' {
		return fmt.Errorf("%w: not an object", ErrPayloadNotCanonical)
	}
	return Canonical(p)
}

// Canonicalize parses one JSON value strictly (no duplicate keys, no
// fractions or exponents, no lone surrogates, valid UTF-8) and returns its
// canonical encoding.
func Canonicalize(b []byte) ([]byte, error) {
	p := parser{in: b}
	out, err := p.value(make([]byte, 0, len(b)), 0) // canonical is never longer than b
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.in) {
		return nil, p.errf("data after the value")
	}
	return out, nil
}

// MarshalCanonical encodes v with encoding/json and returns the canonical
// form of the result.
func MarshalCanonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return Canonicalize(b)
}

type parser struct {
	in []byte
	i  int
}

func (p *parser) errf(f string, a ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrPayloadNotCanonical, p.i, fmt.Sprintf(f, a...))
}

func (p *parser) space() {
	for p.i < len(p.in) {
		switch p.in[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses one value and appends its canonical encoding to out.
func (p *parser) value(out []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, p.errf("nested deeper than %d", maxDepth)
	}
	p.space()
	if p.i >= len(p.in) {
		return nil, p.errf("unexpected end")
	}
	switch c := p.in[p.i]; {
	case c == '{':
		return p.object(out, depth)
	case c == '[':
		p.i++
		out = append(out, '[')
		p.space()
		if p.i < len(p.in) && p.in[p.i] == ']' {
			p.i++
			return append(out, ']'), nil
		}
		for n := 0; ; n++ {
			if n > 0 {
				out = append(out, ',')
			}
			var err error
			if out, err = p.value(out, depth+1); err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.in) {
				return nil, p.errf("unterminated array")
			}
			if p.in[p.i] == ']' {
				p.i++
				return append(out, ']'), nil
			}
			if p.in[p.i] != ',' {
				return nil, p.errf("expected , or ] in array")
			}
			p.i++
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return appendString(out, s), nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number(out)
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.in[p.i:], []byte(lit)) {
				p.i += len(lit)
				return append(out, lit...), nil
			}
		}
		return nil, p.errf("unexpected %q", c)
	}
}

// member is an object member as written to the output: its key, and where
// `"key":value` starts and ends.
type member struct {
	key      string
	from, to int
}

// object writes the members as they come, which is canonical when their
// keys are already in order (every canonical payload); only otherwise are
// they sorted and written again.
func (p *parser) object(out []byte, depth int) ([]byte, error) {
	p.i++ // '{'
	start := len(out)
	out = append(out, '{')
	ms := make([]member, 0, 8)
	var seen map[string]bool // for objects too large to search ms for a key
	sorted := true
	p.space()
	if p.i < len(p.in) && p.in[p.i] == '}' {
		p.i++
		return append(out, '}'), nil
	}
	for {
		p.space()
		if p.i >= len(p.in) || p.in[p.i] != '"' {
			return nil, p.errf("expected a key")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if p.repeated(ms, &seen, k) {
			return nil, p.errf("key %q given twice", k)
		}
		p.space()
		if p.i >= len(p.in) || p.in[p.i] != ':' {
			return nil, p.errf("expected : after key")
		}
		p.i++
		if len(ms) > 0 {
			// Go compares strings bytewise: this is the order of UTF-8 bytes.
			sorted = sorted && k > ms[len(ms)-1].key
			out = append(out, ',')
		}
		from := len(out)
		out = append(appendString(out, k), ':')
		if out, err = p.value(out, depth+1); err != nil {
			return nil, err
		}
		ms = append(ms, member{k, from, len(out)})
		p.space()
		if p.i >= len(p.in) {
			return nil, p.errf("unterminated object")
		}
		if p.in[p.i] == '}' {
			p.i++
			break
		}
		if p.in[p.i] != ',' {
			return nil, p.errf("expected , or } in object")
		}
		p.i++
	}
	if !sorted {
		written := slices.Clone(out[start:])
		slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
		out = append(out[:start], '{')
		for i, m := range ms {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, written[m.from-start:m.to-start]...)
		}
	}
	return append(out, '}'), nil
}

// repeated reports whether key k is among the members read so far: by a
// search of ms while the object is small (most payloads), in *seen beyond.
func (p *parser) repeated(ms []member, seen *map[string]bool, k string) bool {
	const small = 16
	if len(ms) < small {
		for _, m := range ms {
			if m.key == k {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*small)
		for _, m := range ms {
			(*seen)[m.key] = true
		}
	}
	if (*seen)[k] {
		return true
	}
	(*seen)[k] = true
	return false
}

func (p *parser) number(out []byte) ([]byte, error) {
	start := p.i
	if p.in[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.in) && p.in[p.i] >= '0' && p.in[p.i] <= '9' {
		p.i++
	}
	if p.i == digits {
		return nil, p.errf("a number needs digits")
	}
	if p.i < len(p.in) && (p.in[p.i] == '.' || p.in[p.i] == 'e' || p.in[p.i] == 'E') {
		return nil, p.errf("only integers are allowed (no fraction or exponent)")
	}
	lit := string(p.in[start:p.i])
	if p.i-digits > 1 && p.in[digits] == '0' {
		return nil, p.errf("number %s has a leading zero", lit)
	}
	if lit == "-0" {
		return nil, p.errf("-0 is not an integer spelling")
	}
	if _, err := strconv.ParseInt(lit, 10, 64); err != nil {
		return nil, p.errf("integer %s is out of the int64 range", lit)
	}
	return append(out, lit...), nil
}

// str parses a JSON string at p.i and returns its value.
func (p *parser) str() (string, error) {
	p.i++ // '"'
	// Most strings are printable ASCII without escapes: their value is
	// their bytes.
	for j := p.i; j < len(p.in); j++ {
		if c := p.in[j]; c == '"' {
			s := string(p.in[p.i:j])
			p.i = j + 1
			return s, nil
		} else if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	var b []byte
	for {
		if p.i >= len(p.in) {
			return "", p.errf("unterminated string")
		}
		c := p.in[p.i]
		switch {
		case c == '"':
			p.i++
			return string(b), nil
		case c < 0x20:
			return "", p.errf("raw control character in string")
		case c == '\\':
			if p.i+1 >= len(p.in) {
				return "", p.errf("unterminated escape")
			}
			e := p.in[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xdc00 || !bytes.HasPrefix(p.in[p.i:], []byte(`\u`)) {
						return "", p.errf("lone surrogate in string")
					}
					p.i += 2
					r2, err := p.hex4()
					if err != nil {
						return "", err
					}
					if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
						return "", p.errf("lone surrogate in string")
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", p.errf("unknown escape \\%c", e)
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			p.i++
		default:
			r, n := utf8.DecodeRune(p.in[p.i:])
			if r == utf8.RuneError && n <= 1 {
				return "", p.errf("invalid UTF-8")
			}
			b = append(b, p.in[p.i:p.i+n]...)
			p.i += n
		}
	}
}

func (p *parser) hex4() (rune, error) {
	if p.i+4 > len(p.in) {
		return 0, p.errf("short \\u escape")
	}
	v, err := strconv.ParseUint(string(p.in[p.i:p.i+4]), 16, 16)
	if err != nil {
		return 0, p.errf("bad \\u escape")
	}
	p.i += 4
	return rune(v), nil
}

// appendString appends s (valid UTF-8) in the canonical string spelling.
func appendString(out []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			if c < 0x20 {
				out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				out = append(out, c)
			}
		}
	}
	return append(out, '"')
}
