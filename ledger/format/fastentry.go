package format

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
)

// readCanonical is ParseEntry's fast path, for the verifiers that check
// every entry of the log (ledger verify, mirrors, bundles). It reads data if
// it is exactly the canonical encoding of an entry whose strings are printable ASCII without quotes or backslashes
// (which JSON writes as they are); ok is false for anything else.
func readCanonical(data []byte) (e *Entry, ok bool) {
	if len(data) > MaxEntrySize {
		return nil, false
	}
	r := canonReader{b: data}
	e = new(Entry)
	var seq, ts, prev []byte
	ok = r.lit(`{"seq":`) && r.digits(&seq) &&
		r.lit(`,"time":"`) && r.str(&ts) &&
		r.lit(`,"type":"`) && r.name(&e.Type) &&
		r.lit(`,"actor":{"agency":"`) && r.name(&e.Actor.Agency) &&
		r.lit(`,"role":"`) && r.name(&e.Actor.Role) &&
		r.lit(`},"packet":"`) && r.name(&e.Packet) &&
		r.lit(`,"prev":"`) && r.str(&prev)
	if !ok || e.Type == "" {
		return nil, false
	}
	// seq: no sign, no leading zeros, no overflow.
	n, err := strconv.ParseInt(string(seq), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(seq) {
		return nil, false
	}
	e.Seq = n
	// time: what time.Time's MarshalJSON writes for a UTC time.
	if e.Time, err = time.Parse(time.RFC3339Nano, string(ts)); err != nil || e.Time.Location() != time.UTC ||
		e.Time.Format(time.RFC3339Nano) != string(ts) {
		return nil, false
	}
	// prev: standard base64 of 32 bytes, in the one spelling it encodes back to.
	if len(prev) != 44 {
		return nil, false
	}
	var h [33]byte // Decode wants room for 33
	if k, err := base64.StdEncoding.Decode(h[:], prev); err != nil || k != 32 {
		return nil, false
	}
	copy(e.Prev[:], h[:32])
	if base64.StdEncoding.EncodeToString(e.Prev[:]) != string(prev) {
		return nil, false
	}
	// payload: absent (empty), or a compact JSON object, then the end.
	rest := r.b
	switch {
	case string(rest) == "}":
		return e, true
	case !bytes.HasPrefix(rest, []byte(`,"payload":{`)) || rest[len(rest)-1] != '}':
		return nil, false
	}
	payload := rest[len(`,"payload":`) : len(rest)-1]
	if !json.Valid(payload) {
		return nil, false
	}
	var compact bytes.Buffer
	compact.Grow(len(payload))
	if json.Compact(&compact, payload) != nil || !bytes.Equal(compact.Bytes(), payload) {
		return nil, false
	}
	e.Payload = json.RawMessage(payload)
	return e, true
}

// canonReader reads the fixed layout of a canonical entry.
type canonReader struct{ b []byte }

func (r *canonReader) lit(s string) bool {
	if !bytes.HasPrefix(r.b, []byte(s)) {
		return false
	}
	r.b = r.b[len(s):]
	return true
}

func (r *canonReader) digits(out *[]byte) bool {
	i := 0
	for i < len(r.b) && i < 19 && '0' <= r.b[i] && r.b[i] <= '9' {
		i++
	}
	*out, r.b = r.b[:i], r.b[i:]
	return i > 0
}

// str reads up to the closing quote a string of printable ASCII without
// quotes or backslashes: JSON writes such a string as it is, and reads it
// back unchanged.
func (r *canonReader) str(out *[]byte) bool {
	for i, c := range r.b {
		switch {
		case c == '"':
			*out, r.b = r.b[:i], r.b[i+1:]
			return true
		case c < 0x20 || c > 0x7e || c == '\\':
			return false
		}
	}
	return false
}

// name reads a string of at most 256 bytes (format's limit on names).
func (r *canonReader) name(out *string) bool {
	var b []byte
	if !r.str(&b) || len(b) > 256 {
		return false
	}
	*out = string(b)
	return true
}
