package format

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ReceiptHeader is the first line of a C2SP tlog-proof.
const ReceiptHeader = "c2sp.org/tlog-proof@v1"

// Receipt is a C2SP tlog-proof (c2sp.org/tlog-proof@v1) of one entry: its
// index (the entry's seq), the entry's canonical bytes as the extra data,
// so the receipt stands alone, the RFC 6962 audit path, and the signed
// checkpoint the path leads to.
type Receipt struct {
	Index      int64
	Extra      []byte // the entry's canonical bytes
	Hashes     []Hash
	Checkpoint []byte // a signed note
}

// maxReceipt bounds what ParseReceipt reads: an entry, 64 audit hashes and
// a checkpoint with many cosignatures fit well within it.
const maxReceipt = 256 << 10

// Marshal returns the tlog-proof text.
func (r Receipt) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(ReceiptHeader + "\n")
	if r.Extra != nil {
		fmt.Fprintf(&b, "extra %s\n", base64.StdEncoding.EncodeToString(r.Extra))
	}
	fmt.Fprintf(&b, "index %d\n", r.Index)
	for _, h := range r.Hashes {
		fmt.Fprintf(&b, "%s\n", h)
	}
	b.WriteString("\n")
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ErrNotReceipt is wrapped by ParseReceipt's errors: the bytes are not a
// tlog-proof at all.
var ErrNotReceipt = errors.New("format: not a c2sp.org/tlog-proof@v1 receipt")

// ParseReceipt parses a tlog-proof strictly: the header, an optional extra
// line, the index in plain decimal, base64 hashes of 32 bytes, an empty
// line, and a checkpoint note ending in a newline. It does not check the
// signature or the proof.
func ParseReceipt(text []byte) (Receipt, error) {
	var r Receipt
	if len(text) > maxReceipt {
		return r, fmt.Errorf("%w: %d bytes, more than %d", ErrNotReceipt, len(text), maxReceipt)
	}
	head, cp, ok := bytes.Cut(text, []byte("\n\n"))
	if !ok || len(cp) == 0 || cp[len(cp)-1] != '\n' {
		return r, fmt.Errorf("%w: no checkpoint after an empty line", ErrNotReceipt)
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != ReceiptHeader {
		return r, fmt.Errorf("%w: first line is not %q", ErrNotReceipt, ReceiptHeader)
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return r, fmt.Errorf("%w: extra is not base64", ErrNotReceipt)
		}
		r.Extra = extra
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return r, fmt.Errorf("%w: no index line", ErrNotReceipt)
	}
	s := strings.TrimPrefix(lines[0], "index ")
	idx, err := strconv.ParseInt(s, 10, 64)
	if err != nil || idx < 0 || strconv.FormatInt(idx, 10) != s {
		return r, fmt.Errorf("%w: index %q is not a plain decimal", ErrNotReceipt, s)
	}
	r.Index = idx
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != len(Hash{}) {
			return r, fmt.Errorf("%w: proof line %q is not a base64 SHA-256 hash", ErrNotReceipt, l)
		}
		r.Hashes = append(r.Hashes, Hash(h))
	}
	r.Checkpoint = cp
	return r, nil
}
