package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// algCosignatureV1 is the signed-note signature type of C2SP
// cosignature/v1 (Ed25519 over a timestamped message).
const algCosignatureV1 = 0x04

// sigSize is the length of a cosignature: a big-endian u64 timestamp and an
// Ed25519 signature.
const sigSize = 8 + ed25519.SignatureSize

// Signer makes cosignature/v1 signatures. It is a note.Signer, so
// note.Sign(&note.Note{Text: checkpoint}, s) yields a cosigned note.
type Signer struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
	// Now is the clock for the cosignature's timestamp (default time.Now).
	Now func() time.Time
}

// Verifier checks cosignature/v1 signatures of one witness key. It is a
// note.Verifier; Verify also accepts only timestamps below 2^63.
type Verifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

// GenerateKey returns a new witness signer key and its verifier key, both
// in signed-note encoding with signature type 0x04. The signer key
// ("PRIVATE+KEY+<name>+<hash>+<base64 of 0x04 and the seed>") is secret.
func GenerateKey(name string) (skey, vkey string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("witness: invalid key name %q", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	h := keyHash(name, pub)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	vkey = fmt.Sprintf("%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
	return skey, vkey, nil
}

// NewSigner parses a signer key written by GenerateKey.
func NewSigner(skey string) (*Signer, error) {
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	if !ok {
		return nil, errors.New("witness: malformed signer key")
	}
	name, h, key, err := splitKey(rest)
	if err != nil || len(key) != ed25519.SeedSize {
		return nil, errors.New("witness: malformed signer key")
	}
	priv := ed25519.NewKeyFromSeed(key)
	if keyHash(name, priv.Public().(ed25519.PublicKey)) != h {
		return nil, errors.New("witness: signer key hash does not match its key")
	}
	return &Signer{name: name, hash: h, priv: priv}, nil
}

// NewVerifier parses a witness verifier key ("<name>+<hash>+<base64 of
// 0x04 and the Ed25519 public key>").
func NewVerifier(vkey string) (*Verifier, error) {
	name, h, key, err := splitKey(vkey)
	if err != nil {
		return nil, fmt.Errorf("witness: verifier key %q: %w", vkey, err)
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("witness: verifier key %q: not an Ed25519 key", vkey)
	}
	if keyHash(name, key) != h {
		return nil, fmt.Errorf("witness: verifier key %q: hash does not match its key", vkey)
	}
	return &Verifier{name: name, hash: h, pub: ed25519.PublicKey(key)}, nil
}

// splitKey parses "<name>+<hash>+<base64(0x04 || key)>".
func splitKey(s string) (name string, hash uint32, key []byte, err error) {
	name, rest, ok1 := strings.Cut(s, "+")
	h16, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(h16) != 8 {
		return "", 0, nil, errors.New("malformed key")
	}
	h, err := strconv.ParseUint(h16, 16, 32)
	if err != nil {
		return "", 0, nil, errors.New("malformed key hash")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) == 0 {
		return "", 0, nil, errors.New("malformed key material")
	}
	if raw[0] != algCosignatureV1 {
		return "", 0, nil, fmt.Errorf("signature type 0x%02x is not a cosignature/v1 key (0x04)", raw[0])
	}
	return name, uint32(h), raw[1:], nil
}

// keyHash is the signed-note key ID: SHA-256(name || "\n" || 0x04 || key)[:4].
func keyHash(name string, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.ContainsRune(name, '+') &&
		strings.IndexFunc(name, unicode.IsSpace) < 0
}

// message is the signed message of cosignature/v1 for a note text.
func message(t uint64, text []byte) []byte {
	return append(fmt.Appendf(nil, "cosignature/v1\ntime %d\n", t), text...)
}

func (s *Signer) Name() string    { return s.name }
func (s *Signer) KeyHash() uint32 { return s.hash }

// Sign returns the timestamp and the Ed25519 signature over the
// cosignature/v1 message for msg, a note text (the checkpoint).
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now().Unix()
	if t < 0 {
		return nil, errors.New("witness: clock before 1970")
	}
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, sigSize), uint64(t))
	return append(sig, ed25519.Sign(s.priv, message(uint64(t), msg))...), nil
}

// Verifier returns the verifier for s's signatures.
func (s *Signer) Verifier() *Verifier {
	return &Verifier{name: s.name, hash: s.hash, pub: s.priv.Public().(ed25519.PublicKey)}
}

func (v *Verifier) Name() string    { return v.name }
func (v *Verifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig is a cosignature of v over the note text msg.
func (v *Verifier) Verify(msg, sig []byte) bool {
	_, ok := v.verify(msg, sig)
	return ok
}

// verify checks sig and returns its timestamp.
func (v *Verifier) verify(msg, sig []byte) (time.Time, bool) {
	if len(sig) != sigSize {
		return time.Time{}, false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > 1<<63-1 || !ed25519.Verify(v.pub, message(t, msg), sig[8:]) {
		return time.Time{}, false
	}
	return time.Unix(int64(t), 0).UTC(), true
}

// String returns the verifier key encoding of v.
func (v *Verifier) String() string {
	return fmt.Sprintf("%s+%08x+%s", v.name, v.hash, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, v.pub...)))
}
