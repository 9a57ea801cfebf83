package format

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"
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
