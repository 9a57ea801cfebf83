package ledger

import (
	"tongban/ledger/format"
)

// The format names that callers of the ledger need, so that one import
// serves them; ledger/format documents each.
type (
	Hash       = format.Hash
	Actor      = format.Actor
	Entry      = format.Entry
	Checkpoint = format.Checkpoint
)

// MaxEntrySize is the largest canonical entry the ledger records.
const MaxEntrySize = format.MaxEntrySize

// ParseEntry decodes canonical entry bytes; see format.ParseEntry.
func ParseEntry(data []byte) (*Entry, error) { return format.ParseEntry(data) }

// LeafHash is the RFC 6962 leaf hash of canonical entry bytes.
func LeafHash(data []byte) Hash { return format.LeafHash(data) }

// FormatCheckpoint returns the checkpoint body; see format.FormatCheckpoint.
func FormatCheckpoint(c Checkpoint) []byte { return format.FormatCheckpoint(c) }

// ParseCheckpoint parses a checkpoint body; see format.ParseCheckpoint.
func ParseCheckpoint(text []byte) (Checkpoint, error) { return format.ParseCheckpoint(text) }

// OpenCheckpoint checks a signed checkpoint note against vkey and parses
// its body; see format.OpenCheckpoint.
func OpenCheckpoint(signed []byte, vkey string) (Checkpoint, error) {
	return format.OpenCheckpoint(signed, vkey)
}

// GenerateKey returns a new note signer key and its verifier key, named
// after the log's origin.
func GenerateKey(origin string) (skey, vkey string, err error) { return format.GenerateKey(origin) }

// VerifierKey derives the verifier key from a signer key.
func VerifierKey(skey string) (string, error) { return format.VerifierKey(skey) }

// CheckInclusion checks an inclusion proof; see format.CheckInclusion.
func CheckInclusion(proof []Hash, size int64, root Hash, seq int64, leaf Hash) error {
	return format.CheckInclusion(proof, size, root, seq, leaf)
}

// CheckConsistency checks a consistency proof; see format.CheckConsistency.
func CheckConsistency(proof []Hash, from int64, fromRoot Hash, to int64, toRoot Hash) error {
	return format.CheckConsistency(proof, from, fromRoot, to, toRoot)
}
