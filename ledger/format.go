// Package ledger is Tongban's shared audit log: an append-only sequence of
// canonical JSON entries, hash-chained and kept in an RFC 6962 Merkle tree
// stored in Badger, with checkpoints signed as C2SP signed notes.
//
// The ledger knows nothing of packets beyond an opaque packet id used for
// lookups; the meaning of entry types and payloads belongs to its callers.
// The formats themselves live in ledger/format, which offline verifiers use
// without Badger; the names below are that package's.
package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"tongban/ledger/format"
)

type (
	Hash       = format.Hash
	Actor      = format.Actor
	Entry      = format.Entry
	Checkpoint = format.Checkpoint
)

const MaxEntrySize = format.MaxEntrySize

var (
	ParseEntry       = format.ParseEntry
	LeafHash         = format.LeafHash
	FormatCheckpoint = format.FormatCheckpoint
	ParseCheckpoint  = format.ParseCheckpoint
	OpenCheckpoint   = format.OpenCheckpoint
	GenerateKey      = format.GenerateKey
	VerifierKey      = format.VerifierKey
	CheckInclusion   = format.CheckInclusion
	CheckConsistency = format.CheckConsistency
)

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
func peekSeqPrev(data []byte) (seq int64, prev format.Hash, ok bool) {
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

// loadOrCreateKey reads the signer key at path, or creates one (mode 0600)
// when the file does not exist.
func loadOrCreateKey(path, origin string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		skey := strings.TrimSpace(string(b))
		if _, err := note.NewSigner(skey); err != nil {
			return "", fmt.Errorf("format: key file %s: %w", path, err)
		}
		return skey, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("ledger: read key: %w", err)
	}
	skey, _, err := GenerateKey(origin)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("ledger: key dir: %w", err)
	}
	return skey, WriteKeyFile(path, skey)
}

// WriteKeyFile writes a new signer key file (mode 0600), durably: the file
// and its directory entry are synced, since a key lost in a power cut
// while the log survives would make the log unsignable. It never
// overwrites a file.
func WriteKeyFile(path, skey string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: create key: %w", err)
	}
	_, err = f.WriteString(skey + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(filepath.Dir(path)); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("ledger: write key %s: %w", path, err)
	}
	return nil
}
