// Package ledger is Tongban's shared audit log: an append-only sequence of
// canonical JSON entries, hash-chained and kept in an RFC 6962 Merkle tree
// stored in Badger, with checkpoints signed as C2SP signed notes.
//
// The ledger knows nothing of packets beyond an opaque packet id used for
// lookups; the meaning of entry types and payloads belongs to its callers.
package ledger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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

var errNotCanonical = errors.New("ledger: entry is not in canonical form")

// Marshal returns the canonical encoding of e: compact JSON, fields in the
// order of Entry, time in UTC RFC 3339, no HTML escaping.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	c := *e
	c.Time = c.Time.UTC()
	if len(c.Payload) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, c.Payload); err != nil {
			return nil, fmt.Errorf("ledger: payload: %w", err)
		}
		c.Payload = buf.Bytes()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("ledger: encode entry: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("ledger: entry of %d bytes exceeds %d", len(b), MaxEntrySize)
	}
	return b, nil
}

func (e *Entry) check() error {
	switch {
	case e.Seq < 0:
		return errors.New("ledger: negative seq")
	case e.Type == "" || len(e.Type) > maxNameLen:
		return errors.New("ledger: entry type must be 1 to 256 bytes")
	case len(e.Actor.Agency) > maxNameLen || len(e.Actor.Role) > maxNameLen:
		return errors.New("ledger: actor names must be at most 256 bytes")
	case len(e.Packet) > maxNameLen || bytes.IndexByte([]byte(e.Packet), 0) >= 0:
		return errors.New("ledger: packet id must be at most 256 bytes, without NUL")
	case len(e.Payload) > 0 && (!json.Valid(e.Payload) || bytes.TrimSpace(e.Payload)[0] != '{'):
		return errors.New("ledger: payload must be a JSON object")
	}
	return nil
}

// ParseEntry decodes canonical entry bytes. Bytes that decode but are not
// exactly the canonical encoding of what they decode to are rejected, so one
// entry has one encoding and therefore one leaf hash.
func ParseEntry(data []byte) (*Entry, error) {
	if len(data) > MaxEntrySize {
		return nil, fmt.Errorf("ledger: entry of %d bytes exceeds %d", len(data), MaxEntrySize)
	}
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("ledger: parse entry: %w", err)
	}
	again, err := e.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, errNotCanonical
	}
	return &e, nil
}

// LeafHash is the RFC 6962 leaf hash of canonical entry bytes:
// SHA-256(0x00 || data).
func LeafHash(data []byte) Hash { return tlog.RecordHash(data) }

// Record is an entry as stored: its canonical bytes and their leaf hash.
type Record struct {
	Entry
	Raw  []byte
	Hash Hash
}

// peekSeqPrev reads seq and prev from canonical bytes without a full JSON
// decode; Verify uses it to keep pace with the disk. It relies on the fixed
// field order: "seq" comes first and "prev" is the first key of that name,
// since no earlier string value can hold an unescaped quote.
func peekSeqPrev(data []byte) (seq int64, prev Hash, ok bool) {
	const seqKey, prevKey = `{"seq":`, `,"prev":"`
	if !bytes.HasPrefix(data, []byte(seqKey)) {
		return 0, prev, false
	}
	rest := data[len(seqKey):]
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0, prev, false
	}
	seq, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil {
		return 0, prev, false
	}
	i := bytes.Index(data, []byte(prevKey))
	if i < 0 || len(data) < i+len(prevKey)+45 || data[i+len(prevKey)+44] != '"' {
		return 0, prev, false
	}
	b64 := data[i+len(prevKey) : i+len(prevKey)+44]
	var tmp [33]byte // DecodedLen of 44 base64 characters
	if n, err := base64.StdEncoding.Decode(tmp[:], b64); err != nil || n != len(prev) {
		return 0, prev, false
	}
	copy(prev[:], tmp[:])
	return seq, prev, true
}
