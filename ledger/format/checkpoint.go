package format

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is the body of a C2SP tlog-checkpoint: the log's origin, its
// size and the RFC 6962 root hash of the tree of that size.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   Hash
}

// FormatCheckpoint returns the checkpoint body "<origin>\n<size>\n<root>\n".
func FormatCheckpoint(c Checkpoint) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, c.Root)
}

// ParseCheckpoint parses a checkpoint body. Extension lines after the root
// are allowed by C2SP and ignored here.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	var c Checkpoint
	if !bytes.HasSuffix(text, []byte("\n")) {
		return c, errors.New("format: checkpoint must end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return c, errors.New("format: checkpoint needs origin, size and root lines")
	}
	if lines[0] == "" {
		return c, errors.New("format: checkpoint origin is empty")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return c, fmt.Errorf("format: checkpoint size %q is not a decimal count", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != len(c.Root) {
		return c, fmt.Errorf("format: checkpoint root %q is not a base64 SHA-256 hash", lines[2])
	}
	for _, ext := range lines[3:] {
		if ext == "" {
			return c, errors.New("format: empty checkpoint extension line")
		}
	}
	c.Origin, c.Size = lines[0], size
	copy(c.Root[:], root)
	return c, nil
}

// OpenCheckpoint checks a signed checkpoint note against the verifier key
// vkey and parses its body. The note's text must carry the key's name as
// its origin, so a key cannot vouch for another log's checkpoints.
func OpenCheckpoint(signed []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("format: verifier key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("format: checkpoint signature: %w", err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return c, err
	}
	if c.Origin != v.Name() {
		return c, fmt.Errorf("format: checkpoint origin %q does not match key name %q", c.Origin, v.Name())
	}
	return c, nil
}
