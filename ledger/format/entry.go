package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Hash is a SHA-256 tree or leaf hash. It marshals to JSON as standard base64.
type Hash = tlog.Hash

// Actor names who caused an entry: an agency id and the role it acted in.
type Actor struct {
	Agency string `json:"agency"`
	Role   string `json:"role"`
}

// Entry is one ledger record. Its canonical encoding (see Marshal) is what the
// tree commits to; the field order here is that encoding's field order.
type Entry struct {
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Actor  Actor     `json:"actor"`
	Packet string    `json:"packet"`
	// Prev is the RFC 6962 leaf hash of the previous entry's canonical bytes;
	// zero for the first entry.
	Prev Hash `json:"prev"`
	// Payload is a type-specific JSON object, kept byte for byte.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Limits on what an entry may hold, so a hostile caller cannot bloat the log.
const (
	MaxEntrySize = 64 << 10
	maxNameLen   = 256
)

// ErrNotCanonical is returned for entry bytes that are not in canonical form.
var ErrNotCanonical = errors.New("format: entry is not in canonical form")

// Marshal returns the canonical encoding of e: compact JSON, fields in the
// order of Entry, time in UTC RFC 3339, no HTML escaping.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	return e.marshal()
}

// marshal encodes an entry that passed Check. The encoder compacts (and
// validates) the payload itself, so it is read once here.
func (e *Entry) marshal() ([]byte, error) {
	c := *e
	c.Time = c.Time.UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("format: encode entry: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("format: entry of %d bytes exceeds %d", len(b), MaxEntrySize)
	}
	return b, nil
}

// Check reports whether the entry may be recorded: sizes, names, payload shape.
func (e *Entry) Check() error {
	if len(e.Payload) > 0 && !json.Valid(e.Payload) {
		return errors.New("format: payload must be a JSON object")
	}
	return e.checkFields()
}

// checkFields is Check without validating the payload's JSON, for callers
// that have validated it already.
func (e *Entry) checkFields() error {
	switch {
	case e.Seq < 0:
		return errors.New("format: negative seq")
	case e.Type == "" || len(e.Type) > maxNameLen:
		return errors.New("format: entry type must be 1 to 256 bytes")
	case len(e.Actor.Agency) > maxNameLen || len(e.Actor.Role) > maxNameLen:
		return errors.New("format: actor names must be at most 256 bytes")
	case len(e.Packet) > maxNameLen || bytes.IndexByte([]byte(e.Packet), 0) >= 0:
		return errors.New("format: packet id must be at most 256 bytes, without NUL")
	case len(e.Payload) > 0 && !bytes.HasPrefix(bytes.TrimLeft(e.Payload, " \t\r\n"), []byte("{")):
		return errors.New("format: payload must be a JSON object")
	}
	return nil
}

// ParseEntry decodes canonical entry bytes. Bytes that decode but are not
// exactly the canonical encoding of what they decode to are rejected, so one
// entry has one encoding and therefore one leaf hash.
func ParseEntry(data []byte) (*Entry, error) {
	if e, ok := readCanonical(data); ok {
		return e, nil
	}
	return parseEntry(data)
}

// parseEntry is ParseEntry by decoding and encoding again: it decides
// whatever the fast path (fastentry.go) does not take.
func parseEntry(data []byte) (*Entry, error) {
	if len(data) > MaxEntrySize {
		return nil, fmt.Errorf("format: entry of %d bytes exceeds %d", len(data), MaxEntrySize)
	}
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("format: parse entry: %w", err)
	}
	if err := e.checkFields(); err != nil {
		return nil, err
	}
	// The decoder has validated the payload; marshal compacts it again.
	again, err := e.marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, ErrNotCanonical
	}
	return &e, nil
}

// LeafHash is the RFC 6962 leaf hash of canonical entry bytes:
// SHA-256(0x00 || data).
func LeafHash(data []byte) Hash { return tlog.RecordHash(data) }
