// Package gmnote signs and verifies C2SP signed notes with SM2 (GB/T 32918,
// GM/T 0003) over SM3, for the gm crypto profile. Its Signer and Verifier
// satisfy golang.org/x/mod/sumdb/note's interfaces, so an SM2 line sits in
// any signed note (checkpoints, receipts' checkpoints, cosignatures) beside
// the Ed25519 line, and a verifier that knows only one of the keys ignores
// the other line, as C2SP requires.
//
// The line format (docs/gm.md):
//
//	— <key name> base64(key ID || r || s)
//
//	signature type: 0xff followed by the identifier TypeID (C2SP leaves 0xff
//	                for types it assigns no byte to and recommends a longer
//	                identifier after it)
//	key ID:         SHA-256(name || 0x0A || 0xff || TypeID || 0x04 || X || Y)[:4]
//	signature:      SM2 with user ID UID over the note text; r and s as two
//	                32-byte big-endian integers, 64 bytes in all
//	verifier key:   <name>+<key ID, 8 hex>+base64(0xff || TypeID || 0x04 || X || Y)
package gmnote

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/mod/sumdb/note"
)

const (
	// TypeByte is C2SP signed-note's byte for signature types it assigns
	// none to; TypeID follows it in the key ID and the verifier key.
	TypeByte = 0xff
	// TypeID names this signature type. It carries the project's domain,
	// so another 0xff type will not collide with it, and a version.
	TypeID = "tongban.yrd/sm2-sm3/v1"
	// UID is the SM2 signer identity hashed into Z_A: the default of
	// GM/T 0009 and GB/T 35276, which every SM2 toolkit uses unless told
	// otherwise, so any verifier can check a line without configuration.
	UID = "1234567812345678"
	// SigSize is the length of r || s.
	SigSize = 64
	// pubSize is an uncompressed point: 0x04 || X || Y.
	pubSize = 65
)

// Signer signs notes with an SM2 private key. It implements note.Signer.
type Signer struct {
	name string
	hash uint32
	pub  []byte // uncompressed point
	priv *sm2.PrivateKey
}

// NewSigner returns a signer named name (the log's origin for checkpoints).
func NewSigner(name string, priv *sm2.PrivateKey) (*Signer, error) {
	if !validName(name) {
		return nil, fmt.Errorf("gmnote: invalid key name %q", name)
	}
	if priv == nil {
		return nil, errors.New("gmnote: no private key")
	}
	pub, err := marshalPub(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Signer{name: name, hash: keyHash(name, pub), pub: pub, priv: priv}, nil
}

func (s *Signer) Name() string    { return s.name }
func (s *Signer) KeyHash() uint32 { return s.hash }

// Sign signs msg (the note text) and returns r || s.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	der, err := s.priv.Sign(rand.Reader, msg, sm2.NewSM2SignerOption(true, []byte(UID)))
	if err != nil {
		return nil, fmt.Errorf("gmnote: sign: %w", err)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("gmnote: sign: unexpected signature encoding")
	}
	out := make([]byte, SigSize)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}

// VerifierKey returns the verifier key line for this signer.
func (s *Signer) VerifierKey() string {
	return verifierKey(s.name, s.pub)
}

// Verifier checks SM2 note signatures. It implements note.Verifier.
type Verifier struct {
	name string
	hash uint32
	pub  *ecdsa.PublicKey
}

func (v *Verifier) Name() string    { return v.name }
func (v *Verifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig is a valid r || s over msg. Any other length
// is refused, so each signature has exactly one encoding.
func (v *Verifier) Verify(msg, sig []byte) bool {
	if len(sig) != SigSize {
		return false
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	if err != nil {
		return false
	}
	return sm2.VerifyASN1WithSM2(v.pub, []byte(UID), msg, der) // checks 1 <= r, s < n
}

// VerifierKey encodes the verifier key line for name and pub.
func VerifierKey(name string, pub *ecdsa.PublicKey) (string, error) {
	p, err := marshalPub(pub)
	if err != nil {
		return "", err
	}
	return verifierKey(name, p), nil
}

func verifierKey(name string, p []byte) string {
	return fmt.Sprintf("%s+%08x+%s", name, keyHash(name, p), base64.StdEncoding.EncodeToString(append(typePrefix(), p...)))
}

// NewVerifier parses a verifier key line as VerifierKey writes it.
func NewVerifier(vkey string) (*Verifier, error) {
	name, rest, ok1 := strings.Cut(strings.TrimSpace(vkey), "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(hash16) != 8 {
		return nil, errors.New("gmnote: malformed verifier key")
	}
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	key, err2 := base64.StdEncoding.Strict().DecodeString(key64)
	if err1 != nil || err2 != nil {
		return nil, errors.New("gmnote: malformed verifier key")
	}
	p, ok := bytes.CutPrefix(key, typePrefix())
	if !ok {
		return nil, fmt.Errorf("gmnote: not an SM2 verifier key (type %s expected)", TypeID)
	}
	if len(p) != pubSize {
		return nil, errors.New("gmnote: SM2 public key must be an uncompressed point")
	}
	pub, err := sm2.NewPublicKey(p) // checks the point is on the curve
	if err != nil {
		return nil, fmt.Errorf("gmnote: SM2 public key: %w", err)
	}
	if uint32(hash) != keyHash(name, p) {
		return nil, errors.New("gmnote: verifier key's ID does not match its public key")
	}
	return &Verifier{name: name, hash: uint32(hash), pub: pub}, nil
}

// IsVerifierKey reports whether vkey is an SM2 verifier key line (rather
// than, say, an Ed25519 one), without checking the point.
func IsVerifierKey(vkey string) bool {
	f := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(f) != 3 {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(f[2])
	return err == nil && bytes.HasPrefix(key, typePrefix())
}

// Signed reports whether n, as returned by note.Open, carries a verified
// signature of v's key. note.Open ignores lines of unknown keys and needs
// only one known key to verify, so a verifier that requires a key checks
// this as well.
func Signed(n *note.Note, v note.Verifier) bool {
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			return true
		}
	}
	return false
}

// GenerateKey returns a new SM2 key as a PKCS#8 PEM block.
func GenerateKey() (*sm2.PrivateKey, []byte, error) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("gmnote: generate: %w", err)
	}
	der, err := smx509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("gmnote: encode: %w", err)
	}
	return priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads an SM2 private key from a PKCS#8 PEM block.
func ParsePrivateKey(b []byte) (*sm2.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("gmnote: not a PEM \"PRIVATE KEY\" (PKCS#8) block")
	}
	k, err := smx509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("gmnote: PKCS#8: %w", err)
	}
	priv, ok := k.(*sm2.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("gmnote: the PKCS#8 key is a %T, not an SM2 key", k)
	}
	return priv, nil
}

func typePrefix() []byte { return append([]byte{TypeByte}, TypeID...) }

// marshalPub is the uncompressed point 0x04 || X || Y.
func marshalPub(pub *ecdsa.PublicKey) ([]byte, error) {
	k, err := sm2.PublicKeyToECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("gmnote: public key: %w", err)
	}
	return k.Bytes(), nil
}

// keyHash is C2SP's recommended key ID.
func keyHash(name string, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(typePrefix())
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validName is note's rule: non-empty, no spaces, no '+'.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.Contains(name, "+") && strings.IndexFunc(name, unicode.IsSpace) < 0
}
