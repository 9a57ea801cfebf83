package format

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Unsequenced is an entry encoded without its seq, time and prev, which a
// sequencer assigns: Seal fills them in and returns exactly the bytes
// Marshal returns for the entry with those fields set. The costly part of
// encoding (checking and compacting the payload, escaping the names) is
// done once, by NewUnsequenced, outside the sequencer.
type Unsequenced struct {
	mid  []byte // `"type":...,"packet":"...",`
	tail []byte // `,"payload":{...}}` or `}`
}

// The placeholders NewUnsequenced encodes and then cuts out.
const (
	placeholderHead = `{"seq":0,"time":"1970-01-01T00:00:00Z",`
	placeholderPrev = `"prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`
)

// NewUnsequenced checks e as Check does and encodes it; its Seq, Time and
// Prev are ignored.
func NewUnsequenced(e Entry) (*Unsequenced, error) {
	e.Seq, e.Time, e.Prev = 0, time.Unix(0, 0), Hash{}
	if err := e.Check(); err != nil {
		return nil, err
	}
	b, err := e.marshal()
	if err != nil {
		return nil, err
	}
	// Names are JSON strings, in which a quote is escaped, so the first
	// `"prev":"` after the head is the key itself.
	rest, ok := bytes.CutPrefix(b, []byte(placeholderHead))
	i := bytes.Index(rest, []byte(placeholderPrev))
	if !ok || i < 0 {
		return nil, fmt.Errorf("format: unexpected encoding of an entry: %.80s", b)
	}
	return &Unsequenced{mid: rest[:i], tail: rest[i+len(placeholderPrev):]}, nil
}

// MaxSize is the most bytes Seal appends for this entry.
func (u *Unsequenced) MaxSize() int {
	// seq: 19 digits; time: RFC 3339 with nanoseconds, 30 bytes.
	return len(placeholderHead) - 1 - 20 + 19 + 30 + len(u.mid) + len(placeholderPrev) + len(u.tail)
}

// Seal appends the canonical encoding of the entry with seq, t (in UTC)
// and prev to dst. It fails, appending nothing, if the result would exceed
// MaxEntrySize or t cannot be encoded.
func (u *Unsequenced) Seal(dst []byte, seq int64, t time.Time, prev Hash) ([]byte, error) {
	if seq < 0 {
		return dst, fmt.Errorf("format: negative seq")
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return dst, fmt.Errorf("format: time %v is outside years 0 to 9999", t)
	}
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `",`...)
	dst = append(dst, u.mid...)
	dst = append(dst, `"prev":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, prev[:])
	dst = append(dst, '"')
	dst = append(dst, u.tail...)
	if n := len(dst) - start; n > MaxEntrySize {
		return dst[:start], fmt.Errorf("format: entry of %d bytes exceeds %d", n, MaxEntrySize)
	}
	return dst, nil
}

// NewCanonicalUnsequenced is NewUnsequenced for a sequencer that records
// only canonical payloads (docs/formats.md): it also refuses a payload
// CheckPayload refuses. Having read the payload once to check it, it copies
// it as it is, and encodes the names itself, where encoding/json would
// validate and compact the payload twice more.
func NewCanonicalUnsequenced(e Entry) (*Unsequenced, error) {
	if err := CheckPayload(e.Payload); err != nil {
		return nil, err
	}
	if !plainName(e.Type) || !plainName(e.Actor.Agency) || !plainName(e.Actor.Role) || !plainName(e.Packet) {
		return NewUnsequenced(e) // escapes only encoding/json knows; rare
	}
	if err := e.checkFields(); err != nil {
		return nil, err
	}
	mid := make([]byte, 0, 64+len(e.Type)+len(e.Actor.Agency)+len(e.Actor.Role)+len(e.Packet))
	mid = append(mid, `"type":`...)
	mid = appendString(mid, e.Type)
	mid = append(mid, `,"actor":{"agency":`...)
	mid = appendString(mid, e.Actor.Agency)
	mid = append(mid, `,"role":`...)
	mid = appendString(mid, e.Actor.Role)
	mid = append(mid, `},"packet":`...)
	mid = appendString(mid, e.Packet)
	mid = append(mid, ',')
	tail := []byte("}")
	if len(e.Payload) > 0 {
		tail = make([]byte, 0, len(`,"payload":}`)+len(e.Payload))
		tail = append(append(append(tail, `,"payload":`...), e.Payload...), '}')
	}
	if n := len(placeholderHead) + len(mid) + len(placeholderPrev) + len(tail); n > MaxEntrySize {
		return nil, fmt.Errorf("format: entry of %d bytes exceeds %d", n, MaxEntrySize) // as marshal says
	}
	return &Unsequenced{mid: mid, tail: tail}, nil
}

// plainName reports whether encoding/json (without HTML escaping) encodes
// s as appendString does: it differs on invalid UTF-8 and on U+2028 and
// U+2029, which it escapes.
func plainName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, '\u2028') && !strings.ContainsRune(s, '\u2029')
}
